/* Strategy "easgd": elastic averaging SGD (Zhang, Choromanska, LeCun 2015),
 * synchronous form. The daemon keeps a center variable c; at a sync every
 * worker that pushed is pulled toward the center and the center toward the
 * workers, by the same elastic force:
 *     d_i = alpha (x_i - c)
 *     x_i <- x_i - d_i
 *     c   <- c + sum_i d_i
 * with alpha = beta / K (K = --workers), the paper's moving rate; beta
 * defaults to its 0.9. The center starts at the first particle's weights
 * and is the model users take home; workers never receive it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "server/strategy.h"

struct easgd {
    struct strategy_center c; /* first: see strategy.h */
    float *center, *acc;
    float alpha;
};

static const struct config_option *s_options(struct strategy_params *p)
{
    static struct config_option t[2];
    struct config_option opts[] = {
        {"easgd-beta", CONF_DOUBLE, &p->easgd_beta, "0.9", 0, 1,
         "easgd: moving rate beta; each worker's elastic pull is alpha = beta / --workers", NULL},
        {0},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        t[i] = opts[i];
    return t;
}

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    (void)offset;
    struct easgd *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->center = strategy_alloc(n);
    e->acc = strategy_alloc(n);
    if (!e->center || !e->acc) {
        free(e->center), free(e->acc), free(e);
        return NULL;
    }
    strategy_center_init(&e->c, n, e->center);
    e->alpha = (float)(p->easgd_beta / (double)(p->workers > 0 ? p->workers : 1));
    return e;
}

static void s_destroy(void *st)
{
    struct easgd *e = st;
    if (e)
        strategy_order_free(&e->c.ord),
        free(e->center), free(e->acc);
    free(e);
}

static int s_add(void *st, const float *x0, uint64_t stream)
{
    struct easgd *e = st;
    if (e->c.ord.count == 0)
        memcpy(e->center, x0, e->c.n * sizeof(float));
    return strategy_order_add(&e->c.ord, stream);
}

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    (void)round, (void)prev;
    struct easgd *e = st;
    const size_t n = e->c.n;
    const float alpha = e->alpha;
    float *restrict c = e->center, *restrict acc = e->acc;
    int any = 0;
    memset(acc, 0, n * sizeof(float));
    for (size_t j = 0; j < e->c.ord.count; j++) { /* stream order: see strategy_order */
        size_t i = e->c.ord.idx[j];
        if (!x[i])
            continue;
        float *restrict xi = x[i];
        for (size_t k = 0; k < n; k++) {
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
    for (size_t k = 0; k < n; k++)
        c[k] += acc[k];
    e->c.have = 1;
    e->c.loss = strategy_mean_loss(x, loss, &e->c.ord);
}

static void s_save(const void *st, struct ckpt_writer *w)
{
    const struct easgd *e = st;
    strategy_center_save(&e->c, w, (float *const[]){e->center}, 1);
}

static int s_load(void *st, struct ckpt_reader *r)
{
    struct easgd *e = st;
    return strategy_center_load(&e->c, r, (float *const[]){e->center}, 1, "easgd");
}

const struct strategy_ops strategy_easgd = {
    .name = "easgd",
    .push_kind = 0,
    .positions_global = 0,
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
