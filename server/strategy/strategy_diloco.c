/* Strategy "diloco": an outer optimizer on the mean change since the last
 * sync (DiLoCo, Douillard et al. 2023; SlowMo, Wang et al. 2020, is the
 * same update with plain momentum). The daemon keeps the global weights
 * theta and an outer momentum buffer m:
 *     delta = theta - (1/K) sum_i x_i       the outer "gradient"
 *     m     = mu m + delta
 *     theta = theta - lr (delta + mu m)     Nesterov (--outer-nesterov yes)
 *     theta = theta - lr m                  plain momentum (SlowMo)
 * and every worker that pushed gets theta. Defaults are DiLoCo's: outer
 * learning rate 0.7, momentum 0.9, Nesterov. With lr 1 and mu 0 this is
 * parameter averaging. theta starts at the first particle's weights. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/strategy/strategy.h"

/* c.arr: theta, the momentum (both checkpointed), the mean of a round. */
struct diloco {
    struct strategy_center c; /* first: see strategy.h */
    float lr, mu;
    int nesterov;
};

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct diloco *d = strategy_center_new(sizeof *d, n, 3, 2, "diloco", p);
    if (d) {
        d->lr = (float)p->outer_lr;
        d->mu = (float)p->outer_momentum;
        d->nesterov = p->outer_nesterov;
        d->c.sum_arr = 2;
    }
    return d;
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    struct diloco *d = st;
    size_t k;
    strategy_center_combine(&d->c, x, prev, d->c.arr[0], round, &k);
    if (k == 0)
        return;
    float *restrict th = d->c.arr[0], *restrict m = d->c.arr[1];
    const float *restrict mean = d->c.arr[2];
    const float lr = d->lr, mu = d->mu;
    size_t lo, hi; /* outside the part: no step, the momentum kept */
    strategy_center_span(&d->c, &lo, &hi);
    for (size_t e = lo; e < hi; e++) {
        float delta = th[e] - mean[e];
        float me = mu * m[e] + delta;
        m[e] = me;
        th[e] -= lr * (d->nesterov ? delta + mu * me : me);
    }
    strategy_center_publish(&d->c, x, loss, done, ctx);
}

#define P(f) offsetof(struct strategy_params, f)
static const struct config_option s_options[] = {
    OPT_GROUP("diloco (--strategy diloco)"),
    OPT_DOUBLE("outer-lr", P(outer_lr), "0.7", 0, 100,
               "diloco: outer learning rate on the mean change"),
    OPT_DOUBLE("outer-momentum", P(outer_momentum), "0.9", 0, 0.9999, "diloco: outer momentum"),
    OPT_BOOL("outer-nesterov", P(outer_nesterov), "yes",
             "diloco: Nesterov outer momentum (no = SlowMo's plain momentum)"),
    {0},
};
#undef P

const struct strategy_ops strategy_diloco = {
    .name = "diloco",
    .push_kind = 0,
    .positions_global = 1,
    .options = s_options,
    .create = s_create,
    .round = s_round,
    .save = strategy_center_save,
    .load = strategy_center_load,
    STRATEGY_CENTER_OPS,
};
