/* Compressed payloads: what travels instead of float32 vectors when a
 * worker and psod agree on a wire kind (--wire fp32|bf16|fp16|int8|int4|int2,
 * and their sparse forms: common/sparse.h).
 *
 * What travels is always a change against a vector both sides hold
 * already, never the weights themselves, so the rounding error is relative
 * to a small change:
 *
 *   up (push)       q = Q(x - ref + r);  r = (x - ref + r) - D(q)
 *                   the worker carries the rounding residual r forward
 *                   (error feedback); the daemon decodes ref + D(q)
 *   down (position) q = Q(new - state);  state = state + D(q)
 *                   the daemon encodes against the position the worker
 *                   holds, so both hold the same floats afterwards and an
 *                   error never accumulates: each position is within one
 *                   rounding of a change of the daemon's exact result
 *
 * D(q) + ref is computed by this one function on both sides (one float32
 * multiply for int8, one add; the build has -ffp-contract=off), which is
 * what keeps them bit-identical; psod sends the CRC-32C of the resulting
 * position and the client checks it.
 *
 * Layouts (little-endian):
 *   fp16, bf16  n 16-bit values (IEEE binary16; bfloat16 = the top half of
 *               a float32), rounded to nearest even, saturated at the
 *               kind's largest finite value
 *   int8        ceil(n / block) float32 scales, then n int8 values in
 *               [-127, 127]: value = q * scale, scale = max|d| / 127 of its
 *               block (the blockwise scheme of INTELLECT-1's int8
 *               pseudo-gradients). Encoders use CODEC_BLOCK; decoders take
 *               the block the metadata states (1 .. CODEC_MAX_BLOCK).
 *   int4        the scales as int8's, then ceil(n / 2) bytes: value 2i in the
 *               low nibble of byte i, 2i + 1 in the high one, each a two's
 *               complement q in [-8, 7] (encoders use [-7, 7]):
 *               value = q * scale, scale = max|d| / 7 of its block
 *   int2        the scales, then ceil(n / 4) bytes, value 4i + j in bits
 *               2j .. 2j + 1 of byte i: a code c in 0 .. 3 for the level
 *               (c - 1.5) * scale, scale = max|d| / 1.5 of its block (four
 *               levels, no zero: the error feedback carries what is lost)
 *   Blocked kinds (int8, int4, int2) pad a last partial byte with zeros.
 *
 * Nothing here knows about sockets or swarms. */
#ifndef PSOD_CODEC_H
#define PSOD_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The values are the protocol's Encoding. */
enum codec_kind {
    CODEC_FP32 = 0,
    CODEC_FP16 = 1,
    CODEC_BF16 = 2,
    CODEC_INT8 = 3,
    CODEC_INT4 = 4,
    CODEC_INT2 = 5
};
#define CODEC_KINDS 6
#define CODEC_BLOCK 256u
#define CODEC_MAX_BLOCK (1u << 20)

/* Whether a kind has blocks with a scale each (int8, int4, int2): its
 * payloads state their block size. */
int codec_blocked(int kind);

/* "fp32", "fp16", "bf16", "int8", "int4", "int2"; "?" for another value. */
const char *codec_name(int kind);
/* The kind named, or -1. */
int codec_parse(const char *name);

/* The most fragments a vector may be synced in (`frag:F`). */
#define CODEC_MAX_FRAGMENTS 4096u

/* A wire spec: a kind ("int4"); sparse payloads of a kind,
 * "topk:DENSITY[:KIND]" (0 < DENSITY <= 1); or fragment payloads of a
 * kind, "frag:F[:KIND]" (2 <= F <= CODEC_MAX_FRAGMENTS: the vector in F
 * parts, one synced a round). KIND is fp32 when left out. 0 with *kind,
 * *density (0 = dense) and *fragments (0 = the whole vector), or -1. */
int codec_spec_parse(const char *spec, int *kind, double *density, unsigned *fragments);
/* The spec of a kind, density and fragments, as codec_spec_parse reads it. */
void codec_spec_name(int kind, double density, unsigned fragments, char *buf, size_t len);
/* NULL-terminated names in kind order, for option tables. */
extern const char *const codec_names[];

/* Bytes of the payload of n values of `kind` (blocked kinds: with that
 * block); 0 for an unknown kind or a block outside 1 .. CODEC_MAX_BLOCK. */
size_t codec_bytes(int kind, size_t n, size_t block);

/* Up: encode x - ref + resid into out (codec_bytes(kind, n, CODEC_BLOCK)
 * bytes) and leave in resid what the encoding lost. ref NULL: zero (a
 * gradient); resid NULL: no error feedback. x must be finite. */
void codec_encode(int kind, size_t n, const float *x, const float *ref, float *resid, void *out);

/* Down: encode target - state into out and overwrite target with state +
 * D(out), the vector the receiver will hold. */
void codec_encode_step(int kind, size_t n, float *target, const float *state, void *out);

/* Whether `bytes` bytes at `in` are a well-formed payload of n values of
 * `kind` with `block`: the size the kind and block give, int8 scales that
 * are finite and not negative. 0, or a protocol ErrorCode (ERR_SIZE,
 * ERR_MALFORMED, ERR_NOT_FINITE, ERR_UNSUPPORTED) with `msg` filled. */
int codec_check(int kind, size_t n, size_t block, const void *in, size_t bytes, char *msg,
                size_t msglen);

/* dst = ref + D(in) (ref NULL: D(in)); dst may be ref. `in` must have
 * passed codec_check. Returns how many values of dst are not finite. */
size_t codec_decode(int kind, size_t n, size_t block, const void *in, const float *ref, float *dst);

/* The scalar conversions, for tests: round to nearest even, saturating. */
uint16_t codec_f32_to_f16(float f);
float codec_f16_to_f32(uint16_t h);
uint16_t codec_f32_to_bf16(float f);
float codec_bf16_to_f32(uint16_t h);
/* n finite floats to bfloat16 (nearest-even, saturated) and back, in
 * loops that vectorize (psod's --best-precision bf16). */
void codec_bf16_pack(uint16_t *dst, const float *src, size_t n);
void codec_bf16_unpack(float *dst, const uint16_t *src, size_t n);

#endif
