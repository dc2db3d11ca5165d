/* Suite: common/pool (the thread team of the engine and the daemon): every thread runs each
 * job once, the barrier orders what threads write, split ranges tile the
 * whole, many short jobs in a row (the idle wait and its wake-ups), a team
 * larger than the machine, bad sizes refused. */
#include "tests/lib/suite.h"
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"

static char err[256];

struct count {
    atomic_int runs[64];
    atomic_int total;
    atomic_int n_seen;
};

static void s_count(void *arg, int tid, int n)
{
    struct count *c = arg;
    atomic_fetch_add(&c->runs[tid], 1);
    atomic_fetch_add(&c->total, 1);
    atomic_store(&c->n_seen, n); /* every thread writes the same value */
}

START_TEST(every_thread_runs_each_job_once)
{
    for (int n = 1; n <= 5; n++) {
        struct pool *p = pool_new(n, err, sizeof err);
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert_int_eq(pool_size(p), n);
        static struct count c;
        memset(&c, 0, sizeof c);
        for (int j = 0; j < 2000; j++)
            pool_run(p, s_count, &c);
        ck_assert_int_eq(atomic_load(&c.total), 2000 * n);
        for (int t = 0; t < n; t++)
            ck_assert_int_eq(atomic_load(&c.runs[t]), 2000);
        ck_assert_int_eq(atomic_load(&c.n_seen), n);
        pool_destroy(&p);
        ck_assert_ptr_null(p);
    }
}
END_TEST

/* Phase k: every thread writes its slot, then after a barrier reads all the
 * others' slots of the same phase. A missing barrier shows as a stale read. */
struct phases {
    struct pool *p;
    int val[8];
    atomic_int bad;
};

static void s_phases(void *arg, int tid, int n)
{
    struct phases *ph = arg;
    for (int k = 1; k <= 300; k++) {
        ph->val[tid] = k;
        pool_barrier(ph->p, tid);
        for (int t = 0; t < n; t++)
            if (ph->val[t] != k)
                atomic_fetch_add(&ph->bad, 1);
        pool_barrier(ph->p, tid);
    }
}

START_TEST(barrier_orders_the_phases)
{
    for (int n = 2; n <= 8; n += 3) {
        static struct phases ph;
        memset(&ph, 0, sizeof ph);
        ph.p = pool_new(n, err, sizeof err);
        ck_assert_msg(ph.p != NULL, "%s", err);
        for (int j = 0; j < 20; j++)
            pool_run(ph.p, s_phases, &ph);
        ck_assert_int_eq(atomic_load(&ph.bad), 0);
        pool_destroy(&ph.p);
    }
}
END_TEST

START_TEST(split_tiles_the_range)
{
    size_t sizes[] = {0, 1, 7, 64, 1000, 65537};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (int n = 1; n <= 9; n++) {
            size_t next = 0, min = (size_t)-1, max = 0;
            for (int t = 0; t < n; t++) {
                size_t lo, hi;
                pool_split(sizes[k], t, n, &lo, &hi);
                ck_assert_uint_eq(lo, next);
                ck_assert_uint_ge(hi, lo);
                next = hi;
                min = hi - lo < min ? hi - lo : min;
                max = hi - lo > max ? hi - lo : max;
            }
            ck_assert_uint_eq(next, sizes[k]);
            ck_assert_uint_le(max - min, 1); /* balanced */
        }
}
END_TEST

START_TEST(more_threads_than_cores_still_finish)
{
    int n = 4 * pool_cpus() + 1;
    if (n > 64)
        n = 64;
    static struct phases ph;
    memset(&ph, 0, sizeof ph);
    ph.p = pool_new(n > 8 ? 8 : n, err, sizeof err); /* s_phases has 8 slots */
    ck_assert_msg(ph.p != NULL, "%s", err);
    pool_run(ph.p, s_phases, &ph);
    ck_assert_int_eq(atomic_load(&ph.bad), 0);
    pool_destroy(&ph.p);
    static struct count c;
    memset(&c, 0, sizeof c);
    struct pool *p = pool_new(n, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    for (int j = 0; j < 50; j++)
        pool_run(p, s_count, &c);
    ck_assert_int_eq(atomic_load(&c.total), 50 * n);
    pool_destroy(&p);
}
END_TEST

START_TEST(bad_sizes_are_refused)
{
    ck_assert_ptr_null(pool_new(0, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "threads"));
    ck_assert_ptr_null(pool_new(-3, err, sizeof err));
    ck_assert_ptr_null(pool_new(100000, err, sizeof err));
    ck_assert_int_ge(pool_cpus(), 1);
    struct pool *none = NULL;
    pool_destroy(&none); /* harmless */
    ck_assert_int_eq(pool_size(NULL), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_thread_runs_each_job_once);
    tcase_add_test(tc, barrier_orders_the_phases);
    tcase_add_test(tc, split_tiles_the_range);
    tcase_add_test(tc, more_threads_than_cores_still_finish);
    tcase_add_test(tc, bad_sizes_are_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
