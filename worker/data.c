/* Dataset readers: see data.h. */
#include "worker/data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "worker/client/psoclient.h"
#include "common/rng.h"

static int s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void dataset_free(struct dataset *d)
{
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* Read exactly len bytes; 0 or -1 with err naming the file. */
static int s_read(gzFile f, void *buf, size_t len, const char *path, const char *what, char *err,
                  size_t errlen)
{
    size_t got = 0;
    while (got < len) {
        unsigned chunk = len - got > (1u << 30) ? 1u << 30 : (unsigned)(len - got);
        int n = gzread(f, (char *)buf + got, chunk);
        if (n <= 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return s_err(err, errlen, "%s: truncated while reading %s (%zu of %zu bytes)%s%s", path,
                         what, got, len, zerr ? ": " : "", zerr ? msg : "");
        }
        got += (size_t)n;
    }
    return 0;
}

static uint32_t s_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static gzFile s_open(const char *path, char *err, size_t errlen)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        s_err(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    return f;
}

int idx_load(struct dataset *d, const char *images, const char *labels, float mean, float std,
             char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    unsigned char hdr[16];
    gzFile f = s_open(images, err, errlen);
    if (!f)
        return -1;
    if (s_read(f, hdr, 16, images, "the header", err, errlen)) {
        gzclose(f);
        return -1;
    }
    if (s_be32(hdr) != 0x00000803) {
        gzclose(f);
        return s_err(err, errlen, "%s: magic number %08x, expected 00000803 (idx3-ubyte images)",
                     images, s_be32(hdr));
    }
    uint32_t n = s_be32(hdr + 4), h = s_be32(hdr + 8), w = s_be32(hdr + 12);
    if (n == 0 || h == 0 || w == 0 || h > 4096 || w > 4096 || n > (1u << 28)) {
        gzclose(f);
        return s_err(err, errlen, "%s: implausible dimensions %u x %u x %u", images, n, h, w);
    }
    size_t pixels = (size_t)n * h * w;
    unsigned char *raw = malloc(pixels);
    d->x = malloc(pixels * sizeof(float));
    d->y = malloc(n);
    if (!raw || !d->x || !d->y) {
        free(raw);
        dataset_free(d);
        gzclose(f);
        return s_err(err, errlen, "%s: out of memory for %u images", images, n);
    }
    int rc = s_read(f, raw, pixels, images, "the pixels", err, errlen);
    gzclose(f);
    if (rc == 0) {
        f = s_open(labels, err, errlen);
        rc = f ? s_read(f, hdr, 8, labels, "the header", err, errlen) : -1;
        if (rc == 0 && s_be32(hdr) != 0x00000801)
            rc = s_err(err, errlen, "%s: magic number %08x, expected 00000801 (idx1-ubyte labels)",
                       labels, s_be32(hdr));
        if (rc == 0 && s_be32(hdr + 4) != n)
            rc = s_err(err, errlen, "%s: %u labels for the %u images of %s", labels,
                       s_be32(hdr + 4), n, images);
        if (rc == 0)
            rc = s_read(f, d->y, n, labels, "the labels", err, errlen);
        if (f)
            gzclose(f);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (d->y[i] > 9)
            rc = s_err(err, errlen, "%s: label %u at index %zu is not a digit class 0-9", labels,
                       d->y[i], i);
    if (rc != 0) {
        free(raw);
        dataset_free(d);
        return -1;
    }
    const float scale = 1.0f / (255.0f * std), shift = mean / std;
    for (size_t i = 0; i < pixels; i++)
        d->x[i] = (float)raw[i] * scale - shift;
    free(raw);
    d->n = n, d->c = 1, d->h = (int)h, d->w = (int)w;
    return 0;
}

int cifar_load(struct dataset *d, const char *const *files, int n_files, const float mean[3],
               const float std[3], char *err, size_t errlen)
{
    enum { REC = 3073 };
    memset(d, 0, sizeof *d);
    size_t total = 0, sizes[64];
    if (n_files < 1 || n_files > 64)
        return s_err(err, errlen, "need 1 to 64 CIFAR-10 files, got %d", n_files);
    for (int k = 0; k < n_files; k++) {
        struct stat st;
        if (stat(files[k], &st) != 0)
            return s_err(err, errlen, "%s: %s", files[k], strerror(errno));
        if (st.st_size == 0 || st.st_size % REC != 0)
            return s_err(err, errlen,
                         "%s: %lld bytes is not a whole number of 3073-byte CIFAR-10 records",
                         files[k], (long long)st.st_size);
        sizes[k] = (size_t)st.st_size / REC;
        total += sizes[k];
    }
    d->x = malloc(total * 3072 * sizeof(float));
    d->y = malloc(total);
    unsigned char *rec = malloc(REC);
    if (!d->x || !d->y || !rec) {
        free(rec);
        dataset_free(d);
        return s_err(err, errlen, "out of memory for %zu CIFAR-10 images", total);
    }
    size_t at = 0;
    for (int k = 0; k < n_files; k++) {
        FILE *f = fopen(files[k], "rb");
        if (!f) {
            free(rec);
            dataset_free(d);
            return s_err(err, errlen, "%s: %s", files[k], strerror(errno));
        }
        for (size_t r = 0; r < sizes[k]; r++, at++) {
            int truncated = fread(rec, 1, REC, f) != REC;
            if (truncated || rec[0] > 9) {
                fclose(f);
                free(rec);
                dataset_free(d);
                return s_err(err, errlen, "%s: record %zu %s", files[k], r,
                             truncated ? "is truncated" : "has a label above 9");
            }
            d->y[at] = rec[0];
            for (int c = 0; c < 3; c++) {
                const float scale = 1.0f / (255.0f * std[c]), shift = mean[c] / std[c];
                for (int i = 0; i < 1024; i++)
                    d->x[at * 3072 + (size_t)c * 1024 + i] =
                        (float)rec[1 + c * 1024 + i] * scale - shift;
            }
        }
        fclose(f);
    }
    free(rec);
    d->n = total, d->c = 3, d->h = 32, d->w = 32;
    return 0;
}

static int s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* dir/name or dir/name.gz, whichever exists (plain first). */
static void s_pick(char *out, size_t len, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
    if (!s_exists(out)) {
        char gz[1024];
        snprintf(gz, sizeof gz, "%s/%s.gz", dir, name);
        if (s_exists(gz))
            snprintf(out, len, "%s", gz);
    }
}

int dataset_load(struct dataset *train, struct dataset *test, const char *name, const char *dir,
                 char *err, size_t errlen)
{
    char a[1024], b[1024];
    if (!strcmp(name, "mnist") || !strcmp(name, "fashion-mnist")) {
        int mnist = !strcmp(name, "mnist");
        float mean = mnist ? 0.1307f : 0.2860f, std = mnist ? 0.3081f : 0.3530f;
        s_pick(a, sizeof a, dir, "train-images-idx3-ubyte");
        s_pick(b, sizeof b, dir, "train-labels-idx1-ubyte");
        if (idx_load(train, a, b, mean, std, err, errlen))
            return -1;
        s_pick(a, sizeof a, dir, "t10k-images-idx3-ubyte");
        s_pick(b, sizeof b, dir, "t10k-labels-idx1-ubyte");
        if (idx_load(test, a, b, mean, std, err, errlen)) {
            dataset_free(train);
            return -1;
        }
        return 0;
    }
    if (!strcmp(name, "cifar10")) {
        static const float mean[3] = {0.4914f, 0.4822f, 0.4465f};
        static const float std[3] = {0.2470f, 0.2435f, 0.2616f};
        char paths[5][1024];
        const char *files[5];
        int n = 0;
        for (int k = 1; k <= 5; k++) {
            snprintf(paths[n], sizeof paths[n], "%s/data_batch_%d.bin", dir, k);
            if (s_exists(paths[n]))
                files[n] = paths[n], n++;
        }
        if (n == 0) {
            snprintf(paths[0], sizeof paths[0], "%s/data_batch_1_first4000.bin", dir);
            files[0] = paths[0], n = 1;
        }
        if (cifar_load(train, files, n, mean, std, err, errlen))
            return -1;
        snprintf(a, sizeof a, "%s/test_batch.bin", dir);
        if (!s_exists(a))
            snprintf(a, sizeof a, "%s/test_first1000.bin", dir);
        const char *tf[1] = {a};
        if (cifar_load(test, tf, 1, mean, std, err, errlen)) {
            dataset_free(train);
            return -1;
        }
        return 0;
    }
    return s_err(err, errlen, "unknown dataset '%s' (choose mnist, fashion-mnist, cifar10)", name);
}

void dataset_permutation(size_t *order, size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

int dataset_shard_by(struct dataset *d, int index, int count, uint64_t seed, int mode, double alpha,
                     int classes, char *err, size_t errlen)
{
    size_t *order = malloc((d->n ? d->n : 1) * sizeof *order), n = 0;
    if (!order)
        return s_err(err, errlen, "out of memory for shard %d of %d", index, count);
    if (psoc_partition(d->y, d->n, index, count, mode, alpha, classes, seed, order, &n, err,
                       errlen) != 0) {
        free(order);
        return -1;
    }
    size_t per = (size_t)d->c * d->h * d->w;
    float *x = malloc((n ? n : 1) * per * sizeof(float));
    uint8_t *y = malloc(n ? n : 1);
    if (!x || !y) {
        free(order), free(x), free(y);
        return s_err(err, errlen, "out of memory for shard %d of %d", index, count);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * per, d->x + order[i] * per, per * sizeof(float));
        y[i] = d->y[order[i]];
    }
    free(order);
    free(d->x);
    free(d->y);
    d->x = x, d->y = y, d->n = n;
    return 0;
}

void dataset_flip_labels(struct dataset *d, int classes)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->y[i] < classes)
            d->y[i] = (uint8_t)(classes - 1 - d->y[i]);
}

void dataset_shuffle_labels(struct dataset *d, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = d->n; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        uint8_t t = d->y[i - 1];
        d->y[i - 1] = d->y[j];
        d->y[j] = t;
    }
}

int dataset_shard(struct dataset *d, int index, int count, uint64_t seed, char *err, size_t errlen)
{
    return dataset_shard_by(d, index, count, seed, PSOC_SHARD_IID, 0, 0, err, errlen);
}

int dataset_split_tail(struct dataset *d, size_t k, struct dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (k == 0 || k >= d->n)
        return s_err(err, errlen, "cannot hold out %zu of %zu samples", k, d->n);
    size_t per = (size_t)d->c * d->h * d->w;
    out->x = malloc(k * per * sizeof(float));
    out->y = malloc(k);
    if (!out->x || !out->y) {
        free(out->x), free(out->y);
        out->x = NULL, out->y = NULL;
        return s_err(err, errlen, "out of memory for %zu held-out samples", k);
    }
    size_t from = d->n - k;
    memcpy(out->x, d->x + from * per, k * per * sizeof(float));
    memcpy(out->y, d->y + from, k);
    out->n = k, out->c = d->c, out->h = d->h, out->w = d->w;
    d->n = from;
    return 0;
}

void dataset_batch(const struct dataset *d, const size_t *order, size_t from, int B, float *x,
                   uint8_t *y)
{
    size_t per = (size_t)d->c * d->h * d->w;
    for (int b = 0; b < B; b++) {
        size_t i = order[from + (size_t)b];
        memcpy(x + (size_t)b * per, d->x + i * per, per * sizeof(float));
        y[b] = d->y[i];
    }
}
