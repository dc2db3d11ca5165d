/* Suite: common/keys (CURVE key files and allow-list directories). */
#include "tests/lib/suite.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/keys.h"

static char dir[] = "/tmp/psod-keys-XXXXXX";
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/psod-keys-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void s_write(const char *name, const char *text, mode_t mode)
{
    char p[256];
    s_path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

START_TEST(generate_and_read_back)
{
    ck_assert(keys_curve_available());
    char base[256], key[300], pub[300];
    s_path(base, sizeof base, "w1");
    ck_assert_msg(keys_generate(base, err, sizeof err) == 0, "%s", err);
    snprintf(key, sizeof key, "%s.key", base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    struct keypair a, b;
    ck_assert_msg(keys_read(key, 1, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(keys_read(pub, 0, &b, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(a.public_key, b.public_key);
    ck_assert_str_eq(b.secret_key, "");
    ck_assert_int_eq((int)strlen(a.secret_key), KEYS_Z85_LEN);
    /* The secret half really is the public half's. */
    char derived[41];
    ck_assert_int_eq(zmq_curve_public(derived, a.secret_key), 0);
    ck_assert_str_eq(derived, a.public_key);
    /* A .pub file is no key pair; an existing key is never overwritten. */
    ck_assert_int_eq(keys_read(pub, 1, &b, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no secret-key"));
    ck_assert_int_eq(keys_generate(base, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "exists already"));
}
END_TEST

START_TEST(refuses_bad_key_files)
{
    char pub[41], sec[41], pub2[41], sec2[41], text[256], p[256];
    zmq_curve_keypair(pub, sec);
    zmq_curve_keypair(pub2, sec2);
    struct keypair kp;
    /* Readable by others. */
    snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", pub, sec);
    s_write("open.key", text, 0644);
    s_path(p, sizeof p, "open.key");
    ck_assert_int_eq(keys_read(p, 1, &kp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "readable by others"));
    /* Halves of two different pairs. */
    snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", pub2, sec);
    s_write("mixed.key", text, 0600);
    s_path(p, sizeof p, "mixed.key");
    ck_assert_int_eq(keys_read(p, 1, &kp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not the secret key's"));
    /* Not Z85, wrong length, unknown field, nothing at all. */
    const char *bad[] = {"public-key = 0123456789012345678901234567890123456789~\n",
                         "public-key = abc\n", "colour = blue\n", "# only a comment\n"};
    for (int i = 0; i < 4; i++) {
        s_write("bad.pub", bad[i], 0644);
        s_path(p, sizeof p, "bad.pub");
        ck_assert_int_eq(keys_read(p, 0, &kp, err, sizeof err), -1);
    }
    s_path(p, sizeof p, "missing.key");
    ck_assert_int_eq(keys_read(p, 1, &kp, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

START_TEST(allow_list_directory)
{
    char pub1[41], sec[41], pub2[41], text[128], d[256], p[256];
    zmq_curve_keypair(pub1, sec);
    zmq_curve_keypair(pub2, sec);
    s_path(d, sizeof d, "allow");
    mkdir(d, 0755);
    snprintf(text, sizeof text, "public-key = %s\n", pub1);
    s_write("allow/node-1.pub", text, 0644);
    snprintf(text, sizeof text, "public-key = %s\n", pub2);
    s_write("allow/node_2.pub", text, 0644);
    s_write("allow/README", "not a key\n", 0644);
    struct keyring kr;
    ck_assert_msg(keys_load_dir(d, &kr, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(kr.count, 2);
    unsigned char raw1[32], raw2[32], other[32] = {0};
    zmq_z85_decode(raw1, pub1);
    zmq_z85_decode(raw2, pub2);
    ck_assert_str_eq(keys_find(&kr, raw1), "node-1");
    ck_assert_str_eq(keys_find(&kr, raw2), "node_2");
    ck_assert_ptr_null(keys_find(&kr, other));
    keys_ring_free(&kr);
    /* A name that could pose as an admin ("admin:x") or a broken key file
     * makes the whole directory an error, not a shorter list. */
    s_write("allow/admin:x.pub", text, 0644);
    ck_assert_int_eq(keys_load_dir(d, &kr, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "admin:x.pub"));
    s_path(p, sizeof p, "allow/admin:x.pub");
    unlink(p);
    s_write("allow/broken.pub", "public-key = nope\n", 0644);
    ck_assert_int_eq(keys_load_dir(d, &kr, err, sizeof err), -1);
    s_path(p, sizeof p, "nowhere");
    ck_assert_int_eq(keys_load_dir(p, &kr, err, sizeof err), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, generate_and_read_back);
    tcase_add_test(tc, refuses_bad_key_files);
    tcase_add_test(tc, allow_list_directory);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
