/* Robust aggregation: what a strategy forms of the round's pushes in place
 * of their plain mean, so that one worker (or f of them) pushing crafted
 * weights cannot move the result far (psod --aggregate).
 *
 * Every rule works on *changes*: push j minus the position its worker
 * started the interval from (base[j]), as the literature aggregates
 * updates; the result is ref + A(changes), ref the strategy's model the
 * changes are applied to. The rules:
 *
 *   mean     the plain mean (what psod did before; strategies keep their
 *            arrival-time sum for it, so it is not computed here)
 *   median   coordinate-wise median (the mean of the two middle values
 *            for an even count)
 *   trimmed  coordinate-wise trimmed mean: the f largest and f smallest
 *            values of each coordinate dropped, the rest averaged
 *   cclip    centered clipping (Karimireddy, He, Jaggi, ICML 2021):
 *            v <- v + (1/k) sum_j (d_j - v) min(1, tau / |d_j - v|),
 *            `iters` times from v = 0 (no change); tau = 0 takes the
 *            median of the k distances |d_j - v| each iteration
 *   krum     Multi-Krum (Blanchard et al., NeurIPS 2017): each change is
 *            scored by the sum of its squared distances to its k - f - 2
 *            nearest others; the mean of the m best-scored
 *
 * Order: the vectors come in the strategy order (worker names), and each
 * rule gives the same bits whatever order pushes arrived in: median and
 * trimmed sort each coordinate (ties are equal values), cclip and krum sum
 * in the given order. Median and trimmed are element-wise, so a daemon
 * holding a slice of the vector computes the same bits on it (sharded
 * swarms); cclip and krum need norms of whole vectors and are refused
 * under --shards. A non-finite value (psod refuses such pushes before they
 * get here) sorts above every finite one; norms that are not finite count
 * as infinitely far. */
#ifndef PSOD_AGGREGATE_H
#define PSOD_AGGREGATE_H

#include <stddef.h>

#include "common/config.h"

enum agg_rule { AGG_MEAN = 0, AGG_MEDIAN, AGG_TRIMMED, AGG_CCLIP, AGG_KRUM };

struct agg_params {
    int rule;   /* enum agg_rule */
    long f;     /* trimmed, krum: the number of bad workers assumed */
    double tau; /* cclip: clipping radius, 0 = the median distance */
    long iters; /* cclip: iterations */
    long m;     /* krum: changes averaged (1 = Krum, more = Multi-Krum) */
};

extern const char *const agg_rule_names[]; /* "mean", ..., NULL */
/* --aggregate and its parameters; offsets into struct agg_params. */
extern const struct config_option agg_options[];

/* The rule works coordinate by coordinate (mean, median, trimmed). */
int agg_elementwise(int rule);
/* The fewest inputs the rule needs for its f (trimmed 2f + 1, krum
 * 2f + 3, others 1). */
size_t agg_min_inputs(const struct agg_params *p);
/* Whether the rule can run with `workers` pushes a round; 0, or -1 with
 * the reason in err. */
int agg_check(const struct agg_params *p, long workers, char *err, size_t errlen);

/* What a call did: the f it used (lowered when fewer pushes came than
 * the rule needs for the configured f), and for krum which inputs were
 * kept (chosen[j] = 1; the caller's array of k, may be NULL). */
struct agg_info {
    long f_used;
    int lowered; /* f_used < p->f */
    unsigned char *chosen;
};

/* out[e] = ref[e] + A({v[j][e] - base[j][e]}) for the k inputs; base[j]
 * NULL or base NULL: ref; ref NULL: zero (gradients). out may be ref
 * (it is written only at the end of each element's computation) but
 * must not be any v[j] or base[j]. Returns 0, or -1 when out of memory
 * or the rule is mean (not computed here). */
int agg_run(const struct agg_params *p, float *out, const float *const *v, const float *const *base,
            size_t k, const float *ref, size_t n, struct agg_info *info);

#endif
