/* Strategy "avg": parameter averaging, also known as local SGD or
 * periodic model averaging. At a sync every worker that pushed gets the
 * element-wise mean of the pushed weights:
 *     x_i <- (1/K) sum_j x_j
 * Under a robust --aggregate rule the mean becomes the last mean plus the
 * rule applied to the changes x_j - prev_j (aggregate.h). No options of
 * its own. The model users take home is the last mean. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "server/strategy/strategy.h"

static const struct config_option s_options[] = {{0}}; /* none */

/* arr[0]: the mean (checkpointed); arr[1]: the next one, summed while the
 * round's pushes arrive, then swapped in (arr[0] is the global model a
 * joining worker or a checkpoint reads meanwhile). */
static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct strategy_center *c = strategy_center_new(sizeof *c, n, 2, 1, "avg", p);
    if (c)
        c->sum_arr = 1;
    return c;
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    struct strategy_center *c = st;
    size_t k;
    strategy_center_combine(c, x, prev, c->arr[0], round, &k);
    if (k == 0)
        return;
    /* Outside the round's part the mean is the model as it was, bit for
     * bit (a mean of equal floats need not be that float). */
    size_t lo, hi;
    strategy_center_span(c, &lo, &hi);
    memcpy(c->arr[1], c->arr[0], lo * sizeof(float));
    memcpy(c->arr[1] + hi, c->arr[0] + hi, (c->n - hi) * sizeof(float));
    float *t = c->arr[0];
    c->arr[0] = c->arr[1];
    c->arr[1] = t;
    strategy_center_publish(c, x, loss, done, ctx);
}

/* Asynchronous averaging: the worker's change since its last position is
 * added to the mean with weight 1/K, and it gets the mean back. After one
 * push from each of the K workers the mean has moved by the mean change,
 * as in the synchronous round. */
static void s_push(void *st, uint64_t step, int i, float *x, const float *prev, double loss,
                   strategy_done_fn *done, void *ctx)
{
    (void)step;
    struct strategy_center *c = st;
    float *mean = c->arr[0];
    if (!c->have) {
        memcpy(mean, prev, c->n * sizeof(float));
        c->have = 1;
    }
    const float inv = 1.0f / (float)c->ord.count;
    for (size_t e = 0; e < c->n; e++)
        mean[e] += (x[e] - prev[e]) * inv;
    c->loss = isfinite(c->loss) ? 0.9 * c->loss + 0.1 * loss : loss;
    memcpy(x, mean, c->n * sizeof(float));
    if (done)
        done(ctx, i, crc32c(0, x, c->n * sizeof(float)));
}

const struct strategy_ops strategy_avg = {
    .name = "avg",
    .push_kind = 0,
    .positions_global = 1,
    .options = s_options,
    .create = s_create,
    .round = s_round,
    .push = s_push,
    .save = strategy_center_save,
    .load = strategy_center_load,
    STRATEGY_CENTER_OPS,
};
