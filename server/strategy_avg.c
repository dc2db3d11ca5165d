/* Strategy "avg": parameter averaging, also known as local SGD or
 * periodic model averaging. At a sync every worker that pushed gets the
 * element-wise mean of the pushed weights:
 *     x_i <- (1/K) sum_j x_j
 * No options. The model users take home is the last mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "server/strategy.h"

struct avg {
    size_t n;
    struct strategy_order ord;
    float *mean;
    int have;      /* a round has closed: mean is the global model */
    double loss;
};

static const struct config_option *s_options(struct strategy_params *p)
{
    (void)p;
    static const struct config_option none[] = {{0}};
    return none;
}

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset, (void)p;
    struct avg *a = calloc(1, sizeof *a);
    if (a && !(a->mean = strategy_alloc(n))) {
        free(a);
        return NULL;
    }
    if (a) {
        a->n = n;
        a->loss = INFINITY;
    }
    return a;
}

static void s_destroy(void *st)
{
    struct avg *a = st;
    if (a)
        strategy_order_free(&a->ord),
        free(a->mean);
    free(a);
}

static int s_add(void *st, const float *x0, uint64_t stream)
{
    (void)x0;
    struct avg *a = st;
    return strategy_order_add(&a->ord, stream);
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct avg *a = st;
    size_t k;
    strategy_mean(a->mean, x, &a->ord, a->n, &k);
    if (k == 0)
        return;
    a->have = 1;
    a->loss = strategy_mean_loss(x, loss, a->ord.count);
    strategy_broadcast(a->mean, x, a->ord.count, a->n, done, ctx);
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct avg *a = st;
    ckpt_put_u64(w, a->n);
    ckpt_put_u64(w, (uint64_t)a->have);
    ckpt_put_f64(w, a->loss);
    ckpt_put(w, a->mean, a->n * sizeof(float));
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct avg *a = st;
    uint64_t n, have;
    if (ckpt_get_u64(r, &n) || ckpt_get_u64(r, &have) || ckpt_get_f64(r, &a->loss))
        return -1;
    if (n != a->n) {
        snprintf(r->err, sizeof r->err, "avg state of %llu parameters, expected %zu",
                 (unsigned long long)n, a->n);
        return -1;
    }
    a->have = have != 0;
    if (ckpt_get(r, a->mean, a->n * sizeof(float)))
        return -1;
    return 0;
}

/* Asynchronous averaging: the worker's change since its last position is
 * added to the mean with weight 1/K, and it gets the mean back. After one
 * push from each of the K workers the mean has moved by the mean change,
 * as in the synchronous round. */
static void s_push(void *st, uint64_t step, int i, float *x, const float *prev, double loss,
                   strategy_done_fn *done, void *ctx)
{
    (void)step;
    struct avg *a = st;
    if (!a->have) {
        memcpy(a->mean, prev, a->n * sizeof(float));
        a->have = 1;
    }
    const float inv = 1.0f / (float)a->ord.count;
    for (size_t e = 0; e < a->n; e++)
        a->mean[e] += (x[e] - prev[e]) * inv;
    a->loss = isfinite(a->loss) ? 0.9 * a->loss + 0.1 * loss : loss;
    memcpy(x, a->mean, a->n * sizeof(float));
    if (done)
        done(ctx, i, crc32c(0, x, a->n * sizeof(float)));
}

static void s_reset(void *st, int i, const float *x0, uint64_t stream)
{
    (void)x0; /* no per-particle state but the order of the sums */
    struct avg *a = st;
    strategy_order_rekey(&a->ord, (uint32_t)i, stream);
}

static const float *s_global(const void *st)
{
    const struct avg *a = st;
    return a->have ? a->mean : NULL;
}
static double s_global_loss(const void *st) { return ((const struct avg *)st)->loss; }
static int s_global_particle(const void *st) { return (void)st, -1; }
static double s_pbest(const void *st, int i) { return (void)st, (void)i, NAN; }

const struct strategy_ops strategy_avg = {
    .name = "avg",
    .summary = "parameter averaging (local SGD): every worker gets the mean",
    .push_kind = 0,
    .positions_global = 1,
    .options = s_options,
    .create = s_create,
    .destroy = s_destroy,
    .add = s_add,
    .round = s_round,
    .global = s_global,
    .global_loss = s_global_loss,
    .global_particle = s_global_particle,
    .personal_best_loss = s_pbest,
    .save = s_save,
    .load = s_load,
    .reset = s_reset,
    .push = s_push,
};
