/* The strategy registry and the helpers strategies share: see strategy.h. */
#include "server/strategy/strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/pool.h"

#define S_ADDR(s) &strategy_##s,
#define S_NAME(s) #s,
#define S_LISTED(s) ", " #s
const struct strategy_ops *const strategy_all[] = {STRATEGY_LIST(S_ADDR) NULL};
const char *const strategy_choices[] = {STRATEGY_LIST(S_NAME) NULL};

const struct strategy_ops *strategy_find(const char *name)
{
    for (int i = 0; strategy_all[i]; i++)
        if (strcmp(strategy_all[i]->name, name) == 0)
            return strategy_all[i];
    return NULL;
}

const char *strategy_names(void) { return &(STRATEGY_LIST(S_LISTED))[2]; }

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
    o->version++;
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
    o->version++;
    size_t j = 0;
    while (j < o->count && o->idx[j] != id)
        j++;
    for (; j + 1 < o->count; j++)
        o->idx[j] = o->idx[j + 1];
    o->key[id] = key;
    j = o->count - 1;
    while (j > 0 &&
           (o->key[o->idx[j - 1]] > key || (o->key[o->idx[j - 1]] == key && o->idx[j - 1] > id))) {
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

void strategy_mean(float *out, float *const *x, const struct strategy_order *o, size_t n, size_t *k)
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
                              *restrict c = m > 2 ? src[2] : NULL,
                              *restrict d = m > 3 ? src[3] : NULL;
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

struct s_copies {
    const float *src;
    float *const *x;
    size_t count;
};

/* Elements [lo, hi) of src into every pushed vector. */
static void s_copy_range(void *arg, size_t lo, size_t hi, int part)
{
    (void)part;
    const struct s_copies *c = arg;
    for (size_t i = 0; i < c->count; i++)
        if (c->x[i])
            memcpy(c->x[i] + lo, c->src + lo, (hi - lo) * sizeof(float));
}

void strategy_broadcast(const float *src, float *const *x, size_t count, size_t n,
                        strategy_done_fn *done, void *ctx)
{
    uint32_t crc = done ? crc32c(0, src, n * sizeof(float)) : 0;
    struct s_copies c = {src, x, count};
    pool_for(n, (size_t)1 << 18, s_copy_range, &c);
    for (size_t i = 0; done && i < count; i++)
        if (x[i])
            done(ctx, (int)i, crc);
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

int strategy_aggregate(const struct agg_params *p, float *out, float *const *x,
                       const float *const *prev, const float *ref, const struct strategy_order *o,
                       size_t n, size_t *k)
{
    size_t total = 0;
    for (size_t i = 0; i < o->count; i++)
        total += x[i] != NULL;
    *k = total;
    if (total == 0)
        return 0;
    const float **v = malloc(total * sizeof *v), **base = malloc(total * sizeof *base);
    if (!v || !base) {
        free(v);
        free(base);
        return -1;
    }
    size_t m = 0;
    for (size_t j = 0; j < o->count; j++) {
        size_t i = o->idx[j];
        if (!x[i])
            continue;
        v[m] = x[i];
        base[m++] = prev ? prev[i] : NULL;
    }
    int rc = agg_run(p, out, v, base, total, ref, n, NULL);
    free(v);
    free(base);
    return rc;
}
