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
    struct strategy_center c; /* first: see strategy.h */
    float *mean;
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
    if (a)
        strategy_center_init(&a->c, n, a->mean);
    return a;
}

static void s_destroy(void *st)
{
    struct avg *a = st;
    if (a)
        strategy_order_free(&a->c.ord),
        free(a->mean);
    free(a);
}

static int s_add(void *st, const float *x0, uint64_t stream)
{
    (void)x0;
    struct avg *a = st;
    return strategy_order_add(&a->c.ord, stream);
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct avg *a = st;
    size_t k;
    strategy_mean(a->mean, x, &a->c.ord, a->c.n, &k);
    if (k == 0)
        return;
    a->c.have = 1;
    a->c.loss = strategy_mean_loss(x, loss, &a->c.ord);
    strategy_broadcast(a->mean, x, a->c.ord.count, a->c.n, done, ctx);
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
    if (!a->c.have) {
        memcpy(a->mean, prev, a->c.n * sizeof(float));
        a->c.have = 1;
    }
    const float inv = 1.0f / (float)a->c.ord.count;
    for (size_t e = 0; e < a->c.n; e++)
        a->mean[e] += (x[e] - prev[e]) * inv;
    a->c.loss = isfinite(a->c.loss) ? 0.9 * a->c.loss + 0.1 * loss : loss;
    memcpy(x, a->mean, a->c.n * sizeof(float));
    if (done)
        done(ctx, i, crc32c(0, x, a->c.n * sizeof(float)));
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct avg *a = st;
    strategy_center_save(&a->c, w, (float *const[]){a->mean}, 1);
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct avg *a = st;
    return strategy_center_load(&a->c, r, (float *const[]){a->mean}, 1, "avg");
}

const struct strategy_ops strategy_avg = {
    .name = "avg",
    .push_kind = 0,
    .positions_global = 1,
    .options = s_options,
    .create = s_create,
    .destroy = s_destroy,
    .add = s_add,
    .round = s_round,
    .global = strategy_center_global,
    .global_loss = strategy_center_loss,
    .global_particle = strategy_center_no_particle,
    .personal_best_loss = strategy_center_no_pbest,
    .save = s_save,
    .load = s_load,
    .reset = strategy_center_reset,
    .push = s_push,
};
