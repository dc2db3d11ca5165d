/* The swarm's state, shared by the files that implement swarm.h:
 * swarm.c (particles, attractors, the round), swarm_ckpt.c (checkpoints)
 * and swarm_verify.c (verified best, strikes, exclusion). Nothing else
 * includes it. */
#ifndef PSOD_SWARM_INT_H
#define PSOD_SWARM_INT_H

#include "server/strategy/strategy.h"
#include "server/strategy/swarm.h"

struct particle {
    float *v, *p;
    uint16_t *pb; /* best_bf16: the personal best in bfloat16 (p is NULL) */
    double p_loss;
    uint64_t stream;
    int judged;       /* verify: p's loss was measured by another worker (or p is g) */
    uint32_t strikes; /* verify: candidates of this particle refused since its last adoption */
    uint32_t total;   /* verify: every strike since the start (claims and verdicts) */
};

struct swarm {
    size_t n;
    uint64_t offset;
    struct pso_params prm;
    struct particle *pt;
    size_t count, cap;
    double g_loss;
    int g_particle;
    float *mean;               /* PSO_ATTRACT_MEAN: this round's mean position */
    float *center;             /* asynchronous mode: running center of the particles */
    struct strategy_order ord; /* particles by stream, for the mean */
    struct strategy_sum sum;   /* the mean, built as pushes arrive */
    struct swarm_mix *mix;     /* PSO_ATTRACT_MIX: the mixing weights' swarm */
    float *g;                  /* verify: the adopted global best (a copy) */
    float *ref;                /* robust mean attractor: the last attractor (checkpointed) */
    int have_ref;
    float *gx; /* best_bf16: the global best widened to float32 */
    int gx_of; /* the particle whose best gx holds, -1 = none yet */
};

#define VERIFY_MAGIC 0x3159524556534f50ULL /* checkpoint tag: "POSVERY1" */
#define ROBUST_MAGIC 0x3152474741534f50ULL /* checkpoint tag: "POSAGGR1" */

/* The mean attractor under a robust --aggregate rule (kept in s->ref). */
static inline int swarm__robust(const struct swarm *s)
{
    return s->prm.agg.rule != AGG_MEAN && s->prm.attractor == PSO_ATTRACT_MEAN;
}

/* Struck --strike-limit times: no say in the swarm (swarm_strike). */
static inline int swarm__out(const struct swarm *s, size_t i)
{
    return s->prm.strike_limit > 0 && s->pt[i].total >= (uint64_t)s->prm.strike_limit;
}

/* best_bf16: the global best users take home, widened when it changed
 * (another particle, or the same one improved: `improved`; swarm.c). */
void swarm__widen_best(struct swarm *s, int improved);

#endif
