/* How a vector of n elements is split over S daemons (--shards), the same
 * on both sides of the wire: shard k of S owns [floor(n k / S),
 * floor(n (k + 1) / S)); and, the same way, the part of it a round syncs
 * under fragment payloads (--wire frag:F). */
#ifndef PSOD_RANGE_H
#define PSOD_RANGE_H

#include <stddef.h>
#include <stdint.h>

static inline void range_of(uint64_t n, int count, int k, uint64_t *offset, uint64_t *len)
{
    unsigned __int128 a = (unsigned __int128)n * (unsigned)k / (unsigned)count,
                      b = (unsigned __int128)n * (unsigned)(k + 1) / (unsigned)count;
    *offset = (uint64_t)a;
    *len = (uint64_t)(b - a);
}

/* The part of n round `round` syncs with `fragments` parts: part round mod
 * fragments; all of n when fragments < 2 (whole payloads). */
static inline void range_fragment(uint64_t n, unsigned fragments, uint64_t round, size_t *offset,
                                  size_t *len)
{
    uint64_t o = 0, l = n;
    if (fragments > 1)
        range_of(n, (int)fragments, (int)(round % fragments), &o, &l);
    *offset = (size_t)o;
    *len = (size_t)l;
}

#endif
