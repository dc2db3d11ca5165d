/* Suite: common/crc32c. */
#include "tests/lib/suite.h"
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/rng.h"

START_TEST(known_vectors)
{
    ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c(0, "", 0), 0);
    unsigned char zeros[32] = {0};
    ck_assert_uint_eq(crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    unsigned char ones[32];
    memset(ones, 0xff, sizeof ones);
    ck_assert_uint_eq(crc32c(0, ones, 32), 0x62A8AB43u);
}
END_TEST

START_TEST(hw_matches_sw_all_lengths_and_alignments)
{
    size_t max = 3 * 8192 * 2 + 100;
    unsigned char *buf = malloc(max + 16);
    struct rng r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < max + 16; i++)
        buf[i] = (unsigned char)rng_next(&r);
    size_t lens[] = {0, 1, 7, 8, 9, 63, 64, 65, 1000, 24575, 24576, 24577, 3 * 8192 * 2 + 100};
    for (size_t a = 0; a < 8; a++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t len = lens[k];
            ck_assert_uint_eq(crc32c(0, buf + a, len), crc32c_sw(0, buf + a, len));
        }
    free(buf);
}
END_TEST

START_TEST(continuation_equals_whole)
{
    unsigned char buf[100000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    uint32_t whole = crc32c(0, buf, sizeof buf);
    uint32_t part = crc32c(crc32c(0, buf, 33333), buf + 33333, sizeof buf - 33333);
    ck_assert_uint_eq(whole, part);
    buf[5000] ^= 1; /* one flipped bit changes it */
    ck_assert_uint_ne(crc32c(0, buf, sizeof buf), whole);
}
END_TEST

/* Ranges checked apart (on threads) and combined give the whole's CRC,
 * for every split point, an empty range on either side included. */
START_TEST(combined_ranges_equal_the_whole)
{
    unsigned char buf[3000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    uint32_t whole = crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 37) {
        uint32_t a = crc32c(0, buf, cut), b = crc32c(0, buf + cut, sizeof buf - cut);
        ck_assert_uint_eq(crc32c_combine(a, b, sizeof buf - cut), whole);
    }
    /* Three ranges, as three threads would. */
    uint32_t c = crc32c_combine(crc32c(0, buf, 1000), crc32c(0, buf + 1000, 1200), 1200);
    c = crc32c_combine(c, crc32c(0, buf + 2200, 800), 800);
    ck_assert_uint_eq(c, whole);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, known_vectors);
    tcase_add_test(tc, hw_matches_sw_all_lengths_and_alignments);
    tcase_add_test(tc, continuation_equals_whole);
    tcase_add_test(tc, combined_ranges_equal_the_whole);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
