/* Model files: see modelfile.h. */
#include "common/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"

static void s_put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void s_put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t s_get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t s_get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int s_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int modelfile_write(const char *path, const struct modelfile_info *info, const float *params,
                    char *err, size_t errlen)
{
    unsigned char h[MODELFILE_HEADER_V2];
    memset(h, 0, sizeof h);
    memcpy(h, MODELFILE_MAGIC, 4);
    s_put32(h + 4, MODELFILE_VERSION);
    s_put64(h + 8, info->layout_hash);
    s_put64(h + 16, info->param_count);
    size_t bytes = (size_t)info->param_count * sizeof(float);
    s_put32(h + 24, crc32c(0, params, bytes));
    s_put64(h + 32, info->round);
    memcpy(h + 40, &info->loss, 8);
    memcpy(h + 48, info->strategy, strnlen(info->strategy, 15));
    memcpy(h + 64, info->model, strnlen(info->model, 31));
    memcpy(h + 96, info->dataset, strnlen(info->dataset, 15));
    for (int k = 0; k < 3; k++)
        s_put32(h + 112 + 4 * k, info->input_shape[k]);
    s_put32(h + 28, crc32c(0, h, sizeof h));

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "model file path too long: '%s'", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create '%s': %s", tmp, strerror(errno));
        return -1;
    }
    if (s_write_all(fd, h, sizeof h) != 0 || s_write_all(fd, params, bytes) != 0 ||
        fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot put '%s' in place: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int modelfile_parse_header(const unsigned char *hdr, size_t len, uint64_t file_size,
                           struct modelfile_info *info, uint32_t *payload_crc, char *err,
                           size_t errlen)
{
    if (len < MODELFILE_HEADER || memcmp(hdr, MODELFILE_MAGIC, 4) != 0) {
        snprintf(err, errlen, "not a psod model file (bad magic)");
        return -1;
    }
    uint32_t version = s_get32(hdr + 4);
    if (version < 1 || version > MODELFILE_VERSION) {
        snprintf(err, errlen, "model file version %u, this build reads 1 to %d", version,
                 MODELFILE_VERSION);
        return -1;
    }
    size_t hlen = version == 1 ? MODELFILE_HEADER : MODELFILE_HEADER_V2;
    if (len < hlen)
        return 1;
    unsigned char h[MODELFILE_HEADER_V2];
    memcpy(h, hdr, hlen);
    uint32_t want = s_get32(h + 28);
    s_put32(h + 28, 0);
    if (crc32c(0, h, hlen) != want) {
        snprintf(err, errlen, "header checksum mismatch (corrupt file)");
        return -1;
    }
    uint64_t count = s_get64(h + 16);
    if (count == 0 || count > MODELFILE_MAX_PARAMS || file_size != hlen + count * sizeof(float)) {
        snprintf(err, errlen, "size %llu bytes does not fit %llu parameters (truncated?)",
                 (unsigned long long)file_size, (unsigned long long)count);
        return -1;
    }
    memset(info, 0, sizeof *info);
    info->layout_hash = s_get64(h + 8);
    info->param_count = count;
    info->round = s_get64(h + 32);
    memcpy(&info->loss, h + 40, 8);
    memcpy(info->strategy, h + 48, 15);
    info->header_size = (uint32_t)hlen;
    if (version >= 2) {
        memcpy(info->model, h + 64, 31);
        memcpy(info->dataset, h + 96, 15);
        for (int k = 0; k < 3; k++)
            info->input_shape[k] = s_get32(h + 112 + 4 * k);
    }
    *payload_crc = s_get32(h + 24);
    return 0;
}

/* Open path and read and check its header (64 bytes, then the rest of a
 * version 2 one). Returns the file positioned at the weights, or NULL with
 * err filled. */
static FILE *s_open_header(const char *path, struct modelfile_info *info, uint32_t *crc, char *err,
                           size_t errlen)
{
    char why[256];
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open model file '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    unsigned char h[MODELFILE_HEADER_V2];
    size_t got = 0;
    int rc = 1;
    for (size_t want = MODELFILE_HEADER; rc == 1; want = MODELFILE_HEADER_V2) {
        if ((got == 0 && fstat(fileno(f), &st) != 0) ||
            fread(h + got, 1, want - got, f) != want - got) {
            snprintf(err, errlen, "model file '%s': shorter than its %zu-byte header", path, want);
            fclose(f);
            return NULL;
        }
        got = want;
        rc = modelfile_parse_header(h, got, (uint64_t)st.st_size, info, crc, why, sizeof why);
    }
    if (rc != 0) {
        snprintf(err, errlen, "model file '%s': %s", path, why);
        fclose(f);
        return NULL;
    }
    return f;
}

int modelfile_read_info(const char *path, struct modelfile_info *info, char *err, size_t errlen)
{
    uint32_t crc;
    FILE *f = s_open_header(path, info, &crc, err, errlen);
    if (!f)
        return -1;
    fclose(f);
    return 0;
}

int modelfile_read(const char *path, struct modelfile_info *info, float **params, char *err,
                   size_t errlen)
{
    *params = NULL;
    uint32_t crc;
    FILE *f = s_open_header(path, info, &crc, err, errlen);
    if (!f)
        return -1;
    size_t bytes = (size_t)info->param_count * sizeof(float);
    float *p = malloc(bytes);
    if (!p) {
        snprintf(err, errlen, "model file '%s': out of memory for %llu parameters", path,
                 (unsigned long long)info->param_count);
        fclose(f);
        return -1;
    }
    if (fread(p, 1, bytes, f) != bytes) {
        snprintf(err, errlen, "model file '%s': truncated weights", path);
        free(p);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (crc32c(0, p, bytes) != crc) {
        snprintf(err, errlen, "model file '%s': weights checksum mismatch (corrupt file)", path);
        free(p);
        return -1;
    }
    *params = p;
    return 0;
}
