/* Option table parsing: see config.h. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* An option and the struct it sets. */
struct s_ref {
    const struct config_option *o;
    void *base;
};

static struct s_ref s_find(const struct config_table *t, const char *name)
{
    for (; t->opts; t++)
        for (const struct config_option *o = t->opts; o->name; o++)
            if (o->type != CONF_GROUP && strcmp(o->name, name) == 0)
                return (struct s_ref){o, t->base};
    return (struct s_ref){NULL, NULL};
}

static void *s_field(struct s_ref r) { return (char *)r.base + r.o->offset; }

static int s_parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"1", "yes", "true", "on"};
    static const char *no[] = {"0", "no", "false", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

static int s_bounded(const struct config_option *o, double v, char *err, size_t errlen)
{
    if (o->min <= o->max && (v < o->min || v > o->max)) {
        snprintf(err, errlen, "option '%s': value %g outside [%g, %g]", o->name, v, o->min, o->max);
        return -1;
    }
    return 0;
}

static int s_assign(struct s_ref r, const char *value, char *err, size_t errlen)
{
    const struct config_option *o = r.o;
    void *field = s_field(r);
    char *end;
    switch (o->type) {
    case CONF_GROUP: return 0; /* a heading sets nothing */
    case CONF_INT: {
        errno = 0;
        /* Decimal only: "010" is ten, "0x10" is refused. */
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(err, errlen, "option '%s': '%s' is not a decimal integer", o->name, value);
            return -1;
        }
        if (s_bounded(o, (double)v, err, errlen))
            return -1;
        *(long *)field = v;
        return 0;
    }
    case CONF_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v)) {
            snprintf(err, errlen, "option '%s': '%s' is not a finite number", o->name, value);
            return -1;
        }
        if (s_bounded(o, v, err, errlen))
            return -1;
        *(double *)field = v;
        return 0;
    }
    case CONF_STRING:
        if (strlen(value) >= CONF_STRLEN) {
            snprintf(err, errlen, "option '%s': value longer than %d characters", o->name,
                     CONF_STRLEN - 1);
            return -1;
        }
        strcpy((char *)field, value);
        return 0;
    case CONF_BOOL:
        if (s_parse_bool(value, (int *)field)) {
            snprintf(err, errlen, "option '%s': '%s' is not yes/no", o->name, value);
            return -1;
        }
        return 0;
    case CONF_ENUM:
        for (int i = 0; o->choices && o->choices[i]; i++)
            if (strcmp(o->choices[i], value) == 0)
                return *(int *)field = i, 0;
        {
            size_t n =
                (size_t)snprintf(err, errlen, "option '%s': '%s' is not one of", o->name, value);
            for (int i = 0; o->choices && o->choices[i] && n < errlen; i++)
                n += (size_t)snprintf(err + n, errlen - n, " %s", o->choices[i]);
        }
        return -1;
    }
    snprintf(err, errlen, "option '%s': bad option type", o->name);
    return -1;
}

int config_defaults(const struct config_table *tabs, char *err, size_t errlen)
{
    for (; tabs->opts; tabs++)
        for (const struct config_option *o = tabs->opts; o->name; o++)
            if (o->type != CONF_GROUP &&
                s_assign((struct s_ref){o, tabs->base}, o->def ? o->def : "", err, errlen))
                return -1;
    return 0;
}

int config_set(const struct config_table *tabs, const char *name, const char *value, char *err,
               size_t errlen)
{
    struct s_ref o = s_find(tabs, name);
    if (!o.o) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -1;
    }
    return s_assign(o, value, err, errlen);
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load_file(const struct config_table *tabs, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen,
                 "%s: not a regular file (--config takes a file of `key value` "
                 "lines)",
                 path);
        fclose(f);
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *key = s_trim(line);
        if (!*key)
            continue;
        char *val = key;
        while (*val && !isspace((unsigned char)*val))
            val++;
        if (*val)
            *val++ = '\0';
        val = s_trim(val);
        struct s_ref o = s_find(tabs, key);
        if (!o.o) {
            snprintf(err, errlen, "%s:%d: unknown option '%s'", path, lineno, key);
            rc = -1;
            break;
        }
        char sub[512];
        if (s_assign(o, val, sub, sizeof sub)) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int s_skipped(const char *name, const char *const *skip)
{
    for (; skip && *skip; skip++)
        if (strcmp(*skip, name) == 0)
            return 1;
    return 0;
}

const char *config_find_arg(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], name, n) != 0)
            continue;
        if (argv[i][n] == '=')
            return argv[i] + n + 1;
        if (argv[i][n] == '\0' && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

int config_parse_args(const struct config_table *tabs, int argc, char **argv,
                      const char *const *skip, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (options are --key value)", arg);
            return -1;
        }
        char name[128];
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name) {
            snprintf(err, errlen, "option name too long: '%.40s...'", arg);
            return -1;
        }
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        char dashed[132];
        snprintf(dashed, sizeof dashed, "--%s", name);
        if (s_skipped(dashed, skip)) {
            if (!eq)
                i++;
            continue;
        }
        struct s_ref o = s_find(tabs, name);
        if (!o.o) {
            snprintf(err, errlen, "unknown option '--%s' (see --help)", name);
            return -1;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (o.o->type == CONF_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            value = "yes";
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) == 0) {
            snprintf(err, errlen, "option '--%s' needs a value, not the option '%s'", name,
                     argv[i + 1]);
            return -1;
        } else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "option '--%s' needs a value", name);
            return -1;
        }
        if (s_assign(o, value, err, errlen))
            return -1;
    }
    return 0;
}

static void s_value(struct s_ref r, char *buf, size_t len)
{
    const struct config_option *o = r.o;
    void *field = s_field(r);
    switch (o->type) {
    case CONF_INT: snprintf(buf, len, "%ld", *(long *)field); break;
    case CONF_DOUBLE: {
        /* The shortest text that reads back as the same double: 0.005, not
         * 0.0050000000000000001. */
        double v = *(double *)field;
        for (int digits = 6; digits <= 17; digits++) {
            snprintf(buf, len, "%.*g", digits, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        break;
    }
    case CONF_GROUP: buf[0] = '\0'; break;
    case CONF_STRING: snprintf(buf, len, "%s", (char *)field); break;
    case CONF_BOOL: snprintf(buf, len, "%s", *(int *)field ? "yes" : "no"); break;
    case CONF_ENUM: snprintf(buf, len, "%s", o->choices[*(int *)field]); break;
    }
}

void config_print(const struct config_table *tabs, FILE *out, const char *prefix)
{
    char buf[CONF_STRLEN + 32];
    for (; tabs->opts; tabs++)
        for (const struct config_option *o = tabs->opts; o->name; o++) {
            if (o->type == CONF_GROUP)
                continue;
            s_value((struct s_ref){o, tabs->base}, buf, sizeof buf);
            fprintf(out, "%s%s %s\n", prefix ? prefix : "", o->name, buf[0] ? buf : "\"\"");
        }
}

/* --help fits 80 columns: the option, then the first clause of its help
 * (up to "; ", ". ", ": " or " ("), wrapped under the option's column; the
 * whole text is the man page's. */
#define USAGE_COL 30
#define USAGE_WIDTH 80
static void s_usage_line(const struct config_option *o, FILE *out)
{
    char arg[160], brief[600];
    snprintf(arg, sizeof arg, "--%s %s", o->name,
             o->type == CONF_BOOL     ? "[yes|no]"
             : o->type == CONF_INT    ? "N"
             : o->type == CONF_DOUBLE ? "X"
             : o->type == CONF_ENUM   ? "NAME"
                                      : "VALUE");
    const char *help = o->help ? o->help : "";
    size_t n = strlen(help);
    static const char *const stops[] = {"; ", ". ", ": ", " (", NULL};
    for (int i = 0; stops[i]; i++) /* the first stop that leaves a phrase */
        for (const char *at = strstr(help, stops[i]); at; at = strstr(at + 1, stops[i]))
            if (at - help >= 20) {
                if ((size_t)(at - help) < n)
                    n = (size_t)(at - help);
                break;
            }
    int k = snprintf(brief, sizeof brief, "%.*s", (int)n, help);
    if (o->type == CONF_ENUM) {
        for (int i = 0; o->choices[i] && k > 0 && (size_t)k < sizeof brief; i++)
            k += snprintf(brief + k, sizeof brief - (size_t)k, "%s%s", i ? "|" : ": ",
                          o->choices[i]);
    }
    if (o->def && o->def[0] && k > 0 && (size_t)k < sizeof brief)
        snprintf(brief + k, sizeof brief - (size_t)k, " [%s]", o->def);
    int col = fprintf(out, "  %s", arg);
    if (col >= USAGE_COL - 1) {
        fputc('\n', out);
        col = 0;
    }
    /* Words, wrapped at USAGE_WIDTH under USAGE_COL. */
    const char *w = brief;
    int first = 1;
    while (*w) {
        size_t len = strcspn(w, " ");
        if (!first && col + 1 + (int)len > USAGE_WIDTH) {
            fputc('\n', out);
            col = 0;
            first = 1;
        }
        if (first) {
            col += fprintf(out, "%*s", USAGE_COL - col, "");
            first = 0;
        } else {
            fputc(' ', out);
            col++;
        }
        col += fprintf(out, "%.*s", (int)len, w);
        w += len;
        while (*w == ' ')
            w++;
    }
    fputc('\n', out);
}

void config_usage(const struct config_table *tabs, FILE *out)
{
    for (; tabs->opts; tabs++)
        for (const struct config_option *o = tabs->opts; o->name; o++) {
            if (o->type == CONF_GROUP)
                fprintf(out, "\n%s:\n", o->name);
            else
                s_usage_line(o, out);
        }
}

void config_roff(FILE *out, const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", out);
    for (; *text; text++) {
        if (*text == '\\')
            fputs("\\e", out);
        else if (*text == '-')
            fputs("\\-", out);
        else
            fputc(*text, out);
    }
}

void config_man(const struct config_table *tabs, FILE *out)
{
    for (; tabs->opts; tabs++)
        for (const struct config_option *o = tabs->opts; o->name; o++) {
            if (o->type == CONF_GROUP) {
                fputs(".SS ", out);
                config_roff(out, o->name);
                fputc('\n', out);
                continue;
            }
            fputs(".TP\n.B \\-\\-", out);
            config_roff(out, o->name);
            fputs(o->type == CONF_BOOL     ? " \\fR[\\fIyes\\fR|\\fIno\\fR]\n"
                  : o->type == CONF_INT    ? " \\fIN\\fR\n"
                  : o->type == CONF_DOUBLE ? " \\fIX\\fR\n"
                  : o->type == CONF_ENUM   ? " \\fINAME\\fR\n"
                                           : " \\fIVALUE\\fR\n",
                  out);
            config_roff(out, o->help ? o->help : "");
            if (o->type == CONF_ENUM) {
                fputs(". One of: ", out);
                for (int i = 0; o->choices[i]; i++) {
                    fputs(i ? ", " : "", out);
                    config_roff(out, o->choices[i]);
                }
            }
            fputs(".", out);
            if (o->def && o->def[0]) {
                fputs(" Default: \\fB", out);
                config_roff(out, o->def);
                fputs("\\fR.", out);
            }
            if ((o->type == CONF_INT || o->type == CONF_DOUBLE) && o->min <= o->max)
                fprintf(out, " Range: %g to %g.", o->min, o->max);
            fputc('\n', out);
        }
}

int config_from_argv(const struct config_table *tabs, int argc, char **argv, char *err,
                     size_t errlen)
{
    static const char *const skip[] = {"--config", "--log-level", NULL};
    const char *conf = config_find_arg(argc, argv, "--config");
    if (config_defaults(tabs, err, errlen))
        return -1;
    if (conf && config_load_file(tabs, conf, err, errlen))
        return -1;
    return config_parse_args(tabs, argc, argv, skip, err, errlen);
}
