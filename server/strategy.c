/* The strategy registry and the helpers strategies share: see strategy.h. */
#include "server/strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"

const struct strategy_ops *const strategy_all[] = {
    &strategy_pso, &strategy_avg, &strategy_easgd, &strategy_diloco, &strategy_ssgd, NULL,
};

const struct strategy_ops *strategy_find(const char *name)
{
    for (int i = 0; strategy_all[i]; i++)
        if (strcmp(strategy_all[i]->name, name) == 0)
            return strategy_all[i];
    return NULL;
}

const char *strategy_names(void) { return "pso, avg, easgd, diloco, ssgd"; }

float *strategy_alloc(size_t n)
{
    void *p = NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        return NULL;
    return p;
}

int strategy_order_add(struct strategy_order *o, uint64_t key)
{
    if (o->count == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 8;
        uint32_t *idx = realloc(o->idx, cap * sizeof *idx);
        if (!idx)
            return -1;
        o->idx = idx;
        uint64_t *keys = realloc(o->key, cap * sizeof *keys);
        if (!keys)
            return -1;
        o->key = keys;
        o->cap = cap;
    }
    uint32_t id = (uint32_t)o->count++;
    o->key[id] = key;
    size_t j = id; /* insertion: ties keep id order */
    while (j > 0 && o->key[o->idx[j - 1]] > key) {
        o->idx[j] = o->idx[j - 1];
        j--;
    }
    o->idx[j] = id;
    return (int)id;
}

void strategy_order_rekey(struct strategy_order *o, uint32_t id, uint64_t key)
{
    /* Take id out of the order and insert it again under its new key. */
    size_t j = 0;
    while (j < o->count && o->idx[j] != id)
        j++;
    for (; j + 1 < o->count; j++)
        o->idx[j] = o->idx[j + 1];
    o->key[id] = key;
    j = o->count - 1;
    while (j > 0 && (o->key[o->idx[j - 1]] > key ||
                     (o->key[o->idx[j - 1]] == key && o->idx[j - 1] > id))) {
        o->idx[j] = o->idx[j - 1];
        j--;
    }
    o->idx[j] = id;
}

void strategy_order_free(struct strategy_order *o)
{
    free(o->idx);
    free(o->key);
    memset(o, 0, sizeof *o);
}

void strategy_mean(float *out, float *const *x, const struct strategy_order *o, size_t n,
                   size_t *k)
{
    const size_t count = o->count;
    /* Up to four vectors per pass (four read streams and one write stream
     * stay within what the prefetchers follow), the scale folded into the
     * last pass: one pass in all for up to four workers. The order of the
     * sums is fixed, so the result is deterministic. */
    const float *src[4];
    size_t m = 0, total = 0;
    for (size_t i = 0; i < count; i++)
        total += x[i] != NULL;
    *k = total;
    if (total == 0)
        return;
    const float inv = 1.0f / (float)total;
    size_t used = 0;
    for (size_t j = 0; j < count; j++) {
        size_t i = o->idx[j];
        if (!x[i])
            continue;
        src[m++] = x[i];
        used++;
        if (m < 4 && used < total)
            continue;
        const int first = used <= 4, last = used == total;
        const float scale = last ? inv : 1.0f;
        float *restrict dst = out;
        const float *restrict a = src[0], *restrict b = m > 1 ? src[1] : NULL,
                              *restrict c = m > 2 ? src[2] : NULL, *restrict d = m > 3 ? src[3] : NULL;
        switch (m) {
        case 4:
            for (size_t e = 0; e < n; e++)
                dst[e] = ((first ? 0.0f : dst[e]) + a[e] + b[e] + c[e] + d[e]) * scale;
            break;
        case 3:
            for (size_t e = 0; e < n; e++)
                dst[e] = ((first ? 0.0f : dst[e]) + a[e] + b[e] + c[e]) * scale;
            break;
        case 2:
            for (size_t e = 0; e < n; e++)
                dst[e] = ((first ? 0.0f : dst[e]) + a[e] + b[e]) * scale;
            break;
        default:
            for (size_t e = 0; e < n; e++)
                dst[e] = ((first ? 0.0f : dst[e]) + a[e]) * scale;
            break;
        }
        m = 0;
    }
}

void strategy_broadcast(const float *src, float *const *x, size_t count, size_t n,
                        strategy_done_fn *done, void *ctx)
{
    uint32_t crc = done ? crc32c(0, src, n * sizeof(float)) : 0;
    for (size_t i = 0; i < count; i++) {
        if (!x[i])
            continue;
        memcpy(x[i], src, n * sizeof(float));
        if (done)
            done(ctx, (int)i, crc);
    }
}

double strategy_mean_loss(float *const *x, const double *loss, const struct strategy_order *o)
{
    double sum = 0;
    size_t k = 0;
    for (size_t j = 0; j < o->count; j++) {
        uint32_t i = o->idx[j];
        if (x[i] && isfinite(loss[i])) {
            sum += loss[i];
            k++;
        }
    }
    return k ? sum / (double)k : INFINITY;
}

void strategy_center_init(struct strategy_center *c, size_t n, const float *model)
{
    c->n = n;
    c->model = model;
    c->have = 0;
    c->loss = INFINITY;
}

const float *strategy_center_global(const void *st)
{
    const struct strategy_center *c = st;
    return c->have ? c->model : NULL;
}

double strategy_center_loss(const void *st) { return ((const struct strategy_center *)st)->loss; }
int strategy_center_no_particle(const void *st) { return (void)st, -1; }
double strategy_center_no_pbest(const void *st, int i) { return (void)st, (void)i, NAN; }

void strategy_center_reset(void *st, int i, const float *x0, uint64_t stream)
{
    (void)x0; /* no per-particle state but the order of the sums */
    strategy_order_rekey(&((struct strategy_center *)st)->ord, (uint32_t)i, stream);
}

void strategy_center_save(const struct strategy_center *c, struct ckpt_writer *w,
                          float *const *arrays, int k)
{
    ckpt_put_u64(w, c->n);
    ckpt_put_u64(w, (uint64_t)c->have);
    ckpt_put_f64(w, c->loss);
    for (int j = 0; j < k; j++)
        ckpt_put(w, arrays[j], c->n * sizeof(float));
}

int strategy_center_load(struct strategy_center *c, struct ckpt_reader *r, float *const *arrays,
                         int k, const char *what)
{
    uint64_t n, have;
    if (ckpt_get_u64(r, &n) || ckpt_get_u64(r, &have) || ckpt_get_f64(r, &c->loss))
        return -1;
    if (n != c->n) {
        snprintf(r->err, sizeof r->err, "%s state of %llu parameters, expected %zu", what,
                 (unsigned long long)n, c->n);
        return -1;
    }
    c->have = have != 0;
    for (int j = 0; j < k; j++)
        if (ckpt_get(r, arrays[j], c->n * sizeof(float)))
            return -1;
    return 0;
}
