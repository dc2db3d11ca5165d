/* Suite: worker/client/psoclient_data (psoc_partition, how a swarm's workers split
 * a training set): in every mode the shards are disjoint and cover every
 * sample; the same seed gives the same shards; IID is the permutation
 * psoworker always used; Dirichlet skew grows as alpha shrinks; the classes
 * mode gives each worker about that many classes; bad arguments refused. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "worker/client/psoclient.h"
#include "worker/data.h"

static char err[512];

enum { N = 6000, CLASSES = 10 };
static uint8_t labels[N];

static void s_labels(void)
{
    for (int i = 0; i < N; i++)
        labels[i] = (uint8_t)((i * 7 + i / 13) % CLASSES);
}

/* Every worker's shard; asserts they tile 0..N-1. seen[i] = owner. */
static void s_tile(int count, int mode, double alpha, int classes, uint64_t seed, int *owner,
                   size_t *sizes)
{
    size_t *out = malloc(N * sizeof *out), n;
    for (int i = 0; i < N; i++)
        owner[i] = -1;
    size_t total = 0;
    for (int k = 0; k < count; k++) {
        ck_assert_msg(psoc_partition(labels, N, k, count, mode, alpha, classes, seed, out, &n, err,
                                     sizeof err) == 0,
                      "%s", err);
        for (size_t j = 0; j < n; j++) {
            ck_assert_uint_lt(out[j], N);
            ck_assert_msg(owner[out[j]] == -1, "sample %zu in two shards", out[j]);
            owner[out[j]] = k;
        }
        sizes[k] = n;
        total += n;
    }
    free(out);
    ck_assert_uint_eq(total, N);
}

/* Mean over workers of the largest class's share of the worker's shard. */
static double s_skew(const int *owner, int count)
{
    double sum = 0;
    for (int k = 0; k < count; k++) {
        size_t per[CLASSES] = {0}, n = 0, top = 0;
        for (int i = 0; i < N; i++)
            if (owner[i] == k)
                per[labels[i]]++, n++;
        for (int c = 0; c < CLASSES; c++)
            top = per[c] > top ? per[c] : top;
        sum += n ? (double)top / n : 0;
    }
    return sum / count;
}

static int s_classes_of(const int *owner, int k)
{
    int seen[CLASSES] = {0}, n = 0;
    for (int i = 0; i < N; i++)
        if (owner[i] == k && !seen[labels[i]])
            seen[labels[i]] = 1, n++;
    return n;
}

START_TEST(every_mode_tiles_the_samples)
{
    s_labels();
    static int owner[N];
    size_t sizes[16];
    int modes[] = {PSOC_SHARD_IID, PSOC_SHARD_DIRICHLET, PSOC_SHARD_CLASSES};
    for (int m = 0; m < 3; m++)
        for (int count = 1; count <= 16; count *= 2)
            s_tile(count, modes[m], 0.5, 2, 3, owner, sizes);
}
END_TEST

START_TEST(the_same_seed_gives_the_same_shards)
{
    s_labels();
    static int a[N], b[N], c[N];
    size_t sa[4], sb[4], sc[4];
    s_tile(4, PSOC_SHARD_DIRICHLET, 0.3, 2, 11, a, sa);
    s_tile(4, PSOC_SHARD_DIRICHLET, 0.3, 2, 11, b, sb);
    s_tile(4, PSOC_SHARD_DIRICHLET, 0.3, 2, 12, c, sc);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

START_TEST(iid_is_the_permutation_psoworker_used)
{
    s_labels();
    size_t *order = malloc(N * sizeof *order), *out = malloc(N * sizeof *out), n;
    dataset_permutation(order, N, 1);
    ck_assert_int_eq(
        psoc_partition(labels, N, 2, 4, PSOC_SHARD_IID, 0, 0, 1, out, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, N / 4);
    ck_assert_mem_eq(out, order + 2 * (N / 4), n * sizeof *out);
    free(order), free(out);
}
END_TEST

START_TEST(dirichlet_skew_follows_alpha)
{
    s_labels();
    static int owner[N];
    size_t sizes[4];
    double skew[3], alphas[3] = {0.1, 1.0, 100.0};
    for (int i = 0; i < 3; i++) {
        double sum = 0;
        for (uint64_t seed = 1; seed <= 5; seed++) {
            s_tile(4, PSOC_SHARD_DIRICHLET, alphas[i], 0, seed, owner, sizes);
            for (int k = 0; k < 4; k++)
                ck_assert_uint_ge(sizes[k], 10);
            sum += s_skew(owner, 4);
        }
        skew[i] = sum / 5;
    }
    /* IID's top class holds ~1/10; alpha 100 stays near that, 0.1 far above */
    ck_assert_msg(skew[2] < 0.16, "alpha 100: top class %.3f", skew[2]);
    ck_assert_msg(skew[0] > 0.45, "alpha 0.1: top class %.3f", skew[0]);
    ck_assert(skew[0] > skew[1] && skew[1] > skew[2]);
}
END_TEST

START_TEST(classes_mode_gives_about_that_many_classes)
{
    s_labels();
    static int owner[N];
    size_t sizes[5];
    s_tile(5, PSOC_SHARD_CLASSES, 0, 2, 4, owner, sizes);
    for (int k = 0; k < 5; k++) {
        int c = s_classes_of(owner, k);
        /* two runs of N/10 each, a run may straddle one class boundary */
        ck_assert_msg(c >= 1 && c <= 4, "worker %d has %d classes", k, c);
        ck_assert_uint_eq(sizes[k], N / 5);
    }
    static int owner10[N];
    size_t sizes10[10];
    s_tile(10, PSOC_SHARD_CLASSES, 0, 1, 4, owner10, sizes10);
    for (int k = 0; k < 10; k++) /* a run of N/10: one class, or across one boundary */
        ck_assert_int_le(s_classes_of(owner10, k), 2);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    s_labels();
    size_t out[N], n;
    ck_assert_int_eq(psoc_partition(labels, N, 4, 4, 0, 0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "shard 4 of 4"));
    ck_assert_int_eq(psoc_partition(labels, N, 0, 0, 0, 0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_int_eq(psoc_partition(labels, 3, 0, 4, 0, 0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_int_eq(psoc_partition(labels, N, 0, 4, 1, 0.0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "alpha"));
    ck_assert_int_eq(psoc_partition(labels, N, 0, 4, 1, NAN, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_int_eq(psoc_partition(labels, N, 0, 4, 2, 0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "classes"));
    ck_assert_int_eq(psoc_partition(labels, 10, 0, 4, 2, 0, 3, 1, out, &n, err, sizeof err), -1);
    ck_assert_int_eq(psoc_partition(labels, N, 0, 4, 7, 0, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_int_eq(psoc_shard_mode_parse("iid"), PSOC_SHARD_IID);
    ck_assert_int_eq(psoc_shard_mode_parse("dirichlet"), PSOC_SHARD_DIRICHLET);
    ck_assert_int_eq(psoc_shard_mode_parse("classes"), PSOC_SHARD_CLASSES);
    ck_assert_int_eq(psoc_shard_mode_parse("noniid"), -1);
    ck_assert_int_eq(psoc_shard_mode_parse(NULL), -1);
    /* one class only: Dirichlet with tiny alpha cannot feed 16 workers 10
     * samples each from 100 samples; the error says what to change */
    uint8_t one[100] = {0};
    ck_assert_int_eq(psoc_partition(one, 100, 0, 16, 1, 0.001, 0, 1, out, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--shard-alpha"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("partition");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_mode_tiles_the_samples);
    tcase_add_test(tc, the_same_seed_gives_the_same_shards);
    tcase_add_test(tc, iid_is_the_permutation_psoworker_used);
    tcase_add_test(tc, dirichlet_skew_follows_alpha);
    tcase_add_test(tc, classes_mode_gives_about_that_many_classes);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
