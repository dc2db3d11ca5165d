/* The PSO-PS swarm: per particle a velocity v, a personal best p and its
 * loss; the global best g and its loss; and the update that turns the
 * positions the workers pushed into their new positions.
 *
 * Positions themselves are not stored here: the daemon keeps each one in the
 * message buffer it arrived in and updates it in place, so the new position
 * goes back to the worker without a copy. This module is plain C over float
 * arrays, with no I/O, so that it can be tested against a reference. */
#ifndef PSOD_SWARM_H
#define PSOD_SWARM_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"
#include "server/strategy/aggregate.h"

enum pso_random_mode {
    PSO_RANDOM_PARTICLE = 0, /* one r1, r2 per particle per round */
    PSO_RANDOM_ELEMENT = 1,  /* one r1, r2 per element */
};

/* Where the inertia term comes from. */
enum pso_inertia {
    PSO_INERTIA_VELOCITY = 0,     /* v = w v + pulls; x = x + v (the paper) */
    PSO_INERTIA_DISPLACEMENT = 1, /* v = w (x - prev) + pulls; x = prev + v */
};

/* What the first pull goes toward. */
enum pso_attractor {
    PSO_ATTRACT_BEST = 0,     /* the particle's personal best (the paper) */
    PSO_ATTRACT_MEAN = 1,     /* the mean of the positions pushed this round */
    PSO_ATTRACT_WEIGHTED = 2, /* their mean weighted by softmax(-loss / temperature) */
    PSO_ATTRACT_MIX = 3,      /* no pulls: each particle moves to a mixture of the
                            * pushes whose weights a second swarm searches
                            * (the PSO-weighted mean, swarm_mix.h) */
};

struct pso_params {
    double w;    /* inertia */
    double c1;   /* pull toward the particle's own best */
    double c2;   /* pull toward the global best */
    double vmax; /* velocity clamp per element, 0 = none */
    int random_mode;
    uint64_t seed;
    int inertia;                  /* enum pso_inertia */
    int attractor;                /* enum pso_attractor */
    double temperature;           /* PSO_ATTRACT_WEIGHTED */
    double mix_w, mix_c1, mix_c2; /* PSO_ATTRACT_MIX: the mixing weights' update */
    int verify;                   /* a global best is adopted only once another worker
                         * reproduced its loss (swarm_candidate, swarm_judge);
                         * synchronous mode only */
    double verify_tol;            /* relative: adopted if measured <= claimed (1 + tol) + 1e-6 */
    struct agg_params agg;        /* PSO_ATTRACT_MEAN: a robust rule in place of the mean: the
                            * attractor is the last one plus the rule over the changes
                            * x[i] - prev[i] (aggregate.h) */
    long strike_limit;            /* verify: strikes (claims refused, verdicts against the
                         * panel) at which a particle is excluded; 0 = never */
    int best_bf16;                /* personal bests held in bfloat16 (half the memory; the
                           * global best users take home is their float32 copy) */
};

struct swarm;

/* `n` parameters per particle, `offset` the index of the first one in the
 * full vector (nonzero when several daemons share the vector). */
struct swarm *swarm_new(size_t n, uint64_t offset, const struct pso_params *prm);
void swarm_destroy(struct swarm **s);

/* Add a particle starting at x0: v = 0, p = x0 with loss +inf.
 * `stream` selects the particle's random numbers; the daemon derives it
 * from the worker's name so that a run does not depend on join order.
 * Returns its id, or -1 when out of memory. */
int swarm_add(struct swarm *s, const float *x0, uint64_t stream);

/* Called as soon as particle i's new position is ready (its CRC-32C in
 * crc), so the caller can send it while the next particle is computed. */
typedef void swarm_done_fn(void *ctx, int i, uint32_t crc);

/* Close round `round`. x[i] is particle i's pushed position, or NULL if it
 * did not push; loss[i] its loss (finite). prev[i] is the position the
 * daemon last sent particle i (read only with PSO_INERTIA_DISPLACEMENT; the
 * array may be NULL otherwise). On return every non-NULL x[i] holds the
 * particle's new position; `done` (may be NULL) was called for each. */
/* Whether swarm_round reads prev (displacement inertia, the robust mean
 * attractor). */
int swarm_reads_prev(const struct swarm *s);
void swarm_round(struct swarm *s, uint64_t round, float *const *x, const float *const *prev,
                 const double *loss, swarm_done_fn *done, void *ctx);

/* A push of particle i for `round` arrived (synchronous mode): with the
 * mean attractor it joins the round's mean now (struct strategy_sum). */
struct payload_check;
int swarm_arrive(struct swarm *s, uint64_t round, int i, const float *x, struct payload_check *chk);

/* Asynchronous update of particle i alone (see strategy.h): its bests
 * first, then its move. The swarm mean (PSO_ATTRACT_MEAN) is a running
 * center: center += (x - prev) / particles before the move, so that after
 * one push from every particle it has moved as the synchronous mean does. */
void swarm_push(struct swarm *s, uint64_t step, int i, float *x, const float *prev, double loss,
                swarm_done_fn *done, void *ctx);

/* Particle i starts over at x0 for a new worker (stream): v = 0, p = x0,
 * personal best loss +inf. Not for the global best's particle. */
void swarm_reset(struct swarm *s, int i, const float *x0, uint64_t stream);

/* Checkpoint: velocities, personal bests and their losses, global best. */
void swarm_save(const struct swarm *s, struct ckpt_writer *w);
int swarm_load(struct swarm *s, struct ckpt_reader *r);

/* Verified global best (prm.verify). The global best is then a copy,
 * adopted from a particle's personal best only when swarm_judge says so;
 * until the first adoption the pull toward it is off (c2 = 0). The
 * candidate is a personal best, not yet judged, with a loss below the
 * global best's: of the particles with the fewest strikes (refusals since
 * their last adoption), the one with the lowest loss. With
 * PSO_ATTRACT_WEIGHTED a struck particle has no weight in the attractor,
 * unless every particle that pushed is struck. swarm_candidate returns the
 * particle whose personal best it will be after a round closes with
 * pushes x and losses loss (x NULL: as things stand), with the loss it
 * claims and its weights (x[i] or the personal best; read them before the
 * round moves x), or -1 when there is none or verification is off.
 * swarm_judge hands particle i's personal best the loss another worker
 * measured for it: within the tolerance it becomes the global best (loss:
 * the larger of the two), the particle's strikes are cleared and 1 is
 * returned; beyond it the personal best keeps the measured loss, the
 * particle gets a strike and its best is not a candidate again until it
 * improves on it (0); -1: not judged (verification off, a non-finite
 * loss, or i out of range). */
int swarm_candidate(const struct swarm *s, float *const *x, const double *loss, double *claimed,
                    const float **weights);
int swarm_judge(struct swarm *s, int i, double measured);

/* A strike against particle i outside its own claims (a verdict that went
 * against the verification panel). Strikes since the start count toward
 * prm.strike_limit; an excluded particle has no weight in the mean,
 * robust or weighted attractor, its claims are not candidates and it is
 * never the global best. Returns 1 when i is (now) excluded. */
int swarm_strike(struct swarm *s, int i);
int swarm_excluded(const struct swarm *s, int i);
/* The model a diverged particle starts again from: the verified global
 * best once one was adopted, else the robust attractor (prm.agg), else the
 * global best; *kind names it. NULL before any. */
const float *swarm_safe(const struct swarm *s, const char **kind);
/* Particle i's push seen by swarm_arrive is freed before the close. */
void swarm_withdraw(struct swarm *s, int i);
uint32_t swarm_strikes(const struct swarm *s, int i); /* since the start */

double swarm_best_loss(const struct swarm *s);  /* +inf before any round */
int swarm_best_particle(const struct swarm *s); /* -1 before any round */
/* The global best is the best personal best, not a copy (verified: the
 * adopted copy). */
const float *swarm_best(const struct swarm *s); /* NULL before any round */
double swarm_personal_best_loss(const struct swarm *s, int i);
const float *swarm_personal_best(const struct swarm *s, int i); /* NULL under best_bf16 */

/* The fused element-wise update of one particle, exposed for tests and
 * benchmarks. `improved`: copy x into p first. r1, r2: the random factors
 * in PSO_RANDOM_PARTICLE mode; in ELEMENT mode element i draws them with
 * rng_uniform_pair(rng_key_hi(key, offset + i), offset + i). g == NULL
 * means this particle is the global best and just improved: p = g = x, so
 * both pulls vanish (requires improved). When `crc` is
 * not NULL it receives the CRC-32C of the new x, computed block by block
 * while the block is still in cache. v may be NULL when the velocity is
 * never read again (w = 0, or displacement inertia): a particle then holds
 * no velocity (swarm.c). */
struct pso_step {
    float w, c1, c2, vmax;
    int per_element;
    float r1, r2;
    uint32_t key;
    uint64_t offset;
    const float *a1; /* first attractor instead of p (the swarm mean), or NULL */
};
void pso_update(float *x, float *v, float *p, const float *g, size_t n, int improved,
                const struct pso_step *k, uint32_t *crc);
/* The same with p and g in bfloat16: each block widened on the way in
 * (exactly), and p narrowed (nearest-even) where it is written; the
 * floats of pso_update on the widened p and g. */
void pso_update_bf16(float *x, float *v, uint16_t *p, const uint16_t *g, size_t n, int improved,
                     const struct pso_step *k, uint32_t *crc);
/* With k->a1 set, the first pull goes toward a1[i] instead of p[i]
 * (PSO_ATTRACT_MEAN); g == NULL then still drops only the second pull. */

/* The update with displacement inertia (where the fused kernel above does
 * not go), one plain pass: a1 is the first attractor (p, or the swarm
 * mean; pso_update handles the mean too, through k->a1), prev
 * the position before local training (displacement mode only). Same
 * conventions as pso_update otherwise; g == NULL is not allowed (pass p,
 * which equals x after the improved copy). */
void pso_update_general(float *x, float *v, float *p, const float *a1, const float *g,
                        const float *prev, size_t n, int improved, int displacement,
                        const struct pso_step *k, uint32_t *crc);

/* The step's random factors for the particle with random stream `stream`
 * in `round`. */
void pso_step_init(struct pso_step *k, const struct pso_params *prm, uint64_t round,
                   uint64_t stream, uint64_t offset);

#endif
