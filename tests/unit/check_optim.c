/* Suite: worker/optim (SGD as torch.optim.SGD computes it; schedules). */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "worker/optim.h"

/* torch.optim.SGD's update, written out in double for a few steps. */
static void s_reference(double *p, double *buf, const double *const *grads, int steps, size_t n,
                        double lr, double mu, double wd, int nesterov)
{
    for (int t = 0; t < steps; t++)
        for (size_t i = 0; i < n; i++) {
            double g = grads[t][i] + wd * p[i];
            buf[i] = t == 0 ? g : mu * buf[i] + g;
            p[i] -= lr * (nesterov ? g + mu * buf[i] : buf[i]);
        }
}

START_TEST(sgd_matches_torch_formula)
{
    enum { N = 33, T = 5 };
    double g[T][N];
    const double *gp[T];
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++)
            g[t][i] = sin(1.0 + t * 7 + i * 0.3);
        gp[t] = g[t];
    }
    for (int variant = 0; variant < 4; variant++) {
        double mu = variant & 1 ? 0.9 : 0.0, wd = variant & 2 ? 0.01 : 0.0;
        for (int nesterov = 0; nesterov < (mu > 0 ? 2 : 1); nesterov++) {
            struct sgd o;
            ck_assert_int_eq(sgd_init(&o, N, mu, wd, nesterov), 0);
            float p[N], gf[N];
            double P[N], buf[N] = {0};
            for (int i = 0; i < N; i++)
                p[i] = (float)(P[i] = cos(i * 0.7));
            for (int t = 0; t < T; t++) {
                for (int i = 0; i < N; i++)
                    gf[i] = (float)g[t][i];
                sgd_step(&o, p, gf, 0.1);
            }
            s_reference(P, buf, gp, T, N, 0.1, mu, wd, nesterov);
            for (int i = 0; i < N; i++)
                ck_assert_msg(fabs(p[i] - P[i]) < 1e-5, "variant %d nesterov %d [%d]: %g vs %g",
                              variant, nesterov, i, p[i], P[i]);
            sgd_free(&o);
        }
    }
}
END_TEST

START_TEST(reset_forgets_momentum)
{
    struct sgd o;
    sgd_init(&o, 1, 0.9, 0, 0);
    float p = 0, g = 1;
    sgd_step(&o, &p, &g, 1); /* buf = 1, p = -1 */
    sgd_step(&o, &p, &g, 1); /* buf = 1.9, p = -2.9 */
    ck_assert_float_eq_tol(p, -2.9f, 1e-6f);
    sgd_reset(&o);
    sgd_step(&o, &p, &g, 1); /* buf = 1 again */
    ck_assert_float_eq_tol(p, -3.9f, 1e-6f);
    sgd_free(&o);
}
END_TEST

START_TEST(schedules)
{
    struct lr_plan c = {LR_CONSTANT, 0.1, 0, 100, 0, 0};
    ck_assert_double_eq(lr_at(&c, 0), 0.1);
    ck_assert_double_eq(lr_at(&c, 99), 0.1);
    struct lr_plan w = {LR_CONSTANT, 0.1, 10, 100, 0, 0};
    ck_assert_double_eq_tol(lr_at(&w, 0), 0.01, 1e-12);
    ck_assert_double_eq_tol(lr_at(&w, 4), 0.05, 1e-12);
    ck_assert_double_eq(lr_at(&w, 10), 0.1);
    struct lr_plan s = {LR_STEP, 1.0, 0, 100, 30, 0.1};
    ck_assert_double_eq(lr_at(&s, 29), 1.0);
    ck_assert_double_eq_tol(lr_at(&s, 30), 0.1, 1e-12);
    ck_assert_double_eq_tol(lr_at(&s, 65), 0.01, 1e-12);
    struct lr_plan k = {LR_COSINE, 1.0, 0, 100, 0, 0};
    ck_assert_double_eq(lr_at(&k, 0), 1.0);
    ck_assert_double_eq_tol(lr_at(&k, 50), 0.5, 1e-12);
    ck_assert_double_eq_tol(lr_at(&k, 100), 0.0, 1e-12);
    struct lr_plan kw = {LR_COSINE, 1.0, 10, 110, 0, 0};
    ck_assert_double_eq_tol(lr_at(&kw, 60), 0.5, 1e-12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sgd_matches_torch_formula);
    tcase_add_test(tc, reset_forgets_momentum);
    tcase_add_test(tc, schedules);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
