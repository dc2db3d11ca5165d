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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lrsched.h"
#include "server/strategy/strategy.h"

/* c.arr: theta, the momentum buffer (both checkpointed), the mean gradient. */
struct ssgd {
    struct strategy_center c; /* first: see strategy.h */
    struct lr_plan plan;
    float mu, wd;
    int steps;
};

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct ssgd *d = strategy_center_new(sizeof *d, n, 3, 2, "ssgd", p);
    if (d) {
        d->c.sum_arr = 2;
        d->plan = (struct lr_plan){(enum lr_schedule)p->ssgd_schedule,
                                   p->ssgd_lr,
                                   p->ssgd_warmup,
                                   p->ssgd_steps,
                                   p->ssgd_step_size,
                                   p->ssgd_step_gamma};
        d->mu = (float)p->ssgd_momentum;
        d->wd = (float)p->ssgd_weight_decay;
    }
    return d;
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)prev;
    struct ssgd *d = st;
    size_t k;
    strategy_center_combine(&d->c, x, NULL, NULL, round, &k); /* x holds gradients here */
    if (k == 0)
        return;
    float *restrict th = d->c.arr[0], *restrict buf = d->c.arr[1];
    const float *restrict g = d->c.arr[2];
    const float lr = (float)lr_at(&d->plan, d->steps), mu = d->mu, wd = d->wd;
    const int first = d->steps == 0;
    for (size_t e = 0; e < d->c.n; e++) {
        float ge = g[e] + wd * th[e];
        float b = first ? ge : mu * buf[e] + ge;
        buf[e] = b;
        th[e] -= lr * b;
    }
    d->steps++;
    strategy_center_publish(&d->c, x, loss, done, ctx);
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct ssgd *d = st;
    strategy_center_save(st, w);
    ckpt_put_u64(w, (uint64_t)d->steps);
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct ssgd *d = st;
    if (strategy_center_load(st, r))
        return -1;
    uint64_t steps;
    if (ckpt_get_u64(r, &steps))
        return -1;
    d->steps = (int)steps;
    return 0;
}

#define P(f) offsetof(struct strategy_params, f)
/* One row per option, as the table reads. */
/* clang-format off */
static const struct config_option s_options[] = {
    OPT_GROUP("ssgd (--strategy ssgd)"),
    OPT_DOUBLE("ssgd-lr", P(ssgd_lr), "0.01", 0, 1e6,
        "ssgd: learning rate (the peak, under a schedule)"),
    OPT_ENUM("ssgd-schedule", P(ssgd_schedule), "constant", lr_schedule_names,
        "ssgd: learning-rate schedule, as psoworker's --schedule"),
    OPT_INT("ssgd-warmup", P(ssgd_warmup), "0", 0, 1e12,
        "ssgd: steps of linear warm-up"),
    OPT_INT("ssgd-steps", P(ssgd_steps), "0", 0, 1e12,
        "ssgd: steps in the whole run (cosine decays to 0 there; needed by cosine)"),
    OPT_INT("ssgd-step-size", P(ssgd_step_size), "0", 0, 1e12,
        "ssgd: schedule step: steps between decays"),
    OPT_DOUBLE("ssgd-step-gamma", P(ssgd_step_gamma), "0.1", 0, 1,
        "ssgd: schedule step: decay factor"),
    OPT_DOUBLE("ssgd-momentum", P(ssgd_momentum), "0.9", 0, 0.9999,
        "ssgd: momentum"),
    OPT_DOUBLE("ssgd-weight-decay", P(ssgd_weight_decay), "0", 0, 1,
        "ssgd: L2 weight decay"),
    {0},
};
/* clang-format on */
#undef P

/* A cosine schedule decays over the run's steps: they must be known. */
static int s_check(const struct strategy_params *p, char *err, size_t errlen)
{
    if (p->ssgd_schedule == LR_COSINE && p->ssgd_steps <= p->ssgd_warmup) {
        snprintf(err, errlen,
                 "--ssgd-schedule cosine needs --ssgd-steps, the run's steps "
                 "(above --ssgd-warmup)");
        return -1;
    }
    return 0;
}

const struct strategy_ops strategy_ssgd = {
    .name = "ssgd",
    .push_kind = 1,
    .positions_global = 1,
    .options = s_options,
    .check = s_check,
    .create = s_create,
    .round = s_round,
    .save = s_save,
    .load = s_load,
    STRATEGY_CENTER_OPS,
};
