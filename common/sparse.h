/* Sparse payloads: the k entries of largest magnitude of a change, their
 * indices coded compactly and their values in a dense kind of codec.h
 * (`--wire topk:DENSITY[:KIND]`). Like every compressed payload it is a
 * change against a vector both sides hold:
 *
 *   up (push)       d = x - ref + r; the top k of d go, the values in KIND;
 *                   r = d - what the receiver decodes (the entries not
 *                   sent keep all of d: error feedback, nothing is lost)
 *   down (position) d = target - state; the top k go; target becomes
 *                   state + what the receiver decodes, bit for bit
 *
 * Layout (little-endian):
 *   u32 k             entries sent, 1 .. n
 *   u32 index_bytes   bytes of the indices that follow
 *   indices           k LEB128 varints: the first index, then each gap to
 *                     the next minus one (indices strictly increase)
 *   padding           zero bytes up to a multiple of 4
 *   values            codec.h's payload of KIND for the k values (blocked
 *                     kinds: with the block the message states)
 *
 * Ties at the k-th magnitude go to the lower indices, so the selection
 * depends on the values alone. Nothing here knows about sockets. */
#ifndef PSOD_COMMON_SPARSE_H
#define PSOD_COMMON_SPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Entries of n sent at `density` (0 < density <= 1): at least 1. */
size_t sparse_k(size_t n, double density);

/* The most bytes a payload of k of n values of `kind` can take. */
size_t sparse_max_bytes(int kind, size_t n, size_t k, size_t block);

/* Up: the top k of x - ref + resid into out (sparse_max_bytes bytes at
 * least), resid left with what was not delivered. ref NULL: zero; resid
 * NULL: no error feedback. Returns the payload's bytes, 0 when out of
 * memory (nothing written, resid unchanged). x must be finite. */
size_t sparse_encode(int kind, size_t n, size_t k, const float *x, const float *ref, float *resid,
                     void *out);

/* Down: the top k of target - state into out; target becomes state plus
 * what the receiver decodes. Returns bytes, 0 when out of memory (target
 * unchanged). */
size_t sparse_encode_step(int kind, size_t n, size_t k, float *target, const float *state,
                          void *out);

/* Whether `bytes` bytes at `in` are a well-formed sparse payload of n
 * values with `kind` values in `block`: k in 1 .. n, indices in range and
 * strictly increasing, no overlong varint, zero padding, the values'
 * size and scales (codec_check). 0, or a protocol ErrorCode with msg. */
int sparse_check(int kind, size_t n, size_t block, const void *in, size_t bytes, char *msg,
                 size_t msglen);

/* dst = ref with the listed entries plus their values (ref NULL: zeros
 * elsewhere); dst may be ref. `in` must have passed sparse_check.
 * Returns how many of the entries written are not finite. */
size_t sparse_decode(int kind, size_t n, size_t block, const void *in, size_t bytes,
                     const float *ref, float *dst);

#endif
