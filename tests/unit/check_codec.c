/* Compressed payloads (common/codec.c): the conversions against references
 * (the compiler's _Float16, and nearest-even computed in double), int8
 * blocks, error feedback, the bit-identical position step, and every rule
 * a received payload must pass. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "proto/psod.pb-c.h"
#include "tests/lib/suite.h"

static uint32_t s_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float s_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* xorshift: reproducible test vectors. */
static uint64_t s_rng = 0x9e3779b97f4a7c15ull;
static uint32_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)(s_rng >> 32);
}

/* Check sends every assertion's location down a pipe: loops over millions
 * of values test with this and fail on the first miss. */
#define EXPECT(cond, ...)              \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static float s_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(s_next() >> 8) / 16777216.0f;
}

START_TEST(every_half_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = codec_f16_to_f32((uint16_t)h);
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
            EXPECT(isnan(f), "half %04x is a NaN", h);
            continue;
        }
        if ((h & 0x7fffu) == 0x7c00u) { /* infinities saturate on the way back */
            ck_assert(isinf(f));
            ck_assert_uint_eq(codec_f32_to_f16(f), (h & 0x8000u) | 0x7bffu);
            continue;
        }
        EXPECT(codec_f32_to_f16(f) == h, "half %04x -> %g -> %04x", h, (double)f,
               codec_f32_to_f16(f));
    }
}
END_TEST

START_TEST(half_matches_the_compilers_float16)
{
#ifdef __FLT16_MAX__
    for (int i = 0; i < 2000000; i++) {
        /* Every exponent a half can hold, and below (subnormals, zero). */
        float f = s_float((s_next() & 0x807fffffu) | (uint32_t)(100 + s_next() % 43) << 23);
        if (fabsf(f) > 65504.0f)
            continue;
        _Float16 ref = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &ref, 2);
        EXPECT(codec_f32_to_f16(f) == rb, "%a: ours %04x, _Float16 %04x", (double)f,
               codec_f32_to_f16(f), rb);
        EXPECT(s_bits(codec_f16_to_f32(rb)) == s_bits((float)ref), "half %04x widens wrongly", rb);
    }
#endif
    /* Saturation instead of infinity; NaN stays NaN. */
    ck_assert_uint_eq(codec_f32_to_f16(1e6f), 0x7bffu);
    ck_assert_uint_eq(codec_f32_to_f16(-INFINITY), 0xfbffu);
    ck_assert(isnan(codec_f16_to_f32(codec_f32_to_f16(NAN))));
    ck_assert_uint_eq(codec_f32_to_f16(1.0f), 0x3c00u);
    ck_assert_uint_eq(codec_f32_to_f16(5.9604645e-8f), 0x0001u); /* smallest subnormal */
}
END_TEST

/* bfloat16 to nearest, ties to even, decided in double. */
static uint16_t s_bf16_ref(float f)
{
    uint32_t lo = s_bits(f) >> 16, hi = lo + 1;
    double dl = fabs((double)s_float(lo << 16) - f), dh = fabs((double)s_float(hi << 16) - f);
    if (dl < dh || (dl == dh && !(lo & 1)))
        return (uint16_t)lo;
    return (uint16_t)hi;
}

START_TEST(bfloat16_rounds_to_nearest_even)
{
    for (int i = 0; i < 2000000; i++) {
        float f = s_float(s_next() & 0xfeffffffu); /* no exponent 255: finite */
        if (!isfinite(f) || fabsf(f) > 3.38953139e38f)
            continue;
        EXPECT(codec_f32_to_bf16(f) == s_bf16_ref(f), "%a: %04x vs %04x", (double)f,
               codec_f32_to_bf16(f), s_bf16_ref(f));
    }
    for (uint32_t h = 0; h < 65536; h++) {
        float f = codec_bf16_to_f32((uint16_t)h);
        EXPECT(!isfinite(f) || codec_f32_to_bf16(f) == h, "bfloat16 %04x does not round trip", h);
    }
    ck_assert_uint_eq(codec_f32_to_bf16(FLT_MAX), 0x7f7fu); /* saturated */
    ck_assert(isnan(codec_bf16_to_f32(codec_f32_to_bf16(NAN))));
}
END_TEST

START_TEST(sizes_of_each_kind)
{
    ck_assert_uint_eq(codec_bytes(CODEC_FP32, 1000, 0), 4000);
    ck_assert_uint_eq(codec_bytes(CODEC_BF16, 1000, 0), 2000);
    ck_assert_uint_eq(codec_bytes(CODEC_FP16, 1000, 0), 2000);
    ck_assert_uint_eq(codec_bytes(CODEC_INT8, 1000, 256), 4 * 4 + 1000);
    ck_assert_uint_eq(codec_bytes(CODEC_INT8, 1024, 256), 4 * 4 + 1024);
    ck_assert_uint_eq(codec_bytes(CODEC_INT8, 1000, 0), 0);
    ck_assert_uint_eq(codec_bytes(CODEC_INT8, 1000, CODEC_MAX_BLOCK + 1), 0);
    ck_assert_uint_eq(codec_bytes(7, 1000, 0), 0);
    ck_assert_int_eq(codec_parse("bf16"), CODEC_BF16);
    ck_assert_int_eq(codec_parse("int4"), CODEC_INT4);
    ck_assert_int_eq(codec_parse("int2"), CODEC_INT2);
    ck_assert_int_eq(codec_parse("int3"), -1);
    ck_assert_uint_eq(codec_bytes(CODEC_INT4, 1000, 256), 4 * 4 + 500);
    ck_assert_uint_eq(codec_bytes(CODEC_INT4, 1001, 256), 4 * 4 + 501);
    ck_assert_uint_eq(codec_bytes(CODEC_INT2, 1001, 256), 4 * 4 + 251);
    ck_assert(codec_blocked(CODEC_INT8) && codec_blocked(CODEC_INT4) && codec_blocked(CODEC_INT2));
    ck_assert(!codec_blocked(CODEC_BF16) && !codec_blocked(CODEC_FP32));
    ck_assert_str_eq(codec_name(CODEC_INT8), "int8");
}
END_TEST

/* Decoded deltas are within the kind's rounding of the delta. */
START_TEST(decoded_changes_are_within_the_rounding)
{
    enum { N = 5000 };
    static float x[N], ref[N], got[N];
    static unsigned char q[N * 4];
    for (int i = 0; i < N; i++) {
        ref[i] = s_uniform(-2, 2);
        x[i] = ref[i] + s_uniform(-0.01f, 0.01f);
    }
    const int kinds[] = {CODEC_BF16, CODEC_FP16, CODEC_INT8};
    const double rel[] = {1.0 / 256, 1.0 / 2048, 0};
    for (int k = 0; k < 3; k++) {
        codec_encode(kinds[k], N, x, ref, NULL, q);
        char msg[128];
        ck_assert_int_eq(codec_check(kinds[k], N, CODEC_BLOCK, q,
                                     codec_bytes(kinds[k], N, CODEC_BLOCK), msg, sizeof msg),
                         0);
        ck_assert_uint_eq(codec_decode(kinds[k], N, CODEC_BLOCK, q, ref, got), 0);
        for (int i = 0; i < N; i++) {
            double d = (double)x[i] - ref[i], e = fabs((double)got[i] - ref[i] - d);
            /* the delta's rounding, plus the add's (half an ulp of ref) */
            double tol = (kinds[k] == CODEC_INT8 ? 0.01 / 127 / 2 * 1.01 : fabs(d) * rel[k]) +
                         fabs(got[i]) * FLT_EPSILON +
                         (kinds[k] == CODEC_FP16 ? ldexp(1, -25) : 0); /* subnormal halves */
            EXPECT(e <= tol, "%s element %d: error %g > %g", codec_name(kinds[k]), i, e, tol);
        }
    }
}
END_TEST

START_TEST(int8_blocks_scale_by_their_own_largest)
{
    enum { N = 600 };
    float x[N];
    unsigned char q[4 * 3 + N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 256) / 255.0f * (i < 256 ? 1.0f : i < 512 ? 100.0f : 0.0f);
    x[599] = -3.0f;
    codec_encode(CODEC_INT8, N, x, NULL, NULL, q);
    float s[3];
    memcpy(s, q, sizeof s);
    ck_assert_float_eq_tol(s[0], 1.0f / 127, 1e-9);
    ck_assert_float_eq_tol(s[1], 100.0f / 127, 1e-6);
    ck_assert_float_eq_tol(s[2], 3.0f / 127, 1e-8);
    const int8_t *v = (const int8_t *)(q + 12);
    ck_assert_int_eq(v[255], 127);
    ck_assert_int_eq(v[511], 127);
    ck_assert_int_eq(v[599], -127);
    ck_assert_int_eq(v[0], 0);
    /* A block of zeros has scale 0 and decodes to zeros. */
    float z[10] = {0}, out[10];
    unsigned char qz[4 + 10];
    codec_encode(CODEC_INT8, 10, z, NULL, NULL, qz);
    ck_assert_uint_eq(codec_decode(CODEC_INT8, 10, CODEC_BLOCK, qz, NULL, out), 0);
    for (int i = 0; i < 10; i++)
        ck_assert(out[i] == 0);
    /* Subnormal deltas: scale 0, left to the residual, never NaN. */
    float tiny[4] = {1e-44f, 0, -1e-45f, 0}, r[4] = {0};
    codec_encode(CODEC_INT8, 4, tiny, NULL, r, qz);
    ck_assert_uint_eq(codec_decode(CODEC_INT8, 4, CODEC_BLOCK, qz, NULL, out), 0);
    ck_assert(r[0] == tiny[0] && r[2] == tiny[2]);
}
END_TEST

/* Error feedback: what a stream of pushes delivers equals what was pushed,
 * up to the last residual; without it, small values under a large one in
 * an int8 block are lost for good. */
START_TEST(error_feedback_loses_nothing_over_rounds)
{
    enum { N = 256, R = 200 };
    float g[N], r[N] = {0}, out[N];
    double sent[N] = {0}, got_fb[N] = {0}, got_plain[N] = {0};
    unsigned char q[4 + N];
    for (int t = 0; t < R; t++) {
        g[0] = 1.0f;
        for (int i = 1; i < N; i++)
            g[i] = 0.001f * (float)(i % 7 + 1);
        for (int i = 0; i < N; i++)
            sent[i] += g[i];
        codec_encode(CODEC_INT8, N, g, NULL, r, q);
        codec_decode(CODEC_INT8, N, CODEC_BLOCK, q, NULL, out);
        for (int i = 0; i < N; i++)
            got_fb[i] += out[i];
        codec_encode(CODEC_INT8, N, g, NULL, NULL, q);
        codec_decode(CODEC_INT8, N, CODEC_BLOCK, q, NULL, out);
        for (int i = 0; i < N; i++)
            got_plain[i] += out[i];
    }
    for (int i = 0; i < N; i++) {
        ck_assert_msg(fabs(got_fb[i] + r[i] - sent[i]) <= 1e-3 * fabs(sent[i]) + 1e-4,
                      "element %d: delivered %g + residual %g, sent %g", i, got_fb[i], (double)r[i],
                      sent[i]);
        ck_assert(fabs(r[i]) <= 1.0 / 127); /* the residual stays bounded */
    }
    ck_assert(got_plain[1] == 0); /* 0.001 under 1.0 rounds to 0, every round */
    ck_assert(got_fb[1] > 0.9 * sent[1]);
}
END_TEST

/* int4 and int2 against a plain reference of their layouts: per block the
 * scale max|d| / 7 (int4) or / 1.5 (int2), each value the nearest level
 * (int4: q s, q in [-7, 7]; int2: (c - 1.5) s, c in 0 .. 3), nibbles and
 * pairs of bits low first; decoding gives exactly the levels. */
START_TEST(low_bit_kinds_match_a_reference_of_their_layout)
{
    enum { N = 700 }; /* two whole blocks and a partial one, odd length */
    float d[N], out[N];
    unsigned char q[3 * 4 + N];
    for (int i = 0; i < N; i++)
        d[i] = s_uniform(-1, 1) * (i < 256 ? 0.01f : i < 512 ? 3.0f : 0.2f);
    const int kinds[2] = {CODEC_INT4, CODEC_INT2};
    for (int k = 0; k < 2; k++) {
        int kind = kinds[k];
        double top = kind == CODEC_INT4 ? 7 : 1.5;
        codec_encode(kind, N, d, NULL, NULL, q);
        char msg[128];
        size_t bytes = codec_bytes(kind, N, CODEC_BLOCK);
        ck_assert_int_eq(codec_check(kind, N, CODEC_BLOCK, q, bytes, msg, sizeof msg), 0);
        ck_assert_uint_eq(codec_decode(kind, N, CODEC_BLOCK, q, NULL, out), 0);
        for (int b = 0; b < 3; b++) {
            double m = 0;
            for (int i = b * 256; i < N && i < (b + 1) * 256; i++)
                m = fmax(m, fabs(d[i]));
            float s;
            memcpy(&s, q + 4 * b, 4);
            ck_assert_msg(fabs(s - m / top) <= 1e-6 * m, "%s block %d: scale %g, want %g",
                          codec_name(kind), b, (double)s, m / top);
            for (int i = b * 256; i < N && i < (b + 1) * 256; i++) {
                /* the nearest level, from the reference's own list */
                double best = 1e30, lv = 0;
                for (int c = 0; c < (kind == CODEC_INT4 ? 15 : 4); c++) {
                    double level = kind == CODEC_INT4 ? (c - 7) * (double)s : (c - 1.5) * s;
                    if (fabs(level - d[i]) < best - 1e-12)
                        best = fabs(level - d[i]), lv = level;
                }
                EXPECT(fabs(out[i] - lv) <= 1e-6 * (m + 1e-30) ||
                           fabs(fabs(out[i] - d[i]) - best) <= 1e-6 * m,
                       "%s element %d: %g decodes to %g, nearest level %g", codec_name(kind), i,
                       (double)d[i], (double)out[i], lv);
                EXPECT(fabs(out[i] - d[i]) <= s / 2 * 1.0001 + 1e-12, "%s element %d: error %g",
                       codec_name(kind), i, fabs(out[i] - d[i]));
            }
        }
        /* the layout itself: element 1's code in the high nibble / bits 2-3 */
        const unsigned char *v = q + 3 * 4;
        float s0;
        memcpy(&s0, q, 4);
        if (kind == CODEC_INT4) {
            int code = (v[0] >> 4) & 0xf, qv = code >= 8 ? code - 16 : code;
            ck_assert_float_eq_tol(out[1], qv * s0, 1e-9);
        } else {
            int code = (v[0] >> 2) & 3;
            ck_assert_float_eq_tol(out[1], (code - 1.5f) * s0, 1e-9);
        }
    }
}
END_TEST

/* Error feedback under int4 and int2, over many rounds: what arrives plus
 * the residual is what was sent, and the residual stays within a level. */
START_TEST(low_bit_error_feedback_loses_nothing_over_rounds)
{
    enum { N = 600, R = 300 };
    const int kinds[2] = {CODEC_INT4, CODEC_INT2};
    for (int k = 0; k < 2; k++) {
        float g[N], r[N] = {0}, out[N];
        double sent[N] = {0}, got[N] = {0};
        unsigned char q[3 * 4 + N];
        for (int t = 0; t < R; t++) {
            for (int i = 0; i < N; i++) {
                g[i] = (i % 97 == 0 ? 1.0f : 0.002f * (float)(i % 5 + 1)) * (t % 3 ? 1 : -0.5f);
                sent[i] += g[i];
            }
            codec_encode(kinds[k], N, g, NULL, r, q);
            codec_decode(kinds[k], N, CODEC_BLOCK, q, NULL, out);
            for (int i = 0; i < N; i++)
                got[i] += out[i];
        }
        for (int i = 0; i < N; i++) {
            ck_assert_msg(fabs(got[i] + r[i] - sent[i]) <= 1e-3 * fabs(sent[i]) + 2e-3,
                          "%s element %d: delivered %g + residual %g, sent %g",
                          codec_name(kinds[k]), i, got[i], (double)r[i], sent[i]);
            ck_assert(fabs(r[i]) <= 1.5); /* bounded: at most a level or so */
        }
        ck_assert(fabs(got[1] - sent[1]) <= 0.05 * fabs(sent[1]) + 1.5);
    }
}
END_TEST

/* The down step leaves in target exactly what a receiver decodes. */
START_TEST(position_step_is_bit_identical_to_the_decode)
{
    enum { N = 3001 };
    static float state[N], target[N], mirror[N];
    static unsigned char q[N * 4];
    for (int k = 1; k < CODEC_KINDS; k++) {
        for (int i = 0; i < N; i++) {
            state[i] = s_uniform(-1, 1);
            target[i] = state[i] + s_uniform(-0.05f, 0.05f) * (i % 3 ? 1 : 1e-4f);
        }
        codec_encode_step(k, N, target, state, q);
        memcpy(mirror, state, sizeof mirror);
        ck_assert_uint_eq(codec_decode(k, N, CODEC_BLOCK, q, mirror, mirror), 0);
        ck_assert_msg(memcmp(mirror, target, sizeof mirror) == 0, "%s: receiver differs",
                      codec_name(k));
    }
}
END_TEST

START_TEST(wire_specs_parse_and_print_back)
{
    static const struct {
        const char *spec, *name;
        int kind;
        double density;
        unsigned fragments;
    } ok[] = {
        {"int4", "int4", CODEC_INT4, 0, 0},
        {"topk:0.01", "topk:0.01:fp32", CODEC_FP32, 0.01, 0},
        {"topk:0.1:int2", "topk:0.1:int2", CODEC_INT2, 0.1, 0},
        {"frag:4", "frag:4:fp32", CODEC_FP32, 0, 4},
        {"frag:4096:int8", "frag:4096:int8", CODEC_INT8, 0, 4096},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int kind = -1;
        double density = -1;
        unsigned fragments = 99;
        ck_assert_int_eq(codec_spec_parse(ok[i].spec, &kind, &density, &fragments), 0);
        ck_assert_int_eq(kind, ok[i].kind);
        ck_assert(density == ok[i].density);
        ck_assert_uint_eq(fragments, ok[i].fragments);
        char name[64];
        codec_spec_name(kind, density, fragments, name, sizeof name);
        ck_assert_str_eq(name, ok[i].name);
    }
    static const char *const bad[] = {"int3",    "topk:0",      "topk:1.5", "topk:0.1:x", "frag:1",
                                      "frag:0",  "frag:",       "frag:x",   "frag:4097",  "frag:-4",
                                      "frag:4:", "frag:4:int3", "frag:4x",  "frag: 4",    NULL};
    for (int i = 0; bad[i]; i++) {
        int kind;
        double density;
        unsigned fragments;
        ck_assert_msg(codec_spec_parse(bad[i], &kind, &density, &fragments) != 0, "%s", bad[i]);
    }
}
END_TEST

START_TEST(hostile_payloads_are_refused)
{
    enum { N = 300 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i;
    unsigned char q[8 + N + 16];
    char msg[256];
    codec_encode(CODEC_INT8, N, x, NULL, NULL, q);
    size_t bytes = codec_bytes(CODEC_INT8, N, CODEC_BLOCK);
    ck_assert_int_eq(codec_check(CODEC_INT8, N, CODEC_BLOCK, q, bytes, msg, sizeof msg), 0);
    /* sizes that do not match the kind, blocks that lie about their length */
    ck_assert_int_eq(codec_check(CODEC_INT8, N, CODEC_BLOCK, q, bytes - 1, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(codec_check(CODEC_INT8, N, 128, q, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(codec_check(CODEC_INT8, N, 0, q, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_int_eq(codec_check(CODEC_INT8, N, CODEC_MAX_BLOCK + 1u, q, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_int_eq(codec_check(CODEC_BF16, N, 0, q, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(codec_check(9, N, 0, q, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    /* scales: NaN, infinite, negative */
    const float bad[] = {NAN, INFINITY, -1.0f};
    const int want[] = {PSOD__ERROR_CODE__ERR_NOT_FINITE, PSOD__ERROR_CODE__ERR_NOT_FINITE,
                        PSOD__ERROR_CODE__ERR_MALFORMED};
    for (int k = 0; k < 3; k++) {
        unsigned char c[sizeof q];
        memcpy(c, q, bytes);
        memcpy(c + 4, &bad[k], 4); /* the second block's */
        ck_assert_int_eq(codec_check(CODEC_INT8, N, CODEC_BLOCK, c, bytes, msg, sizeof msg),
                         want[k]);
        ck_assert_ptr_nonnull(strstr(msg, "block 1"));
    }
    /* int4 and int2: the scales as int8's, blocks whose values are not
     * whole bytes, sizes */
    for (int kind = CODEC_INT4; kind <= CODEC_INT2; kind++) {
        unsigned char c[sizeof q];
        codec_encode(kind, N, x, NULL, NULL, c);
        size_t lb = codec_bytes(kind, N, CODEC_BLOCK);
        ck_assert_int_eq(codec_check(kind, N, CODEC_BLOCK, c, lb, msg, sizeof msg), 0);
        ck_assert_int_eq(codec_check(kind, N, CODEC_BLOCK, c, lb + 1, msg, sizeof msg),
                         PSOD__ERROR_CODE__ERR_SIZE);
        ck_assert_int_eq(codec_check(kind, N, 3, c, lb, msg, sizeof msg),
                         PSOD__ERROR_CODE__ERR_MALFORMED);
        memcpy(c + 4, &bad[0], 4);
        ck_assert_int_eq(codec_check(kind, N, CODEC_BLOCK, c, lb, msg, sizeof msg),
                         PSOD__ERROR_CODE__ERR_NOT_FINITE);
        memcpy(c + 4, &bad[2], 4);
        ck_assert_int_eq(codec_check(kind, N, CODEC_BLOCK, c, lb, msg, sizeof msg),
                         PSOD__ERROR_CODE__ERR_MALFORMED);
    }
    /* Half values that are not finite decode to what the caller counts. */
    uint16_t h[4] = {0x3c00, 0x7c00, 0x7e00, 0};
    float out[4];
    ck_assert_uint_eq(codec_decode(CODEC_FP16, 4, 0, h, NULL, out), 2);
    uint16_t b[3] = {0x3f80, 0x7f80, 0xffc1};
    ck_assert_uint_eq(codec_decode(CODEC_BF16, 3, 0, b, NULL, out), 2);
    /* A finite change that overflows the position it is added to. */
    float big[1] = {3e38f};
    uint16_t hb[1] = {codec_f32_to_bf16(3e38f)};
    ck_assert_uint_eq(codec_decode(CODEC_BF16, 1, 0, hb, big, out), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_half_round_trips);
    tcase_add_test(tc, half_matches_the_compilers_float16);
    tcase_add_test(tc, bfloat16_rounds_to_nearest_even);
    tcase_add_test(tc, sizes_of_each_kind);
    tcase_add_test(tc, decoded_changes_are_within_the_rounding);
    tcase_add_test(tc, int8_blocks_scale_by_their_own_largest);
    tcase_add_test(tc, error_feedback_loses_nothing_over_rounds);
    tcase_add_test(tc, low_bit_kinds_match_a_reference_of_their_layout);
    tcase_add_test(tc, low_bit_error_feedback_loses_nothing_over_rounds);
    tcase_add_test(tc, position_step_is_bit_identical_to_the_decode);
    tcase_add_test(tc, wire_specs_parse_and_print_back);
    tcase_add_test(tc, hostile_payloads_are_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
