/* The strategy registry and the helpers strategies share: see strategy.h. */
#include "server/strategy.h"

#include <math.h>
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

void strategy_mean(float *out, float *const *x, size_t count, size_t n, size_t *k)
{
    /* Summed particle by particle in a fixed order (deterministic), each
     * pass a stream over two arrays. */
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        if (!x[i])
            continue;
        const float *xi = x[i];
        if (m++ == 0)
            memcpy(out, xi, n * sizeof(float));
        else
            for (size_t e = 0; e < n; e++)
                out[e] += xi[e];
    }
    if (m > 1) {
        const float inv = 1.0f / (float)m;
        for (size_t e = 0; e < n; e++)
            out[e] *= inv;
    }
    *k = m;
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

double strategy_mean_loss(float *const *x, const double *loss, size_t count)
{
    double sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (x[i] && isfinite(loss[i])) {
            sum += loss[i];
            k++;
        }
    return k ? sum / (double)k : INFINITY;
}
