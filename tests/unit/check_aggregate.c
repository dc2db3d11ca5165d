/* Suite: robust aggregation (server/strategy/aggregate.c). Each rule against a plain
 * double-precision reference written from its formula (sorted median and
 * trim, the centered-clipping iteration of Karimireddy et al., Krum scores
 * worked by hand), the same bits in any input order and on any slice, and
 * NaN and ties; then the rules inside the strategies (avg, ssgd, pso's mean
 * attractor) against one worker pushing a crafted change. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "server/strategy/aggregate.h"
#include "server/strategy/strategy.h"
#include "server/strategy/swarm.h"

#define N 1003 /* not a multiple of the block */
#define KMAX 9

static float *s_vec(struct rng *r, double scale)
{
    float *v = malloc(N * sizeof *v);
    for (size_t e = 0; e < N; e++)
        v[e] = (float)((rng_double(r) * 2 - 1) * scale);
    return v;
}

struct set {
    float *v[KMAX], *base[KMAX], *ref;
    size_t k;
};

static void s_make(struct set *s, size_t k, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    s->k = k;
    s->ref = s_vec(&r, 1);
    for (size_t j = 0; j < k; j++) {
        s->v[j] = s_vec(&r, 1);
        s->base[j] = s_vec(&r, 1);
    }
}

static void s_free(struct set *s)
{
    free(s->ref);
    for (size_t j = 0; j < s->k; j++) {
        free(s->v[j]);
        free(s->base[j]);
    }
}

static int s_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The changes of element e in double, sorted. */
static void s_col(const struct set *s, size_t e, double *col)
{
    for (size_t j = 0; j < s->k; j++)
        col[j] = (double)s->v[j][e] - (double)s->base[j][e];
    qsort(col, s->k, sizeof *col, s_cmp_d);
}

static void s_run(const struct set *s, const struct agg_params *p, float *out)
{
    ck_assert_int_eq(agg_run(p, out, (const float *const *)s->v, (const float *const *)s->base,
                             s->k, s->ref, N, NULL),
                     0);
}

START_TEST(test_median_reference)
{
    for (size_t k = 1; k <= KMAX; k++) {
        struct set s;
        s_make(&s, k, 100 + k);
        float out[N];
        s_run(&s, &(struct agg_params){.rule = AGG_MEDIAN}, out);
        double col[KMAX];
        for (size_t e = 0; e < N; e++) {
            s_col(&s, e, col);
            double m = k % 2 ? col[k / 2] : 0.5 * (col[k / 2 - 1] + col[k / 2]);
            ck_assert_double_eq_tol(out[e], s.ref[e] + m, 1e-5);
        }
        s_free(&s);
    }
}
END_TEST

START_TEST(test_trimmed_reference)
{
    for (size_t k = 3; k <= KMAX; k++)
        for (long f = 0; 2 * f + 1 <= (long)k; f++) {
            struct set s;
            s_make(&s, k, 200 + k * 10 + (uint64_t)f);
            float out[N];
            s_run(&s, &(struct agg_params){.rule = AGG_TRIMMED, .f = f}, out);
            double col[KMAX];
            for (size_t e = 0; e < N; e++) {
                s_col(&s, e, col);
                double sum = 0;
                for (size_t j = (size_t)f; j < k - (size_t)f; j++)
                    sum += col[j];
                ck_assert_double_eq_tol(out[e], s.ref[e] + sum / (double)(k - 2 * (size_t)f), 1e-5);
            }
            s_free(&s);
        }
}
END_TEST

/* Centered clipping as the paper writes it, in double. */
static void s_cclip_ref(const struct set *s, double tau, long iters, double *c)
{
    size_t k = s->k;
    memset(c, 0, N * sizeof *c);
    for (long it = 0; it < iters; it++) {
        double r[KMAX], t = tau;
        for (size_t j = 0; j < k; j++) {
            double sq = 0;
            for (size_t e = 0; e < N; e++) {
                double d = (double)s->v[j][e] - s->base[j][e] - c[e];
                sq += d * d;
            }
            r[j] = sqrt(sq);
        }
        if (tau <= 0) {
            double sorted[KMAX];
            memcpy(sorted, r, k * sizeof *r);
            qsort(sorted, k, sizeof *sorted, s_cmp_d);
            t = sorted[(k - 1) / 2];
        }
        double delta[N];
        memset(delta, 0, sizeof delta);
        for (size_t j = 0; j < k; j++) {
            double w = r[j] <= t ? 1 : t / r[j];
            for (size_t e = 0; e < N; e++)
                delta[e] += w * ((double)s->v[j][e] - s->base[j][e] - c[e]) / (double)k;
        }
        for (size_t e = 0; e < N; e++)
            c[e] += delta[e];
    }
}

START_TEST(test_cclip_reference)
{
    const double taus[] = {0, 0.5, 3, 100};
    for (size_t t = 0; t < 4; t++)
        for (size_t k = 1; k <= 7; k += 2) {
            struct set s;
            s_make(&s, k, 300 + k + 17 * t);
            for (size_t e = 0; e < N; e++) /* one far-off change */
                s.v[0][e] *= 50;
            double c[N];
            float out[N];
            s_cclip_ref(&s, taus[t], 3, c);
            s_run(&s, &(struct agg_params){.rule = AGG_CCLIP, .tau = taus[t], .iters = 3}, out);
            for (size_t e = 0; e < N; e++)
                ck_assert_double_eq_tol(out[e], s.ref[e] + c[e], 2e-4);
            s_free(&s);
        }
}
END_TEST

/* Krum by hand: five changes on a line (n = 1 would do; two elements, the
 * second zero). f = 1: each scored by its k - f - 2 = 2 nearest. */
START_TEST(test_krum_by_hand)
{
    float a[2] = {0, 0}, b[2] = {1, 0}, c[2] = {2, 0}, d[2] = {4, 0}, z[2] = {100, 0};
    const float *v[5] = {a, b, c, d, z};
    /* squared distances: a: b 1, c 4, d 16, z 1e4 -> 1 + 4 = 5
     *                    b: a 1, c 1, d 9        -> 2
     *                    c: b 1, a 4, d 4        -> 5
     *                    d: c 4, b 9, a 16       -> 13
     *                    z: d 9216, ...          -> 9216 + 9604 */
    float out[2];
    unsigned char chosen[5];
    struct agg_info info = {.chosen = chosen};
    struct agg_params p = {.rule = AGG_KRUM, .f = 1, .m = 1};
    ck_assert_int_eq(agg_run(&p, out, v, NULL, 5, NULL, 2, &info), 0);
    ck_assert_float_eq(out[0], 1.0f); /* b alone */
    ck_assert_int_eq(chosen[1], 1);
    ck_assert_int_eq(chosen[0] + chosen[2] + chosen[3] + chosen[4], 0);
    p.m = 3; /* Multi-Krum: b, then a and c (score 5 each; the tie by order) */
    ck_assert_int_eq(agg_run(&p, out, v, NULL, 5, NULL, 2, &info), 0);
    ck_assert_float_eq_tol(out[0], 1.0f, 1e-6);
    ck_assert_int_eq(chosen[0] + chosen[1] + chosen[2], 3);
    ck_assert_int_eq(chosen[4], 0);
    p.m = 4; /* m is at most k - f */
    ck_assert_int_eq(agg_run(&p, out, v, NULL, 5, NULL, 2, &info), 0);
    ck_assert_float_eq_tol(out[0], 7.0f / 4, 1e-6);
    ck_assert_int_eq(chosen[4], 0);
    /* Relative to a reference and bases: the same selection on the changes. */
    float ref[2] = {10, 20}, base0[2] = {-1, 0};
    const float *base[5] = {base0, NULL, NULL, NULL, NULL};
    float a1[2] = {-1, 0}; /* change 0 against base0: the same a */
    p.m = 1;
    /* b's change against ref is (1 - 10, -20): shift every input by ref. */
    float bb[2] = {11, 20}, cc[2] = {12, 20}, dd[2] = {14, 20}, zz[2] = {110, 20};
    const float *v3[5] = {a1, bb, cc, dd, zz};
    ck_assert_int_eq(agg_run(&p, out, v3, base, 5, ref, 2, &info), 0);
    ck_assert_float_eq_tol(out[0], 11.0f, 1e-5);
    ck_assert_float_eq_tol(out[1], 20.0f, 1e-5);
}
END_TEST

START_TEST(test_krum_score_reference)
{
    for (size_t k = 5; k <= KMAX; k++) {
        struct set s;
        s_make(&s, k, 400 + k);
        long f = (long)(k - 3) / 2;
        unsigned char chosen[KMAX];
        struct agg_info info = {.chosen = chosen};
        float out[N];
        struct agg_params p = {.rule = AGG_KRUM, .f = f, .m = 1};
        ck_assert_int_eq(agg_run(&p, out, (const float *const *)s.v, (const float *const *)s.base,
                                 k, s.ref, N, &info),
                         0);
        double score[KMAX];
        size_t best = 0;
        for (size_t a = 0; a < k; a++) {
            double dist[KMAX];
            size_t m = 0;
            for (size_t b = 0; b < k; b++) {
                if (b == a)
                    continue;
                double sq = 0;
                for (size_t e = 0; e < N; e++) {
                    double t =
                        ((double)s.v[a][e] - s.base[a][e]) - ((double)s.v[b][e] - s.base[b][e]);
                    sq += t * t;
                }
                dist[m++] = sq;
            }
            qsort(dist, m, sizeof *dist, s_cmp_d);
            score[a] = 0;
            for (size_t i = 0; i < k - (size_t)f - 2; i++)
                score[a] += dist[i];
            if (score[a] < score[best])
                best = a;
        }
        for (size_t a = 0; a < k; a++)
            ck_assert_int_eq(chosen[a], a == best);
        for (size_t e = 0; e < N; e++)
            ck_assert_double_eq_tol(out[e], s.ref[e] + ((double)s.v[best][e] - s.base[best][e]),
                                    1e-5);
        s_free(&s);
    }
}
END_TEST

/* The element-wise rules: the same bits whatever the order of the inputs,
 * and on any slice (what each shard of a sharded swarm computes). */
START_TEST(test_order_and_slices)
{
    const struct agg_params rules[] = {
        {.rule = AGG_MEDIAN}, {.rule = AGG_TRIMMED, .f = 1}, {.rule = AGG_TRIMMED, .f = 2}};
    for (size_t q = 0; q < 3; q++)
        for (size_t k = 5; k <= KMAX; k++) {
            struct set s;
            s_make(&s, k, 500 + k);
            for (size_t e = 0; e < N; e += 7) /* ties */
                for (size_t j = 0; j < k; j++) {
                    s.base[j][e] = 0.5f;
                    s.v[j][e] = 0.75f;
                }
            float out[N], perm_out[N], slice[N];
            s_run(&s, &rules[q], out);
            struct set t = s;
            for (size_t j = 0; j < k; j++) { /* reversed, then rotated */
                t.v[j] = s.v[(k - 1 - j + q) % k];
                t.base[j] = s.base[(k - 1 - j + q) % k];
            }
            s_run(&t, &rules[q], perm_out);
            ck_assert_mem_eq(out, perm_out, sizeof out);
            const size_t cuts[] = {0, 1, 255, 256, 333, 700, N};
            for (size_t c = 0; c + 1 < 7; c++) {
                size_t a = cuts[c], len = cuts[c + 1] - a;
                const float *v[KMAX], *b[KMAX];
                for (size_t j = 0; j < k; j++) {
                    v[j] = s.v[j] + a;
                    b[j] = s.base[j] + a;
                }
                ck_assert_int_eq(agg_run(&rules[q], slice + a, v, b, k, s.ref + a, len, NULL), 0);
            }
            ck_assert_mem_eq(out, slice, sizeof out);
            for (size_t e = 0; e < N; e += 7)
                ck_assert_float_eq(out[e], s.ref[e] + 0.25f);
            s_free(&s);
        }
}
END_TEST

START_TEST(test_nan_and_inf)
{
    float a[3] = {1, 1, 1}, b[3] = {2, 2, 2}, c[3] = {3, 3, 3}, d[3] = {4, 4, 4};
    float bad[3] = {NAN, INFINITY, -INFINITY};
    const float *v[5] = {a, bad, b, c, d};
    float out[3];
    /* median of {1, 2, 3, 4, bad}: bad sorts last (-inf is finite-ordered
     * below), the same whatever its position */
    ck_assert_int_eq(
        agg_run(&(struct agg_params){.rule = AGG_MEDIAN}, out, v, NULL, 5, NULL, 3, NULL), 0);
    ck_assert_float_eq(out[0], 3.0f);
    ck_assert_float_eq(out[1], 3.0f);
    ck_assert_float_eq(out[2], 2.0f);
    const float *w[5] = {bad, d, c, b, a};
    float out2[3];
    ck_assert_int_eq(
        agg_run(&(struct agg_params){.rule = AGG_MEDIAN}, out2, w, NULL, 5, NULL, 3, NULL), 0);
    ck_assert_mem_eq(out, out2, sizeof out);
    /* trimmed, f = 1: the NaN and the +inf are trimmed as the largest, -inf
     * as the smallest: the mean of {2, 3, 4}, {2, 3, 4}, {1, 2, 3} */
    ck_assert_int_eq(
        agg_run(&(struct agg_params){.rule = AGG_TRIMMED, .f = 1}, out, v, NULL, 5, NULL, 3, NULL),
        0);
    ck_assert_float_eq_tol(out[0], 3.0f, 1e-6);
    ck_assert_float_eq_tol(out[1], 3.0f, 1e-6);
    ck_assert_float_eq_tol(out[2], 2.0f, 1e-6);
    /* cclip and krum: a non-finite change is infinitely far: no weight */
    ck_assert_int_eq(agg_run(&(struct agg_params){.rule = AGG_CCLIP, .iters = 2}, out, v, NULL, 5,
                             NULL, 3, NULL),
                     0);
    for (int e = 0; e < 3; e++)
        ck_assert(isfinite(out[e]));
    ck_assert_int_eq(agg_run(&(struct agg_params){.rule = AGG_KRUM, .f = 1, .m = 2}, out, v, NULL,
                             5, NULL, 3, NULL),
                     0);
    for (int e = 0; e < 3; e++)
        ck_assert(isfinite(out[e]));
}
END_TEST

START_TEST(test_assumptions)
{
    char err[256];
    struct agg_params p = {.rule = AGG_KRUM, .f = 1};
    ck_assert_int_eq(agg_check(&p, 5, err, sizeof err), 0);
    ck_assert_int_eq(agg_check(&p, 4, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "2f + 3"));
    p.rule = AGG_TRIMMED;
    ck_assert_int_eq(agg_check(&p, 3, err, sizeof err), 0);
    p.f = 2;
    ck_assert_int_eq(agg_check(&p, 4, err, sizeof err), -1);
    p.rule = AGG_MEDIAN;
    ck_assert_int_eq(agg_check(&p, 1, err, sizeof err), 0);
    ck_assert(agg_elementwise(AGG_MEDIAN) && agg_elementwise(AGG_TRIMMED));
    ck_assert(!agg_elementwise(AGG_CCLIP) && !agg_elementwise(AGG_KRUM));
    /* Fewer inputs than f allows: f is lowered, and said so. */
    float a[1] = {1}, b[1] = {2}, c[1] = {30};
    const float *v[3] = {a, b, c};
    float out[1];
    struct agg_info info = {0};
    p = (struct agg_params){.rule = AGG_TRIMMED, .f = 2};
    ck_assert_int_eq(agg_run(&p, out, v, NULL, 3, NULL, 1, &info), 0);
    ck_assert_int_eq(info.f_used, 1);
    ck_assert(info.lowered);
    ck_assert_float_eq(out[0], 2.0f);
    p = (struct agg_params){.rule = AGG_KRUM, .f = 1, .m = 1};
    ck_assert_int_eq(agg_run(&p, out, v, NULL, 2, NULL, 1, &info), 0); /* k < 3: the mean */
    ck_assert_float_eq(out[0], 1.5f);
    ck_assert_int_eq(
        agg_run(&(struct agg_params){.rule = AGG_MEAN}, out, v, NULL, 3, NULL, 1, NULL), -1);
}
END_TEST

/* Inside the strategies: 4 workers start at 0, three honest ones move by
 * about +1 per element, the fourth pushes -1000. */
static void s_attack(float *x[4], float *prev[4])
{
    for (int i = 0; i < 4; i++) {
        x[i] = malloc(N * sizeof(float));
        prev[i] = calloc(N, sizeof(float));
        for (size_t e = 0; e < N; e++)
            x[i][e] = i == 3 ? -1000.0f : 1.0f + 0.01f * (float)i;
    }
}

static void s_free4(float *x[4], float *prev[4])
{
    for (int i = 0; i < 4; i++) {
        free(x[i]);
        free(prev[i]);
    }
}

START_TEST(test_strategies_resist)
{
    const char *names[] = {"avg", "diloco", "easgd", "ssgd"};
    for (int rule = AGG_MEAN; rule <= AGG_KRUM; rule++)
        for (int q = 0; q < 4; q++) {
            const struct strategy_ops *ops = strategy_find(names[q]);
            struct strategy_params p = {.easgd_beta = 0.9,
                                        .outer_lr = 1,
                                        .outer_momentum = 0,
                                        .ssgd_lr = 1,
                                        .workers = 4,
                                        .seed = 1};
            p.agg = (struct agg_params){.rule = rule, .f = 1, .iters = 3, .m = 1};
            float zero[N];
            memset(zero, 0, sizeof zero);
            void *st = ops->create(N, 0, &p);
            for (int i = 0; i < 4; i++)
                ck_assert_int_eq(ops->add(st, zero, 1000 + (uint64_t)i), i);
            float *x[4], *prev[4];
            s_attack(x, prev);
            double loss[4] = {1, 1, 1, 1};
            for (int i = 0; i < 4; i++)
                if (ops->arrive)
                    ops->arrive(st, 1, i, x[i], NULL);
            ops->round(st, 1, x, (const float *const *)prev, loss, NULL, NULL);
            const float *g = ops->global(st);
            double m = 0;
            for (size_t e = 0; e < N; e++)
                m += g[e];
            m /= N;
            if (q == 3) /* ssgd: x holds gradients, the model steps against them */
                m = -m;
            if (rule == AGG_MEAN)
                ck_assert_msg(fabs(m) > 100, "%s mean: %g", names[q], m);
            else /* the honest side: a step of about +1 (times the strategy's rate), never -1000s */
                ck_assert_msg(m > 0.1 && m < 1.1, "%s %s: %g", names[q], agg_rule_names[rule], m);
            s_free4(x, prev);
            ops->destroy(st);
        }
}
END_TEST

START_TEST(test_pso_robust_attractor)
{
    struct pso_params prm = {.w = 0, .c1 = 1, .c2 = 0, .seed = 1, .attractor = PSO_ATTRACT_MEAN};
    prm.agg = (struct agg_params){.rule = AGG_MEDIAN};
    struct swarm *s = swarm_new(N, 0, &prm);
    float zero[N];
    memset(zero, 0, sizeof zero);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(swarm_add(s, zero, 7 + (uint64_t)i), i);
    float *x[4], *prev[4];
    s_attack(x, prev);
    double loss[4] = {1, 1, 1, 0.01};        /* the attacker claims the lowest loss */
    ck_assert_int_eq(swarm_strike(s, 0), 0); /* no limit set: never excluded */
    swarm_round(s, 1, x, (const float *const *)prev, loss, NULL, NULL);
    /* Honest particle 0 moved toward the attractor, the median of the
     * changes (about 1.01), not toward a -1000 mean. */
    for (size_t e = 0; e < N; e += 100)
        ck_assert(x[0][e] > 0.5f && x[0][e] < 1.5f);
    s_free4(x, prev);
    swarm_destroy(&s);
}
END_TEST

/* A push the running sum holds (arrived ahead of its turn) is withdrawn and
 * freed mid-round (its worker evicted): the sum never reads it again, and
 * the round's mean is that of the others. (Under ASan a read is a crash.) */
START_TEST(a_withdrawn_push_is_never_read)
{
    const struct strategy_ops *ops = strategy_find("avg");
    struct strategy_params p = {.workers = 3, .seed = 1};
    float zero[N];
    memset(zero, 0, sizeof zero);
    void *st = ops->create(N, 0, &p);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ops->add(st, zero, 10 + (uint64_t)i), i);
    float *x[3], *prev[3];
    for (int i = 0; i < 3; i++) {
        x[i] = malloc(N * sizeof(float));
        prev[i] = calloc(N, sizeof(float));
        for (size_t e = 0; e < N; e++)
            x[i][e] = (float)(i + 1);
    }
    /* Every push but the first in stream order arrives first: all pending. */
    for (int i = 2; i >= 1; i--)
        ops->arrive(st, 1, i, x[i], NULL);
    ops->withdraw(st, 2);
    free(x[2]);
    x[2] = NULL;
    ops->arrive(st, 1, 0, x[0], NULL);
    double loss[3] = {1, 1, 1};
    ops->round(st, 1, x, (const float *const *)prev, loss, NULL, NULL);
    const float *g = ops->global(st);
    for (size_t e = 0; e < N; e++)
        ck_assert_float_eq(g[e], 1.5f);
    for (int i = 0; i < 3; i++) {
        free(x[i]);
        free(prev[i]);
    }
    ops->destroy(st);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("aggregate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_median_reference);
    tcase_add_test(tc, test_trimmed_reference);
    tcase_add_test(tc, test_cclip_reference);
    tcase_add_test(tc, test_krum_by_hand);
    tcase_add_test(tc, test_krum_score_reference);
    tcase_add_test(tc, test_order_and_slices);
    tcase_add_test(tc, test_nan_and_inf);
    tcase_add_test(tc, test_assumptions);
    tcase_add_test(tc, test_strategies_resist);
    tcase_add_test(tc, test_pso_robust_attractor);
    tcase_add_test(tc, a_withdrawn_push_is_never_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return suite_run(s_suite()); }
