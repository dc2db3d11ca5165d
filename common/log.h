/* Levelled log lines with wall-clock time and pid, to stderr (or a file).
 *
 *   2026-11-24T17:30:00.123Z psod[1234] INFO round 12 closed in 3.1 ms
 *
 * Shared by psod, psoworker and the tools. log_ratelimited() is for lines a
 * peer can trigger at will: it prints at most `burst` lines per key per
 * minute and reports how many it suppressed, so a hostile peer cannot flood
 * the log. */
#ifndef PSOD_LOG_H
#define PSOD_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_init(const char *progname, enum log_level level, FILE *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rate limit per key (a small fixed table; keys hashed). */
void log_ratelimited(enum log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A number for a user-facing line: printf of `fmt` (a literal taking one
 * double) with v, or "n/a" when v is NaN or infinite. Returns buf, which
 * holds LOG_NUM_LEN bytes. */
#define LOG_NUM_LEN 32
const char *log_num(char *buf, const char *fmt, double v);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
