/* What the center-based strategies (avg, easgd, diloco, ssgd) share: their
 * arrays, particles, checkpoints and the end of a round. See strategy.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "server/strategy/strategy.h"

void *strategy_center_new(size_t size, size_t n, int narr, int nsave, const char *what,
                          const struct strategy_params *p)
{
    if (size < sizeof(struct strategy_center) || narr < 1 || narr > STRATEGY_CENTER_ARRAYS ||
        nsave > narr)
        return NULL;
    struct strategy_center *c = calloc(1, size);
    if (!c)
        return NULL;
    c->n = n;
    c->narr = narr;
    c->nsave = nsave;
    c->what = what;
    c->loss = INFINITY;
    c->agg = p->agg;
    for (int j = 0; j < narr; j++) {
        if (!(c->arr[j] = strategy_alloc(n))) {
            strategy_center_destroy(c);
            return NULL;
        }
        memset(c->arr[j], 0, n * sizeof(float));
    }
    return c;
}

void strategy_center_destroy(void *st)
{
    struct strategy_center *c = st;
    if (!c)
        return;
    strategy_order_free(&c->ord);
    strategy_sum_free(&c->sum);
    for (int j = 0; j < c->narr; j++)
        free(c->arr[j]);
    free(c);
}

int strategy_center_add(void *st, const float *x0, uint64_t stream)
{
    struct strategy_center *c = st;
    if (c->ord.count == 0)
        memcpy(c->arr[0], x0, c->n * sizeof(float));
    return strategy_order_add(&c->ord, stream);
}

void strategy_center_publish(struct strategy_center *c, float *const *x, const double *loss,
                             strategy_done_fn *done, void *ctx)
{
    strategy_center_settle(c, x, loss);
    size_t lo, hi;
    strategy_center_span(c, &lo, &hi);
    if (lo == 0 && hi == c->n) {
        strategy_broadcast(c->arr[0], x, c->ord.count, c->n, done, ctx);
        return;
    }
    /* A part: each particle keeps its own last position elsewhere. */
    for (size_t i = 0; i < c->ord.count; i++)
        if (x[i]) {
            memcpy(x[i] + lo, c->arr[0] + lo, (hi - lo) * sizeof(float));
            if (done)
                done(ctx, (int)i, crc32c(0, x[i], c->n * sizeof(float)));
        }
}

void strategy_center_settle(struct strategy_center *c, float *const *x, const double *loss)
{
    c->have = 1;
    c->loss = strategy_mean_loss(x, loss, &c->ord);
}

int strategy_center_arrive(void *st, uint64_t round, int i, const float *x,
                           struct payload_check *chk)
{
    struct strategy_center *c = st;
    if (c->sum_arr > 0 && c->agg.rule == AGG_MEAN)
        return strategy_sum_arrive(&c->sum, &c->ord, c->arr[c->sum_arr], c->n, round, i, x, chk);
    return 0;
}

void strategy_center_withdraw(void *st, int i)
{
    strategy_sum_withdraw(&((struct strategy_center *)st)->sum, i);
}

void strategy_center_mean(struct strategy_center *c, float *const *x, uint64_t round, size_t *k)
{
    strategy_sum_finish(&c->sum, &c->ord, c->arr[c->sum_arr], x, c->n, round, k);
}

void strategy_center_combine(struct strategy_center *c, float *const *x, const float *const *prev,
                             const float *ref, uint64_t round, size_t *k)
{
    if (c->agg.rule == AGG_MEAN ||
        strategy_aggregate(&c->agg, c->arr[c->sum_arr], x, prev, ref, &c->ord, c->n, k) != 0)
        strategy_center_mean(c, x, round, k);
}

void strategy_center_part(void *st, size_t off, size_t len)
{
    struct strategy_center *c = st;
    c->part_off = off < c->n ? off : 0;
    c->part_len = off < c->n && len <= c->n - off ? len : c->n;
}

void strategy_center_span(const struct strategy_center *c, size_t *lo, size_t *hi)
{
    *lo = c->part_len ? c->part_off : 0;
    *hi = c->part_len ? c->part_off + c->part_len : c->n;
}

const float *strategy_center_global(const void *st)
{
    const struct strategy_center *c = st;
    return c->have ? c->arr[0] : NULL;
}

double strategy_center_loss(const void *st) { return ((const struct strategy_center *)st)->loss; }
int strategy_center_no_particle(const void *st) { return (void)st, -1; }
double strategy_center_no_pbest(const void *st, int i) { return (void)st, (void)i, NAN; }

void strategy_center_reset(void *st, int i, const float *x0, uint64_t stream)
{
    (void)x0; /* no per-particle state but the order of the sums */
    strategy_order_rekey(&((struct strategy_center *)st)->ord, (uint32_t)i, stream);
}

void strategy_center_save(const void *st, struct ckpt_writer *w)
{
    const struct strategy_center *c = st;
    ckpt_put_u64(w, c->n);
    ckpt_put_u64(w, (uint64_t)c->have);
    ckpt_put_f64(w, c->loss);
    for (int j = 0; j < c->nsave; j++)
        ckpt_put(w, c->arr[j], c->n * sizeof(float));
}

int strategy_center_load(void *st, struct ckpt_reader *r)
{
    struct strategy_center *c = st;
    uint64_t n, have;
    if (ckpt_get_u64(r, &n) || ckpt_get_u64(r, &have) || ckpt_get_f64(r, &c->loss))
        return -1;
    if (n != c->n) {
        snprintf(r->err, sizeof r->err, "%s state of %llu parameters, expected %zu", c->what,
                 (unsigned long long)n, c->n);
        return -1;
    }
    c->have = have != 0;
    for (int j = 0; j < c->nsave; j++)
        if (ckpt_get(r, c->arr[j], c->n * sizeof(float)))
            return -1;
    return 0;
}
