/* Suite: common/rng. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common/rng.h"

START_TEST(keys_depend_on_every_input)
{
    uint32_t k = rng_key(1, 2, 3, 4);
    ck_assert_uint_eq(k, rng_key(1, 2, 3, 4));
    ck_assert_uint_ne(k, rng_key(2, 2, 3, 4));
    ck_assert_uint_ne(k, rng_key(1, 3, 3, 4));
    ck_assert_uint_ne(k, rng_key(1, 2, 4, 4));
    ck_assert_uint_ne(k, rng_key(1, 2, 3, 5));
}
END_TEST

START_TEST(uniform_pair_is_uniform_and_independent)
{
    /* 1M pairs: each member mean 0.5 +- 0.002, variance 1/12, every decile
     * near 10%, and the two members uncorrelated. */
    const int n = 1000000;
    double sum[2] = {0}, sq[2] = {0}, cross = 0;
    int bins[2][10] = {{0}}, out_of_range = 0;
    uint32_t key = rng_key(42, 0, 0, 1);
    for (int i = 0; i < n; i++) {
        float u[2];
        rng_uniform_pair(key, (uint32_t)i, &u[0], &u[1]);
        for (int j = 0; j < 2; j++) {
            out_of_range += !(u[j] >= 0.0f && u[j] < 1.0f);
            sum[j] += u[j];
            sq[j] += (double)u[j] * u[j];
            if (u[j] >= 0.0f && u[j] < 1.0f)
                bins[j][(int)(u[j] * 10)]++;
        }
        cross += (double)u[0] * u[1];
    }
    ck_assert_int_eq(out_of_range, 0);
    for (int j = 0; j < 2; j++) {
        double mean = sum[j] / n, var = sq[j] / n - mean * mean;
        ck_assert_double_eq_tol(mean, 0.5, 0.002);
        ck_assert_double_eq_tol(var, 1.0 / 12, 0.001);
        for (int b = 0; b < 10; b++)
            ck_assert_int_lt(abs(bins[j][b] - n / 10), n / 200);
    }
    double cov = cross / n - (sum[0] / n) * (sum[1] / n);
    ck_assert_double_eq_tol(cov, 0, 0.001);
    /* Upper index bits select another key. */
    ck_assert_uint_ne(rng_key_hi(key, 5), rng_key_hi(key, 5 + (1ull << 32)));
    ck_assert_uint_eq(rng_key_hi(key, 5), key);
}
END_TEST

START_TEST(xoshiro_reproducible_and_bounded)
{
    struct rng a, b;
    rng_seed(&a, 99);
    rng_seed(&b, 99);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(rng_next(&a), rng_next(&b));
    double s = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t x = rng_below(&a, 7);
        ck_assert_uint_lt(x, 7);
        double d = rng_double(&a);
        ck_assert(d >= 0 && d < 1);
        s += rng_normal(&a);
    }
    ck_assert_double_eq_tol(s / 100000, 0, 0.02);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, keys_depend_on_every_input);
    tcase_add_test(tc, uniform_pair_is_uniform_and_independent);
    tcase_add_test(tc, xoshiro_reproducible_and_bounded);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
