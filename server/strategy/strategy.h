/* Synchronization strategies: what the daemon computes from the vectors the
 * workers pushed in a round. One source file per strategy, all behind this
 * small interface, so the daemon's loop (server.c) never knows which one
 * runs:
 *
 *   strategy_pso.c     PSO-PS: particle swarm update (swarm.c does the math)
 *   strategy_avg.c     parameter averaging (local SGD)
 *   strategy_easgd.c   elastic averaging SGD with a center variable
 *   strategy_diloco.c  outer Nesterov SGD on the mean change (DiLoCo, SlowMo)
 *   strategy_ssgd.c    synchronous SGD: workers push gradients every step
 *
 * Every strategy works in place: at the close of a round x[i] is the vector
 * particle i pushed (NULL if it did not push) and on return holds what goes
 * back to it. prev[i] is the position the daemon last sent to particle i
 * (where its local training started). The update is element-wise except for
 * the per-particle losses, so a later daemon owning a slice [offset,
 * offset + n) of the vector computes the same numbers on its slice.
 *
 * Each strategy has its own options (its table is merged into psod's) and
 * documents its update and defaults in docs/STRATEGIES.md. */
#ifndef PSOD_STRATEGY_H
#define PSOD_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"
#include "common/config.h"
#include "common/payload.h"
#include "server/strategy/aggregate.h"

/* Options of every strategy; each strategy reads only its own. */
struct strategy_params {
    /* pso */
    double w, c1, c2, vmax;
    int random_mode;              /* enum pso_random_mode */
    int inertia;                  /* enum pso_inertia */
    int attractor;                /* enum pso_attractor */
    double temperature;           /* PSO_ATTRACT_WEIGHTED: softmax(-loss / temperature) */
    double mix_w, mix_c1, mix_c2; /* PSO_ATTRACT_MIX: the mixing weights' PSO */
    int verify;                   /* --verify-best: a second worker checks a new global best */
    double verify_tol;            /* --verify-tolerance */
    long verify_panel;            /* --verify-panel: workers asked to measure a candidate */
    long verify_quorum;           /* --verify-quorum: agreeing verdicts that decide it */
    long strike_limit;            /* --strike-limit: strikes at which a worker is excluded */
    int strike_action;            /* --strike-action: 0 exclude, 1 evict */
    int best_bf16;                /* --best-precision bf16: personal bests in bfloat16 */
    /* easgd */
    double easgd_beta; /* moving rate of the center: alpha = beta / workers */
    /* diloco */
    double outer_lr, outer_momentum;
    int outer_nesterov;
    /* ssgd */
    double ssgd_lr, ssgd_momentum, ssgd_weight_decay, ssgd_step_gamma;
    int ssgd_schedule; /* enum lr_schedule */
    long ssgd_warmup, ssgd_steps, ssgd_step_size;
    /* all: --aggregate (aggregate.h) */
    struct agg_params agg;
    uint64_t seed;
    long workers;
};

typedef void strategy_done_fn(void *ctx, int i, uint32_t crc);

struct strategy_ops {
    const char *name;
    /* What pushes carry: 0 weights, 1 gradients (Psod__PayloadKind). */
    int push_kind;
    /* Every particle that pushed gets the same vector back: the strategy's
     * global model. Workers then evaluate what they receive. */
    int positions_global;
    /* Options of this strategy: offsets into struct strategy_params,
     * {0}-terminated. */
    const struct config_option *options;
    /* Optional: refuse option values that cannot work together, before the
     * daemon starts (0, or -1 with err filled). */
    int (*check)(const struct strategy_params *p, char *err, size_t errlen);
    void *(*create)(size_t n, uint64_t offset, const struct strategy_params *p);
    void (*destroy)(void *st);
    /* A new particle starting at x0 (the first one also sets any center).
     * Returns its id (0, 1, ... in order), or -1 when out of memory. */
    int (*add)(void *st, const float *x0, uint64_t stream);
    /* Close a round (see above). `done` is called for each particle whose
     * x[i] is ready, with the CRC-32C of the new x[i]. */
    void (*round)(void *st, uint64_t round, float *const *x, const float *const *prev,
                  const double *loss, strategy_done_fn *done, void *ctx);
    /* The model users take home: the global best for pso, the center or
     * mean for the others. NULL before the first round closes. */
    const float *(*global)(const void *st);
    /* pso: the global best's loss; others: mean loss of the last round. */
    double (*global_loss)(const void *st);
    /* pso: the particle whose personal best is the global best; -1 else. */
    int (*global_particle)(const void *st);
    /* pso: particle i's personal best loss; NaN for the others. */
    double (*personal_best_loss)(const void *st, int i);
    /* Checkpoints: everything but the particles' positions (the daemon
     * keeps those). load runs on a fresh state to which the same particles
     * were added in the same order; it returns -1 (r->err says why) on a
     * file that does not fit. */
    void (*save)(const void *st, struct ckpt_writer *w);
    int (*load)(void *st, struct ckpt_reader *r);
    /* Asynchronous mode (NULL = not supported): particle i pushed x alone;
     * update it from the current state at once (in place, then done()).
     * `step` counts pushes so far (it keys the random factors). */
    void (*push)(void *st, uint64_t step, int i, float *x, const float *prev, double loss,
                 strategy_done_fn *done, void *ctx);
    /* Particle i (never the global best's) is handed to a new worker with
     * stream `stream`, starting at x0: forget its own state. */
    void (*reset)(void *st, int i, const float *x0, uint64_t stream);
    /* Synchronous mode (NULL = nothing to do early): particle i's push x
     * for `round` arrived and is valid. x stays as it is until round()
     * (or until the push is dropped: round() then sees x[i] NULL). A
     * strategy that needs the mean of the pushes sums them here, as they
     * come (struct strategy_sum), so that little is left for the close.
     * With chk, x is not checked yet: a strategy that reads x now may
     * check it in the same pass (payload_check_fold), fill *chk and
     * return 1; 0: the caller checks. A push that fails its check is
     * withdrawn at once. */
    int (*arrive)(void *st, uint64_t round, int i, const float *x, struct payload_check *chk);
    /* A global best adopted only once another worker reproduced its loss
     * (pso --verify-best; NULL: never): the candidate a round closing with
     * these pushes makes, and the verdict on it. See swarm_candidate and
     * swarm_judge (swarm.h). */
    int (*candidate)(const void *st, float *const *x, const double *loss, double *claimed,
                     const float **weights);
    int (*judge)(void *st, int i, double measured);
    /* A strike against particle i (a verdict against the panel) and
     * whether i is excluded (struck --strike-limit times): see
     * swarm_strike. NULL: never. */
    int (*strike)(void *st, int i);
    int (*excluded)(const void *st, int i);
    uint32_t (*strikes)(const void *st, int i);
    /* The model a diverged worker starts again from, and what it is
     * (NULL op: global()). pso: the verified global best, else the robust
     * attractor, else the global best. NULL before there is one. */
    const float *(*safe)(const void *st, const char **kind);
    /* Particle i's push that arrive() saw is freed before the close (its
     * worker was evicted mid-round): forget it. NULL: arrive keeps no
     * pointer. */
    void (*withdraw)(void *st, int i);
    /* Whether round() reads prev, the positions the pushes started from
     * (displacement inertia, robust rules). 0: the daemon may let a
     * member's stored position go once its push is in. NULL: it may not. */
    int (*reads_prev)(const void *st);
    /* Fragment payloads (--wire frag:F): confine the next round()'s
     * element-wise update to [off, off + len); the elements outside keep
     * their state (velocities, bests, momentum, center) and every pushed
     * x[i] keeps what it holds there (the particle's last position: no
     * news from its worker). len = the state's n: the whole vector. NULL:
     * the update covers everything. */
    void (*part)(void *st, size_t off, size_t len);
};

/* Every strategy, once: the registry, --strategy's choices and the names
 * in messages all come from this list. */
#define STRATEGY_LIST(X) X(pso) X(avg) X(easgd) X(diloco) X(ssgd)
#define STRATEGY_DECLARE(s) extern const struct strategy_ops strategy_##s;
STRATEGY_LIST(STRATEGY_DECLARE)
#define STRATEGY_ONE(s) +1
#define STRATEGY_COUNT (0 STRATEGY_LIST(STRATEGY_ONE))

/* NULL-terminated list of all strategies and of their names (in the same
 * order: --strategy's value indexes both), and lookup by name. */
extern const struct strategy_ops *const strategy_all[];
extern const char *const strategy_choices[];
const struct strategy_ops *strategy_find(const char *name);
/* "pso, avg, ..." for messages. */
const char *strategy_names(void);

/* Helpers the strategies share. */
float *strategy_alloc(size_t n); /* 64-byte aligned, free() it */

/* The particles in the order of their random streams (derived from the
 * worker names), not of their ids (join order): sums over particles run in
 * this order, so a seeded run gives the same floats whatever order the
 * workers joined in. */
struct strategy_order {
    uint32_t *idx; /* particle ids sorted by key */
    uint64_t *key; /* by particle id */
    size_t count, cap;
    uint64_t version; /* changes with every add and rekey */
};
/* Add particle `count` with `key`; returns its id, or -1 when out of memory. */
int strategy_order_add(struct strategy_order *o, uint64_t key);
/* Particle `id` now belongs to a worker with stream `key`. */
void strategy_order_rekey(struct strategy_order *o, uint32_t id, uint64_t key);
void strategy_order_free(struct strategy_order *o);

/* The same mean built while a round's pushes arrive (strategy_sum.c). The
 * sum runs left to right in the order's order, as strategy_mean's does, so
 * its floats are the same bits: a push is added as soon as every particle
 * before it in the order has been added (or is known to be absent at the
 * close), and strategy_sum_finish adds the rest and scales. Anything that
 * breaks the sequence (a push replaced or dropped after it was added, a
 * particle added or rekeyed mid-round, out of memory) makes finish compute
 * the mean afresh. */
struct strategy_sum {
    uint64_t round;   /* the round the sum is for */
    uint64_t version; /* of the order when it started */
    int started, broken;
    size_t next;       /* positions of the order already added */
    const float **got; /* by particle id: this round's arrival, NULL = none */
    size_t cap;
};
/* With chk: x unchecked; when x is added now, its check (CRC, NaN scan)
 * rides on the same pass and the result is 1 with *chk filled; else 0. */
int strategy_sum_arrive(struct strategy_sum *s, const struct strategy_order *o, float *out,
                        size_t n, uint64_t round, int i, const float *x, struct payload_check *chk);
void strategy_sum_finish(struct strategy_sum *s, const struct strategy_order *o, float *out,
                         float *const *x, size_t n, uint64_t round, size_t *k);
void strategy_sum_free(struct strategy_sum *s);
/* Particle i's push of this round is gone before the close (its buffer
 * is freed): the sum must not read it, and finish computes afresh. */
void strategy_sum_withdraw(struct strategy_sum *s, int i);

/* The state the center-based strategies (avg, easgd, diloco, ssgd) share.
 * It comes first in each one's state struct, so the strategy_center_*
 * functions below serve directly as their operations (STRATEGY_CENTER_OPS);
 * a strategy writes only its options, create, round (and push). */
#define STRATEGY_CENTER_ARRAYS 4
struct strategy_center {
    size_t n;
    size_t part_off, part_len; /* the next round's part (strategy_center_part) */
    struct strategy_order ord;
    float *arr[STRATEGY_CENTER_ARRAYS]; /* arr[0]: the global model */
    int narr, nsave;                    /* arrays allocated; the first nsave are checkpointed */
    const char *what;                   /* the strategy's name, for errors */
    int have;                           /* a round has closed: arr[0] is meaningful */
    double loss;                        /* mean loss of the last round */
    int sum_arr;                        /* the array a round's pushes are summed into as they
                           * arrive (strategy_center_arrive); 0 = none */
    struct strategy_sum sum;
    struct agg_params agg; /* --aggregate: mean, or a robust rule (aggregate.h) */
};
/* A zeroed state of `size` bytes that starts with a strategy_center, with
 * `narr` zeroed arrays of n floats. arr[0] starts at the first particle's
 * weights. NULL when out of memory. */
void *strategy_center_new(size_t size, size_t n, int narr, int nsave, const char *what,
                          const struct strategy_params *p);
void strategy_center_destroy(void *st);
int strategy_center_add(void *st, const float *x0, uint64_t stream);
/* The end of a round that moved the global model: the mean loss of the
 * pushes, then (publish) arr[0] copied to every particle that pushed. */
void strategy_center_settle(struct strategy_center *c, float *const *x, const double *loss);
void strategy_center_publish(struct strategy_center *c, float *const *x, const double *loss,
                             strategy_done_fn *done, void *ctx);
const float *strategy_center_global(const void *st);
double strategy_center_loss(const void *st);
int strategy_center_no_particle(const void *st);        /* -1 */
double strategy_center_no_pbest(const void *st, int i); /* NaN */
void strategy_center_reset(void *st, int i, const float *x0, uint64_t stream);
/* arrive for strategies that set sum_arr; strategy_center_mean takes the
 * round's mean from it into arr[sum_arr]. */
int strategy_center_arrive(void *st, uint64_t round, int i, const float *x,
                           struct payload_check *chk);
void strategy_center_withdraw(void *st, int i);
void strategy_center_mean(struct strategy_center *c, float *const *x, uint64_t round, size_t *k);
/* The round's pushes combined into arr[sum_arr]: their mean (as
 * strategy_center_mean), or under a robust --aggregate rule
 * ref + A(x[i] - prev[i]) over the pushes in the order's order (prev NULL:
 * changes against ref; ref NULL too: the pushes themselves, gradients).
 * *k: how many pushed. Out of memory: the mean stands in. */
void strategy_center_combine(struct strategy_center *c, float *const *x, const float *const *prev,
                             const float *ref, uint64_t round, size_t *k);
/* The same for any strategy: out = A over the non-NULL x[i] in o's order
 * (p->rule not mean). 0, or -1 when out of memory (out untouched). */
int strategy_aggregate(const struct agg_params *p, float *out, float *const *x,
                       const float *const *prev, const float *ref, const struct strategy_order *o,
                       size_t n, size_t *k);
/* The part op: [*lo, *hi) the next round updates (all of n unless set). */
void strategy_center_part(void *st, size_t off, size_t len);
void strategy_center_span(const struct strategy_center *c, size_t *lo, size_t *hi);
/* Checkpoint: n, have, loss, then the first nsave arrays. */
void strategy_center_save(const void *st, struct ckpt_writer *w);
int strategy_center_load(void *st, struct ckpt_reader *r);

/* The operations every center-based strategy takes from the center (save
 * and load too unless it checkpoints more). */
#define STRATEGY_CENTER_OPS                                                         \
    .destroy = strategy_center_destroy, .add = strategy_center_add,                 \
    .global = strategy_center_global, .global_loss = strategy_center_loss,          \
    .global_particle = strategy_center_no_particle,                                 \
    .personal_best_loss = strategy_center_no_pbest, .reset = strategy_center_reset, \
    .arrive = strategy_center_arrive, .withdraw = strategy_center_withdraw,         \
    .part = strategy_center_part

/* Mean of the non-NULL x[i] (how many in *k) into out, summed in o's order. */
void strategy_mean(float *out, float *const *x, const struct strategy_order *o, size_t n,
                   size_t *k);

/* Copy src into every non-NULL x[i], calling done with the CRC. */
void strategy_broadcast(const float *src, float *const *x, size_t count, size_t n,
                        strategy_done_fn *done, void *ctx);
/* Mean of the finite losses of the particles that pushed, summed in the
 * order's (worker-name) order like the vectors, so the same run gives the
 * same bits whatever order the workers joined in. */
double strategy_mean_loss(float *const *x, const double *loss, const struct strategy_order *o);

#endif
