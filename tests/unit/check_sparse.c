/* Sparse payloads (common/sparse.c): the top k against a reference that
 * sorts, ties to the lower index, every value kind, the indices' coding,
 * error feedback over many rounds, the bit-identical position step, and
 * every rule a received payload must pass. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/sparse.h"
#include "proto/psod.pb-c.h"
#include "tests/lib/suite.h"

/* Check sends every assertion's location down a pipe: loops test with
 * this and fail on the first miss. */
#define EXPECT(cond, ...)              \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static uint64_t s_rng = 0x243f6a8885a308d3ull;
static float s_uniform(float lo, float hi)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return lo + (hi - lo) * (float)((s_rng >> 40) / 16777216.0);
}

/* The reference selection: indices sorted by |d| descending, ties by
 * index; the first k, then sorted by index. */
static const float *s_ref_d;
static int s_by_mag(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    float x = fabsf(s_ref_d[i]), y = fabsf(s_ref_d[j]);
    return x > y ? -1 : x < y ? 1 : (i > j) - (i < j);
}
static int s_by_index(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return (i > j) - (i < j);
}
static void s_reference_topk(const float *d, size_t n, size_t k, size_t *out)
{
    size_t *all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++)
        all[i] = i;
    s_ref_d = d;
    qsort(all, n, sizeof *all, s_by_mag);
    memcpy(out, all, k * sizeof *out);
    qsort(out, k, sizeof *out, s_by_index);
    free(all);
}

START_TEST(the_top_k_are_sent_and_nothing_else)
{
    /* Every value kind; magnitudes spread over many octaves, with ties
     * (repeated values) straddling the k-th. */
    enum { N = 5003 };
    static float x[N], ref[N], d[N], got[N];
    static unsigned char q[1 << 17];
    for (int i = 0; i < N; i++) {
        ref[i] = s_uniform(-1, 1);
        float m = ldexpf(s_uniform(0.5f, 1), -(int)(s_uniform(0, 20)));
        d[i] = (i % 11 == 0) ? 0.25f : (s_uniform(-1, 1) < 0 ? -m : m);
        x[i] = ref[i] + d[i];
        d[i] = x[i] - ref[i]; /* what the encoder sees */
    }
    const size_t ks[] = {1, 50, 455, 456, 457, N};
    for (int kind = 0; kind < CODEC_KINDS; kind++)
        for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
            size_t k = ks[c], want[N];
            s_reference_topk(d, N, k, want);
            ck_assert_uint_le(sparse_max_bytes(kind, N, k, CODEC_BLOCK), sizeof q);
            size_t bytes = sparse_encode(kind, N, k, x, ref, NULL, q);
            ck_assert_uint_gt(bytes, 0);
            char msg[160];
            ck_assert_msg(sparse_check(kind, N, CODEC_BLOCK, q, bytes, msg, sizeof msg) == 0,
                          "%s k %zu: %s", codec_name(kind), k, msg);
            ck_assert_uint_eq(sparse_decode(kind, N, CODEC_BLOCK, q, bytes, ref, got), 0);
            size_t j = 0;
            for (size_t i = 0; i < N; i++) {
                int sent = j < k && want[j] == i;
                if (sent) {
                    j++;
                    float lvl = codec_blocked(kind) ? 0.5f : 0.01f; /* of the block's max */
                    EXPECT(fabsf(got[i] - x[i]) <= lvl * 0.25f + 1e-6f || kind == CODEC_INT2,
                           "%s k %zu: entry %zu decodes to %g, sent %g", codec_name(kind), k, i,
                           (double)got[i], (double)x[i]);
                    EXPECT(got[i] != ref[i] || d[i] == 0 || kind != CODEC_FP32,
                           "%s k %zu: entry %zu of the top k did not arrive", codec_name(kind), k,
                           i);
                } else {
                    EXPECT(got[i] == ref[i], "%s k %zu: entry %zu not in the top k changed",
                           codec_name(kind), k, i);
                }
            }
            ck_assert_uint_eq(j, k);
            if (kind == CODEC_FP32) /* float32 values: exactly the top k */
                for (size_t t = 0; t < k; t++)
                    ck_assert(got[want[t]] == ref[want[t]] + d[want[t]]);
        }
}
END_TEST

START_TEST(indices_cost_about_a_byte_each)
{
    /* 1 % of a million: gaps near 100, one varint byte each mostly. */
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = s_uniform(-1, 1);
    size_t k = sparse_k(N, 0.01);
    ck_assert_uint_eq(k, 10486);
    ck_assert_uint_eq(sparse_k(N, 1e-9), 1);
    ck_assert_uint_eq(sparse_k(N, 2), N);
    unsigned char *q = malloc(sparse_max_bytes(CODEC_INT2, N, k, CODEC_BLOCK));
    size_t bytes = sparse_encode(CODEC_INT2, N, k, x, NULL, NULL, q);
    uint32_t ib;
    memcpy(&ib, q + 4, 4);
    fprintf(stderr,
            "sparse: 1%% of 1Mi at int2: %zu bytes (%.2f per entry, indices %.2f), "
            "float32 whole: %d\n",
            bytes, (double)bytes / k, (double)ib / k, N * 4);
    ck_assert_uint_le(ib, k * 3 / 2);
    ck_assert_uint_lt(bytes * 250, (size_t)N * 4); /* under 1/250 of float32 */
    free(x);
    free(q);
}
END_TEST

START_TEST(error_feedback_delivers_everything_over_rounds)
{
    /* A stream of pushes at 2 % density with int4 values: what arrives
     * plus the residual is what was sent, element by element, and an
     * element too small to make the top k on its own arrives in time. */
    enum { N = 2000, R = 400 };
    static float g[N], r[N], got[N];
    static double sent[N], arrived[N];
    static unsigned char q[1 << 14];
    size_t k = sparse_k(N, 0.02);
    for (int t = 0; t < R; t++) {
        for (int i = 0; i < N; i++) {
            g[i] = i == 7 ? 2e-3f : s_uniform(-0.01f, 0.01f) * (i % 50 == 0 ? 30 : 1);
            sent[i] += g[i];
        }
        size_t bytes = sparse_encode(CODEC_INT4, N, k, g, NULL, r, q);
        ck_assert_uint_gt(bytes, 0);
        ck_assert_uint_eq(sparse_decode(CODEC_INT4, N, CODEC_BLOCK, q, bytes, NULL, got), 0);
        for (int i = 0; i < N; i++)
            arrived[i] += got[i];
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(arrived[i] + r[i] - sent[i]) <= 1e-4 * fabs(sent[i]) + 1e-4,
                      "element %d: arrived %g + residual %g, sent %g", i, arrived[i], (double)r[i],
                      sent[i]);
    ck_assert_msg(arrived[7] > 0.5 * sent[7], "the small element: %g of %g", arrived[7], sent[7]);
}
END_TEST

START_TEST(the_position_step_is_what_the_receiver_decodes)
{
    enum { N = 3001 };
    static float state[N], target[N], mirror[N];
    static unsigned char q[1 << 15];
    for (int kind = 0; kind < CODEC_KINDS; kind++) {
        for (int i = 0; i < N; i++) {
            state[i] = s_uniform(-1, 1);
            target[i] = state[i] + s_uniform(-0.05f, 0.05f) * (i % 3 ? 1 : 1e-3f);
        }
        size_t bytes = sparse_encode_step(kind, N, 97, target, state, q);
        ck_assert_uint_gt(bytes, 0);
        memcpy(mirror, state, sizeof mirror);
        ck_assert_uint_eq(sparse_decode(kind, N, CODEC_BLOCK, q, bytes, mirror, mirror), 0);
        ck_assert_msg(memcmp(mirror, target, sizeof mirror) == 0, "%s: the receiver differs",
                      codec_name(kind));
        size_t moved = 0;
        for (int i = 0; i < N; i++)
            moved += target[i] != state[i];
        ck_assert_uint_le(moved, 97);
    }
}
END_TEST

START_TEST(hostile_payloads_are_refused)
{
    enum { N = 1000 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 13) - 6.0f;
    unsigned char q[1 << 14], c[1 << 14];
    size_t bytes = sparse_encode(CODEC_INT8, N, 40, x, NULL, NULL, q);
    char msg[200];
    ck_assert_int_eq(sparse_check(CODEC_INT8, N, CODEC_BLOCK, q, bytes, msg, sizeof msg), 0);
    uint32_t k, ib;
    memcpy(&k, q, 4);
    memcpy(&ib, q + 4, 4);
    /* counts that do not match the size */
    ck_assert_int_eq(sparse_check(CODEC_INT8, N, CODEC_BLOCK, q, 7, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(sparse_check(CODEC_INT8, N, CODEC_BLOCK, q, bytes - 1, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    const uint32_t bad_k[] = {0, N + 1, 41, 39};
    for (size_t t = 0; t < 4; t++) {
        memcpy(c, q, bytes);
        memcpy(c, &bad_k[t], 4);
        ck_assert_msg(sparse_check(CODEC_INT8, N, CODEC_BLOCK, c, bytes, msg, sizeof msg) != 0,
                      "k %u passed", bad_k[t]);
    }
    memcpy(c, q, bytes);
    uint32_t huge = 1u << 30;
    memcpy(c + 4, &huge, 4);
    ck_assert_int_eq(sparse_check(CODEC_INT8, N, CODEC_BLOCK, c, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE);
    /* an index out of range: the first one past n */
    unsigned char o[64] = {0};
    uint32_t one = 1, two = 2;
    memcpy(o, &one, 4);
    memcpy(o + 4, &two, 4);
    o[8] = 0xe8, o[9] = 0x07; /* 1000 */
    float v = 1.0f;
    memcpy(o + 12, &v, 4);
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, o, 16, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    o[8] = 0xe7; /* 999: fine */
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, o, 16, msg, sizeof msg), 0);
    /* gaps that run past n; an overlong varint; a varint cut short */
    unsigned char g[64] = {0};
    memcpy(g, &two, 4);
    memcpy(g + 4, &two, 4);
    g[8] = 0x00, g[9] = 0x7f; /* index 0, then 0 + 127 + 1: fine */
    memcpy(g + 12, &v, 4), memcpy(g + 16, &v, 4);
    ck_assert_int_eq(sparse_check(CODEC_FP32, 200, 0, g, 20, msg, sizeof msg), 0);
    ck_assert_int_eq(sparse_check(CODEC_FP32, 128, 0, g, 20, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    unsigned char l[64] = {0};
    uint32_t eleven = 11;
    memcpy(l, &one, 4);
    memcpy(l + 4, &eleven, 4);
    memset(l + 8, 0xff, 10);
    l[18] = 0x01;
    memcpy(l + 20, &v, 4);
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, l, 24, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_SIZE); /* 11 index bytes for one entry */
    memcpy(l + 4, &one, 4);
    l[8] = 0x80; /* continues past the index bytes */
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, l, 16, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    /* padding that is not zero; index bytes left over */
    memcpy(o + 4, &two, 4);
    o[8] = 0xe7, o[9] = 0x07, o[10] = 0x05;
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, o, 16, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    uint32_t three = 3;
    memcpy(o + 4, &three, 4);
    o[10] = 0x00;
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, o, 16, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_MALFORMED);
    /* the values' scale: not finite */
    memcpy(c, q, bytes);
    size_t at = (8 + ib + 3) & ~(size_t)3;
    float nan = NAN;
    memcpy(c + at, &nan, 4);
    ck_assert_int_eq(sparse_check(CODEC_INT8, N, CODEC_BLOCK, c, bytes, msg, sizeof msg),
                     PSOD__ERROR_CODE__ERR_NOT_FINITE);
    /* float32 values that are not finite decode to what the caller counts */
    memcpy(o + 4, &two, 4);
    o[10] = 0;
    float inf = INFINITY;
    memcpy(o + 12, &inf, 4);
    ck_assert_int_eq(sparse_check(CODEC_FP32, N, 0, o, 16, msg, sizeof msg), 0);
    float out[N];
    ck_assert_uint_eq(sparse_decode(CODEC_FP32, N, 0, o, 16, NULL, out), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sparse");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_top_k_are_sent_and_nothing_else);
    tcase_add_test(tc, indices_cost_about_a_byte_each);
    tcase_add_test(tc, error_feedback_delivers_everything_over_rounds);
    tcase_add_test(tc, the_position_step_is_what_the_receiver_decodes);
    tcase_add_test(tc, hostile_payloads_are_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
