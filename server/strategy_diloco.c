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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/strategy.h"

struct diloco {
    struct strategy_center c; /* first: see strategy.h */
    float *theta, *mom, *mean;
    float lr, mu;
    int nesterov;
};

static const struct config_option *s_options(struct strategy_params *p)
{
    static struct config_option t[4];
    struct config_option opts[] = {
        {"outer-lr", CONF_DOUBLE, &p->outer_lr, "0.7", 0, 100,
         "diloco: outer learning rate on the mean change", NULL},
        {"outer-momentum", CONF_DOUBLE, &p->outer_momentum, "0.9", 0, 0.9999,
         "diloco: outer momentum", NULL},
        {"outer-nesterov", CONF_BOOL, &p->outer_nesterov, "yes", 1, 0,
         "diloco: Nesterov outer momentum (no = SlowMo's plain momentum)", NULL},
        {0},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        t[i] = opts[i];
    return t;
}

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct diloco *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->theta = strategy_alloc(n);
    d->mom = strategy_alloc(n);
    d->mean = strategy_alloc(n);
    if (!d->theta || !d->mom || !d->mean) {
        free(d->theta), free(d->mom), free(d->mean), free(d);
        return NULL;
    }
    memset(d->mom, 0, n * sizeof(float));
    strategy_center_init(&d->c, n, d->theta);
    d->lr = (float)p->outer_lr;
    d->mu = (float)p->outer_momentum;
    d->nesterov = p->outer_nesterov;
    return d;
}

static void s_destroy(void *st)
{
    struct diloco *d = st;
    if (d)
        strategy_order_free(&d->c.ord),
        free(d->theta), free(d->mom), free(d->mean);
    free(d);
}

static int s_add(void *st, const float *x0, uint64_t stream)
{
    struct diloco *d = st;
    if (d->c.ord.count == 0)
        memcpy(d->theta, x0, d->c.n * sizeof(float));
    return strategy_order_add(&d->c.ord, stream);
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct diloco *d = st;
    size_t k;
    strategy_mean(d->mean, x, &d->c.ord, d->c.n, &k);
    if (k == 0)
        return;
    float *restrict th = d->theta, *restrict m = d->mom;
    const float *restrict mean = d->mean;
    const float lr = d->lr, mu = d->mu;
    for (size_t e = 0; e < d->c.n; e++) {
        float delta = th[e] - mean[e];
        float me = mu * m[e] + delta;
        m[e] = me;
        th[e] -= lr * (d->nesterov ? delta + mu * me : me);
    }
    d->c.have = 1;
    d->c.loss = strategy_mean_loss(x, loss, &d->c.ord);
    strategy_broadcast(th, x, d->c.ord.count, d->c.n, done, ctx);
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct diloco *d = st;
    strategy_center_save(&d->c, w, (float *const[]){d->theta, d->mom}, 2);
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct diloco *d = st;
    return strategy_center_load(&d->c, r, (float *const[]){d->theta, d->mom}, 2, "diloco");
}

const struct strategy_ops strategy_diloco = {
    .name = "diloco",
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
};
