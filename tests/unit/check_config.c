/* Suite: common/config (option table, file, arguments). */
#include "tests/lib/suite.h"
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

struct cfg {
    long n;
    double x;
    char s[CONF_STRLEN];
    int b;
    int e;
};
static const char *const s_modes[] = {"alpha", "beta", "gamma", NULL};
static struct cfg c;
static const struct config_option table[] = {
    {"count", CONF_INT, offsetof(struct cfg, n), "4", 1, 100, "a count", NULL},
    {"rate", CONF_DOUBLE, offsetof(struct cfg, x), "0.5", 0, 1, "a rate", NULL},
    {"name", CONF_STRING, offsetof(struct cfg, s), "abc", 1, 0, "a name", NULL},
    {"flag", CONF_BOOL, offsetof(struct cfg, b), "no", 1, 0, "a flag", NULL},
    {"mode", CONF_ENUM, offsetof(struct cfg, e), "beta", 1, 0, "a mode", s_modes},
    {0},
};
static const struct config_table opts[] = {{table, &c}, {0}};
static char err[512];

static void s_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(defaults_apply)
{
    ck_assert_int_eq(config_defaults(opts, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 4);
    ck_assert_double_eq(c.x, 0.5);
    ck_assert_str_eq(c.s, "abc");
    ck_assert_int_eq(c.b, 0);
    ck_assert_int_eq(c.e, 1);
}
END_TEST

START_TEST(file_then_args_override)
{
    char path[] = "/tmp/psod-config-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    s_file(path, "# comment\n\ncount 7   # trailing comment\nrate 0.25\nname  hello\nflag yes\n"
                 "mode gamma\n");
    ck_assert_int_eq(config_defaults(opts, err, sizeof err), 0);
    ck_assert_int_eq(config_load_file(opts, path, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 7);
    ck_assert_double_eq(c.x, 0.25);
    ck_assert_str_eq(c.s, "hello");
    ck_assert_int_eq(c.b, 1);
    ck_assert_int_eq(c.e, 2);
    char *argv[] = {"prog", "--count", "9", "--rate=0.75", "--config", path, "--flag", "no", NULL};
    static const char *const skip[] = {"--config", NULL};
    ck_assert_msg(config_parse_args(opts, 8, argv, skip, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.n, 9);
    ck_assert_double_eq(c.x, 0.75);
    ck_assert_int_eq(c.b, 0);
    ck_assert_str_eq(config_find_arg(8, argv, "--config"), path);
    ck_assert_str_eq(config_find_arg(8, argv, "--rate"), "0.75");
    ck_assert_ptr_null(config_find_arg(8, argv, "--missing"));
    unlink(path);
}
END_TEST

START_TEST(bare_bool_flag)
{
    config_defaults(opts, err, sizeof err);
    char *argv[] = {"prog", "--flag", "--count", "3", NULL};
    ck_assert_int_eq(config_parse_args(opts, 4, argv, NULL, err, sizeof err), 0);
    ck_assert_int_eq(c.b, 1);
    ck_assert_int_eq(c.n, 3);
}
END_TEST

START_TEST(rejects_bad_values)
{
    config_defaults(opts, err, sizeof err);
    ck_assert_int_eq(config_set(opts, "count", "101", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "outside"));
    ck_assert_int_eq(config_set(opts, "count", "12abc", err, sizeof err), -1);
    ck_assert_int_eq(config_set(opts, "rate", "nan", err, sizeof err), -1);
    ck_assert_int_eq(config_set(opts, "rate", "-0.1", err, sizeof err), -1);
    ck_assert_int_eq(config_set(opts, "flag", "maybe", err, sizeof err), -1);
    ck_assert_int_eq(config_set(opts, "mode", "delta", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "alpha beta gamma"));
    ck_assert_int_eq(config_set(opts, "nosuch", "1", err, sizeof err), -1);
    char big[CONF_STRLEN + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(config_set(opts, "name", big, err, sizeof err), -1);
    /* Nothing changed by the failures. */
    ck_assert_int_eq(c.n, 4);
    ck_assert_double_eq(c.x, 0.5);
    char *argv[] = {"prog", "positional", NULL};
    ck_assert_int_eq(config_parse_args(opts, 2, argv, NULL, err, sizeof err), -1);
    char *argv2[] = {"prog", "--count", NULL};
    ck_assert_int_eq(config_parse_args(opts, 2, argv2, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
}
END_TEST

START_TEST(file_errors_name_the_line)
{
    char path[] = "/tmp/psod-config-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    s_file(path, "count 5\nbogus 1\n");
    config_defaults(opts, err, sizeof err);
    ck_assert_int_eq(config_load_file(opts, path, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: unknown option 'bogus'"));
    s_file(path, "rate 5\n");
    ck_assert_int_eq(config_load_file(opts, path, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: option 'rate'"));
    unlink(path);
    ck_assert_int_eq(config_load_file(opts, "/nonexistent/psod.conf", err, sizeof err), -1);
}
END_TEST

START_TEST(print_reads_back)
{
    config_defaults(opts, err, sizeof err);
    config_set(opts, "rate", "0.1", err, sizeof err);
    config_set(opts, "mode", "alpha", err, sizeof err);
    char path[] = "/tmp/psod-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    config_print(opts, f, NULL);
    fclose(f);
    config_defaults(opts, err, sizeof err);
    ck_assert_msg(config_load_file(opts, path, err, sizeof err) == 0, "%s", err);
    ck_assert_double_eq(c.x, 0.1);
    ck_assert_int_eq(c.e, 0);
    unlink(path);
}
END_TEST

START_TEST(help_is_grouped_fits_80_columns_and_numbers_print_short)
{
    static const struct config_option long_table[] = {
        {"Things", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
        {"rate", CONF_DOUBLE, offsetof(struct cfg, x), "0.005", 0, 1,
         "how fast the thing moves toward the other thing when the other thing moves toward "
         "it, in units of things per round; the rest goes to the man page only",
         NULL},
        {"count", CONF_INT, offsetof(struct cfg, n), "4", 1, 100, "a count", NULL},
        {0},
    };
    const struct config_table t[] = {{long_table, &c}, {0}};
    ck_assert_int_eq(config_defaults(t, err, sizeof err), 0);
    ck_assert_int_eq(config_set(t, "Things", "1", err, sizeof err), -1); /* not an option */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_usage(t, f);
    fclose(f);
    ck_assert_msg(strstr(buf, "\nThings:\n  --rate X"), "%s", buf);
    ck_assert_msg(strstr(buf, "[0.005]") && !strstr(buf, "man page only"), "%s", buf);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(strlen(line) <= 80, "%zu columns: %s", strlen(line), line);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    config_print(t, f, "");
    fclose(f);
    ck_assert_msg(strstr(buf, "rate 0.005\n") && !strstr(buf, "Things"), "%s", buf);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    config_man(t, f);
    fclose(f);
    ck_assert_msg(strstr(buf, ".SS Things\n") && strstr(buf, "man page only"), "%s", buf);
    free(buf);
}
END_TEST

START_TEST(integers_are_decimal_and_values_are_not_options)
{
    ck_assert_int_eq(config_defaults(opts, err, sizeof err), 0);
    ck_assert_int_eq(config_set(opts, "count", "010", err, sizeof err), 0);
    ck_assert_int_eq(c.n, 10); /* not octal 8 */
    ck_assert_int_eq(config_set(opts, "count", "0x10", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a decimal integer"));
    char *argv[] = {"prog", "--name", "--count", "3", NULL};
    ck_assert_int_eq(config_parse_args(opts, 4, argv, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "'--name' needs a value, not the option '--count'") != NULL, "%s",
                  err);
    char *argv2[] = {"prog", "--flag", "--count", "3", NULL}; /* a bare boolean is fine */
    ck_assert_int_eq(config_parse_args(opts, 4, argv2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(c.b, 1);
    ck_assert_int_eq(c.n, 3);
    /* A directory given as the config file is refused, not read as empty. */
    ck_assert_int_eq(config_load_file(opts, "/tmp", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_apply);
    tcase_add_test(tc, file_then_args_override);
    tcase_add_test(tc, bare_bool_flag);
    tcase_add_test(tc, rejects_bad_values);
    tcase_add_test(tc, file_errors_name_the_line);
    tcase_add_test(tc, print_reads_back);
    tcase_add_test(tc, integers_are_decimal_and_values_are_not_options);
    tcase_add_test(tc, help_is_grouped_fits_80_columns_and_numbers_print_short);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
