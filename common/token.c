/* The operator's token file (see token.h). */
#include "common/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"

__attribute__((format(printf, 3, 4))) static int s_err(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int token_default_path(const char *endpoint, char *out, size_t len, char *err, size_t errlen)
{
    char key[32];
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        snprintf(key, sizeof key, "ipc-%016llx", (unsigned long long)hash_fnv1a64(endpoint + 6));
    } else {
        const char *colon = strrchr(endpoint, ':');
        const char *p = colon ? colon + 1 : "";
        size_t n = strspn(p, "0123456789");
        if (strncmp(endpoint, "tcp://", 6) != 0 || n == 0 || n > 5 || p[n] != '\0')
            return s_err(err, errlen, "no port in endpoint '%s'%s", endpoint,
                         " (tcp://HOST:PORT or ipc://PATH)");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
    }
    const char *run = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    int n;
    if (run && run[0] == '/' && stat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid())
        n = snprintf(out, len, "%s/psod/admin-%s.token", run, key);
    else
        n = snprintf(out, len, "/tmp/psod-%u/admin-%s.token", (unsigned)getuid(), key);
    if (n < 0 || (size_t)n >= len)
        return s_err(err, errlen, "token path for '%s' too long", endpoint);
    return 0;
}

/* The directory of path: made 0700 if missing; refused unless it is ours
 * and nobody else may write in it. */
static int s_private_dir(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s_err(err, errlen, "cannot make '%s': %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return s_err(err, errlen, "'%s' is not a directory", dir);
    if (st.st_uid != getuid() || (st.st_mode & 022))
        return s_err(err, errlen,
                     "'%s' belongs to another user or others may write in it: "
                     "no token written there",
                     dir);
    return 0;
}

int token_create(const char *path, char hex[TOKEN_HEX + 1], char *err, size_t errlen)
{
    unsigned char raw[TOKEN_HEX / 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof raw)
        return s_err(err, errlen, "cannot read /dev/urandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    if (s_private_dir(path, err, errlen) != 0)
        return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return s_err(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
    int ok = write(fd, hex, TOKEN_HEX) == TOKEN_HEX && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return s_err(err, errlen, "cannot write '%s': %s", path, strerror(e));
    }
    return 0;
}

int token_read(const char *path, char hex[TOKEN_HEX + 1], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return s_err(err, errlen, "cannot read '%s': %s", path, strerror(errno));
    char line[TOKEN_HEX + 8] = "";
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || strlen(line) != TOKEN_HEX || strspn(line, "0123456789abcdef") != TOKEN_HEX)
        return s_err(err, errlen, "'%s' does not hold a psod token", path);
    memcpy(hex, line, TOKEN_HEX + 1);
    return 0;
}

int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = la != lb || la != TOKEN_HEX;
    for (size_t i = 0; i < TOKEN_HEX; i++)
        diff |= (unsigned)(unsigned char)(i < la ? a[i] : 0) ^
                (unsigned)(unsigned char)(i < lb ? b[i] : 0);
    return diff == 0;
}
