/* Suite: synchronization strategies (server/strategy*.c). Each strategy's
 * round, over a few random particles with one that did not push, against a
 * plain double-precision reference written from the formula in its header
 * comment; plus the registry and the option tables. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/payload.h"
#include "common/rng.h"
#include "server/server.h"
#include "server/strategy/strategy.h"
#include "server/strategy/swarm.h"
#include "common/lrsched.h"

#define N 1003 /* not a multiple of any vector width */
#define K 4

struct fixture {
    float *x[K], *prev[K];
    double loss[K];
    uint32_t crc[K];
    int done[K];
};

static void s_done(void *ctx, int i, uint32_t crc)
{
    struct fixture *f = ctx;
    f->done[i]++;
    f->crc[i] = crc;
}

static void s_fill(struct fixture *f, uint64_t seed, int skip)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < K; i++) {
        if (!f->x[i])
            f->x[i] = malloc(N * sizeof(float));
        if (!f->prev[i])
            f->prev[i] = malloc(N * sizeof(float));
        for (int e = 0; e < N; e++) {
            f->x[i][e] = (float)(rng_double(&r) * 4 - 2);
            f->prev[i][e] = (float)(rng_double(&r) * 4 - 2);
        }
        f->loss[i] = 1 + rng_double(&r);
        f->done[i] = 0;
    }
    (void)skip;
}

static void s_free(struct fixture *f)
{
    for (int i = 0; i < K; i++)
        free(f->x[i]), free(f->prev[i]);
}

/* Run one round of `ops` with particle `skip` not pushing. */
static void s_round(const struct strategy_ops *ops, void *st, uint64_t round, struct fixture *f,
                    int skip)
{
    float *xs[K];
    const float *prevs[K];
    for (int i = 0; i < K; i++) {
        xs[i] = i == skip ? NULL : f->x[i];
        prevs[i] = f->prev[i];
    }
    ops->round(st, round, xs, prevs, f->loss, s_done, f);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(f->done[i], i == skip ? 0 : 1);
        if (i != skip)
            ck_assert_uint_eq(f->crc[i], crc32c(0, f->x[i], N * sizeof(float)));
    }
}

static void s_close(double got, double want, const char *what, int e)
{
    ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "%s[%d]: %.9g, want %.9g", what, e,
                  got, want);
}

static struct strategy_params s_params(void)
{
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    ck_assert_int_eq(
        config_defaults(server_options(&cfg, (struct config_table[SERVER_OPTION_TABLES]){{0}}), err,
                        sizeof err),
        0);
    cfg.sp.workers = K;
    cfg.sp.seed = 7;
    return cfg.sp;
}

START_TEST(avg_gives_everyone_the_mean)
{
    struct strategy_params p = s_params();
    void *st = strategy_avg.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 1, 2);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(strategy_avg.add(st, f.x[i], (uint64_t)i), i);
    ck_assert_ptr_null(strategy_avg.global(st));
    double mean[N];
    for (int e = 0; e < N; e++)
        mean[e] = ((double)f.x[0][e] + f.x[1][e] + f.x[3][e]) / 3;
    float untouched = f.x[2][5];
    s_round(&strategy_avg, st, 0, &f, 2);
    for (int e = 0; e < N; e++) {
        s_close(f.x[0][e], mean[e], "x0", e);
        ck_assert(f.x[3][e] == f.x[0][e]);
        s_close(strategy_avg.global(st)[e], mean[e], "global", e);
    }
    ck_assert(f.x[2][5] == untouched);
    s_close(strategy_avg.global_loss(st), (f.loss[0] + f.loss[1] + f.loss[3]) / 3, "loss", 0);
    ck_assert_int_eq(strategy_avg.global_particle(st), -1);
    strategy_avg.destroy(st);
    s_free(&f);
}
END_TEST

START_TEST(easgd_matches_the_elastic_update)
{
    struct strategy_params p = s_params();
    p.easgd_beta = 0.8;
    double alpha = 0.8 / K;
    void *st = strategy_easgd.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 2, 1);
    double c[N];
    for (int e = 0; e < N; e++)
        c[e] = f.x[0][e]; /* the center starts at the first particle */
    for (int i = 0; i < K; i++)
        strategy_easgd.add(st, f.x[i], (uint64_t)i);
    for (int round = 0; round < 3; round++) {
        if (round > 0)
            s_fill(&f, 10 + (uint64_t)round, 1);
        double wantx[K][N], wantc[N];
        for (int e = 0; e < N; e++) {
            double sum = 0;
            for (int i = 0; i < K; i++) {
                if (i == 1)
                    continue;
                double d = alpha * (f.x[i][e] - c[e]);
                wantx[i][e] = f.x[i][e] - d;
                sum += d;
            }
            wantc[e] = c[e] + sum;
        }
        s_round(&strategy_easgd, st, (uint64_t)round, &f, 1);
        for (int e = 0; e < N; e++) {
            for (int i = 0; i < K; i++)
                if (i != 1)
                    s_close(f.x[i][e], wantx[i][e], "x", e);
            s_close(strategy_easgd.global(st)[e], wantc[e], "center", e);
            c[e] = strategy_easgd.global(st)[e];
        }
    }
    strategy_easgd.destroy(st);
    s_free(&f);
}
END_TEST

static void s_diloco(int nesterov)
{
    struct strategy_params p = s_params();
    p.outer_lr = 0.7, p.outer_momentum = 0.9, p.outer_nesterov = nesterov;
    void *st = strategy_diloco.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 3, 0);
    double th[N], m[N];
    for (int e = 0; e < N; e++)
        th[e] = f.x[0][e], m[e] = 0;
    for (int i = 0; i < K; i++)
        strategy_diloco.add(st, f.x[i], (uint64_t)i);
    for (int round = 0; round < 3; round++) {
        s_fill(&f, 20 + (uint64_t)round, 0);
        for (int e = 0; e < N; e++) {
            double mean = ((double)f.x[1][e] + f.x[2][e] + f.x[3][e]) / 3;
            double delta = th[e] - mean;
            m[e] = 0.9 * m[e] + delta;
            th[e] -= 0.7 * (nesterov ? delta + 0.9 * m[e] : m[e]);
        }
        s_round(&strategy_diloco, st, (uint64_t)round, &f, 0);
        for (int e = 0; e < N; e++) {
            s_close(f.x[1][e], th[e], "theta", e);
            ck_assert(f.x[2][e] == f.x[1][e] && f.x[3][e] == f.x[1][e]);
        }
    }
    strategy_diloco.destroy(st);
    s_free(&f);
}

START_TEST(diloco_matches_outer_nesterov_and_slowmo)
{
    s_diloco(1);
    s_diloco(0);
}
END_TEST

START_TEST(diloco_with_lr_one_and_no_momentum_is_averaging)
{
    struct strategy_params p = s_params();
    p.outer_lr = 1, p.outer_momentum = 0, p.outer_nesterov = 0;
    void *d = strategy_diloco.create(N, 0, &p), *a = strategy_avg.create(N, 0, &p);
    struct fixture f = {0}, g = {0};
    s_fill(&f, 4, 0);
    s_fill(&g, 4, 0);
    for (int i = 0; i < K; i++)
        strategy_diloco.add(d, f.x[i], (uint64_t)i), strategy_avg.add(a, g.x[i], (uint64_t)i);
    s_round(&strategy_diloco, d, 0, &f, -1);
    s_round(&strategy_avg, a, 0, &g, -1);
    for (int e = 0; e < N; e++)
        s_close(f.x[0][e], g.x[0][e], "x", e);
    strategy_diloco.destroy(d);
    strategy_avg.destroy(a);
    s_free(&f), s_free(&g);
}
END_TEST

START_TEST(ssgd_matches_torch_sgd_on_the_mean_gradient)
{
    struct strategy_params p = s_params();
    p.ssgd_lr = 0.05, p.ssgd_momentum = 0.9, p.ssgd_weight_decay = 0.01;
    ck_assert_int_eq(strategy_ssgd.push_kind, 1);
    void *st = strategy_ssgd.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 5, 3);
    double th[N], buf[N];
    for (int e = 0; e < N; e++)
        th[e] = f.x[0][e];
    for (int i = 0; i < K; i++)
        strategy_ssgd.add(st, f.x[i], (uint64_t)i);
    for (int round = 0; round < 3; round++) {
        s_fill(&f, 30 + (uint64_t)round, 3); /* x now holds gradients */
        for (int e = 0; e < N; e++) {
            double g = ((double)f.x[0][e] + f.x[1][e] + f.x[2][e]) / 3 + 0.01 * th[e];
            buf[e] = round == 0 ? g : 0.9 * buf[e] + g;
            th[e] -= 0.05 * buf[e];
        }
        s_round(&strategy_ssgd, st, (uint64_t)round, &f, 3);
        for (int e = 0; e < N; e++)
            s_close(f.x[0][e], th[e], "theta", e);
    }
    strategy_ssgd.destroy(st);
    s_free(&f);
}
END_TEST

START_TEST(ssgd_follows_the_workers_schedule)
{
    /* Warm-up of 1 step, then cosine to 0 over 4 steps, no momentum: each
     * step moves theta by exactly lr(step) x the mean gradient. */
    struct strategy_params p = s_params();
    p.ssgd_lr = 0.05, p.ssgd_momentum = 0, p.ssgd_weight_decay = 0;
    p.ssgd_schedule = 2 /* cosine */, p.ssgd_warmup = 1, p.ssgd_steps = 4;
    void *st = strategy_ssgd.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 5, 3);
    double th[N];
    for (int e = 0; e < N; e++)
        th[e] = f.x[0][e];
    for (int i = 0; i < K; i++)
        strategy_ssgd.add(st, f.x[i], (uint64_t)i);
    for (int round = 0; round < 4; round++) {
        double lr = round == 0 ? 0.05 : 0.5 * 0.05 * (1 + cos(M_PI * (round - 1) / 3.0));
        s_fill(&f, 40 + (uint64_t)round, 3);
        for (int e = 0; e < N; e++)
            th[e] -= lr * ((double)f.x[0][e] + f.x[1][e] + f.x[2][e]) / 3;
        s_round(&strategy_ssgd, st, (uint64_t)round, &f, 3);
        for (int e = 0; e < N; e++)
            s_close(f.x[0][e], th[e], "theta under the schedule", e);
    }
    strategy_ssgd.destroy(st);
    s_free(&f);
}
END_TEST

/* PSO-PS variants through the strategy: displacement inertia and the mean
 * attractor, per-particle random factors, against the formula. */
static void s_pso_variant(int inertia, int attractor)
{
    struct strategy_params p = s_params();
    p.w = 0.6, p.c1 = 0.7, p.c2 = 0.9, p.vmax = 0;
    p.random_mode = PSO_RANDOM_PARTICLE;
    p.inertia = inertia, p.attractor = attractor;
    void *st = strategy_pso.create(N, 0, &p);
    struct fixture f = {0};
    s_fill(&f, 6, 0);
    double v[K][N], pb[K][N], pbl[K];
    for (int i = 0; i < K; i++) {
        strategy_pso.add(st, f.x[i], (uint64_t)(100 + i));
        pbl[i] = INFINITY;
        for (int e = 0; e < N; e++)
            v[i][e] = 0, pb[i][e] = f.x[i][e];
    }
    struct pso_params prm = {
        p.w, p.c1, p.c2, 0, PSO_RANDOM_PARTICLE, p.seed, inertia, attractor, 0.1, 0, 0, 0, 0,
        0,   {0},  0,    0};
    for (int round = 0; round < 3; round++) {
        s_fill(&f, 40 + (uint64_t)round, 2);
        int skip = round == 1 ? 2 : -1;
        double mean[N];
        for (int e = 0; e < N; e++) {
            double sum = 0;
            int k = 0;
            for (int i = 0; i < K; i++)
                if (i != skip)
                    sum += f.x[i][e], k++;
            mean[e] = sum / k;
        }
        int improved[K], gb = 0;
        for (int i = 0; i < K; i++) {
            improved[i] = i != skip && f.loss[i] < pbl[i];
            if (improved[i]) {
                pbl[i] = f.loss[i];
                for (int e = 0; e < N; e++)
                    pb[i][e] = f.x[i][e];
            }
        }
        for (int i = 1; i < K; i++)
            if (pbl[i] < pbl[gb])
                gb = i;
        double want[K][N];
        for (int i = 0; i < K; i++) {
            if (i == skip)
                continue;
            struct pso_step k;
            pso_step_init(&k, &prm, (uint64_t)round, (uint64_t)(100 + i), 0);
            for (int e = 0; e < N; e++) {
                double x = f.x[i][e];
                double a1 = attractor == PSO_ATTRACT_MEAN ? mean[e] : pb[i][e];
                double inert = inertia == PSO_INERTIA_DISPLACEMENT ? x - f.prev[i][e] : v[i][e];
                double vi = 0.6 * inert + 0.7 * k.r1 * (a1 - x) + 0.9 * k.r2 * (pb[gb][e] - x);
                v[i][e] = vi;
                want[i][e] = (inertia == PSO_INERTIA_DISPLACEMENT ? f.prev[i][e] : x) + vi;
            }
        }
        s_round(&strategy_pso, st, (uint64_t)round, &f, skip);
        ck_assert_int_eq(strategy_pso.global_particle(st), gb);
        for (int i = 0; i < K; i++)
            if (i != skip)
                for (int e = 0; e < N; e++)
                    s_close(f.x[i][e], want[i][e], "x", e);
        for (int e = 0; e < N; e++)
            s_close(strategy_pso.global(st)[e], pb[gb][e], "g", e);
    }
    strategy_pso.destroy(st);
    s_free(&f);
}

START_TEST(pso_variants_match_reference)
{
    s_pso_variant(PSO_INERTIA_VELOCITY, PSO_ATTRACT_BEST);
    s_pso_variant(PSO_INERTIA_DISPLACEMENT, PSO_ATTRACT_BEST);
    s_pso_variant(PSO_INERTIA_VELOCITY, PSO_ATTRACT_MEAN);
    s_pso_variant(PSO_INERTIA_DISPLACEMENT, PSO_ATTRACT_MEAN);
}
END_TEST

START_TEST(sums_do_not_depend_on_join_order)
{
    /* The same six workers (same streams, same vectors) joining in two
     * orders: the means must be bit-identical, not just close. */
    enum { W = 6 };
    struct strategy_params p = s_params();
    void *a = strategy_avg.create(N, 0, &p), *b = strategy_avg.create(N, 0, &p);
    float *v[W], *xa[W], *xb[W];
    struct rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < W; i++) {
        v[i] = malloc(N * sizeof(float));
        for (int e = 0; e < N; e++)
            v[i][e] = (float)((rng_double(&r) - 0.5) * 1e3 * (e % 7 + 1));
    }
    int perm[W] = {4, 1, 5, 0, 3, 2};
    for (int i = 0; i < W; i++) {
        strategy_avg.add(a, v[i], 1000 + (uint64_t)i * 7919);
        strategy_avg.add(b, v[perm[i]], 1000 + (uint64_t)perm[i] * 7919);
    }
    for (int i = 0; i < W; i++) {
        xa[i] = malloc(N * sizeof(float)), xb[i] = malloc(N * sizeof(float));
        memcpy(xa[i], v[i], N * sizeof(float));
        memcpy(xb[i], v[perm[i]], N * sizeof(float));
    }
    /* Losses whose sum rounds differently in different orders. */
    double la[W] = {1e16, 1, -1e16, 3, 0.25, 7}, lb[W];
    for (int i = 0; i < W; i++)
        lb[i] = la[perm[i]];
    strategy_avg.round(a, 0, xa, NULL, la, NULL, NULL);
    strategy_avg.round(b, 0, xb, NULL, lb, NULL, NULL);
    ck_assert_int_eq(memcmp(strategy_avg.global(a), strategy_avg.global(b), N * sizeof(float)), 0);
    /* The global loss too (it goes into the model file's header). */
    double ga = strategy_avg.global_loss(a), gb = strategy_avg.global_loss(b);
    ck_assert_int_eq(memcmp(&ga, &gb, sizeof ga), 0);
    for (int i = 0; i < W; i++)
        free(v[i]), free(xa[i]), free(xb[i]);
    strategy_avg.destroy(a);
    strategy_avg.destroy(b);
}
END_TEST

/* One round of `ops` over six particles starting at v, pushing v shifted by
 * one: arrivals in `order` (-1 ends it; a particle listed twice pushed
 * again), then the close without the particles in `absent` (a bit mask:
 * they never pushed, or their push was dropped). The new positions land in
 * out[i] (NULL for the absent). */
enum { SW = 6 };
static int s_checked; /* arrivals carry an unchecked push (psod's float32 pushes) */
static int s_fused;   /* arrivals that checked their push while summing it */
static void s_sum_round(const struct strategy_ops *ops, float *const *v, const int *order,
                        unsigned absent, float **out, float *global)
{
    struct strategy_params p = s_params();
    double loss[SW] = {3, 1, 4, 1.5, 9, 2.6};
    void *st = ops->create(N, 0, &p);
    for (int i = 0; i < SW; i++)
        ops->add(st, v[i], 5000 + (uint64_t)((i * 7) % SW) * 104729);
    float *buf[SW];
    for (int i = 0; i < SW; i++) {
        buf[i] = malloc(N * sizeof(float));
        memcpy(buf[i], v[(i + 1) % SW], N * sizeof(float));
    }
    for (int j = 0; order && order[j] >= 0; j++) {
        struct payload_check chk = {0, 99};
        if (ops->arrive(st, 0, order[j], buf[order[j]], s_checked ? &chk : NULL)) {
            ck_assert_msg(s_checked, "%s checked a push it was not asked to", ops->name);
            ck_assert_uint_eq(chk.crc, crc32c(0, buf[order[j]], N * sizeof(float)));
            ck_assert_uint_eq(chk.bad, 0);
            s_fused++;
        }
    }
    float *x[SW];
    for (int i = 0; i < SW; i++)
        x[i] = absent >> i & 1 ? NULL : buf[i];
    ops->round(st, 0, x, NULL, loss, NULL, NULL);
    for (int i = 0; i < SW; i++)
        out[i] = x[i] ? buf[i] : (free(buf[i]), NULL);
    memcpy(global, ops->global(st), N * sizeof(float));
    ops->destroy(st);
}

START_TEST(means_built_while_pushes_arrive_are_the_same_bits)
{
    /* Every strategy with a mean: pushes summed as they arrive, in any
     * order, give the same floats, bit for bit, as the close computing the
     * mean itself (no arrivals): all six in order, reversed and shuffled
     * (summed before the close); one particle absent (the sum waits at its
     * place, the close adds the rest); a push replaced, and a push dropped
     * after it was summed (the close starts over). */
    const struct strategy_ops *ops[] = {&strategy_pso, &strategy_avg, &strategy_diloco,
                                        &strategy_ssgd};
    static const int all[][SW + 1] = {
        {0, 1, 2, 3, 4, 5, -1}, {5, 4, 3, 2, 1, 0, -1}, {2, 0, 5, 1, 4, 3, -1}};
    static const int some[][SW + 2] = {
        {0, 1, 2, 3, 5, -1}, {5, 3, 2, 1, 0, -1}, {3, 3, 1, 0, 5, 2, -1}, {4, 2, 0, 1, 3, 5, -1}};
    struct rng r;
    rng_seed(&r, 21);
    float *v[SW];
    for (int i = 0; i < SW; i++) {
        v[i] = malloc(N * sizeof(float));
        for (int e = 0; e < N; e++)
            v[i][e] = (float)((rng_double(&r) - 0.5) * 1e3 * (e % 5 + 1));
    }
    float gw[N], gg[N];
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (int absent4 = 0; absent4 < 2; absent4++) {
            float *want[SW], *got[SW];
            unsigned mask = absent4 ? 1u << 4 : 0;
            s_sum_round(ops[o], v, NULL, mask, want, gw);
            int cases = absent4 ? 4 : 3;
            for (int k = 0; k < 2 * cases; k++) {
                s_checked = k >= cases; /* each case again, checking as it sums */
                s_sum_round(ops[o], v, absent4 ? some[k % cases] : all[k % cases], mask, got, gg);
                for (int i = 0; i < SW; i++)
                    if (want[i])
                        ck_assert_msg(memcmp(want[i], got[i], N * sizeof(float)) == 0,
                                      "%s, case %d/%d: particle %d differs", ops[o]->name, absent4,
                                      k, i);
                ck_assert_int_eq(memcmp(gw, gg, sizeof gw), 0);
                for (int i = 0; i < SW; i++)
                    free(got[i]);
            }
            for (int i = 0; i < SW; i++)
                free(want[i]);
        }
    s_checked = 0;
    ck_assert_int_gt(s_fused, 0); /* in order, the next push is summed as it is checked */
    for (int i = 0; i < SW; i++)
        free(v[i]);
}
END_TEST

START_TEST(a_push_refused_by_the_check_it_was_summed_in_is_left_out)
{
    /* avg, pushes 0, 1, 2 in order, checked as they are summed: push 2
     * holds a NaN (its check says so after its floats went into the sum);
     * psod withdraws it and the close gives the mean without it, the bits
     * of a round it never joined. */
    struct strategy_params p = s_params();
    float *v[SW], *a[SW], *b[SW];
    for (int i = 0; i < SW; i++) {
        v[i] = malloc(N * sizeof(float));
        for (int e = 0; e < N; e++)
            v[i][e] = (float)(i * 100 + e) * 0.37f;
    }
    float gw[N], gg[N];
    s_sum_round(&strategy_avg, v, NULL, 1u << 2, a, gw);
    void *st = strategy_avg.create(N, 0, &p);
    for (int i = 0; i < SW; i++)
        strategy_avg.add(st, v[i], 5000 + (uint64_t)((i * 7) % SW) * 104729);
    for (int i = 0; i < SW; i++) {
        b[i] = malloc(N * sizeof(float));
        memcpy(b[i], v[(i + 1) % SW], N * sizeof(float));
    }
    b[2][N - 1] = NAN;
    for (int i = 0; i <= 2; i++) {
        struct payload_check chk;
        ck_assert_int_eq(strategy_avg.arrive(st, 0, i, b[i], &chk), 1);
        ck_assert_uint_eq(chk.bad, i == 2 ? 1 : 0);
        if (chk.bad)
            strategy_avg.withdraw(st, i);
    }
    float *x[SW];
    for (int i = 0; i < SW; i++)
        x[i] = i == 2 ? NULL : b[i];
    double loss[SW] = {3, 1, 4, 1.5, 9, 2.6};
    strategy_avg.round(st, 0, x, NULL, loss, NULL, NULL);
    memcpy(gg, strategy_avg.global(st), sizeof gg);
    ck_assert_int_eq(memcmp(gw, gg, sizeof gw), 0);
    for (int i = 0; i < SW; i++)
        if (i != 2)
            ck_assert_int_eq(memcmp(a[i], b[i], N * sizeof(float)), 0);
    strategy_avg.destroy(st);
    for (int i = 0; i < SW; i++)
        free(v[i]), free(a[i]), free(b[i]);
}
END_TEST

/* Fragment payloads: a round confined to a part (the op `part`) gives,
 * inside it, the same bits as the whole round; outside it every pushed
 * x[i] is as pushed and the state is as it was (the next whole round of
 * both states agrees outside the part only if nothing moved there). */
static void s_part_round(const struct strategy_ops *ops)
{
    enum { LO = 301, HI = 702 };
    struct strategy_params p = s_params();
    void *a = ops->create(N, 0, &p), *b = ops->create(N, 0, &p);
    struct fixture fa = {0}, fb = {0};
    s_fill(&fa, 3, 1);
    s_fill(&fb, 3, 1);
    for (int i = 0; i < K; i++) {
        ops->add(a, fa.x[i], 77 + (uint64_t)i);
        ops->add(b, fb.x[i], 77 + (uint64_t)i);
    }
    /* Round 0 whole on both (velocities, momentum, a center to keep). */
    s_round(ops, a, 0, &fa, 1);
    s_round(ops, b, 0, &fb, 1);
    float *g0 = malloc(N * sizeof(float)), *pushed[K];
    memcpy(g0, ops->global(b), N * sizeof(float));
    for (int i = 0; i < K; i++) { /* round 1's pushes: each moved a little */
        for (int e = 0; e < N; e++)
            fa.x[i][e] = fb.x[i][e] = fa.x[i][e] + 0.01f * (float)((e * (i + 3)) % 11 - 5);
        fa.loss[i] = fb.loss[i] = 0.5 + 0.1 * i;
        fa.done[i] = fb.done[i] = 0;
        pushed[i] = malloc(N * sizeof(float));
        memcpy(pushed[i], fb.x[i], N * sizeof(float));
    }
    ops->part(a, 0, N);
    ops->part(b, LO, HI - LO);
    s_round(ops, a, 1, &fa, 2);
    s_round(ops, b, 1, &fb, 2);
    for (int i = 0; i < K; i++) {
        if (i == 2)
            continue;
        ck_assert_msg(memcmp(fa.x[i] + LO, fb.x[i] + LO, (HI - LO) * sizeof(float)) == 0,
                      "%s: particle %d's part differs from the whole round's", ops->name, i);
        ck_assert_msg(memcmp(fb.x[i], pushed[i], LO * sizeof(float)) == 0 &&
                          memcmp(fb.x[i] + HI, pushed[i] + HI, (N - HI) * sizeof(float)) == 0,
                      "%s: particle %d moved outside the part", ops->name, i);
    }
    { /* the center: kept outside */
        const float *g1 = ops->global(b);
        ck_assert_msg(memcmp(g1, g0, LO * sizeof(float)) == 0 &&
                          memcmp(g1 + HI, g0 + HI, (N - HI) * sizeof(float)) == 0,
                      "%s: the global model moved outside the part", ops->name);
    }
    for (int i = 0; i < K; i++)
        free(pushed[i]);
    free(g0);
    s_free(&fa);
    s_free(&fb);
    ops->destroy(a);
    ops->destroy(b);
}

START_TEST(a_round_confined_to_a_part_moves_only_the_part)
{
    int parted = 0;
    for (int j = 0; strategy_all[j]; j++)
        if (strategy_all[j]->part && !strategy_all[j]->push_kind)
            s_part_round(strategy_all[j]), parted++;
    ck_assert_int_eq(parted, 3); /* avg, easgd, diloco */
    /* pso has none: its personal bests are whole vectors, each tied to
     * the loss of the whole model (docs/STRATEGIES.md, "Fragments"). */
    ck_assert_ptr_null(strategy_pso.part);
}
END_TEST

START_TEST(registry_and_options)
{
    for (int i = 0; strategy_all[i]; i++) {
        ck_assert_ptr_eq(strategy_find(strategy_all[i]->name), strategy_all[i]);
        ck_assert_ptr_nonnull(strstr(strategy_names(), strategy_all[i]->name));
        ck_assert_str_eq(strategy_choices[i], strategy_all[i]->name);
    }
    ck_assert_ptr_null(strategy_choices[STRATEGY_COUNT]);
    ck_assert_str_eq(strategy_names(), "pso, avg, easgd, diloco, ssgd");
    ck_assert_ptr_null(strategy_find("sgd"));
    /* Every strategy's options are psod options. */
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    struct config_table tabs[SERVER_OPTION_TABLES];
    const struct config_table *o = server_options(&cfg, tabs);
    ck_assert_int_eq(config_defaults(o, err, sizeof err), 0);
    ck_assert_int_eq(config_set(o, "strategy", "diloco", err, sizeof err), 0);
    ck_assert_ptr_eq(strategy_all[cfg.strategy], &strategy_diloco);
    ck_assert_int_eq(config_set(o, "outer-lr", "0.5", err, sizeof err), 0);
    ck_assert_double_eq(cfg.sp.outer_lr, 0.5);
    ck_assert_int_eq(config_set(o, "easgd-beta", "0.5", err, sizeof err), 0);
    ck_assert_double_eq(cfg.sp.easgd_beta, 0.5);
    ck_assert_int_eq(config_set(o, "inertia", "displacement", err, sizeof err), 0);
    ck_assert_int_eq(cfg.sp.inertia, PSO_INERTIA_DISPLACEMENT);
    ck_assert_int_eq(config_set(o, "ssgd-lr", "0.25", err, sizeof err), 0);
    ck_assert_double_eq(cfg.sp.ssgd_lr, 0.25);
    /* Every strategy is chosen by its name, and reads its own options. */
    for (int i = 0; strategy_all[i]; i++) {
        ck_assert_int_eq(config_set(o, "strategy", strategy_all[i]->name, err, sizeof err), 0);
        ck_assert_ptr_eq(strategy_all[cfg.strategy], strategy_all[i]);
        for (const struct config_option *op = strategy_all[i]->options; op && op->name; op++)
            if (op->type != CONF_GROUP)
                ck_assert_msg(config_set(o, op->name, op->def ? op->def : "", err, sizeof err) == 0,
                              "%s --%s %s: %s", strategy_all[i]->name, op->name, op->def, err);
    }
    /* ssgd's own check: a cosine schedule needs the run's steps. */
    cfg.sp.ssgd_schedule = LR_COSINE;
    cfg.sp.ssgd_steps = 0;
    ck_assert_int_eq(strategy_ssgd.check(&cfg.sp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--ssgd-steps"));
    cfg.sp.ssgd_steps = 100;
    ck_assert_int_eq(strategy_ssgd.check(&cfg.sp, err, sizeof err), 0);
    /* pso's: bfloat16 bests go through the fused update only. */
    ck_assert_int_eq(config_set(o, "best-precision", "bf16", err, sizeof err), 0);
    ck_assert_int_eq(strategy_pso.check(&cfg.sp, err, sizeof err), 0);
    ck_assert_int_eq(config_set(o, "attractor", "mix", err, sizeof err), 0);
    ck_assert_int_eq(strategy_pso.check(&cfg.sp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--attractor mix"));
    ck_assert_int_eq(config_set(o, "attractor", "mean", err, sizeof err), 0);
    ck_assert_int_eq(config_set(o, "verify-best", "yes", err, sizeof err), 0);
    ck_assert_int_eq(strategy_pso.check(&cfg.sp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--verify-best"));
    ck_assert_int_eq(config_set(o, "strategy", "bogus", err, sizeof err), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("strategy");
    TCase *tc = tcase_create("updates");
    tcase_add_test(tc, avg_gives_everyone_the_mean);
    tcase_add_test(tc, easgd_matches_the_elastic_update);
    tcase_add_test(tc, diloco_matches_outer_nesterov_and_slowmo);
    tcase_add_test(tc, diloco_with_lr_one_and_no_momentum_is_averaging);
    tcase_add_test(tc, ssgd_matches_torch_sgd_on_the_mean_gradient);
    tcase_add_test(tc, ssgd_follows_the_workers_schedule);
    tcase_add_test(tc, pso_variants_match_reference);
    tcase_add_test(tc, sums_do_not_depend_on_join_order);
    tcase_add_test(tc, means_built_while_pushes_arrive_are_the_same_bits);
    tcase_add_test(tc, a_push_refused_by_the_check_it_was_summed_in_is_left_out);
    tcase_add_test(tc, a_round_confined_to_a_part_moves_only_the_part);
    tcase_add_test(tc, registry_and_options);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
