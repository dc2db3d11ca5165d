/* Suite: server/swarm (the PSO-PS update against a plain double-precision
 * reference, best selection, seed determinism, order independence). */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/rng.h"
#include <unistd.h>
#include "common/ckpt.h"
#include "server/strategy/strategy.h"
#include "server/strategy/swarm.h"
#include "server/strategy/swarm_mix.h"
#include "server/strategy/swarm_int.h" /* mix_state_survives_a_checkpoint reads the weights */

/* The reference: the textbook update written out plainly, in double. */
static void s_reference(double *x, double *v, double *p, const double *g, size_t n, int improved,
                        const struct pso_step *k, const double *a1)
{
    for (size_t i = 0; i < n; i++) {
        if (improved)
            p[i] = x[i];
        float r1 = k->r1, r2 = k->r2;
        if (k->per_element)
            rng_uniform_pair(rng_key_hi(k->key, k->offset + i), (uint32_t)(k->offset + i), &r1,
                             &r2);
        double att = a1 ? a1[i] : p[i];
        double vel = (double)k->w * v[i] + (double)k->c1 * r1 * (att - x[i]) +
                     (double)k->c2 * r2 * (g[i] - x[i]);
        if (k->vmax > 0)
            vel = fmin(fmax(vel, -(double)k->vmax), (double)k->vmax);
        v[i] = vel;
        x[i] += vel;
    }
}

static void s_fill(float *f, double *d, size_t n, struct rng *r, double scale)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)((rng_double(r) * 2 - 1) * scale);
        d[i] = f[i];
    }
}

START_TEST(update_matches_reference_every_variant)
{
    enum { N = 10007 }; /* odd length: exercises vector tails */
    struct rng r;
    rng_seed(&r, 11);
    float *x = malloc(N * 4), *v = malloc(N * 4), *p = malloc(N * 4), *g = malloc(N * 4);
    double *X = malloc(N * 8), *V = malloc(N * 8), *P = malloc(N * 8), *G = malloc(N * 8);
    float *m = malloc(N * 4);
    double *M = malloc(N * 8);
    /* bit 0: clamp, 1: per-element factors, 2: improved, 3: mean attractor */
    for (int variant = 0; variant < 16; variant++) {
        s_fill(x, X, N, &r, 3);
        s_fill(v, V, N, &r, 0.5);
        s_fill(p, P, N, &r, 3);
        s_fill(g, G, N, &r, 3);
        s_fill(m, M, N, &r, 3);
        struct pso_params prm = {0.7298,
                                 1.49618,
                                 1.49618,
                                 variant & 1 ? 0.3 : 0,
                                 variant & 2 ? PSO_RANDOM_ELEMENT : PSO_RANDOM_PARTICLE,
                                 5,
                                 PSO_INERTIA_VELOCITY,
                                 PSO_ATTRACT_BEST,
                                 0.1,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 {0},
                                 0,
                                 0};
        struct pso_step k;
        pso_step_init(&k, &prm, 3, 2, 1000);
        if (variant & 8)
            k.a1 = m;
        int improved = (variant & 4) != 0;
        uint32_t crc;
        pso_update(x, v, p, g, N, improved, &k, &crc);
        s_reference(X, V, P, G, N, improved, &k, variant & 8 ? M : NULL);
        ck_assert_uint_eq(crc, crc32c(0, x, N * sizeof(float)));
        for (size_t i = 0; i < N; i++) {
            ck_assert_msg(fabs(x[i] - X[i]) <= 1e-5 * (1 + fabs(X[i])),
                          "variant %d x[%zu]: %g vs %g", variant, i, x[i], X[i]);
            ck_assert_msg(fabs(v[i] - V[i]) <= 1e-5 * (1 + fabs(V[i])),
                          "variant %d v[%zu]: %g vs %g", variant, i, v[i], V[i]);
            ck_assert(p[i] == (float)P[i]);
        }
        if (prm.vmax > 0)
            for (size_t i = 0; i < N; i++)
                ck_assert(fabsf(v[i]) <= 0.3f);
    }
    free(x), free(v), free(p), free(g), free(X), free(V), free(P), free(G), free(m), free(M);
}
END_TEST

START_TEST(per_element_factors_vary_per_particle_factors_do_not)
{
    struct pso_params prm = {0, 1,   0, 0, PSO_RANDOM_ELEMENT, 1, 0, 0, 0.1, 0, 0, 0, 0,
                             0, {0}, 0, 0};
    struct pso_step k;
    pso_step_init(&k, &prm, 0, 0, 0);
    enum { N = 64 };
    float x[N] = {0}, v[N] = {0}, p[N], g[N] = {0};
    for (int i = 0; i < N; i++)
        p[i] = 1;
    pso_update(x, v, p, g, N, 0, &k, NULL); /* x = c1 * r1_i * (1 - 0) = r1_i */
    int distinct = 0;
    for (int i = 1; i < N; i++)
        distinct += x[i] != x[0];
    ck_assert_int_gt(distinct, N - 3);
    prm.random_mode = PSO_RANDOM_PARTICLE;
    pso_step_init(&k, &prm, 0, 0, 0);
    memset(x, 0, sizeof x);
    memset(v, 0, sizeof v);
    pso_update(x, v, p, g, N, 0, &k, NULL);
    for (int i = 1; i < N; i++)
        ck_assert(x[i] == x[0]);
    ck_assert(x[0] >= 0 && x[0] < 1);
}
END_TEST

START_TEST(bests_follow_losses)
{
    enum { N = 5 };
    struct pso_params prm = {0.5, 1,   1, 0, PSO_RANDOM_PARTICLE, 1, 0, 0, 0.1, 0, 0, 0, 0,
                             0,   {0}, 0, 0};
    struct swarm *s = swarm_new(N, 0, &prm);
    float x0[3][N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            x0[j][i] = (float)(10 * j + i);
        ck_assert_int_eq(swarm_add(s, x0[j], (uint64_t)j), j);
    }
    ck_assert(isinf(swarm_best_loss(s)));
    ck_assert_int_eq(swarm_best_particle(s), -1);
    ck_assert_ptr_null(swarm_best(s));
    float *none[3] = {NULL, NULL, NULL};
    double noloss[3] = {0, 0, 0};
    swarm_round(s, 0, none, NULL, noloss, NULL, NULL); /* a round nobody pushed in */
    ck_assert_int_eq(swarm_best_particle(s), -1);

    float a[3][N];
    memcpy(a, x0, sizeof a);
    float *xs[3] = {a[0], a[1], a[2]};
    double loss[3] = {3.0, 1.0, 2.0};
    swarm_round(s, 0, xs, NULL, loss, NULL, NULL);
    ck_assert_int_eq(swarm_best_particle(s), 1);
    ck_assert_double_eq(swarm_best_loss(s), 1.0);
    ck_assert_mem_eq(swarm_best(s), x0[1], sizeof x0[1]); /* g = what particle 1 pushed */
    for (int j = 0; j < 3; j++) {
        ck_assert_double_eq(swarm_personal_best_loss(s, j), loss[j]);
        ck_assert_mem_eq(swarm_personal_best(s, j), x0[j], sizeof x0[j]);
    }
    /* Round 1: particle 0 pushes a worse loss (p unchanged), particle 2 a new
     * global best, particle 1 does not push (its x stays NULL). */
    float b0[N], b2[N];
    for (int i = 0; i < N; i++)
        b0[i] = 100.0f + (float)i, b2[i] = -5.0f - (float)i;
    float *ys[3] = {b0, NULL, b2};
    double loss2[3] = {9.0, 0, 0.5};
    float p0[N];
    memcpy(p0, swarm_personal_best(s, 0), sizeof p0);
    float b2_pushed[N];
    memcpy(b2_pushed, b2, sizeof b2);
    swarm_round(s, 1, ys, NULL, loss2, NULL, NULL);
    ck_assert_double_eq(swarm_personal_best_loss(s, 0), 3.0);
    ck_assert_mem_eq(swarm_personal_best(s, 0), p0, sizeof p0);
    ck_assert_double_eq(swarm_personal_best_loss(s, 1), 1.0);
    ck_assert_int_eq(swarm_best_particle(s), 2);
    ck_assert_double_eq(swarm_best_loss(s), 0.5);
    ck_assert_mem_eq(swarm_best(s), b2_pushed, sizeof b2_pushed);
    swarm_destroy(&s);
    ck_assert_ptr_null(s);
}
END_TEST

/* --attractor weighted: with one random factor per particle, w 0 and c2 0,
 * every particle moves along (a1 - x) by one scalar, so a1 can be read off
 * and checked against softmax(-loss / T) of what was pushed. A huge T is
 * the plain mean attractor. */
static void s_weighted_round(int attractor, double T, float out[3][6], float before[3][6])
{
    struct pso_params prm = {0, 1,   0, 0, PSO_RANDOM_PARTICLE, 5, 0, attractor, T, 0, 0, 0, 0,
                             0, {0}, 0, 0};
    struct swarm *s = swarm_new(6, 0, &prm);
    float x[3][6];
    for (int j = 0; j < 3; j++)
        for (int e = 0; e < 6; e++)
            x[j][e] = (float)(j * 3 + e * e) - 4.0f * (float)j;
    for (int j = 0; j < 3; j++)
        swarm_add(s, x[j], (uint64_t)j);
    memcpy(before, x, sizeof x);
    float *xs[3] = {x[0], x[1], x[2]};
    double loss[3] = {0.9, 0.7, 1.2};
    swarm_round(s, 0, xs, NULL, loss, NULL, NULL);
    memcpy(out, x, sizeof x);
    swarm_destroy(&s);
}

START_TEST(weighted_attractor_is_the_softmax_of_the_losses)
{
    double T = 0.2, loss[3] = {0.9, 0.7, 1.2}, w[3], sum = 0;
    for (int j = 0; j < 3; j++)
        sum += w[j] = exp(-(loss[j] - 0.7) / T);
    float after[3][6], x[3][6];
    s_weighted_round(PSO_ATTRACT_WEIGHTED, T, after, x);
    double a1[6];
    for (int e = 0; e < 6; e++) {
        a1[e] = 0;
        for (int j = 0; j < 3; j++)
            a1[e] += w[j] / sum * x[j][e];
    }
    for (int j = 0; j < 3; j++) {
        double r = NAN;
        for (int e = 0; e < 6; e++) {
            double d = a1[e] - x[j][e];
            if (fabs(d) < 1e-3)
                continue;
            double ratio = (after[j][e] - x[j][e]) / d;
            if (isnan(r))
                r = ratio;
            ck_assert_msg(fabs(ratio - r) < 1e-4, "particle %d element %d: %g against %g", j, e,
                          ratio, r);
        }
        ck_assert(r >= 0 && r < 1); /* one draw in [0, 1) */
    }
    /* huge T: the plain mean, to rounding */
    float mean_after[3][6], weighted_after[3][6];
    s_weighted_round(PSO_ATTRACT_MEAN, 0.1, mean_after, x);
    s_weighted_round(PSO_ATTRACT_WEIGHTED, 1e6, weighted_after, x);
    for (int j = 0; j < 3; j++)
        for (int e = 0; e < 6; e++)
            ck_assert_float_eq_tol(weighted_after[j][e], mean_after[j][e], 1e-4f);
}
END_TEST

/* Run a 4-particle swarm for 5 rounds with a given push order; return
 * the final positions. */
static void s_run_with(uint64_t seed, const int *order, float out[4][257], int attractor)
{
    struct pso_params prm = {
        0.7, 1.5, 1.5, 0, PSO_RANDOM_ELEMENT, seed, 0, attractor, 0.1, 0.729, 1.49, 1.49, 0,
        0,   {0}, 0,   0};
    struct swarm *s = swarm_new(257, 0, &prm);
    float x[4][257];
    struct rng r;
    rng_seed(&r, 1234);
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 257; i++)
            x[j][i] = (float)rng_double(&r);
    }
    for (int j = 0; j < 4; j++)
        swarm_add(s, x[j], (uint64_t)j);
    for (int round = 0; round < 5; round++) {
        float *xs[4] = {0};
        double loss[4] = {0};
        for (int k = 0; k < 4; k++) { /* pushes arrive in `order` */
            int j = order[k];
            xs[j] = x[j];
            double f = 0;
            for (int i = 0; i < 257; i++)
                f += (double)x[j][i] * x[j][i];
            loss[j] = f;
        }
        swarm_round(s, (uint64_t)round, xs, NULL, loss, NULL, NULL);
    }
    memcpy(out, x, sizeof x);
    swarm_destroy(&s);
}

START_TEST(seeded_runs_reproduce_regardless_of_arrival_order)
{
    static float a[4][257], b[4][257], c[4][257];
    int o1[4] = {0, 1, 2, 3}, o2[4] = {3, 1, 0, 2};
    int attractor = _i; /* best, mean, weighted, mix */
    s_run_with(77, o1, a, attractor);
    s_run_with(77, o2, b, attractor);
    ck_assert_mem_eq(a, b, sizeof a);
    s_run_with(78, o1, c, attractor);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

START_TEST(swarm_minimizes_sphere)
{
    /* With no local training at all, PSO alone must shrink the sphere. */
    enum { N = 8, P = 6 };
    struct pso_params prm = {
        0.7298, 1.49618, 1.49618, 0, PSO_RANDOM_ELEMENT, 3, 0, 0, 0.1, 0, 0, 0, 0, 0, {0}, 0, 0};
    struct swarm *s = swarm_new(N, 0, &prm);
    float x[P][N];
    struct rng r;
    rng_seed(&r, 9);
    for (int j = 0; j < P; j++) {
        for (int i = 0; i < N; i++)
            x[j][i] = (float)(rng_double(&r) * 10 - 5);
        swarm_add(s, x[j], (uint64_t)j);
    }
    double first = INFINITY;
    for (int round = 0; round < 300; round++) {
        float *xs[P];
        double loss[P];
        for (int j = 0; j < P; j++) {
            xs[j] = x[j];
            loss[j] = 0;
            for (int i = 0; i < N; i++)
                loss[j] += (double)x[j][i] * x[j][i];
        }
        swarm_round(s, (uint64_t)round, xs, NULL, loss, NULL, NULL);
        if (round == 0)
            first = swarm_best_loss(s);
    }
    ck_assert_double_lt(swarm_best_loss(s), 1e-3 * first);
    swarm_destroy(&s);
}
END_TEST

/* --attractor mix: every pushed position becomes sum_k alpha_jk x_k, with
 * alpha_j nonnegative, summing to 1 over the particles that pushed (one
 * absent here), read back from the mixing swarm before the round. */
START_TEST(mix_positions_are_the_mixtures_of_the_pushes)
{
    enum { N = 5000, P = 4 }; /* more than one mixing block */
    struct mix_params mp = {0.729, 1.49, 1.49, 3};
    struct swarm_mix *m = mix_new(&mp);
    struct strategy_order o = {0};
    static float x[P][N], before[P][N];
    for (int j = 0; j < P; j++) {
        ck_assert_int_eq(mix_reserve(m, (size_t)j + 1), 0);
        strategy_order_add(&o, 100 - (uint64_t)j); /* streams in reverse join order */
        mix_grow(m, &o);
        for (int e = 0; e < N; e++)
            x[j][e] = (float)((j + 1) * (e % 7) - 3 * j);
    }
    memcpy(before, x, sizeof x);
    unsigned char present[P] = {1, 1, 0, 1};
    double alpha[P][P];
    for (int j = 0; j < P; j++) {
        mix_weights(m, &o, j, present, alpha[j]);
        double sum = 0;
        for (int k = 0; k < P; k++) {
            ck_assert(alpha[j][k] >= 0);
            sum += alpha[j][k];
        }
        ck_assert_double_eq_tol(sum, 1, 1e-12);
        ck_assert(alpha[j][2] == 0);
    }
    ck_assert(alpha[0][0] != alpha[0][1]); /* the vectors start apart */
    float *xs[P] = {x[0], x[1], NULL, x[3]};
    double loss[P] = {1, 2, NAN, 3};
    uint32_t crc[P];
    ck_assert_int_eq(mix_round(m, &o, 0, xs, loss, N, crc), 0);
    for (int j = 0; j < P; j++) {
        if (!present[j]) {
            ck_assert_mem_eq(x[j], before[j], sizeof x[j]);
            continue;
        }
        for (int e = 0; e < N; e++) {
            double want = 0;
            for (int k = 0; k < P; k++)
                want += alpha[j][k] * before[k][e];
            ck_assert_double_eq_tol(x[j][e], want, 1e-4 * (1 + fabs(want)));
        }
        ck_assert_uint_eq(crc[j], crc32c(0, x[j], sizeof x[j]));
    }
    ck_assert_int_eq(mix_best_particle(m), -1); /* no vector had a fitness yet */
    mix_free(&m);
    strategy_order_free(&o);
}
END_TEST

/* The loss pushed in round r is the fitness of the vector applied at the
 * close of r - 1: after two rounds the swarm's best vector is the one of
 * the particle that pushed the lowest loss in the second. */
START_TEST(mix_credits_the_loss_to_the_vector_it_gave)
{
    struct mix_params mp = {0.729, 1.49, 1.49, 9};
    struct swarm_mix *m = mix_new(&mp);
    struct strategy_order o = {0};
    float x[3][4] = {{1, 2, 3, 4}, {2, 2, 2, 2}, {0, 1, 0, 1}};
    for (int j = 0; j < 3; j++) {
        mix_reserve(m, (size_t)j + 1);
        strategy_order_add(&o, (uint64_t)j * 7);
        mix_grow(m, &o);
    }
    float *xs[3] = {x[0], x[1], x[2]};
    uint32_t crc[3];
    double first[3] = {0.1, 0.2, 0.3}; /* round 0: nothing was given yet */
    ck_assert_int_eq(mix_round(m, &o, 0, xs, first, 4, crc), 0);
    ck_assert_int_eq(mix_best_particle(m), -1);
    double second[3] = {0.9, 0.4, 0.6};
    ck_assert_int_eq(mix_round(m, &o, 1, xs, second, 4, crc), 0);
    ck_assert_int_eq(mix_best_particle(m), 1);
    ck_assert_double_eq(mix_best_loss(m), 0.4);
    mix_reset(m, &o, 1); /* its worker left: the next best vector stands */
    ck_assert_int_eq(mix_best_particle(m), 2);
    mix_free(&m);
    strategy_order_free(&o);
}
END_TEST

static void s_mix_rounds(struct swarm *s, float x[3][64], int from, int to)
{
    for (int round = from; round < to; round++) {
        float *xs[3] = {x[0], x[1], x[2]};
        double loss[3];
        for (int j = 0; j < 3; j++) {
            loss[j] = 0;
            for (int e = 0; e < 64; e++) {
                x[j][e] *= 0.9f + 0.05f * (float)j; /* "training" */
                loss[j] += (double)x[j][e] * x[j][e];
            }
        }
        swarm_round(s, (uint64_t)round, xs, NULL, loss, NULL, NULL);
    }
}

/* Save `from` and load the file into `to`: swarm_load's result, with its
 * error text in err (256 bytes). */
static int s_reload(const struct swarm *from, struct swarm *to, char *err)
{
    char path[] = "/tmp/check_swarm_ckpt.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct ckpt_writer w;
    ck_assert_int_eq(ckpt_begin(&w, path, err, 256), 0);
    swarm_save(from, &w);
    ck_assert_int_eq(ckpt_commit(&w, err, 256), 0);
    struct ckpt_reader r;
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    int rc = swarm_load(to, &r);
    snprintf(err, 256, "%s", r.err);
    ckpt_close(&r);
    unlink(path);
    return rc;
}

/* A particle holds a velocity only when w > 0 with velocity inertia; the
 * checkpoint keeps its layout (zeros where none is held), so a checkpoint
 * of a swarm that held velocities loads into one that holds none and the
 * other way, and the next rounds give the same bits as a swarm that never
 * stopped. */
START_TEST(velocities_are_held_only_when_read_and_checkpoints_cross_load)
{
    enum { N = 40 };
    struct pso_params lean = {.w = 0,
                              .c1 = 1,
                              .c2 = 0.2,
                              .random_mode = PSO_RANDOM_ELEMENT,
                              .seed = 3,
                              .attractor = PSO_ATTRACT_MEAN};
    struct pso_params full = lean, disp = lean;
    full.w = 0.5;
    disp.w = 0.5;
    disp.inertia = PSO_INERTIA_DISPLACEMENT;
    struct swarm *a = swarm_new(N, 0, &lean), *b = swarm_new(N, 0, &full),
                 *c = swarm_new(N, 0, &disp);
    float x[3][N], y[3][N];
    struct rng r;
    rng_seed(&r, 8);
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            x[j][i] = (float)rng_double(&r);
        swarm_add(a, x[j], (uint64_t)j + 1);
        swarm_add(b, x[j], (uint64_t)j + 1);
        swarm_add(c, x[j], (uint64_t)j + 1);
    }
    for (int j = 0; j < 3; j++) {
        ck_assert_ptr_null(a->pt[j].v);
        ck_assert_ptr_nonnull(b->pt[j].v);
        ck_assert_ptr_null(c->pt[j].v);
    }
    double l[3] = {0.9, 0.5, 0.7};
    for (int round = 0; round < 3; round++) {
        float *px[3] = {x[0], x[1], x[2]};
        swarm_round(b, (uint64_t)round, px, NULL, l, NULL, NULL);
        l[round] -= 0.3;
    }
    /* b held velocities (non-zero after three rounds with w 0.5). */
    int moving = 0;
    for (int i = 0; i < N; i++)
        moving += b->pt[0].v[i] != 0;
    ck_assert_int_gt(moving, 0);
    /* Into a lean swarm: the velocities are skipped, the bests kept; the
     * next round equals a lean swarm's from the same bests. */
    struct swarm *lean2 = swarm_new(N, 0, &lean);
    for (int j = 0; j < 3; j++)
        swarm_add(lean2, x[j], (uint64_t)j + 1);
    char err[256];
    ck_assert_msg(s_reload(b, lean2, err) == 0, "%s", err);
    ck_assert_msg(s_reload(b, a, err) == 0, "%s", err);
    for (int j = 0; j < 3; j++)
        ck_assert_int_eq(memcmp(a->pt[j].p, b->pt[j].p, sizeof x[j]), 0);
    memcpy(y, x, sizeof x);
    float *px[3] = {x[0], x[1], x[2]}, *py[3] = {y[0], y[1], y[2]};
    swarm_round(a, 3, px, NULL, l, NULL, NULL);
    swarm_round(lean2, 3, py, NULL, l, NULL, NULL);
    ck_assert_int_eq(memcmp(x, y, sizeof x), 0);
    /* A lean swarm's checkpoint into one that keeps velocities: they are
     * zeros, as a run that never had w > 0 wrote them. */
    struct swarm *full2 = swarm_new(N, 0, &full);
    for (int j = 0; j < 3; j++)
        swarm_add(full2, x[j], (uint64_t)j + 1);
    ck_assert_msg(s_reload(a, full2, err) == 0, "%s", err);
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < N; i++)
            ck_assert_float_eq(full2->pt[j].v[i], 0.0f);
    swarm_destroy(&a);
    swarm_destroy(&b);
    swarm_destroy(&c);
    swarm_destroy(&lean2);
    swarm_destroy(&full2);
}
END_TEST

/* bfloat16 personal bests: where every push is a bfloat16 value they lose
 * nothing, so the positions are those of float32 bests, bit for bit
 * (mean and best attractors, inertia, clamp; vectors split over the
 * kernel's blocks, an odd tail); elsewhere each best is the push rounded
 * to nearest-even, and the global model is that best widened. Checkpoints
 * cross-load both ways. */
START_TEST(bf16_bests_lose_nothing_on_bf16_values_and_round_the_rest)
{
    enum { N = 40000 + 7, P = 3 };
    struct pso_params f32 = {.w = _i ? 0.5 : 0,
                             .c1 = 1,
                             .c2 = 0.2,
                             .vmax = _i ? 0.3 : 0,
                             .random_mode = PSO_RANDOM_ELEMENT,
                             .seed = 5,
                             .attractor = _i ? PSO_ATTRACT_BEST : PSO_ATTRACT_MEAN};
    struct pso_params b16 = f32;
    b16.best_bf16 = 1;
    struct swarm *a = swarm_new(N, 0, &f32), *b = swarm_new(N, 0, &b16);
    float *x = malloc(P * N * sizeof(float)), *y = malloc(P * N * sizeof(float));
    uint16_t *h = malloc(N * sizeof(uint16_t));
    struct rng r;
    rng_seed(&r, 9);
    for (int j = 0; j < P * N; j++)
        x[j] = (float)(rng_double(&r) * 4 - 2);
    for (int j = 0; j < P; j++) { /* bf16 starting points */
        codec_bf16_pack(h, x + j * N, N);
        codec_bf16_unpack(x + j * N, h, N);
        swarm_add(a, x + j * N, (uint64_t)j + 1);
        swarm_add(b, x + j * N, (uint64_t)j + 1);
    }
    ck_assert_ptr_null(b->pt[0].p);
    ck_assert_ptr_nonnull(b->pt[0].pb);
    double l[P] = {0.9, 0.5, 0.7};
    for (int round = 0; round < 4; round++) {
        for (int j = 0; j < P; j++) { /* every push a bf16 value */
            codec_bf16_pack(h, x + j * N, N);
            codec_bf16_unpack(x + j * N, h, N);
        }
        memcpy(y, x, P * N * sizeof(float));
        float *px[P] = {x, x + N, x + 2 * N}, *py[P] = {y, y + N, y + 2 * N};
        swarm_round(a, (uint64_t)round, px, NULL, l, NULL, NULL);
        swarm_round(b, (uint64_t)round, py, NULL, l, NULL, NULL);
        ck_assert_msg(memcmp(x, y, P * N * sizeof(float)) == 0, "round %d differs", round);
        ck_assert_int_eq(memcmp(swarm_best(a), swarm_best(b), N * sizeof(float)), 0);
        l[round % P] -= 0.3;
    }
    /* A push that is not bf16: its best is it rounded, and so is g. */
    float *pz[P] = {x, x + N, x + 2 * N};
    for (int e = 0; e < N; e++)
        x[e] = (float)(rng_double(&r) * 4 - 2) + 1e-4f;
    memcpy(y, x, N * sizeof(float));
    double low[P] = {0.01, 5, 5};
    swarm_round(b, 4, pz, NULL, low, NULL, NULL);
    ck_assert_int_eq(swarm_best_particle(b), 0);
    const float *g = swarm_best(b);
    for (int e = 0; e < N; e++)
        ck_assert_msg(g[e] == codec_bf16_to_f32(codec_f32_to_bf16(y[e])), "element %d", e);
    /* Checkpoints: bf16 -> float32 holds the widened bests; float32 ->
     * bf16 rounds them. */
    struct swarm *a2 = swarm_new(N, 0, &f32), *b2 = swarm_new(N, 0, &b16);
    for (int j = 0; j < P; j++) {
        swarm_add(a2, x + j * N, (uint64_t)j + 1);
        swarm_add(b2, x + j * N, (uint64_t)j + 1);
    }
    char err[256];
    ck_assert_msg(s_reload(b, a2, err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(swarm_best(a2), g, N * sizeof(float)), 0);
    ck_assert_msg(s_reload(a2, b2, err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(swarm_best(b2), g, N * sizeof(float)), 0);
    for (int j = 0; j < P; j++)
        ck_assert_int_eq(memcmp(b2->pt[j].pb, b->pt[j].pb, N * sizeof(uint16_t)), 0);
    swarm_destroy(&a);
    swarm_destroy(&b);
    swarm_destroy(&a2);
    swarm_destroy(&b2);
    free(x);
    free(y);
    free(h);
}
END_TEST

/* A swarm restored from a checkpoint mixes the next rounds exactly as the
 * one that wrote it; a checkpoint without mixing weights is refused. */
START_TEST(mix_state_survives_a_checkpoint)
{
    struct pso_params prm = {
        0, 1,   0.2, 0, PSO_RANDOM_ELEMENT, 4, 0, PSO_ATTRACT_MIX, 0.1, 0.729, 1.49, 1.49, 0,
        0, {0}, 0,   0};
    struct swarm *a = swarm_new(64, 0, &prm), *b = swarm_new(64, 0, &prm);
    float xa[3][64], xb[3][64];
    for (int j = 0; j < 3; j++)
        for (int e = 0; e < 64; e++)
            xa[j][e] = (float)(e - 30 * j) * 0.1f;
    for (int j = 0; j < 3; j++) {
        swarm_add(a, xa[j], (uint64_t)j + 11);
        swarm_add(b, xa[j], (uint64_t)j + 11);
    }
    const unsigned char all[3] = {1, 1, 1};
    double w0[3][3], w4[3][3], wb[3][3];
    for (int j = 0; j < 3; j++)
        mix_weights(a->mix, &a->ord, j, all, w0[j]);
    s_mix_rounds(a, xa, 0, 4);
    char err[256];
    ck_assert_int_eq(s_reload(a, b, err), 0);
    /* The weights moved in those 4 rounds, and the checkpoint carried them:
     * otherwise the rounds below would agree for a weaker reason. */
    double moved = 0;
    for (int j = 0; j < 3; j++) {
        mix_weights(a->mix, &a->ord, j, all, w4[j]);
        mix_weights(b->mix, &b->ord, j, all, wb[j]);
        for (int k = 0; k < 3; k++)
            moved += fabs(w4[j][k] - w0[j][k]);
    }
    ck_assert_msg(moved > 1e-3, "the mixing weights did not move (%g)", moved);
    ck_assert_mem_eq(w4, wb, sizeof w4);
    memcpy(xb, xa, sizeof xa);
    s_mix_rounds(a, xa, 4, 8);
    s_mix_rounds(b, xb, 4, 8);
    ck_assert_mem_eq(xa, xb, sizeof xa);
    ck_assert_double_eq(swarm_best_loss(a), swarm_best_loss(b));
    /* a mean swarm's checkpoint read with --attractor mix is refused */
    prm.attractor = PSO_ATTRACT_MEAN;
    struct swarm *c = swarm_new(64, 0, &prm);
    for (int j = 0; j < 3; j++)
        swarm_add(c, xa[j], (uint64_t)j + 11);
    ck_assert_int_eq(s_reload(c, b, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "mixing weights"));
    swarm_destroy(&a);
    swarm_destroy(&b);
    swarm_destroy(&c);
}
END_TEST

/* --verify-best: the global best moves only in swarm_judge. The candidate
 * is the unjudged personal best with the lowest loss (its weights read
 * before the round moves them), among the particles refused fewest times;
 * within the tolerance it is adopted as a copy, beyond it refused, with the
 * measured loss kept and a strike against the particle. */
START_TEST(verified_best_moves_only_when_judged)
{
    enum { N = 6 };
    struct pso_params prm = {
        0,    1,   0.5, 0, PSO_RANDOM_PARTICLE, 3, 0, PSO_ATTRACT_MEAN, 0.1, 0, 0, 0, 1,
        0.05, {0}, 0,   0};
    struct swarm *s = swarm_new(N, 0, &prm);
    float x0[3][N], x[3][N], cand[N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            x0[j][i] = (float)(j + 1) * (float)(i - 2);
        ck_assert_int_eq(swarm_add(s, x0[j], (uint64_t)j + 5), j);
    }
    memcpy(x, x0, sizeof x);
    float *xs[3] = {x[0], x[1], x[2]};
    double loss[3] = {0.8, 0.01, 0.5}, claimed;
    const float *w;
    /* round 0: particle 1 claims 0.01; nothing adopted yet */
    ck_assert_int_eq(swarm_candidate(s, xs, loss, &claimed, &w), 1);
    ck_assert_ptr_eq(w, x[1]);
    ck_assert_double_eq(claimed, 0.01);
    memcpy(cand, w, sizeof cand);
    swarm_round(s, 0, xs, NULL, loss, NULL, NULL);
    ck_assert_int_eq(swarm_best_particle(s), -1);
    ck_assert_ptr_null(swarm_best(s));
    ck_assert(isinf(swarm_best_loss(s)));
    /* as things stand the candidate is the same personal best */
    ck_assert_int_eq(swarm_candidate(s, NULL, NULL, &claimed, &w), 1);
    ck_assert_mem_eq(w, cand, sizeof cand);
    /* a verifier measures 2.3: refused, a strike; particle 2 is next */
    ck_assert_int_eq(swarm_judge(s, 1, 2.3), 0);
    ck_assert_double_eq(swarm_personal_best_loss(s, 1), 2.3);
    ck_assert_int_eq(swarm_best_particle(s), -1);
    ck_assert_int_eq(swarm_candidate(s, NULL, NULL, &claimed, &w), 2);
    ck_assert_double_eq(claimed, 0.5);
    /* round 1: particle 1 lies again (0.001), particle 2 does not improve:
     * the liar's strike puts particle 2's unjudged best first */
    double loss1[3] = {0.9, 0.001, 0.6};
    ck_assert_int_eq(swarm_candidate(s, xs, loss1, &claimed, &w), 2);
    ck_assert_ptr_eq(w, swarm_personal_best(s, 2));
    memcpy(cand, w, sizeof cand);
    swarm_round(s, 1, xs, NULL, loss1, NULL, NULL);
    /* within 5 %: adopted as a copy, at the larger of the two losses */
    ck_assert_int_eq(swarm_judge(s, 2, 0.52), 1);
    ck_assert_int_eq(swarm_best_particle(s), 2);
    ck_assert_double_eq(swarm_best_loss(s), 0.52);
    ck_assert_mem_eq(swarm_best(s), cand, sizeof cand);
    ck_assert_ptr_ne(swarm_best(s), swarm_personal_best(s, 2));
    /* the liar is next (no honest candidate left below 0.52), and the
     * copy stays put when particle 2's personal best moves on */
    ck_assert_int_eq(swarm_candidate(s, NULL, NULL, &claimed, &w), 1);
    ck_assert_double_eq(claimed, 0.001);
    double loss2[3] = {0.9, 5.0, 0.1};
    swarm_round(s, 2, xs, NULL, loss2, NULL, NULL);
    ck_assert_mem_eq(swarm_best(s), cand, sizeof cand);
    ck_assert_double_eq(swarm_best_loss(s), 0.52);
    /* a NaN verdict or a particle out of range judges nothing */
    ck_assert_int_eq(swarm_judge(s, 2, NAN), -1);
    ck_assert_int_eq(swarm_judge(s, 7, 0.1), -1);
    /* checkpoint: the copy, the judged flags and strikes come back; a
     * swarm saved without verification is refused */
    struct swarm *b = swarm_new(N, 0, &prm);
    for (int j = 0; j < 3; j++)
        swarm_add(b, x0[j], (uint64_t)j + 5);
    char err[256];
    ck_assert_int_eq(s_reload(s, b, err), 0);
    ck_assert_mem_eq(swarm_best(b), cand, sizeof cand);
    double cb;
    const float *wb;
    ck_assert_int_eq(swarm_candidate(b, NULL, NULL, &cb, &wb),
                     swarm_candidate(s, NULL, NULL, &claimed, &w));
    ck_assert_double_eq(cb, claimed);
    prm.verify = 0;
    struct swarm *c = swarm_new(N, 0, &prm);
    for (int j = 0; j < 3; j++)
        swarm_add(c, x0[j], (uint64_t)j + 5);
    ck_assert_int_eq(swarm_candidate(c, NULL, NULL, &claimed, &w), -1);
    ck_assert_int_eq(s_reload(c, b, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "verified"));
    swarm_destroy(&s);
    swarm_destroy(&b);
    swarm_destroy(&c);
}
END_TEST

/* With nothing adopted yet the pull toward the global best is off: one
 * round under --verify-best moves every particle exactly as c2 = 0 does. */
START_TEST(verified_swarm_without_a_best_has_no_second_pull)
{
    enum { N = 40 };
    struct pso_params pv = {
        0, 1, 0.7, 0, PSO_RANDOM_ELEMENT, 9, 0, PSO_ATTRACT_MEAN, 0.1, 0, 0, 0, 1, 0.05, {0}, 0, 0};
    struct pso_params pn = pv;
    pn.verify = 0;
    pn.c2 = 0;
    struct swarm *a = swarm_new(N, 0, &pv), *b = swarm_new(N, 0, &pn);
    float xa[3][N], xb[3][N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            xa[j][i] = (float)sin(0.3 * i + j);
        swarm_add(a, xa[j], (uint64_t)j);
        swarm_add(b, xa[j], (uint64_t)j);
    }
    memcpy(xb, xa, sizeof xa);
    float *pa[3] = {xa[0], xa[1], xa[2]}, *pb[3] = {xb[0], xb[1], xb[2]};
    double loss[3] = {1, 2, 3};
    swarm_round(a, 0, pa, NULL, loss, NULL, NULL);
    swarm_round(b, 0, pb, NULL, loss, NULL, NULL);
    ck_assert_mem_eq(xa, xb, sizeof xa);
    swarm_destroy(&a);
    swarm_destroy(&b);
}
END_TEST

/* --verify-best with the weighted attractor: a particle struck for a false
 * claim has no weight; the others move exactly as if it had not pushed. */
START_TEST(verified_weighted_attractor_ignores_a_struck_particle)
{
    enum { N = 8 };
    struct pso_params pv = {
        0,    1,   0, 0, PSO_RANDOM_PARTICLE, 2, 0, PSO_ATTRACT_WEIGHTED, 0.05, 0, 0, 0, 1,
        0.05, {0}, 0, 0};
    struct pso_params pn = pv;
    pn.verify = 0;
    struct swarm *a = swarm_new(N, 0, &pv), *b = swarm_new(N, 0, &pn);
    float xa[3][N], xb[3][N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            xa[j][i] = (float)(j * 3 - i);
        swarm_add(a, xa[j], (uint64_t)j + 1);
        swarm_add(b, xa[j], (uint64_t)j + 1);
    }
    float *pa[3] = {xa[0], xa[1], xa[2]};
    double l0[3] = {0.5, 0.01, 0.6};
    swarm_round(a, 0, pa, NULL, l0, NULL, NULL);
    ck_assert_int_eq(swarm_judge(a, 1, 2.0), 0); /* particle 1 lied */
    memcpy(xb, xa, sizeof xa);
    float *pa1[3] = {xa[0], xa[1], xa[2]}, *pb1[3] = {xb[0], NULL, xb[2]};
    double l1[3] = {0.4, 0.001, 0.45};
    swarm_round(a, 1, pa1, NULL, l1, NULL, NULL);
    swarm_round(b, 1, pb1, NULL, l1, NULL, NULL);
    ck_assert_mem_eq(xa[0], xb[0], sizeof xa[0]);
    ck_assert_mem_eq(xa[2], xb[2], sizeof xa[2]);
    /* once one of its claims is adopted it weighs again */
    ck_assert_int_eq(swarm_judge(a, 1, 0.001), 1);
    memcpy(xb, xa, sizeof xa);
    float *pa2[3] = {xa[0], xa[1], xa[2]}, *pb2[3] = {xb[0], NULL, xb[2]};
    swarm_round(a, 2, pa2, NULL, l1, NULL, NULL);
    swarm_round(b, 2, pb2, NULL, l1, NULL, NULL);
    ck_assert(memcmp(xa[0], xb[0], sizeof xa[0]) != 0);
    swarm_destroy(&a);
    swarm_destroy(&b);
}
END_TEST

/* --strike-limit: an excluded particle's push has no weight in the mean
 * attractor (the others move as if it had not pushed), it is never a
 * candidate, and strikes count across adoptions. */
START_TEST(an_excluded_particle_has_no_say)
{
    enum { N = 16 };
    struct pso_params pv = {.w = 0,
                            .c1 = 1,
                            .c2 = 0,
                            .random_mode = PSO_RANDOM_PARTICLE,
                            .seed = 2,
                            .attractor = PSO_ATTRACT_MEAN,
                            .verify = 1,
                            .verify_tol = 0.05,
                            .strike_limit = 2};
    struct swarm *a = swarm_new(N, 0, &pv), *b = swarm_new(N, 0, &pv);
    float xa[3][N], xb[3][N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            xa[j][i] = (float)(j - i);
        swarm_add(a, xa[j], (uint64_t)j + 1);
        swarm_add(b, xa[j], (uint64_t)j + 1);
    }
    float *p0[3] = {xa[0], xa[1], xa[2]}, *q0[3] = {xb[0], xb[1], xb[2]};
    memcpy(xb, xa, sizeof xa);
    double l0[3] = {0.5, 0.01, 0.6};
    swarm_round(a, 0, p0, NULL, l0, NULL, NULL);
    swarm_round(b, 0, q0, NULL, l0, NULL, NULL);
    ck_assert_int_eq(swarm_strike(a, 1), 0); /* a verdict against a panel */
    ck_assert_int_eq(swarm_strike(b, 1), 0);
    ck_assert_int_eq(swarm_judge(a, 1, 1.0), 0); /* its claim 0.01 refused */
    ck_assert_int_eq(swarm_judge(b, 1, 1.0), 0);
    ck_assert_uint_eq(swarm_strikes(a, 1), 2);
    ck_assert(swarm_excluded(a, 1) && swarm_excluded(b, 1) && !swarm_excluded(a, 0));
    memcpy(xb, xa, sizeof xa);
    for (int i = 0; i < N; i++)
        xa[1][i] = 1e6f; /* the excluded one pushes garbage, claiming the best loss */
    float *pa[3] = {xa[0], xa[1], xa[2]}, *pb[3] = {xb[0], NULL, xb[2]};
    double l[3] = {0.5, 1e-9, 0.6};
    double claimed;
    const float *wts;
    ck_assert_int_eq(swarm_candidate(a, pa, l, &claimed, &wts), 0);
    swarm_round(a, 1, pa, NULL, l, NULL, NULL);
    swarm_round(b, 1, pb, NULL, l, NULL, NULL);
    ck_assert_mem_eq(xa[0], xb[0], sizeof xa[0]);
    ck_assert_mem_eq(xa[2], xb[2], sizeof xa[2]);
    ck_assert_int_ne(swarm_best_particle(a), 1);
    swarm_destroy(&a);
    swarm_destroy(&b);
}
END_TEST

/* Verified weighted attractor: an unverified claim below the verified
 * global best's loss weighs as that loss, so a liar cannot take the
 * attractor with a low number. */
START_TEST(an_unverified_claim_weighs_no_more_than_the_verified_best)
{
    enum { N = 8 };
    struct pso_params pv = {.w = 0,
                            .c1 = 1,
                            .c2 = 0,
                            .random_mode = PSO_RANDOM_PARTICLE,
                            .seed = 2,
                            .attractor = PSO_ATTRACT_WEIGHTED,
                            .temperature = 0.05,
                            .verify = 1,
                            .verify_tol = 0.05};
    struct swarm *a = swarm_new(N, 0, &pv), *b = swarm_new(N, 0, &pv);
    float xa[3][N], xb[3][N];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < N; i++)
            xa[j][i] = (float)(j * 3 - i);
        swarm_add(a, xa[j], (uint64_t)j + 1);
        swarm_add(b, xa[j], (uint64_t)j + 1);
    }
    float *p0[3] = {xa[0], xa[1], xa[2]};
    double l0[3] = {0.5, 0.7, 0.6};
    memcpy(xb, xa, sizeof xa);
    float *q0[3] = {xb[0], xb[1], xb[2]};
    swarm_round(a, 0, p0, NULL, l0, NULL, NULL);
    swarm_round(b, 0, q0, NULL, l0, NULL, NULL);
    ck_assert_int_eq(swarm_judge(a, 0, 0.5), 1); /* g: loss 0.5 */
    ck_assert_int_eq(swarm_judge(b, 0, 0.5), 1);
    memcpy(xb, xa, sizeof xa);
    float *p1[3] = {xa[0], xa[1], xa[2]}, *q1[3] = {xb[0], xb[1], xb[2]};
    double la[3] = {0.5, 0.001, 0.6}, lb[3] = {0.5, 0.5, 0.6}; /* 0.001 unverified */
    swarm_round(a, 1, p1, NULL, la, NULL, NULL);
    swarm_round(b, 1, q1, NULL, lb, NULL, NULL);
    ck_assert_mem_eq(xa[0], xb[0], sizeof xa[0]);
    ck_assert_mem_eq(xa[2], xb[2], sizeof xa[2]);
    swarm_destroy(&a);
    swarm_destroy(&b);
}
END_TEST

/* The robust mean attractor: kept in checkpoints (a swarm restored moves
 * as the one that wrote it), refused from a checkpoint without it; and it
 * is the safe model until a verified best exists. */
START_TEST(the_robust_attractor_survives_a_checkpoint)
{
    enum { N = 32 };
    struct pso_params p = {.w = 0.5,
                           .c1 = 1,
                           .c2 = 0.5,
                           .random_mode = PSO_RANDOM_ELEMENT,
                           .seed = 9,
                           .attractor = PSO_ATTRACT_MEAN};
    p.agg = (struct agg_params){.rule = AGG_MEDIAN};
    struct swarm *a = swarm_new(N, 0, &p), *b = swarm_new(N, 0, &p), *c = swarm_new(N, 0, &p);
    struct pso_params plain = p;
    plain.agg.rule = AGG_MEAN;
    struct swarm *d = swarm_new(N, 0, &plain);
    float x[4][N], y[4][N], prev[4][N];
    struct rng r;
    rng_seed(&r, 5);
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < N; i++)
            x[j][i] = (float)rng_double(&r);
        swarm_add(a, x[j], (uint64_t)j + 1);
        swarm_add(b, x[j], (uint64_t)j + 1);
        swarm_add(c, x[j], (uint64_t)j + 1);
        swarm_add(d, x[j], (uint64_t)j + 1);
    }
    const char *kind;
    ck_assert_ptr_nonnull(swarm_safe(a, &kind));
    ck_assert_str_eq(kind, "robust attractor");
    double l[4] = {0.9, 0.8, 0.7, 0.6};
    for (int round = 0; round < 3; round++) {
        memcpy(prev, x, sizeof x);
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < N; i++)
                x[j][i] += 0.01f * (float)(j + 1);
        float *px[4] = {x[0], x[1], x[2], x[3]};
        const float *pp[4] = {prev[0], prev[1], prev[2], prev[3]};
        swarm_round(a, (uint64_t)round, px, pp, l, NULL, NULL);
    }
    char err[256];
    ck_assert_msg(s_reload(a, b, err) == 0, "%s", err);
    ck_assert_int_ne(s_reload(d, c, err), 0);
    ck_assert_ptr_nonnull(strstr(err, "no robust attractor"));
    memcpy(y, x, sizeof x);
    memcpy(prev, x, sizeof x);
    float *px[4] = {x[0], x[1], x[2], x[3]}, *py[4] = {y[0], y[1], y[2], y[3]};
    const float *pp[4] = {prev[0], prev[1], prev[2], prev[3]};
    swarm_round(a, 3, px, pp, l, NULL, NULL);
    swarm_round(b, 3, py, pp, l, NULL, NULL);
    ck_assert_mem_eq(x, y, sizeof x);
    swarm_destroy(&a);
    swarm_destroy(&b);
    swarm_destroy(&c);
    swarm_destroy(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("swarm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, update_matches_reference_every_variant);
    tcase_add_test(tc, per_element_factors_vary_per_particle_factors_do_not);
    tcase_add_test(tc, bests_follow_losses);
    tcase_add_test(tc, weighted_attractor_is_the_softmax_of_the_losses);
    tcase_add_loop_test(tc, seeded_runs_reproduce_regardless_of_arrival_order, 0, 4);
    tcase_add_test(tc, mix_positions_are_the_mixtures_of_the_pushes);
    tcase_add_test(tc, mix_credits_the_loss_to_the_vector_it_gave);
    tcase_add_test(tc, mix_state_survives_a_checkpoint);
    tcase_add_test(tc, verified_best_moves_only_when_judged);
    tcase_add_test(tc, verified_swarm_without_a_best_has_no_second_pull);
    tcase_add_test(tc, verified_weighted_attractor_ignores_a_struck_particle);
    tcase_add_test(tc, an_excluded_particle_has_no_say);
    tcase_add_test(tc, an_unverified_claim_weighs_no_more_than_the_verified_best);
    tcase_add_test(tc, the_robust_attractor_survives_a_checkpoint);
    tcase_add_test(tc, velocities_are_held_only_when_read_and_checkpoints_cross_load);
    tcase_add_loop_test(tc, bf16_bests_lose_nothing_on_bf16_values_and_round_the_rest, 0, 2);
    tcase_add_test(tc, swarm_minimizes_sphere);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
