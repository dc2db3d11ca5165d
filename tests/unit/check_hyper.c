/* Suite: server/strategy/swarm_hyper.c, the hyperparameter particles of psod
 * --hyper: starting points, the PSO move against a reference written
 * from the formula, crediting, clamping, order independence, and a
 * checkpoint that carries the next rounds to the same numbers. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ckpt.h"
#include "common/rng.h"
#include "server/strategy/swarm_hyper.h"

static const struct hyper_params s_prm = {0.5, 1.0, 1.0, 0.001, 0.1, 0.5, 0.95, 11};

/* A point's z from the values it maps to. */
static void s_z(const struct swarm_hyper *h, int i, double z[2])
{
    double lr, mom;
    hyper_get(h, i, &lr, &mom);
    z[0] = (log(lr) - log(s_prm.lr_min)) / (log(s_prm.lr_max) - log(s_prm.lr_min));
    z[1] = (mom - s_prm.mom_min) / (s_prm.mom_max - s_prm.mom_min);
}

START_TEST(starting_points_come_from_the_stream_inside_the_ranges)
{
    struct swarm_hyper *a = hyper_new(&s_prm), *b = hyper_new(&s_prm);
    static const uint64_t streams[4] = {101, 202, 303, 404};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(hyper_add(a, streams[i]), i);
        ck_assert_int_eq(hyper_add(b, streams[3 - i]), i); /* joined the other way round */
    }
    for (int i = 0; i < 4; i++) {
        double la, ma, lb, mb;
        hyper_get(a, i, &la, &ma);
        hyper_get(b, 3 - i, &lb, &mb);
        ck_assert_double_eq(la, lb);
        ck_assert_double_eq(ma, mb);
        ck_assert(la >= s_prm.lr_min && la <= s_prm.lr_max);
        ck_assert(ma >= s_prm.mom_min && ma <= s_prm.mom_max);
        float r1, r2;
        rng_uniform_pair(rng_key(s_prm.seed ^ streams[i], 0, 0, 7), 0, &r1, &r2);
        ck_assert_double_eq_tol(la, exp(log(0.001) + r1 * (log(0.1) - log(0.001))), 1e-12);
        ck_assert_double_eq_tol(ma, 0.5 + r2 * 0.45, 1e-12);
    }
    double lr, mom, loss;
    ck_assert_int_eq(hyper_best(a, &lr, &mom, &loss), -1);
    hyper_free(&a);
    hyper_free(&b);
    ck_assert_ptr_null(a);
}
END_TEST

START_TEST(a_round_moves_as_the_reference_does)
{
    struct swarm_hyper *h = hyper_new(&s_prm);
    for (int i = 0; i < 3; i++)
        hyper_add(h, 7 + (uint64_t)i);
    double z[3][2], v[3][2] = {{0}}, pz[3][2], pl[3] = {INFINITY, INFINITY, INFINITY};
    for (int i = 0; i < 3; i++)
        s_z(h, i, z[i]);
    const double losses[4][3] = {{2, 1, 3}, {0.5, 0.9, NAN}, {0.4, 0.3, 0.2}, {9, 9, 9}};
    const unsigned char pushed[4][3] = {{1, 1, 1}, {1, 1, 1}, {1, 0, 1}, {1, 1, 1}};
    for (int r = 0; r < 4; r++) {
        float any, *x[3]; /* only whether each pushed is read */
        for (int i = 0; i < 3; i++)
            x[i] = pushed[r][i] ? &any : NULL;
        hyper_round(h, (uint64_t)r, x, losses[r]);
        int g = -1;
        for (int i = 0; i < 3; i++) {
            if (!pushed[r][i] || !isfinite(losses[r][i]))
                continue;
            if (losses[r][i] < pl[i]) {
                pl[i] = losses[r][i];
                memcpy(pz[i], z[i], sizeof pz[i]);
            }
            if (g < 0 || losses[r][i] < losses[r][g])
                g = i;
        }
        double gz[2] = {z[g][0], z[g][1]};
        for (int i = 0; i < 3; i++) {
            if (!pushed[r][i])
                continue;
            for (int d = 0; d < 2; d++) {
                float r1, r2;
                rng_uniform_pair(rng_key(s_prm.seed ^ (7 + (uint64_t)i), (uint64_t)r, 0, 8),
                                 (uint32_t)d, &r1, &r2);
                double vv = 0.5 * v[i][d] + r1 * (pz[i][d] - z[i][d]) + r2 * (gz[d] - z[i][d]);
                vv = fmax(-0.25, fmin(0.25, vv));
                v[i][d] = vv;
                z[i][d] = fmax(0, fmin(1, z[i][d] + vv));
            }
        }
        for (int i = 0; i < 3; i++) {
            double got[2];
            s_z(h, i, got);
            ck_assert_double_eq_tol(got[0], z[i][0], 1e-9);
            ck_assert_double_eq_tol(got[1], z[i][1], 1e-9);
            ck_assert(got[0] >= -1e-12 && got[0] <= 1 + 1e-12);
        }
        double lr, mom, loss;
        ck_assert_int_eq(hyper_best(h, &lr, &mom, &loss), g);
        ck_assert_double_eq(loss, losses[r][g]);
    }
    hyper_free(&h);
}
END_TEST

START_TEST(a_checkpoint_carries_the_next_rounds)
{
    struct swarm_hyper *a = hyper_new(&s_prm), *b = hyper_new(&s_prm);
    for (int i = 0; i < 3; i++) {
        hyper_add(a, 50 + (uint64_t)i);
        hyper_add(b, 50 + (uint64_t)i);
    }
    float any, *all[3] = {&any, &any, &any};
    for (int r = 0; r < 3; r++) {
        double loss[3] = {1.0 / (r + 1), 2.0 / (r + 2), 0.7};
        hyper_round(a, (uint64_t)r, all, loss);
    }
    char path[] = "/tmp/check_hyper.XXXXXX", err[256];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct ckpt_writer w;
    ck_assert_int_eq(ckpt_begin(&w, path, err, sizeof err), 0);
    hyper_save(a, &w);
    ck_assert_int_eq(ckpt_commit(&w, err, sizeof err), 0);
    struct ckpt_reader r;
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    ck_assert_int_eq(hyper_load(b, &r), 0);
    ck_assert_int_eq(ckpt_finish(&r), 0);
    ckpt_close(&r);
    for (int k = 3; k < 6; k++) {
        double loss[3] = {0.3, 0.2 + 0.01 * k, 0.25};
        hyper_round(a, (uint64_t)k, all, loss);
        hyper_round(b, (uint64_t)k, all, loss);
    }
    for (int i = 0; i < 3; i++) {
        double la, ma, lb, mb;
        hyper_get(a, i, &la, &ma);
        hyper_get(b, i, &lb, &mb);
        ck_assert_double_eq(la, lb);
        ck_assert_double_eq(ma, mb);
    }
    /* a reset particle starts over from its new stream */
    hyper_reset(b, 1, 9999);
    struct swarm_hyper *c = hyper_new(&s_prm);
    hyper_add(c, 9999);
    double lb, mb, lc, mc;
    hyper_get(b, 1, &lb, &mb);
    hyper_get(c, 0, &lc, &mc);
    ck_assert_double_eq(lb, lc);
    /* a checkpoint without the tag, or for other particles, is refused */
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    ck_assert_int_eq(hyper_load(c, &r), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "hyperparameters of 3 particles"));
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_begin(&w, path, err, sizeof err), 0);
    ckpt_put_u64(&w, 12345);
    ck_assert_int_eq(ckpt_commit(&w, err, sizeof err), 0);
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    ck_assert_int_eq(hyper_load(b, &r), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "without --hyper"));
    ckpt_close(&r);
    unlink(path);
    hyper_free(&a);
    hyper_free(&b);
    hyper_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hyper");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, starting_points_come_from_the_stream_inside_the_ranges);
    tcase_add_test(tc, a_round_moves_as_the_reference_does);
    tcase_add_test(tc, a_checkpoint_carries_the_next_rounds);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
