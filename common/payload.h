/* The checks a float32 payload gets where it arrives (psod's pushes, the
 * client's positions), in passes that read each block once: its CRC-32C,
 * its NaN and infinite values, and what else the reader does with the
 * block while it is in the cache (a sum, a copy). No ZeroMQ here: the
 * strategies use it too. */
#ifndef PSOD_COMMON_PAYLOAD_H
#define PSOD_COMMON_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Count of NaN and infinite values in a float32 array (float-aligned). */
size_t payload_count_nonfinite(const float *x, size_t n);

/* One pass over a received payload: its CRC-32C into *crc, and the count
 * of NaN and infinite values as the result. Works block by block so the
 * second look at each block hits the cache. */
size_t payload_check(const float *x, size_t n, uint32_t *crc);

/* The same pass, handing each block to fold(arg, lo, hi) once it is
 * checked, while it is still in the cache (psod sums a push into the
 * round's mean this way: one read of it, not two). fold runs on the
 * thread that checked the block, on disjoint ranges; it sees blocks that
 * may turn out to belong to a refused payload. */
typedef void (*payload_fold_fn)(void *arg, size_t lo, size_t hi);
size_t payload_check_fold(const float *x, size_t n, uint32_t *crc, payload_fold_fn fold, void *arg);

/* What a check found: the CRC-32C and the count of non-finite values. */
struct payload_check {
    uint32_t crc;
    size_t bad;
};

/* memcpy that also returns the CRC-32C of what it copied, in one pass. */
uint32_t payload_copy_crc(void *dst, const void *src, size_t bytes);

#endif
