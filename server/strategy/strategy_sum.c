/* The mean of a round's pushes, built while they arrive: see strategy.h.
 *
 * strategy_mean computes, per element, ((((0 + a) + b) + c) + ...) * (1/k)
 * with a, b, c the pushes in the order's order. Here the same additions
 * happen one vector at a time, each as soon as its turn has come, so that
 * at the close only the pushes that arrived after a later-ordered one are
 * left (and the scaling). Same operations in the same order: the same bits,
 * which check_strategy tests against strategy_mean and check_cluster
 * against seeded runs. */
#include "server/strategy/strategy.h"

#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "common/payload.h"

static void s_start(struct strategy_sum *s, const struct strategy_order *o, uint64_t round)
{
    s->round = round;
    s->version = o->version;
    s->started = 1;
    s->broken = 0;
    s->next = 0;
    if (s->got)
        memset(s->got, 0, s->cap * sizeof *s->got);
}

/* Elements a thread of the shared team (pool_for) adds at least. */
#define PART ((size_t)1 << 18)

/* One element-wise pass, range by range: out = (first ? 0 : out) + v, as
 * strategy_mean adds, or with scale: out = (out + v) * inv. */
struct s_pass {
    float *out;
    const float *v;
    int first, scale;
    float inv;
};

static void s_pass_range(void *arg, size_t lo, size_t hi, int part)
{
    (void)part;
    const struct s_pass *a = arg;
    float *restrict out = a->out;
    const float *restrict v = a->v;
    if (a->scale)
        for (size_t e = lo; e < hi; e++)
            out[e] = (out[e] + v[e]) * a->inv;
    else if (a->first)
        for (size_t e = lo; e < hi; e++)
            out[e] = 0.0f + v[e];
    else
        for (size_t e = lo; e < hi; e++)
            out[e] += v[e];
}

static void s_add(float *out, const float *v, size_t n, int first)
{
    struct s_pass a = {out, v, first, 0, 0.0f};
    pool_for(n, PART, s_pass_range, &a);
}

/* payload_check_fold's fold: the same additions, block by block. */
static void s_fold(void *arg, size_t lo, size_t hi) { s_pass_range(arg, lo, hi, 0); }

int strategy_sum_arrive(struct strategy_sum *s, const struct strategy_order *o, float *out,
                        size_t n, uint64_t round, int i, const float *x, struct payload_check *chk)
{
    if (!s->started || s->round != round || s->version != o->version)
        s_start(s, o, round);
    if (s->broken)
        return 0;
    if (s->cap < o->count) {
        size_t cap = o->cap > o->count ? o->cap : o->count;
        const float **got = realloc(s->got, cap * sizeof *got);
        if (!got) {
            s->broken = 1; /* the close computes it all */
            return 0;
        }
        memset(got + s->cap, 0, (cap - s->cap) * sizeof *got);
        s->got = got;
        s->cap = cap;
    }
    if ((size_t)i >= o->count || s->got[i]) {
        s->broken = 1; /* a second push for this round: the first may be in the sum */
        return 0;
    }
    s->got[i] = x;
    int checked = 0;
    if (chk && s->next < o->count && o->idx[s->next] == (uint32_t)i) {
        /* x is next: checked and added in one read (a refused x is then
         * withdrawn, which breaks the sum) */
        struct s_pass a = {out, x, s->next == 0, 0, 0.0f};
        chk->bad = payload_check_fold(x, n, &chk->crc, s_fold, &a);
        s->next++;
        checked = 1;
    }
    while (s->next < o->count && s->got[o->idx[s->next]]) {
        s_add(out, s->got[o->idx[s->next]], n, s->next == 0);
        s->next++;
    }
    return checked;
}

void strategy_sum_finish(struct strategy_sum *s, const struct strategy_order *o, float *out,
                         float *const *x, size_t n, uint64_t round, size_t *k)
{
    int ok =
        s->started && !s->broken && s->round == round && s->version == o->version && s->next > 0;
    /* What was added must be exactly the pushes at hand. */
    for (size_t j = 0; ok && j < s->next; j++)
        ok = x[o->idx[j]] && x[o->idx[j]] == s->got[o->idx[j]];
    s->started = 0;
    if (!ok) {
        strategy_mean(out, x, o, n, k);
        return;
    }
    size_t total = 0, last = 0;
    for (size_t j = 0; j < o->count; j++)
        if (x[o->idx[j]]) {
            total++;
            last = j;
        }
    *k = total;
    const float inv = 1.0f / (float)total;
    for (size_t j = s->next; j < last; j++)
        if (x[o->idx[j]])
            s_add(out, x[o->idx[j]], n, 0);
    if (last >= s->next) { /* the last addition and the scale in one pass */
        struct s_pass a = {out, x[o->idx[last]], 0, 1, inv};
        pool_for(n, PART, s_pass_range, &a);
    } else {
        for (size_t e = 0; e < n; e++)
            out[e] *= inv;
    }
}

void strategy_sum_withdraw(struct strategy_sum *s, int i)
{
    if (s->started && s->got && i >= 0 && (size_t)i < s->cap && s->got[i]) {
        s->got[i] = NULL;
        s->broken = 1;
    }
}

void strategy_sum_free(struct strategy_sum *s)
{
    free(s->got);
    memset(s, 0, sizeof *s);
}
