/* Options from one table: defaults, a config file of `key value` lines, and
 * `--key value` / `--key=value` command-line overrides, with bounds checks
 * and a printout of the effective configuration.
 *
 * A program declares const `struct config_option[]` tables ending in {0},
 * each giving the offsets of the fields of one struct, and binds each table
 * to an instance in a `struct config_table[]` ending in {0} (psod: its own
 * table on struct server_config, then each strategy's on its parameters).
 * This module never knows what the fields mean. Errors return -1 and fill
 * `err`; nothing here exits or logs. */
#ifndef PSOD_CONFIG_H
#define PSOD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum config_type {
    CONF_INT = 1, /* long */
    CONF_DOUBLE,  /* double */
    CONF_STRING,  /* char[CONF_STRLEN] */
    CONF_BOOL,    /* int: yes/no/true/false/1/0; a bare --flag sets it */
    CONF_ENUM,    /* int: index into `choices` */
    CONF_GROUP,   /* not an option: a heading (`name`) for the options after it,
                     * in --help and the man page */
};

#define CONF_STRLEN 256

struct config_option {
    const char *name;
    enum config_type type;
    size_t offset;   /* of the field in the table's struct (offsetof) */
    const char *def; /* default, as text */
    double min, max; /* bounds for INT and DOUBLE (ignored if min > max) */
    const char *help;
    const char *const *choices; /* ENUM: NULL-terminated list */
};

/* Typed rows for a table (the bounds only where they mean something):
 *   OPT_INT("workers", offsetof(...), "4", 1, 65536, "help")
 *   OPT_BOOL("exit-when-done", offsetof(...), "no", "help")
 *   OPT_ENUM("mode", offsetof(...), "sync", choices, "help")
 * OPT_GROUP("Heading") starts a group in --help and the man page. */
/* clang-format off */
#define OPT_INT(name, off, def, min, max, help) {name, CONF_INT, off, def, min, max, help, NULL}
#define OPT_DOUBLE(name, off, def, min, max, help) \
    {name, CONF_DOUBLE, off, def, min, max, help, NULL}
#define OPT_STRING(name, off, def, help) {name, CONF_STRING, off, def, 1, 0, help, NULL}
#define OPT_BOOL(name, off, def, help) {name, CONF_BOOL, off, def, 1, 0, help, NULL}
#define OPT_ENUM(name, off, def, choices, help) \
    {name, CONF_ENUM, off, def, 1, 0, help, choices}
#define OPT_GROUP(title) {title, CONF_GROUP, 0, NULL, 1, 0, NULL, NULL}
/* clang-format on */

/* One table bound to the struct its offsets are into. */
struct config_table {
    const struct config_option *opts;
    void *base;
};

/* Set every option to its default. */
int config_defaults(const struct config_table *tabs, char *err, size_t errlen);

/* Set one option from text. Unknown names and bad values are errors. */
int config_set(const struct config_table *tabs, const char *name, const char *value, char *err,
               size_t errlen);

/* Read `key value` lines; `#` starts a comment; blank lines ignored. */
int config_load_file(const struct config_table *tabs, const char *path, char *err, size_t errlen);

/* Apply `--key value`, `--key=value` and bare `--flag` (booleans) from argv.
 * Arguments listed in `skip` (e.g. "--config") and their values are passed
 * over, as are positional arguments, which are an error. */
int config_parse_args(const struct config_table *tabs, int argc, char **argv,
                      const char *const *skip, char *err, size_t errlen);

/* The usual sequence for a program: defaults, then the file named by
 * `--config FILE` if any, then the other arguments. `--config` and
 * `--log-level` (which the program reads itself) are passed over. */
int config_from_argv(const struct config_table *tabs, int argc, char **argv, char *err,
                     size_t errlen);

/* Find the value given to `--name` or `--name=` in argv, or NULL. */
const char *config_find_arg(int argc, char **argv, const char *name);

/* One `key value` line per option: the effective configuration, in a form
 * config_load_file reads back. */
void config_print(const struct config_table *tabs, FILE *out, const char *prefix);

/* --help text: name, default, bounds and help of each option. */
void config_usage(const struct config_table *tabs, FILE *out);

/* The same as the OPTIONS of a man page: roff, one .TP entry per option
 * (the programs' --help-man; the Makefile puts it into docs/man/). */
void config_man(const struct config_table *tabs, FILE *out);

/* Text for roff: backslashes and hyphens escaped, never a control line. */
void config_roff(FILE *out, const char *text);

#endif
