/* Suite: worker/objective (values at known points, gradients against
 * central finite differences). */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common/rng.h"
#include "worker/objective.h"

START_TEST(minima)
{
    float z[7] = {0}, one[7] = {1, 1, 1, 1, 1, 1, 1};
    ck_assert_double_eq_tol(objective_find("sphere")->eval(z, NULL, 7), 0, 1e-12);
    ck_assert_double_eq_tol(objective_find("rastrigin")->eval(z, NULL, 7), 0, 1e-9);
    ck_assert_double_eq_tol(objective_find("rosenbrock")->eval(one, NULL, 7), 0, 1e-12);
    float x[2] = {1, 2};
    ck_assert_double_eq_tol(objective_find("sphere")->eval(x, NULL, 2), 5, 1e-12);
    /* rastrigin(1,2) = 20 + (1 - 10) + (4 - 10) = 5 */
    ck_assert_double_eq_tol(objective_find("rastrigin")->eval(x, NULL, 2), 5, 1e-9);
    /* rosenbrock(1,2) = 100 (2 - 1)^2 + 0 = 100 */
    ck_assert_double_eq_tol(objective_find("rosenbrock")->eval(x, NULL, 2), 100, 1e-9);
    ck_assert_ptr_null(objective_find("nope"));
}
END_TEST

START_TEST(gradients_match_finite_differences)
{
    const char *names[] = {"sphere", "rosenbrock", "rastrigin"};
    struct rng r;
    rng_seed(&r, 3);
    enum { D = 9 };
    for (int k = 0; k < 3; k++) {
        const struct objective *o = objective_find(names[k]);
        for (int trial = 0; trial < 20; trial++) {
            float x[D], g[D];
            for (int i = 0; i < D; i++)
                x[i] = (float)(o->lo + (o->hi - o->lo) * rng_double(&r));
            o->eval(x, g, D);
            for (int i = 0; i < D; i++) {
                /* Central difference; the step actually taken (x is float)
                 * is used, and f is summed in double. */
                float h = 1e-3f * fmaxf(1.0f, fabsf(x[i]));
                float xi = x[i];
                x[i] = xi + h;
                double fp = o->eval(x, NULL, D);
                x[i] = xi - h;
                double fm = o->eval(x, NULL, D);
                x[i] = xi;
                double h_used = ((double)(xi + h) - (double)(xi - h)) / 2;
                double num = (fp - fm) / (2 * h_used);
                double tol = 2e-3 * fmax(1.0, fabs(num)); /* truncation h^2 f'''/6 < 1e-3 */
                ck_assert_msg(fabs(num - g[i]) <= tol, "%s x[%d]=%g: analytic %g numeric %g",
                              names[k], i, xi, g[i], num);
            }
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("objective");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, minima);
    tcase_add_test(tc, gradients_match_finite_differences);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
