/* How a swarm's workers split a training set: see psoc_partition in
 * psoclient.h. Everything is drawn from one seeded xoshiro256** stream, so a
 * worker of either engine computes every worker's shard and keeps its own. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/client/psoclient.h"
#include "common/rng.h"

/* Label skew gives up after this many draws that leave a worker too few samples. */
#define PARTITION_DRAWS 100
#define PARTITION_CLASSES 256

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

static void s_shuffle(size_t *v, size_t n, struct rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i), t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Gamma(a, 1) by Marsaglia and Tsang (2000); a < 1 boosted by U^(1/a). */
static double s_gamma(struct rng *r, double a)
{
    double boost = 1.0;
    if (a < 1.0) {
        double u = rng_double(r);
        boost = pow(u > 0 ? u : 1e-300, 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rng_double(r);
        if (u < 1.0 - 0.0331 * x * x * x * x ||
            log(u > 0 ? u : 1e-300) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * boost;
    }
}

static int s_cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Every class's samples, each class's run shuffled: byclass (n), with
 * class c at [start[c], start[c + 1]). */
static void s_by_class(const uint8_t *labels, size_t n, struct rng *r, size_t *byclass,
                       size_t *start)
{
    size_t fill[PARTITION_CLASSES] = {0};
    memset(start, 0, (PARTITION_CLASSES + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++)
        start[labels[i] + 1]++;
    for (int c = 0; c < PARTITION_CLASSES; c++)
        start[c + 1] += start[c];
    for (size_t i = 0; i < n; i++)
        byclass[start[labels[i]] + fill[labels[i]]++] = i;
    for (int c = 0; c < PARTITION_CLASSES; c++)
        s_shuffle(byclass + start[c], start[c + 1] - start[c], r);
}

static int s_dirichlet(const uint8_t *labels, size_t n, int index, int count, double alpha,
                       struct rng *r, size_t *out, size_t *out_n, char *err, size_t errlen)
{
    size_t *byclass = malloc(n * sizeof *byclass), *have = calloc((size_t)count, sizeof *have);
    size_t *cut = malloc(((size_t)count + 1) * sizeof *cut);
    double *p = malloc((size_t)count * sizeof *p);
    size_t start[PARTITION_CLASSES + 1];
    if (!byclass || !have || !cut || !p) {
        free(byclass), free(have), free(cut), free(p);
        return s_err(err, errlen, "out of memory for a partition of %zu samples", n);
    }
    s_by_class(labels, n, r, byclass, start);
    size_t least = n / (size_t)count < 10 ? n / (size_t)count : 10;
    int rc = -1;
    for (int draw = 0; draw < PARTITION_DRAWS && rc != 0; draw++) {
        memset(have, 0, (size_t)count * sizeof *have);
        *out_n = 0;
        for (int c = 0; c < PARTITION_CLASSES; c++) {
            size_t nc = start[c + 1] - start[c];
            if (nc == 0)
                continue;
            double sum = 0;
            for (int k = 0; k < count; k++)
                sum += p[k] = s_gamma(r, alpha);
            double acc = 0;
            cut[0] = 0;
            for (int k = 0; k < count; k++) {
                acc += p[k];
                cut[k + 1] = k == count - 1 ? nc : (size_t)floor(nc * (sum > 0 ? acc / sum : 0));
                if (cut[k + 1] < cut[k])
                    cut[k + 1] = cut[k];
                have[k] += cut[k + 1] - cut[k];
            }
            for (size_t j = cut[index]; j < cut[index + 1]; j++)
                out[(*out_n)++] = byclass[start[c] + j];
        }
        rc = 0;
        for (int k = 0; k < count; k++)
            if (have[k] < least)
                rc = -1;
    }
    free(byclass), free(have), free(cut), free(p);
    if (rc != 0)
        return s_err(err, errlen,
                     "Dirichlet(%g) left a worker of %d with under %zu samples in %d draws: "
                     "raise --shard-alpha or use fewer workers",
                     alpha, count, least, PARTITION_DRAWS);
    qsort(out, *out_n, sizeof *out, s_cmp_size);
    return 0;
}

static int s_classes(const uint8_t *labels, size_t n, int index, int count, int classes,
                     struct rng *r, size_t *out, size_t *out_n, char *err, size_t errlen)
{
    size_t runs = (size_t)count * (size_t)classes;
    if (runs > n)
        return s_err(err, errlen, "%d workers x %d classes is more runs than %zu samples", count,
                     classes, n);
    size_t *byclass = malloc(n * sizeof *byclass), *deal = calloc(runs, sizeof *deal);
    size_t start[PARTITION_CLASSES + 1];
    if (!byclass || !deal) {
        free(byclass), free(deal);
        return s_err(err, errlen, "out of memory for a partition of %zu samples", n);
    }
    s_by_class(labels, n, r, byclass, start);
    for (size_t i = 0; i < runs; i++)
        deal[i] = i;
    s_shuffle(deal, runs, r);
    *out_n = 0;
    for (int j = 0; j < classes; j++) {
        size_t run = deal[(size_t)index * classes + j];
        for (size_t i = n * run / runs; i < n * (run + 1) / runs; i++)
            out[(*out_n)++] = byclass[i];
    }
    free(byclass), free(deal);
    qsort(out, *out_n, sizeof *out, s_cmp_size);
    return 0;
}

int psoc_partition(const uint8_t *labels, size_t n, int index, int count, int mode, double alpha,
                   int classes, uint64_t seed, size_t *out, size_t *out_n, char *err, size_t errlen)
{
    if (count < 1 || index < 0 || index >= count || (size_t)count > n)
        return s_err(err, errlen, "shard %d of %d is not possible for %zu samples", index, count,
                     n);
    struct rng r;
    rng_seed(&r, seed);
    switch (mode) {
    case PSOC_SHARD_IID: {
        size_t *order = malloc(n * sizeof *order);
        if (!order)
            return s_err(err, errlen, "out of memory for a partition of %zu samples", n);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        s_shuffle(order, n, &r);
        size_t lo = n * (size_t)index / (size_t)count, hi = n * (size_t)(index + 1) / (size_t)count;
        memcpy(out, order + lo, (hi - lo) * sizeof *out);
        *out_n = hi - lo;
        free(order);
        return 0;
    }
    case PSOC_SHARD_DIRICHLET:
        if (!(alpha > 0 && alpha <= 1e6))
            return s_err(err, errlen, "the Dirichlet alpha must be in (0, 1e6], not %g", alpha);
        return s_dirichlet(labels, n, index, count, alpha, &r, out, out_n, err, errlen);
    case PSOC_SHARD_CLASSES:
        if (classes < 1 || classes > PARTITION_CLASSES)
            return s_err(err, errlen, "classes per worker must be 1..%d, not %d", PARTITION_CLASSES,
                         classes);
        return s_classes(labels, n, index, count, classes, &r, out, out_n, err, errlen);
    default: return s_err(err, errlen, "unknown shard mode %d", mode);
    }
}

int psoc_shard_mode_parse(const char *name)
{
    static const char *const names[] = {"iid", "dirichlet", "classes"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    return -1;
}
