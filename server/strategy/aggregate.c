/* Robust aggregation of a round's changes: see aggregate.h. */
#include "server/strategy/aggregate.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agg_rule_names[] = {"mean", "median", "trimmed", "cclip", "krum", NULL};

#define P(f) offsetof(struct agg_params, f)
/* One row per option, as the table reads. */
/* clang-format off */
const struct config_option agg_options[] = {
    OPT_GROUP("Robust aggregation and verification"),
    OPT_ENUM("aggregate", P(rule), "mean", agg_rule_names,
        "how the pushes are combined wherever a strategy takes their mean (avg, diloco's mean "
        "change, easgd's center, ssgd's gradient, pso's mean attractor): mean, or a rule robust "
        "to bad workers applied to the changes (push minus the position its worker started "
        "from): median (coordinate-wise), trimmed (coordinate-wise, --aggregate-f dropped at "
        "each end), cclip (centered clipping), krum (Multi-Krum, --aggregate-m kept); "
        "docs/STRATEGIES.md"),
    OPT_INT("aggregate-f", P(f), "1", 0, 32767,
        "trimmed, krum: the number of bad workers assumed (trimmed needs 2f + 1 pushes a round, "
        "krum 2f + 3; fewer: f is lowered for that round, with a log line)"),
    OPT_DOUBLE("aggregate-tau", P(tau), "0", 0, 1e30,
        "cclip: the clipping radius (L2 norm of a change); 0 = the median of the round's "
        "distances, each iteration"),
    OPT_INT("aggregate-iters", P(iters), "3", 1, 100,
        "cclip: clipping iterations"),
    OPT_INT("aggregate-m", P(m), "1", 1, 65536,
        "krum: the best-scored changes averaged (1 = Krum; at most pushes - f)"),
    {0},
};
/* clang-format on */
#undef P

int agg_elementwise(int rule)
{
    return rule == AGG_MEAN || rule == AGG_MEDIAN || rule == AGG_TRIMMED;
}

static size_t s_need(int rule, long f)
{
    return rule == AGG_TRIMMED ? (size_t)(2 * f + 1) : rule == AGG_KRUM ? (size_t)(2 * f + 3) : 1;
}

size_t agg_min_inputs(const struct agg_params *p) { return s_need(p->rule, p->f); }

int agg_check(const struct agg_params *p, long workers, char *err, size_t errlen)
{
    size_t need = agg_min_inputs(p);
    if (workers >= 0 && (size_t)workers < need) {
        snprintf(err, errlen,
                 "--aggregate %s with --aggregate-f %ld needs at least %zu workers a round "
                 "(%s), and --workers is %ld",
                 agg_rule_names[p->rule], p->f, need,
                 p->rule == AGG_TRIMMED ? "2f + 1: something must be left after trimming f at "
                                          "each end"
                                        : "2f + 3: Krum's guarantee",
                 workers);
        return -1;
    }
    return 0;
}

/* The largest f the rule can use with k inputs (at most the configured one). */
static long s_f_for(const struct agg_params *p, size_t k)
{
    long f = p->f;
    while (f > 0 && s_need(p->rule, f) > k)
        f--;
    return f;
}

/* a before b: finite values ascending, non-finite (NaN included) last. */
static inline int s_before(float a, float b) { return a < b || (isnan(b) && !isnan(a)); }

static inline void s_sort(float *a, size_t k)
{
    for (size_t i = 1; i < k; i++) {
        float t = a[i];
        size_t j = i;
        for (; j > 0 && s_before(t, a[j - 1]); j--)
            a[j] = a[j - 1];
        a[j] = t;
    }
}

/* What change j is taken against: its base, else ref, else nothing. */
static const float *s_base(const float *const *base, const float *ref, size_t j)
{
    return base && base[j] ? base[j] : ref;
}

#define BLOCK 256
#define NETWORK_MAX 16 /* inputs sorted by a network of whole-row compare-exchanges */

/* Rows i and j of a tile ordered element by element (min in i): branch-free,
 * so the compiler turns it into vector min and max. For values without NaN
 * and without -0 (the tile has neither) the result is the sorted order,
 * whatever order the rows came in. */
static void s_cmpx(float *restrict a, float *restrict b, size_t len)
{
    for (size_t e = 0; e < len; e++) {
        float x = a[e], y = b[e];
        float lo = y < x ? y : x, hi = y < x ? x : y; /* both first: it vectorizes */
        a[e] = lo;
        b[e] = hi;
    }
}

/* Sort each column of the tile's k rows: odd-even transposition, k rounds
 * of neighbour compare-exchanges. */
static void s_network(float *tile, size_t k, size_t len)
{
    for (size_t r = 0; r < k; r++)
        for (size_t i = r % 2; i + 1 < k; i += 2)
            s_cmpx(tile + i * BLOCK, tile + (i + 1) * BLOCK, len);
}

/* Median and trimmed mean, a block of coordinates at a time: the block's
 * changes are gathered into a tile (-0 made +0, so that equal values are
 * equal bits), then each coordinate's k values sorted: by a network over
 * whole rows when the block holds no NaN (the daemon refuses non-finite
 * pushes, so always in practice), else one column at a time with NaN
 * last. */
static int s_elementwise(int rule, long f, float *out, const float *const *v,
                         const float *const *base, size_t k, const float *ref, size_t n)
{
    float *tile = malloc(k * BLOCK * sizeof *tile), *col = malloc(k * sizeof *col);
    if (!tile || !col) {
        free(tile);
        free(col);
        return -1;
    }
    const size_t lo = rule == AGG_TRIMMED ? (size_t)f : 0, hi = k - lo;
    const float inv = 1.0f / (float)(hi - lo);
    for (size_t e0 = 0; e0 < n; e0 += BLOCK) {
        size_t len = n - e0 < BLOCK ? n - e0 : BLOCK;
        for (size_t j = 0; j < k; j++) {
            const float *x = v[j] + e0;
            const float *b = s_base(base, ref, j);
            b = b ? b + e0 : NULL;
            float *t = tile + j * BLOCK;
            if (b)
                for (size_t e = 0; e < len; e++)
                    t[e] = (x[e] - b[e]) + 0.0f;
            else
                for (size_t e = 0; e < len; e++)
                    t[e] = x[e] + 0.0f;
        }
        int nan = 0;
        for (size_t j = 0; j < k; j++)
            for (size_t e = 0; e < len; e++)
                nan |= tile[j * BLOCK + e] != tile[j * BLOCK + e];
        if (!nan && k <= NETWORK_MAX) {
            s_network(tile, k, len);
        } else { /* each column sorted alone, NaN last, and written back */
            for (size_t e = 0; e < len; e++) {
                for (size_t j = 0; j < k; j++)
                    col[j] = tile[j * BLOCK + e];
                s_sort(col, k);
                for (size_t j = 0; j < k; j++)
                    tile[j * BLOCK + e] = col[j];
            }
        }
        /* Row j now holds every coordinate's j-th smallest change. */
        float *o = out + e0;
        const float *r = ref ? ref + e0 : NULL;
        if (rule == AGG_MEDIAN) {
            const float *lo_row = tile + (k - 1) / 2 * BLOCK, *hi_row = tile + k / 2 * BLOCK;
            for (size_t e = 0; e < len; e++) {
                float a = k % 2 ? hi_row[e] : (lo_row[e] + hi_row[e]) * 0.5f;
                o[e] = r ? r[e] + a : a;
            }
        } else {
            float acc[BLOCK];
            memcpy(acc, tile + lo * BLOCK, len * sizeof *acc);
            for (size_t j = lo + 1; j < hi; j++)
                for (size_t e = 0; e < len; e++)
                    acc[e] += tile[j * BLOCK + e];
            for (size_t e = 0; e < len; e++) {
                float a = acc[e] * inv;
                o[e] = r ? r[e] + a : a;
            }
        }
    }
    free(tile);
    free(col);
    return 0;
}

static inline float s_change(const float *const *v, const float *const *base, const float *ref,
                             size_t j, size_t e)
{
    const float *b = s_base(base, ref, j);
    return b ? v[j][e] - b[e] : v[j][e];
}

/* Ascending, NaN last (distances: a handful per round). */
static void s_sort_d(double *a, size_t k)
{
    for (size_t i = 1; i < k; i++) {
        double x = a[i];
        size_t j = i;
        for (; j > 0 && (x < a[j - 1] || (isnan(a[j - 1]) && !isnan(x))); j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* The lower median of k doubles (k >= 1), non-finite last. */
static double s_median_d(const double *r, size_t k)
{
    double *t = malloc(k * sizeof *t);
    if (!t)
        return r[0];
    memcpy(t, r, k * sizeof *t);
    s_sort_d(t, k);
    double m = t[(k - 1) / 2];
    free(t);
    return m;
}

#define LANES 8 /* independent partial sums: fixed order, and the compiler vectorizes them */

/* sum_e ((x[e] - bx[e]) - (y[e] - by[e]))^2 in double, y/by may be NULL
 * (zero), bx/by NULL (nothing subtracted); c (may be NULL) is a float
 * change subtracted from x's instead of y's. */
static double s_dist2(const float *x, const float *bx, const float *y, const float *by,
                      const float *c, size_t n)
{
    double lane[LANES] = {0};
    size_t e = 0;
    /* The two common shapes first, without branches in the loop. */
    if (bx && !y && c)
        for (; e + LANES <= n; e += LANES)
            for (size_t l = 0; l < LANES; l++) {
                double d = (double)(x[e + l] - bx[e + l]) - (double)c[e + l];
                lane[l] += d * d;
            }
    else if (bx && y && by)
        for (; e + LANES <= n; e += LANES)
            for (size_t l = 0; l < LANES; l++) {
                double d = (double)(x[e + l] - bx[e + l]) - (double)(y[e + l] - by[e + l]);
                lane[l] += d * d;
            }
    for (; e + LANES <= n; e += LANES)
        for (size_t l = 0; l < LANES; l++) {
            float dx = bx ? x[e + l] - bx[e + l] : x[e + l];
            float dy = y ? (by ? y[e + l] - by[e + l] : y[e + l]) : c ? c[e + l] : 0.0f;
            double d = (double)dx - (double)dy;
            lane[l] += d * d;
        }
    for (; e < n; e++) {
        float dx = bx ? x[e] - bx[e] : x[e];
        float dy = y ? (by ? y[e] - by[e] : y[e]) : c ? c[e] : 0.0f;
        double d = (double)dx - (double)dy;
        lane[0] += d * d;
    }
    double sq = 0;
    for (size_t l = 0; l < LANES; l++)
        sq += lane[l];
    return sq;
}

static int s_cclip(const struct agg_params *p, float *out, const float *const *v,
                   const float *const *base, size_t k, const float *ref, size_t n)
{
    float *c = calloc(n ? n : 1, sizeof *c); /* the center, a change: starts at 0 */
    float *acc = malloc((n ? n : 1) * sizeof *acc);
    double *r = malloc(k * sizeof *r);
    float *s = malloc(k * sizeof *s);
    if (!c || !acc || !r || !s) {
        free(c), free(acc), free(r), free(s);
        return -1;
    }
    for (long it = 0; it < p->iters; it++) {
        for (size_t j = 0; j < k; j++) {
            double sq = s_dist2(v[j], s_base(base, ref, j), NULL, NULL, c, n);
            r[j] = isfinite(sq) ? sqrt(sq) : INFINITY;
        }
        double tau = p->tau > 0 ? p->tau : s_median_d(r, k);
        for (size_t j = 0; j < k; j++)
            s[j] = (float)(r[j] <= tau || r[j] == 0 ? 1.0
                           : isfinite(r[j])         ? tau / r[j]
                                                    : 0.0) /
                   (float)k;
        /* acc = sum_j s_j (d_j - c), summed in input order per element */
        memset(acc, 0, n * sizeof *acc);
        for (size_t j = 0; j < k; j++) {
            if (s[j] == 0.0f)
                continue;
            const float *restrict x = v[j], *restrict b = s_base(base, ref, j);
            const float sj = s[j];
            if (b)
                for (size_t e = 0; e < n; e++)
                    acc[e] += sj * ((x[e] - b[e]) - c[e]);
            else
                for (size_t e = 0; e < n; e++)
                    acc[e] += sj * (x[e] - c[e]);
        }
        for (size_t e = 0; e < n; e++)
            c[e] += acc[e];
    }
    for (size_t e = 0; e < n; e++)
        out[e] = ref ? ref[e] + c[e] : c[e];
    free(c), free(acc), free(r), free(s);
    return 0;
}

static int s_krum(const struct agg_params *p, long f, float *out, const float *const *v,
                  const float *const *base, size_t k, const float *ref, size_t n,
                  unsigned char *chosen)
{
    double *d = malloc(k * k * sizeof *d), *score = malloc(k * sizeof *score);
    double *row = malloc(k * sizeof *row);
    unsigned char *pick = calloc(k, 1);
    if (!d || !score || !row || !pick) {
        free(d), free(score), free(row), free(pick);
        return -1;
    }
    for (size_t a = 0; a < k; a++) {
        d[a * k + a] = 0;
        for (size_t b = a + 1; b < k; b++) {
            double sq = s_dist2(v[a], s_base(base, ref, a), v[b], s_base(base, ref, b), NULL, n);
            d[a * k + b] = d[b * k + a] = isfinite(sq) ? sq : INFINITY;
        }
    }
    /* Score: the sum of the k - f - 2 smallest distances to the others. */
    size_t near = k >= (size_t)f + 2 ? k - (size_t)f - 2 : 0;
    for (size_t a = 0; a < k; a++) {
        size_t m = 0;
        for (size_t b = 0; b < k; b++)
            if (b != a)
                row[m++] = d[a * k + b];
        s_sort_d(row, m);
        double sc = 0;
        for (size_t i = 0; i < near && i < m; i++)
            sc += row[i];
        score[a] = sc;
    }
    size_t keep = (size_t)p->m;
    if (keep > k - (size_t)f)
        keep = k - (size_t)f;
    if (keep < 1)
        keep = 1;
    for (size_t t = 0; t < keep; t++) { /* the lowest scores; ties: the first in order */
        size_t best = k;
        for (size_t a = 0; a < k; a++)
            if (!pick[a] && (best == k || score[a] < score[best]))
                best = a;
        pick[best] = 1;
    }
    const float inv = 1.0f / (float)keep;
    for (size_t e = 0; e < n; e++) {
        float sum = 0.0f;
        for (size_t a = 0; a < k; a++)
            if (pick[a])
                sum += s_change(v, base, ref, a, e);
        out[e] = ref ? ref[e] + sum * inv : sum * inv;
    }
    if (chosen)
        memcpy(chosen, pick, k);
    free(d), free(score), free(row), free(pick);
    return 0;
}

int agg_run(const struct agg_params *p, float *out, const float *const *v, const float *const *base,
            size_t k, const float *ref, size_t n, struct agg_info *info)
{
    if (p->rule == AGG_MEAN || k == 0)
        return -1;
    long f = s_f_for(p, k);
    if (info) {
        info->f_used = f;
        info->lowered = f < p->f && (p->rule == AGG_TRIMMED || p->rule == AGG_KRUM);
    }
    switch (p->rule) {
    case AGG_MEDIAN:
    case AGG_TRIMMED: return s_elementwise(p->rule, f, out, v, base, k, ref, n);
    case AGG_CCLIP: return s_cclip(p, out, v, base, k, ref, n);
    case AGG_KRUM:
        if (k < 3) { /* no neighbours to score by: the plain mean of what there is */
            struct agg_params q = *p;
            q.m = (long)k;
            return s_krum(&q, 0, out, v, base, k, ref, n, info ? info->chosen : NULL);
        }
        return s_krum(p, f, out, v, base, k, ref, n, info ? info->chosen : NULL);
    default: return -1;
    }
}
