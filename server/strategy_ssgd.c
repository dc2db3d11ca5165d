/* Strategy "ssgd": synchronous SGD with a parameter server. Workers push
 * the gradient of one mini-batch every step (payload kind GRADIENT); the
 * daemon averages them and applies one SGD step with momentum and weight
 * decay (PyTorch's formula) to the weights theta it holds:
 *     g   = (1/K) sum_i grad_i + wd theta
 *     buf = mu buf + g                      (buf = g on the first step)
 *     theta = theta - lr buf
 * and every worker that pushed gets theta. The learning rate, its schedule,
 * momentum and weight decay are the daemon's (--ssgd-lr, --ssgd-schedule,
 * ...), since it owns the optimizer; the schedules are the workers' own
 * (common/lrsched.h), counted in steps, and scripts/run-local.sh passes the
 * workers' values through. theta starts at the first particle's weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lrsched.h"
#include "server/strategy.h"

struct ssgd {
    struct strategy_center c; /* first: see strategy.h */
    float *theta, *buf, *mean;
    struct lr_plan plan;
    float mu, wd;
    int steps;
};

static const struct config_option *s_options(struct strategy_params *p)
{
    static struct config_option t[9];
    struct config_option opts[] = {
        {"ssgd-lr", CONF_DOUBLE, &p->ssgd_lr, "0.01", 0, 1e6,
         "ssgd: learning rate (the peak, under a schedule)", NULL},
        {"ssgd-schedule", CONF_ENUM, &p->ssgd_schedule, "constant", 1, 0,
         "ssgd: learning-rate schedule, as psoworker's --schedule", lr_schedule_names},
        {"ssgd-warmup", CONF_INT, &p->ssgd_warmup, "0", 0, 1e12,
         "ssgd: steps of linear warm-up", NULL},
        {"ssgd-steps", CONF_INT, &p->ssgd_steps, "0", 0, 1e12,
         "ssgd: steps in the whole run (cosine decays to 0 there; needed by cosine)", NULL},
        {"ssgd-step-size", CONF_INT, &p->ssgd_step_size, "0", 0, 1e12,
         "ssgd: schedule step: steps between decays", NULL},
        {"ssgd-step-gamma", CONF_DOUBLE, &p->ssgd_step_gamma, "0.1", 0, 1,
         "ssgd: schedule step: decay factor", NULL},
        {"ssgd-momentum", CONF_DOUBLE, &p->ssgd_momentum, "0.9", 0, 0.9999, "ssgd: momentum",
         NULL},
        {"ssgd-weight-decay", CONF_DOUBLE, &p->ssgd_weight_decay, "0", 0, 1,
         "ssgd: L2 weight decay", NULL},
        {0},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        t[i] = opts[i];
    return t;
}

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct ssgd *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->theta = strategy_alloc(n);
    d->buf = strategy_alloc(n);
    d->mean = strategy_alloc(n);
    if (!d->theta || !d->buf || !d->mean) {
        free(d->theta), free(d->buf), free(d->mean), free(d);
        return NULL;
    }
    strategy_center_init(&d->c, n, d->theta);
    d->plan = (struct lr_plan){(enum lr_schedule)p->ssgd_schedule, p->ssgd_lr, p->ssgd_warmup,
                               p->ssgd_steps, p->ssgd_step_size, p->ssgd_step_gamma};
    d->mu = (float)p->ssgd_momentum;
    d->wd = (float)p->ssgd_weight_decay;
    return d;
}

static void s_destroy(void *st)
{
    struct ssgd *d = st;
    if (d)
        strategy_order_free(&d->c.ord),
        free(d->theta), free(d->buf), free(d->mean);
    free(d);
}

static int s_add(void *st, const float *x0, uint64_t stream)
{
    struct ssgd *d = st;
    if (d->c.ord.count == 0)
        memcpy(d->theta, x0, d->c.n * sizeof(float));
    return strategy_order_add(&d->c.ord, stream);
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct ssgd *d = st;
    size_t k;
    strategy_mean(d->mean, x, &d->c.ord, d->c.n, &k); /* x holds gradients here */
    if (k == 0)
        return;
    float *restrict th = d->theta, *restrict buf = d->buf;
    const float *restrict g = d->mean;
    const float lr = (float)lr_at(&d->plan, d->steps), mu = d->mu, wd = d->wd;
    const int first = d->steps == 0;
    for (size_t e = 0; e < d->c.n; e++) {
        float ge = g[e] + wd * th[e];
        float b = first ? ge : mu * buf[e] + ge;
        buf[e] = b;
        th[e] -= lr * b;
    }
    d->steps++;
    d->c.have = 1;
    d->c.loss = strategy_mean_loss(x, loss, &d->c.ord);
    strategy_broadcast(th, x, d->c.ord.count, d->c.n, done, ctx);
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct ssgd *d = st;
    strategy_center_save(&d->c, w, (float *const[]){d->theta, d->buf}, 2);
    ckpt_put_u64(w, (uint64_t)d->steps);
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct ssgd *d = st;
    if (strategy_center_load(&d->c, r, (float *const[]){d->theta, d->buf}, 2, "ssgd"))
        return -1;
    uint64_t steps;
    if (ckpt_get_u64(r, &steps))
        return -1;
    d->steps = (int)steps;
    return 0;
}

const struct strategy_ops strategy_ssgd = {
    .name = "ssgd",
    .push_kind = 1,
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
