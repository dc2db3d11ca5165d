/* A plain 64-bit string hash (FNV-1a). Model fingerprints hash a layout
 * description with it; psod and the workers seed per-particle random
 * streams from worker names with it. Not for anything adversarial. */
#ifndef PSOD_HASH_H
#define PSOD_HASH_H

#include <stdint.h>

uint64_t hash_fnv1a64(const char *s);

#endif
