/* How a vector of n elements is split over S daemons (--shards), the same
 * on both sides of the wire: shard k of S owns [floor(n k / S),
 * floor(n (k + 1) / S)). */
#ifndef PSOD_RANGE_H
#define PSOD_RANGE_H

#include <stdint.h>

static inline void range_of(uint64_t n, int count, int k, uint64_t *offset, uint64_t *len)
{
    unsigned __int128 a = (unsigned __int128)n * (unsigned)k / (unsigned)count,
                      b = (unsigned __int128)n * (unsigned)(k + 1) / (unsigned)count;
    *offset = (uint64_t)a;
    *len = (uint64_t)(b - a);
}

#endif
