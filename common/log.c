/* Log lines: see log.h. Output is line-buffered and each line is written
 * with a single fputs so that lines from several processes sharing a
 * terminal do not interleave mid-line. */
#include "common/log.h"

#include <math.h>

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *s_progname = "psod";
static enum log_level s_level = LOG_INFO;
static FILE *s_out;

static const char *s_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void log_init(const char *progname, enum log_level level, FILE *out)
{
    s_progname = progname;
    s_level = level;
    s_out = out;
}

void log_set_level(enum log_level level) { s_level = level; }
enum log_level log_get_level(void) { return s_level; }

int log_level_parse(const char *name)
{
    static const char *lower[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(name, lower[i]) == 0)
            return i;
    return -1;
}

__attribute__((format(printf, 3, 0))) static void s_vlog(enum log_level level, const char *suffix,
                                                         const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), s_progname, (int)getpid(), s_names[level]);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    if (m > 0 && (size_t)(n + m) >= sizeof line)
        len = sizeof line - 1; /* truncated: keep what fits */
    if (suffix && len + strlen(suffix) < sizeof line - 1) {
        memcpy(line + len, suffix, strlen(suffix) + 1);
        len = strlen(line);
    }
    if (len >= sizeof line - 1)
        len = sizeof line - 2;
    line[len] = '\n';
    line[len + 1] = '\0';
    FILE *out = s_out ? s_out : stderr;
    fputs(line, out);
    fflush(out);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < s_level || level >= LOG_OFF)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

#define RL_SLOTS 64
#define RL_BURST 10
#define RL_WINDOW_S 60

static struct {
    unsigned long hash;
    time_t window;
    unsigned printed, suppressed;
} s_rl[RL_SLOTS];

void log_ratelimited(enum log_level level, const char *key, const char *fmt, ...)
{
    if (level < s_level || level >= LOG_OFF)
        return;
    unsigned long h = 5381;
    for (const char *p = key; *p; p++)
        h = h * 33 + (unsigned char)*p;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    time_t window = now.tv_sec / RL_WINDOW_S;
    unsigned slot = (unsigned)(h % RL_SLOTS);
    char suffix[96] = "";
    if (s_rl[slot].hash != h || s_rl[slot].window != window) {
        if (s_rl[slot].suppressed)
            snprintf(suffix, sizeof suffix, " (%u similar lines suppressed before this)",
                     s_rl[slot].suppressed);
        s_rl[slot].hash = h;
        s_rl[slot].window = window;
        s_rl[slot].printed = 0;
        s_rl[slot].suppressed = 0;
    }
    if (s_rl[slot].printed >= RL_BURST) {
        s_rl[slot].suppressed++;
        return;
    }
    s_rl[slot].printed++;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, suffix[0] ? suffix : NULL, fmt, ap);
    va_end(ap);
}

const char *log_num(char *buf, const char *fmt, double v)
{
    if (!isfinite(v))
        snprintf(buf, LOG_NUM_LEN, "n/a");
    else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(buf, LOG_NUM_LEN, fmt, v); /* callers pass literal formats */
#pragma GCC diagnostic pop
    return buf;
}
