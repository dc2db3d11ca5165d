/* Suite: worker/data (IDX and CIFAR-10 readers on small files generated
 * here in the real formats, corrupt files, sharding, batches). */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/lib/fixtures.h"
#include "worker/data.h"

static char dir[] = "/tmp/psod-data-XXXXXX";
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/psod-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write bytes to dir/name, gzip-compressed when gz. */
static void s_write(const char *name, const void *data, size_t len, int gz)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

/* n images of 28x28 whose pixel (i, j) of image k is (k + i + j) % 256,
 * labels k % 10. */
static void s_make_idx(const char *prefix, uint32_t n, int gz, uint32_t images_magic,
                       uint32_t label_count, size_t cut)
{
    size_t len = 16 + (size_t)n * 784;
    unsigned char *img = malloc(len);
    fixture_be32(img, images_magic), fixture_be32(img + 4, n), fixture_be32(img + 8, 28),
        fixture_be32(img + 12, 28);
    for (uint32_t k = 0; k < n; k++)
        for (int i = 0; i < 28; i++)
            for (int j = 0; j < 28; j++)
                img[16 + (size_t)k * 784 + i * 28 + j] = (unsigned char)((k + i + j) % 256);
    unsigned char *lab = malloc(8 + n);
    fixture_be32(lab, 0x801), fixture_be32(lab + 4, label_count);
    for (uint32_t k = 0; k < n; k++)
        lab[8 + k] = (unsigned char)(k % 10);
    char a[64], b[64];
    snprintf(a, sizeof a, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    snprintf(b, sizeof b, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    s_write(a, img, len - cut, gz);
    s_write(b, lab, 8 + n, gz);
    free(img), free(lab);
}

START_TEST(mnist_plain_and_gzip)
{
    for (int gz = 0; gz < 2; gz++) {
        s_make_idx("train", 50, gz, 0x803, 50, 0);
        s_make_idx("t10k", 20, gz, 0x803, 20, 0);
        struct dataset tr, te;
        ck_assert_msg(dataset_load(&tr, &te, "mnist", dir, err, sizeof err) == 0, "%s", err);
        ck_assert_uint_eq(tr.n, 50);
        ck_assert_uint_eq(te.n, 20);
        ck_assert_int_eq(tr.c, 1);
        ck_assert_int_eq(tr.h, 28);
        ck_assert_int_eq(tr.w, 28);
        /* image 7 pixel (3, 5) = 15 -> (15/255 - 0.1307) / 0.3081 */
        ck_assert_double_eq_tol(tr.x[7 * 784 + 3 * 28 + 5], (15 / 255.0 - 0.1307) / 0.3081, 1e-5);
        ck_assert_uint_eq(tr.y[13], 3);
        dataset_free(&tr), dataset_free(&te);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/*", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

START_TEST(corrupt_idx_files_name_the_file)
{
    struct dataset d;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", dir);
    s_make_idx("train", 10, 0, 0x804, 10, 0); /* wrong magic */
    ck_assert_int_eq(idx_load(&d, a, b, 0, 1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, a) && strstr(err, "magic number 00000804"), "%s", err);
    s_make_idx("train", 10, 0, 0x803, 10, 100); /* truncated pixels */
    ck_assert_int_eq(idx_load(&d, a, b, 0, 1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, a) && strstr(err, "truncated"), "%s", err);
    s_make_idx("train", 10, 0, 0x803, 11, 0); /* label count mismatch */
    ck_assert_int_eq(idx_load(&d, a, b, 0, 1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, b) && strstr(err, "11 labels for the 10 images"), "%s", err);
    ck_assert_int_eq(idx_load(&d, "/nonexistent/x", b, 0, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x"));
}
END_TEST

/* n CIFAR records: label k % 10, channel c pixel i = (k + c * 7 + i) % 256. */
static void s_make_cifar(const char *name, int n, size_t cut)
{
    size_t len = (size_t)n * 3073;
    unsigned char *buf = malloc(len);
    for (int k = 0; k < n; k++) {
        buf[(size_t)k * 3073] = (unsigned char)(k % 10);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 1024; i++)
                buf[(size_t)k * 3073 + 1 + c * 1024 + i] = (unsigned char)((k + c * 7 + i) % 256);
    }
    s_write(name, buf, len - cut, 0);
    free(buf);
}

START_TEST(cifar_batches_and_slices)
{
    s_make_cifar("data_batch_1.bin", 30, 0);
    s_make_cifar("data_batch_2.bin", 12, 0);
    s_make_cifar("test_batch.bin", 9, 0);
    struct dataset tr, te;
    ck_assert_msg(dataset_load(&tr, &te, "cifar10", dir, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(tr.n, 42);
    ck_assert_uint_eq(te.n, 9);
    /* record 31 = batch 2 record 1: green (c=1) pixel 10 = 1 + 7 + 10 = 18 */
    ck_assert_double_eq_tol(tr.x[31 * 3072 + 1024 + 10], (18 / 255.0 - 0.4822) / 0.2435, 1e-5);
    ck_assert_uint_eq(tr.y[31], 1);
    dataset_free(&tr), dataset_free(&te);
    /* a truncated file is refused by name */
    s_make_cifar("data_batch_3.bin", 5, 100);
    ck_assert_int_eq(dataset_load(&tr, &te, "cifar10", dir, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "data_batch_3.bin") && strstr(err, "3073-byte"), "%s", err);
    ck_assert_int_eq(dataset_load(&tr, &te, "imagenet", dir, err, sizeof err), -1);
}
END_TEST

START_TEST(shards_are_disjoint_and_cover_everything)
{
    s_make_idx("train", 103, 0, 0x803, 103, 0);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", dir);
    int seen[103] = {0};
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        struct dataset d;
        ck_assert_int_eq(idx_load(&d, a, b, 0, 1, err, sizeof err), 0);
        ck_assert_int_eq(dataset_shard(&d, i, 4, 9, err, sizeof err), 0);
        ck_assert(d.n == 25 || d.n == 26);
        total += d.n;
        for (size_t k = 0; k < d.n; k++) {
            /* pixel (0,0) of image k is k % 256: identifies the sample */
            int id = (int)lroundf(d.x[k * 784] * 255.0f);
            ck_assert_int_lt(id, 103);
            seen[id]++;
            ck_assert_uint_eq(d.y[k], id % 10);
        }
        dataset_free(&d);
    }
    ck_assert_uint_eq(total, 103);
    for (int i = 0; i < 103; i++)
        ck_assert_int_eq(seen[i], 1);
    struct dataset d;
    ck_assert_int_eq(idx_load(&d, a, b, 0, 1, err, sizeof err), 0);
    ck_assert_int_eq(dataset_shard(&d, 4, 4, 9, err, sizeof err), -1);
    dataset_free(&d);
}
END_TEST

START_TEST(permutation_is_seeded)
{
    size_t a[50], b[50], c[50];
    dataset_permutation(a, 50, 1);
    dataset_permutation(b, 50, 1);
    dataset_permutation(c, 50, 2);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert(memcmp(a, c, sizeof a) != 0);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++)
        seen[a[i]]++;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(seen[i], 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mnist_plain_and_gzip);
    tcase_add_test(tc, corrupt_idx_files_name_the_file);
    tcase_add_test(tc, cifar_batches_and_slices);
    tcase_add_test(tc, shards_are_disjoint_and_cover_everything);
    tcase_add_test(tc, permutation_is_seeded);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
