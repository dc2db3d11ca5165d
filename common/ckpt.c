/* Checkpoint files: see ckpt.h. */
#include "common/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"

int ckpt_begin(struct ckpt_writer *w, const char *path, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path ||
        snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path) >= (int)sizeof w->tmp) {
        snprintf(err, errlen, "checkpoint path too long");
        return -1;
    }
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        snprintf(err, errlen, "cannot create '%s': %s", w->tmp, strerror(errno));
        return -1;
    }
    ckpt_put(w, CKPT_MAGIC, 4);
    uint32_t v = CKPT_VERSION;
    ckpt_put(w, &v, 4);
    return 0;
}

void ckpt_put(struct ckpt_writer *w, const void *data, size_t len)
{
    if (w->failed || len == 0)
        return;
    w->crc = crc32c(w->crc, data, len);
    if (fwrite(data, 1, len, w->f) != len)
        w->failed = errno ? errno : EIO;
}

void ckpt_put_u64(struct ckpt_writer *w, uint64_t v) { ckpt_put(w, &v, 8); }
void ckpt_put_f64(struct ckpt_writer *w, double v) { ckpt_put(w, &v, 8); }

void ckpt_put_str(struct ckpt_writer *w, const char *s)
{
    uint64_t len = strlen(s);
    ckpt_put_u64(w, len);
    ckpt_put(w, s, (size_t)len);
}

int ckpt_commit(struct ckpt_writer *w, char *err, size_t errlen)
{
    uint32_t crc = w->crc;
    if (!w->failed && fwrite(&crc, 1, 4, w->f) != 4)
        w->failed = errno ? errno : EIO;
    if (!w->failed && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        w->failed = errno ? errno : EIO;
    if (fclose(w->f) != 0 && !w->failed)
        w->failed = errno ? errno : EIO;
    w->f = NULL;
    if (w->failed) {
        snprintf(err, errlen, "cannot write '%s': %s", w->tmp, strerror(w->failed));
        unlink(w->tmp);
        return -1;
    }
    if (rename(w->tmp, w->path) != 0) {
        snprintf(err, errlen, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
        unlink(w->tmp);
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", w->path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

void ckpt_abort(struct ckpt_writer *w)
{
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->tmp);
    }
}

static int s_fail(struct ckpt_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int s_fail(struct ckpt_reader *r, const char *fmt, ...)
{
    if (!r->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, sizeof r->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Magic and version, once r->f and r->left are set. */
static int s_open_header(struct ckpt_reader *r)
{
    char magic[4];
    uint32_t version;
    if (ckpt_get(r, magic, 4) != 0 || memcmp(magic, CKPT_MAGIC, 4) != 0)
        return s_fail(r, "not a psod checkpoint (bad magic)");
    if (ckpt_get(r, &version, 4) != 0 || version < CKPT_VERSION_MIN || version > CKPT_VERSION)
        return s_fail(r, "checkpoint version %u, this build reads %d to %d", version,
                      CKPT_VERSION_MIN, CKPT_VERSION);
    r->version = version;
    return 0;
}

int ckpt_open(struct ckpt_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->f = fopen(path, "rb");
    if (!r->f)
        return s_fail(r, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0)
        return s_fail(r, "cannot stat: %s", strerror(errno));
    r->left = (uint64_t)st.st_size;
    return s_open_header(r);
}

int ckpt_open_mem(struct ckpt_reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof *r);
    if (len == 0)
        return s_fail(r, "empty");
    r->f = fmemopen((void *)data, len, "rb");
    if (!r->f)
        return s_fail(r, "fmemopen: %s", strerror(errno));
    r->left = len;
    return s_open_header(r);
}

int ckpt_get(struct ckpt_reader *r, void *data, size_t len)
{
    if (r->err[0])
        return -1;
    if (r->left < 4 || len > r->left - 4) /* the trailing CRC must still follow */
        return s_fail(r, "truncated (a field of %zu bytes runs past the end)", len);
    if (len && fread(data, 1, len, r->f) != len)
        return s_fail(r, "read error");
    r->crc = crc32c(r->crc, data, len);
    r->left -= len;
    return 0;
}

int ckpt_get_u64(struct ckpt_reader *r, uint64_t *v) { return ckpt_get(r, v, 8); }
int ckpt_get_f64(struct ckpt_reader *r, double *v) { return ckpt_get(r, v, 8); }

int ckpt_get_str(struct ckpt_reader *r, char *s, size_t cap)
{
    uint64_t len;
    if (ckpt_get_u64(r, &len) != 0)
        return -1;
    if (len >= cap)
        return s_fail(r, "string of %llu bytes where at most %zu fit", (unsigned long long)len,
                      cap - 1);
    if (ckpt_get(r, s, (size_t)len) != 0)
        return -1;
    s[len] = '\0';
    return 0;
}

int ckpt_finish(struct ckpt_reader *r)
{
    if (r->err[0])
        return -1;
    uint32_t want, got = r->crc;
    if (r->left != 4)
        return s_fail(r, "%llu unexpected bytes before the checksum",
                      (unsigned long long)(r->left - 4));
    if (fread(&want, 1, 4, r->f) != 4)
        return s_fail(r, "read error");
    if (want != got)
        return s_fail(r, "checksum mismatch (corrupt file)");
    return 0;
}

void ckpt_close(struct ckpt_reader *r)
{
    if (r->f)
        fclose(r->f);
    r->f = NULL;
}

int ckpt_verify(const char *path, uint32_t *version, char *err, size_t errlen)
{
    struct ckpt_reader r;
    int rc = ckpt_open(&r, path);
    unsigned char buf[1 << 16];
    while (rc == 0 && r.left > 4) {
        size_t n = r.left - 4 < sizeof buf ? (size_t)(r.left - 4) : sizeof buf;
        rc = ckpt_get(&r, buf, n);
    }
    if (rc == 0)
        rc = ckpt_finish(&r);
    if (rc != 0)
        snprintf(err, errlen, "%s", r.err[0] ? r.err : "unreadable");
    else if (version)
        *version = r.version;
    ckpt_close(&r);
    return rc;
}

static int s_name_cmp(const void *a, const void *b)
{
    return -strcmp(*(char *const *)a, *(char *const *)b); /* newest first */
}

/* Checkpoint files in dir, newest first (names carry the zero-padded
 * round). Returns the count; *names is malloc'ed (free with ckpt_list_free). */
size_t ckpt_list(const char *dir, char ***names)
{
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) != 0 || len < 11 ||
            strcmp(e->d_name + len - strlen(CKPT_SUFFIX), CKPT_SUFFIX) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **more = realloc(*names, cap * sizeof *more);
            if (!more)
                break;
            *names = more;
        }
        if (((*names)[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n)
        qsort(*names, n, sizeof **names, s_name_cmp);
    return n;
}

void ckpt_list_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
