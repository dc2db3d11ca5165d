/* Strategy "easgd": elastic averaging SGD (Zhang, Choromanska, LeCun 2015),
 * synchronous form. The daemon keeps a center variable c; at a sync every
 * worker that pushed is pulled toward the center and the center toward the
 * workers, by the same elastic force:
 *     d_i = alpha (x_i - c)
 *     x_i <- x_i - d_i
 *     c   <- c + sum_i d_i
 * with alpha = beta / K (K = --workers), the paper's moving rate; beta
 * defaults to its 0.9. The center starts at the first particle's weights
 * and is the model users take home; workers never receive it.
 * Under a robust --aggregate rule the center's move, alpha sum_i (x_i - c)
 * = alpha K mean_i (x_i - c), takes the rule in place of the mean:
 *     c   <- c + alpha K A({x_i - c})
 * while each worker's own elastic pull stays as above. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "server/strategy/strategy.h"

/* c.arr: the center (checkpointed), the sum of a round's pulls. */
struct easgd {
    struct strategy_center c; /* first: see strategy.h */
    float alpha;
};

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct easgd *e = strategy_center_new(sizeof *e, n, 2, 1, "easgd", p);
    if (e)
        e->alpha = (float)(p->easgd_beta / (double)(p->workers > 0 ? p->workers : 1));
    return e;
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct easgd *e = st;
    const size_t n = e->c.n;
    const float alpha = e->alpha;
    size_t lo, hi; /* outside the part: no pulls, the center kept */
    strategy_center_span(&e->c, &lo, &hi);
    float *restrict c = e->c.arr[0], *restrict acc = e->c.arr[1];
    size_t pushed = 0;
    int robust = e->c.agg.rule != AGG_MEAN &&
                 strategy_aggregate(&e->c.agg, acc, x, NULL, c, &e->c.ord, n, &pushed) == 0;
    if (robust) { /* acc = c + A(x_i - c), read before the pulls move x */
        if (pushed == 0)
            return;
        const float step = alpha * (float)pushed;
        for (size_t j = 0; j < e->c.ord.count; j++) {
            size_t i = e->c.ord.idx[j];
            if (!x[i])
                continue;
            float *restrict xi = x[i];
            for (size_t q = lo; q < hi; q++)
                xi[q] -= alpha * (xi[q] - c[q]);
            if (done)
                done(ctx, (int)i, crc32c(0, xi, n * sizeof(float)));
        }
        for (size_t q = lo; q < hi; q++)
            c[q] += step * (acc[q] - c[q]);
        strategy_center_settle(&e->c, x, loss);
        return;
    }
    int any = 0;
    memset(acc, 0, n * sizeof(float));
    for (size_t j = 0; j < e->c.ord.count; j++) { /* stream order: see strategy_order */
        size_t i = e->c.ord.idx[j];
        if (!x[i])
            continue;
        float *restrict xi = x[i];
        for (size_t k = lo; k < hi; k++) {
            float d = alpha * (xi[k] - c[k]);
            xi[k] -= d;
            acc[k] += d;
        }
        any = 1;
        if (done)
            done(ctx, (int)i, crc32c(0, xi, n * sizeof(float)));
    }
    if (!any)
        return;
    for (size_t k = lo; k < hi; k++)
        c[k] += acc[k];
    strategy_center_settle(&e->c, x, loss);
}

#define P(f) offsetof(struct strategy_params, f)
static const struct config_option s_options[] = {
    OPT_GROUP("easgd (--strategy easgd)"),
    OPT_DOUBLE("easgd-beta", P(easgd_beta), "0.9", 0, 1,
               "easgd: moving rate beta; each worker's elastic pull is alpha = beta / --workers"),
    {0},
};
#undef P

const struct strategy_ops strategy_easgd = {
    .name = "easgd",
    .push_kind = 0,
    .positions_global = 0,
    .options = s_options,
    .create = s_create,
    .round = s_round,
    .save = strategy_center_save,
    .load = strategy_center_load,
    STRATEGY_CENTER_OPS,
};
