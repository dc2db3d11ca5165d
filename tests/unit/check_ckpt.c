/* Suite: common/ckpt (checkpoint field streams: atomic write, checked read,
 * from a file and from memory). */
#include "tests/lib/suite.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ckpt.h"

static char path[] = "/tmp/psod-ckpt-XXXXXX";

static void setup(void)
{
    strcpy(path, "/tmp/psod-ckpt-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void) { unlink(path); }

/* A checkpoint with one of each field; returns its bytes (malloc'ed). */
static unsigned char *s_write(size_t *len)
{
    struct ckpt_writer w;
    char err[256];
    ck_assert_msg(ckpt_begin(&w, path, err, sizeof err) == 0, "%s", err);
    float x[5] = {1, -2, 3.5f, 0, 1e-3f};
    ckpt_put_str(&w, "pso");
    ckpt_put_u64(&w, 5);
    ckpt_put_f64(&w, 0.25);
    ckpt_put(&w, x, sizeof x);
    ck_assert_msg(ckpt_commit(&w, err, sizeof err) == 0, "%s", err);
    FILE *f = fopen(path, "rb");
    unsigned char *d = malloc(4096);
    *len = fread(d, 1, 4096, f);
    fclose(f);
    return d;
}

/* Read the fields back; 0 if all of them and the CRC check out. */
static int s_read(struct ckpt_reader *r)
{
    char s[8];
    uint64_t n;
    double v;
    float x[5];
    int rc = ckpt_get_str(r, s, sizeof s) || ckpt_get_u64(r, &n) || ckpt_get_f64(r, &v) ||
             ckpt_get(r, x, sizeof x) || ckpt_finish(r);
    if (rc == 0) {
        ck_assert_str_eq(s, "pso");
        ck_assert_uint_eq(n, 5);
        ck_assert(v == 0.25 && x[2] == 3.5f && x[4] == 1e-3f);
    }
    ckpt_close(r);
    return rc ? -1 : 0;
}

START_TEST(round_trip_file_and_memory)
{
    size_t len;
    unsigned char *d = s_write(&len);
    struct ckpt_reader r;
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    ck_assert_int_eq(s_read(&r), 0);
    ck_assert_int_eq(ckpt_open_mem(&r, d, len), 0);
    ck_assert_int_eq(s_read(&r), 0);
    free(d);
}
END_TEST

START_TEST(every_truncation_and_bit_flip_is_caught)
{
    size_t len;
    unsigned char *d = s_write(&len);
    struct ckpt_reader r;
    for (size_t cut = 0; cut < len; cut++) {
        ckpt_open_mem(&r, d, cut);
        ck_assert_msg(s_read(&r) == -1, "truncated at %zu of %zu read fine", cut, len);
        ck_assert(r.err[0]);
    }
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            d[i] ^= (unsigned char)(1 << bit);
            ckpt_open_mem(&r, d, len);
            ck_assert_msg(s_read(&r) == -1, "bit %d of byte %zu flipped read fine", bit, i);
            d[i] ^= (unsigned char)(1 << bit);
        }
    /* One byte too many before the CRC. */
    unsigned char *e = malloc(len + 1);
    memcpy(e, d, len - 4);
    e[len - 4] = 0;
    memcpy(e + len - 3, d + len - 4, 4);
    ckpt_open_mem(&r, e, len + 1);
    ck_assert_int_eq(s_read(&r), -1);
    free(e);
    free(d);
}
END_TEST

START_TEST(verify_reads_a_whole_file_through_its_crc)
{
    size_t len;
    unsigned char *d = s_write(&len);
    char err[256];
    uint32_t version = 0;
    ck_assert_msg(ckpt_verify(path, &version, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(version, CKPT_VERSION);
    for (size_t i = 0; i < len; i += 3) { /* any byte flipped, or the file cut there */
        d[i] ^= 0x10;
        FILE *f = fopen(path, "wb");
        fwrite(d, 1, len, f);
        fclose(f);
        ck_assert_msg(ckpt_verify(path, NULL, err, sizeof err) == -1, "flip at %zu passed", i);
        ck_assert(err[0]);
        d[i] ^= 0x10;
        f = fopen(path, "wb");
        fwrite(d, 1, i, f);
        fclose(f);
        ck_assert_msg(ckpt_verify(path, NULL, err, sizeof err) == -1, "cut at %zu passed", i);
    }
    ck_assert_int_eq(ckpt_verify("/nonexistent/ckpt", NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot open"), "%s", err);
    free(d);
}
END_TEST

START_TEST(lengths_are_checked_before_use)
{
    /* A string claiming 2^63 bytes, and a field longer than the file. */
    struct ckpt_writer w;
    char err[256], s[16];
    ck_assert_int_eq(ckpt_begin(&w, path, err, sizeof err), 0);
    ckpt_put_u64(&w, (uint64_t)1 << 63);
    ck_assert_int_eq(ckpt_commit(&w, err, sizeof err), 0);
    struct ckpt_reader r;
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    ck_assert_int_eq(ckpt_get_str(&r, s, sizeof s), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "at most 15 fit"));
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_open(&r, path), 0);
    unsigned char big[64];
    ck_assert_int_eq(ckpt_get(&r, big, sizeof big), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "truncated"));
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_open_mem(&r, "PSCK", 4), -1);
    ckpt_close(&r);
    /* Versions 1 (before particles were bound to keys), 2 and 3 (records
     * with their own versions) are read; a newer one is refused by name. */
    ck_assert_int_eq(ckpt_open_mem(&r, "PSCK\1\0\0\0\0\0\0\0", 12), 0);
    ck_assert_uint_eq(r.version, 1);
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_open_mem(&r, "PSCK\3\0\0\0\0\0\0\0", 12), 0);
    ck_assert_uint_eq(r.version, 3);
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_open_mem(&r, "PSCK\4\0\0\0\0\0\0\0", 12), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "version 4"));
    ckpt_close(&r);
    ck_assert_int_eq(ckpt_open_mem(&r, "XXXX\1\0\0\0\0\0\0\0", 12), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "bad magic"));
    ckpt_close(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_file_and_memory);
    tcase_add_test(tc, every_truncation_and_bit_flip_is_caught);
    tcase_add_test(tc, lengths_are_checked_before_use);
    tcase_add_test(tc, verify_reads_a_whole_file_through_its_crc);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
