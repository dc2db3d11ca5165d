/* Suite: model files (common/modelfile.c). A round trip, then every way a
 * file can be damaged: each is refused with a message that names the file
 * and the fault, and nothing is returned. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/modelfile.h"

static char dir[] = "/tmp/psod-modelfile-XXXXXX";
static char path[600];
static float w[1000];

static void setup(void)
{
    strcpy(dir, "/tmp/psod-modelfile-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.psom", dir);
    for (int i = 0; i < 1000; i++)
        w[i] = sinf((float)i) * 3;
    struct modelfile_info info = {0x1234abcdULL, 1000, 77, 0.25, "pso", "", "", {0, 0, 0}, 0};
    char err[256];
    ck_assert_msg(modelfile_write(path, &info, w, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Reading must fail with `why` in the message. */
static void s_refused(const char *why)
{
    struct modelfile_info info;
    float *p = (float *)1;
    char err[512];
    ck_assert_int_eq(modelfile_read(path, &info, &p, err, sizeof err), -1);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, why) != NULL, "'%s' lacks '%s'", err, why);
    ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name the file", err);
}

static void s_patch(long off, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, SEEK_SET);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

START_TEST(round_trip)
{
    struct modelfile_info info;
    float *p;
    char err[256];
    ck_assert_msg(modelfile_read(path, &info, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(info.layout_hash, 0x1234abcdULL);
    ck_assert_uint_eq(info.param_count, 1000);
    ck_assert_uint_eq(info.round, 77);
    ck_assert_double_eq(info.loss, 0.25);
    ck_assert_str_eq(info.strategy, "pso");
    ck_assert_int_eq(memcmp(p, w, sizeof w), 0);
    free(p);
    /* no temporary file is left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(truncated_is_refused)
{
    ck_assert_int_eq(truncate(path, MODELFILE_HEADER + 3996), 0);
    s_refused("truncated");
    ck_assert_int_eq(truncate(path, 20), 0);
    s_refused("shorter than its 64-byte header");
}
END_TEST

START_TEST(flipped_weight_bit_is_refused)
{
    unsigned char b = 0x40;
    FILE *f = fopen(path, "r+b");
    fseek(f, MODELFILE_HEADER + 1234, SEEK_SET);
    b ^= (unsigned char)fgetc(f);
    fclose(f);
    s_patch(MODELFILE_HEADER + 1234, &b, 1);
    s_refused("weights checksum mismatch");
}
END_TEST

START_TEST(damaged_header_is_refused)
{
    s_patch(40, "\x01", 1); /* the loss: only the header CRC can tell */
    s_refused("header checksum mismatch");
    s_patch(0, "XSOM", 4);
    s_refused("bad magic");
}
END_TEST

START_TEST(missing_file_is_named)
{
    snprintf(path, sizeof path, "%s/none.psom", dir);
    s_refused("cannot open");
}
END_TEST

START_TEST(header_parser_checks_version_and_size)
{
    unsigned char h[MODELFILE_HEADER_V2];
    FILE *f = fopen(path, "rb");
    ck_assert_uint_eq(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    struct modelfile_info info;
    uint32_t crc;
    char err[256];
    ck_assert_int_eq(modelfile_parse_header(h, MODELFILE_HEADER, MODELFILE_HEADER_V2 + 4000, &info,
                                            &crc, err, sizeof err),
                     1); /* needs more */
    ck_assert_int_eq(modelfile_parse_header(h, sizeof h, MODELFILE_HEADER_V2 + 4000, &info, &crc,
                                            err, sizeof err),
                     0);
    ck_assert_int_eq(modelfile_parse_header(h, sizeof h, MODELFILE_HEADER_V2 + 4004, &info, &crc,
                                            err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "does not fit 1000 parameters"));
}
END_TEST

START_TEST(records_model_and_reads_version_1)
{
    struct modelfile_info info = {7,           1000, 3, 0.5, "avg", "lenet5", "fashion-mnist",
                                  {1, 28, 28}, 0};
    char err[256];
    float *p;
    ck_assert_int_eq(modelfile_write(path, &info, w, err, sizeof err), 0);
    struct modelfile_info got;
    ck_assert_msg(modelfile_read(path, &got, &p, err, sizeof err) == 0, "%s", err);
    free(p);
    ck_assert_str_eq(got.model, "lenet5");
    ck_assert_str_eq(got.dataset, "fashion-mnist");
    ck_assert_uint_eq(got.input_shape[0], 1);
    ck_assert_uint_eq(got.input_shape[2], 28);
    ck_assert_uint_eq(got.header_size, MODELFILE_HEADER_V2);
    /* A version 1 file as an older psod wrote it: the 64-byte header. */
    unsigned char h[MODELFILE_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, "PSOM", 4);
    uint32_t v = 1, wcrc = crc32c(0, w, sizeof w);
    uint64_t layout = 9, count = 1000, round = 5;
    memcpy(h + 4, &v, 4), memcpy(h + 8, &layout, 8), memcpy(h + 16, &count, 8);
    memcpy(h + 24, &wcrc, 4), memcpy(h + 32, &round, 8), memcpy(h + 48, "pso", 3);
    uint32_t hcrc = crc32c(0, h, sizeof h);
    memcpy(h + 28, &hcrc, 4);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(h, 1, sizeof h, f), sizeof h);
    ck_assert_uint_eq(fwrite(w, 1, sizeof w, f), sizeof w);
    fclose(f);
    ck_assert_msg(modelfile_read(path, &got, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(got.round, 5);
    ck_assert_str_eq(got.model, "");
    ck_assert_uint_eq(got.header_size, MODELFILE_HEADER);
    ck_assert(memcmp(p, w, sizeof w) == 0);
    free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("modelfile");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, truncated_is_refused);
    tcase_add_test(tc, flipped_weight_bit_is_refused);
    tcase_add_test(tc, damaged_header_is_refused);
    tcase_add_test(tc, missing_file_is_named);
    tcase_add_test(tc, header_parser_checks_version_and_size);
    tcase_add_test(tc, records_model_and_reads_version_1);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
