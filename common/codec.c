/* Compressed payloads: see codec.h. */
#include "common/codec.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/simd.h"
#include "proto/psod.pb-c.h"

const char *const codec_names[] = {"fp32", "fp16", "bf16", "int8", "int4", "int2", NULL};

int codec_blocked(int kind)
{
    return kind == CODEC_INT8 || kind == CODEC_INT4 || kind == CODEC_INT2;
}

/* Values of a blocked kind per byte. */
static size_t s_per_byte(int kind) { return kind == CODEC_INT2 ? 4 : kind == CODEC_INT4 ? 2 : 1; }

const char *codec_name(int kind)
{
    return kind >= 0 && kind < CODEC_KINDS ? codec_names[kind] : "?";
}

int codec_parse(const char *name)
{
    for (int k = 0; k < CODEC_KINDS; k++)
        if (strcmp(name, codec_names[k]) == 0)
            return k;
    return -1;
}

/* ":KIND" or nothing (fp32) after a number: the kind, or -1. */
static int s_tail_kind(const char *end)
{
    if (*end == ':')
        return codec_parse(end + 1);
    return *end ? -1 : CODEC_FP32;
}

int codec_spec_parse(const char *spec, int *kind, double *density, unsigned *fragments)
{
    if (!spec)
        return -1;
    char *end;
    int k;
    if (strncmp(spec, "frag:", 5) == 0) {
        if (spec[5] < '0' || spec[5] > '9')
            return -1;
        unsigned long f = strtoul(spec + 5, &end, 10);
        if (f < 2 || f > CODEC_MAX_FRAGMENTS || (k = s_tail_kind(end)) < 0)
            return -1;
        *kind = k;
        *density = 0;
        *fragments = (unsigned)f;
        return 0;
    }
    *fragments = 0;
    if (strncmp(spec, "topk:", 5) != 0) {
        *kind = codec_parse(spec);
        *density = 0;
        return *kind < 0 ? -1 : 0;
    }
    double d = strtod(spec + 5, &end);
    if (end == spec + 5 || !(d > 0 && d <= 1) || (k = s_tail_kind(end)) < 0)
        return -1;
    *kind = k;
    *density = d;
    return 0;
}

void codec_spec_name(int kind, double density, unsigned fragments, char *buf, size_t len)
{
    if (fragments > 1)
        snprintf(buf, len, "frag:%u:%s", fragments, codec_name(kind));
    else if (density > 0)
        snprintf(buf, len, "topk:%g:%s", density, codec_name(kind));
    else
        snprintf(buf, len, "%s", codec_name(kind));
}

static size_t s_blocks(size_t n, size_t block) { return (n + block - 1) / block; }

size_t codec_bytes(int kind, size_t n, size_t block)
{
    switch (kind) {
    case CODEC_FP32: return n * sizeof(float);
    case CODEC_FP16:
    case CODEC_BF16: return n * sizeof(uint16_t);
    case CODEC_INT8:
    case CODEC_INT4:
    case CODEC_INT2:
        if (block < 1 || block > CODEC_MAX_BLOCK)
            return 0;
        return s_blocks(n, block) * sizeof(float) + s_blocks(n, s_per_byte(kind));
    }
    return 0;
}

static uint32_t s_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float s_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define F16_MAX 65504.0f
#define BF16_MAX 3.38953139e38f /* 0x7f7f0000 */

static float s_clamp(float f, float max) { return f > max ? max : f < -max ? -max : f; }

/* float32 to binary16, round to nearest even. Three ranges: too large
 * (saturated to the largest finite half), subnormal halves (the float adder
 * rounds: adding 0.5 lines the half's bits up with the float's lowest),
 * and normal halves (rebias the exponent, round the 13 dropped bits). */
uint16_t codec_f32_to_f16(float f)
{
    uint32_t x = s_bits(s_clamp(f, F16_MAX));
    uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    uint32_t h;
    if (x > 0x7f800000u) {
        h = 0x7e00u;              /* NaN stays NaN */
    } else if (x < 0x38800000u) { /* below 2^-14 */
        h = s_bits(s_float(x) + 0.5f) - s_bits(0.5f);
    } else {
        uint32_t odd = (x >> 13) & 1u;
        x += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
        h = x >> 13;
    }
    return (uint16_t)(h | sign);
}

float codec_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = em & 0x0f800000u;
    uint32_t o;
    if (exp == 0x0f800000u) { /* inf, NaN */
        o = em + ((uint32_t)(255 - 31) << 23);
    } else if (exp == 0) { /* zero, subnormal: exact through the adder */
        o = s_bits(s_float(em + (113u << 23)) - s_float(113u << 23));
    } else {
        o = em + ((uint32_t)(127 - 15) << 23);
    }
    return s_float(o | sign);
}

uint16_t codec_f32_to_bf16(float f)
{
    uint32_t x = s_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* NaN stays NaN */
    x = s_bits(s_clamp(f, BF16_MAX));
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float codec_bf16_to_f32(uint16_t h) { return s_float((uint32_t)h << 16); }

/* A block's scale: max|d| / top, so that its largest value is the top
 * level; *inv its inverse. A block of zeros or subnormals gets 0 (left to
 * the residual). */
static float s_block_scale(const float *d, size_t len, float top, float *inv)
{
    float m = 0;
    for (size_t j = 0; j < len; j++)
        m = fmaxf(m, fabsf(d[j]));
    float s = m / top;
    *inv = m > 0 ? top / m : 0;
    if (!(*inv <= FLT_MAX))
        s = *inv = 0;
    return s;
}

/* One block of int4 or int2 (len values, the block's bytes at `vals`,
 * zeroed here): levels q * s, q in [-7, 7] (int4), or (c - 1.5) * s,
 * c in 0 .. 3 (int2). */
static void s_quantize_low(int kind, const float *d, size_t len, unsigned char *vals, float *scale,
                           float *deq)
{
    float inv, s = s_block_scale(d, len, kind == CODEC_INT4 ? 7.0f : 1.5f, &inv);
    memset(vals, 0, s_blocks(len, s_per_byte(kind)));
    for (size_t j = 0; j < len; j++) {
        unsigned code;
        if (kind == CODEC_INT4) {
            float r = s_clamp(rintf(d[j] * inv), 7.0f);
            int q = r == r ? (int)r : 0;
            deq[j] = (float)q * s;
            code = (unsigned)q & 0xfu;
            vals[j / 2] |= (unsigned char)(code << (4 * (j % 2)));
        } else {
            float r = floorf(d[j] * inv + 2.0f); /* the level's code, 0 .. 3 */
            int c = r == r ? (r < 0 ? 0 : r > 3 ? 3 : (int)r) : 2;
            deq[j] = ((float)c - 1.5f) * s;
            code = (unsigned)c;
            vals[j / 4] |= (unsigned char)(code << (2 * (j % 4)));
        }
    }
    *scale = s;
}

/* Value j of a block of int4 or int2, as the factor of its scale. */
static inline float s_low_level(int kind, const unsigned char *vals, size_t j)
{
    if (kind == CODEC_INT4) {
        int q = (vals[j / 2] >> (4 * (j % 2))) & 0xf;
        return (float)(q >= 8 ? q - 16 : q);
    }
    return (float)((vals[j / 4] >> (2 * (j % 4))) & 3) - 1.5f;
}

/* One chunk of fp16 or int8: quantize d[0..len) into the kind's values at
 * `vals` (int8: and its scale), and put what the receiver will decode into
 * deq. */
static void s_quantize(int kind, const float *d, size_t len, void *vals, float *scale, float *deq)
{
    if (kind == CODEC_FP16) {
        uint16_t *q = vals;
        for (size_t j = 0; j < len; j++) {
            q[j] = codec_f32_to_f16(d[j]);
            deq[j] = codec_f16_to_f32(q[j]);
        }
    } else if (kind == CODEC_INT4 || kind == CODEC_INT2) {
        s_quantize_low(kind, d, len, vals, scale, deq);
    } else { /* int8 (bf16 has loops of its own) */
        int8_t *q = vals;
        float inv, s = s_block_scale(d, len, 127.0f, &inv);
        for (size_t j = 0; j < len; j++) {
            float r = s_clamp(rintf(d[j] * inv), 127.0f);
            q[j] = r == r ? (int8_t)r : 0;
            deq[j] = (float)q[j] * s;
        }
        *scale = s;
    }
}

#define CHUNK CODEC_BLOCK /* int8 needs one block per chunk; the others any size */

/* Where chunk c's values and scale go in an encoded payload of n values. */
static void *s_vals(int kind, void *out, size_t n, size_t c, size_t block)
{
    if (codec_blocked(kind))
        return (char *)out + s_blocks(n, block) * sizeof(float) + c * block / s_per_byte(kind);
    return (uint16_t *)out + c * CHUNK;
}

static void s_put_scale(int kind, void *out, size_t c, float s)
{
    if (codec_blocked(kind))
        memcpy((char *)out + c * sizeof(float), &s, sizeof s);
}

/* bfloat16 of a finite float, nearest-even, saturated: branch-free so the
 * loops below vectorize (codec_f32_to_bf16 is the same for finite input). */
static inline uint16_t s_bf16(float d)
{
    d = d > BF16_MAX ? BF16_MAX : d < -BF16_MAX ? -BF16_MAX : d;
    uint32_t u = s_bits(d);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void codec_bf16_pack(uint16_t *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = s_bf16(src[i]);
}

void codec_bf16_unpack(float *restrict dst, const uint16_t *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = s_float((uint32_t)src[i] << 16);
}

/* The hot loops of bf16, one pass each (the generic chunked path below
 * serves fp16 and int8). */
PSOD_CLONES
static void s_bf16_encode(size_t n, const float *restrict x, const float *restrict ref,
                          float *restrict resid, uint16_t *restrict q)
{
    for (size_t i = 0; i < n; i++) {
        float d = x[i] - (ref ? ref[i] : 0.0f) + (resid ? resid[i] : 0.0f);
        uint16_t h = s_bf16(d);
        q[i] = h;
        if (resid)
            resid[i] = d - s_float((uint32_t)h << 16);
    }
}

PSOD_CLONES
static void s_bf16_step(size_t n, float *restrict target, const float *restrict state,
                        uint16_t *restrict q)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h = s_bf16(target[i] - state[i]);
        q[i] = h;
        target[i] = state[i] + s_float((uint32_t)h << 16);
    }
}

PSOD_CLONES
static void s_bf16_decode(size_t n, const uint16_t *v, const float *ref, float *dst)
{
    /* dst may be ref: no restrict */
    for (size_t i = 0; i < n; i++) {
        float d = s_float((uint32_t)v[i] << 16);
        dst[i] = ref ? ref[i] + d : d;
    }
}

void codec_encode(int kind, size_t n, const float *x, const float *ref, float *resid, void *out)
{
    if (kind == CODEC_BF16) {
        s_bf16_encode(n, x, ref, resid, out);
        return;
    }
    if (kind == CODEC_FP32) {
        float *o = out;
        for (size_t i = 0; i < n; i++) {
            float d = x[i] - (ref ? ref[i] : 0) + (resid ? resid[i] : 0);
            o[i] = d;
            if (resid)
                resid[i] = 0;
        }
        return;
    }
    float d[CHUNK], deq[CHUNK], scale = 0;
    for (size_t c = 0, i = 0; i < n; c++, i += CHUNK) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < len; j++)
            d[j] = x[i + j] - (ref ? ref[i + j] : 0) + (resid ? resid[i + j] : 0);
        s_quantize(kind, d, len, s_vals(kind, out, n, c, CODEC_BLOCK), &scale, deq);
        s_put_scale(kind, out, c, scale);
        if (resid)
            for (size_t j = 0; j < len; j++)
                resid[i + j] = d[j] - deq[j];
    }
}

void codec_encode_step(int kind, size_t n, float *target, const float *state, void *out)
{
    if (kind == CODEC_BF16) {
        s_bf16_step(n, target, state, out);
        return;
    }
    if (kind == CODEC_FP32) {
        float *o = out;
        for (size_t i = 0; i < n; i++) {
            o[i] = target[i] - state[i];
            target[i] = state[i] + o[i];
        }
        return;
    }
    float d[CHUNK], deq[CHUNK], scale = 0;
    for (size_t c = 0, i = 0; i < n; c++, i += CHUNK) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < len; j++)
            d[j] = target[i + j] - state[i + j];
        s_quantize(kind, d, len, s_vals(kind, out, n, c, CODEC_BLOCK), &scale, deq);
        s_put_scale(kind, out, c, scale);
        for (size_t j = 0; j < len; j++)
            target[i + j] = state[i + j] + deq[j];
    }
}

int codec_check(int kind, size_t n, size_t block, const void *in, size_t bytes, char *msg,
                size_t msglen)
{
    if (kind < 0 || kind >= CODEC_KINDS) {
        snprintf(msg, msglen, "unknown encoding %d", kind);
        return PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    }
    if (codec_blocked(kind) && (block < 1 || block > CODEC_MAX_BLOCK ||
                                (kind != CODEC_INT8 && block % s_per_byte(kind) != 0))) {
        snprintf(msg, msglen, "%s block of %zu values, outside 1 .. %u or not whole bytes",
                 codec_name(kind), block, CODEC_MAX_BLOCK);
        return PSOD__ERROR_CODE__ERR_MALFORMED;
    }
    size_t want = codec_bytes(kind, n, block);
    if (bytes != want) {
        if (codec_blocked(kind))
            snprintf(msg, msglen,
                     "%s payload is %zu bytes; %zu values in blocks of %zu are "
                     "%zu",
                     codec_name(kind), bytes, n, block, want);
        else
            snprintf(msg, msglen, "%s payload is %zu bytes, expected %zu", codec_name(kind), bytes,
                     want);
        return PSOD__ERROR_CODE__ERR_SIZE;
    }
    if (!codec_blocked(kind))
        return 0;
    size_t nb = s_blocks(n, block);
    for (size_t b = 0; b < nb; b++) {
        float s;
        memcpy(&s, (const char *)in + b * sizeof s, sizeof s);
        if (!isfinite(s)) {
            snprintf(msg, msglen, "%s block %zu has scale %g", codec_name(kind), b, s);
            return PSOD__ERROR_CODE__ERR_NOT_FINITE;
        }
        if (s < 0) {
            snprintf(msg, msglen, "%s block %zu has negative scale %g", codec_name(kind), b, s);
            return PSOD__ERROR_CODE__ERR_MALFORMED;
        }
    }
    return 0;
}

static size_t s_nonfinite(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += (s_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
    return bad;
}

size_t codec_decode(int kind, size_t n, size_t block, const void *in, const float *ref, float *dst)
{
    if (kind == CODEC_FP32) {
        const float *v = in;
        for (size_t i = 0; i < n; i++)
            dst[i] = ref ? ref[i] + v[i] : v[i];
    } else if (kind == CODEC_BF16) {
        s_bf16_decode(n, in, ref, dst); /* payloads are float-aligned (wire_payload_align) */
    } else if (kind == CODEC_FP16) {
        const uint16_t *v = in;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, v + i, sizeof h);
            float d = codec_f16_to_f32(h);
            dst[i] = ref ? ref[i] + d : d;
        }
    } else if (kind == CODEC_INT4 || kind == CODEC_INT2) {
        size_t nb = s_blocks(n, block);
        const unsigned char *q = (const unsigned char *)in + nb * sizeof(float);
        for (size_t b = 0, i = 0; b < nb; b++) {
            float s;
            memcpy(&s, (const char *)in + b * sizeof s, sizeof s);
            size_t end = i + block < n ? i + block : n;
            const unsigned char *v = q + b * (block / s_per_byte(kind));
            for (size_t j = 0; i < end; i++, j++) {
                float d = s_low_level(kind, v, j) * s;
                dst[i] = ref ? ref[i] + d : d;
            }
        }
    } else {
        size_t nb = s_blocks(n, block);
        const int8_t *q = (const int8_t *)((const char *)in + nb * sizeof(float));
        for (size_t b = 0, i = 0; b < nb; b++) {
            float s;
            memcpy(&s, (const char *)in + b * sizeof s, sizeof s);
            size_t end = i + block < n ? i + block : n;
            for (; i < end; i++) {
                float d = (float)q[i] * s;
                dst[i] = ref ? ref[i] + d : d;
            }
        }
    }
    return s_nonfinite(dst, n);
}
