/* Particles that carry hyperparameters (psod --hyper), in the manner of
 * population-based training: each particle also holds a learning rate and
 * a momentum, which the worker trains with until the next sync, and a
 * second, two-dimensional swarm moves them.
 *
 * Coordinates are z in [0, 1]^2: z0 = (ln lr - ln lr_min) / (ln lr_max -
 * ln lr_min), z1 = (momentum - mom_min) / (mom_max - mom_min). A particle
 * starts at a point drawn from the seed and its stream (the worker name),
 * told in the Welcome. The loss it pushes next is the fitness of the point
 * it was given (the worker trained with it since): the best such point is
 * the particle's best. The swarm's attractor is the point of this round's
 * lowest loss (ties: the lower stream), not the best of all rounds:
 * training lowers every loss as it goes, so only one round's losses
 * compare (population-based training's "exploit"). Each close then moves
 * every particle that pushed:
 *     v = w v + c1 r1 (pz - z) + c2 r2 (gz - z),  |v| <= 0.25 per coordinate
 *     z = clamp(z + v, 0, 1)
 * with r1, r2 drawn per particle, round and coordinate from the seed and
 * the stream, so a seeded run is the same whatever order workers join or
 * push in. Plain C over doubles, no I/O; strategy-independent (the daemon
 * runs it beside any strategy whose workers take local steps). */
#ifndef PSOD_SWARM_HYPER_H
#define PSOD_SWARM_HYPER_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"

struct hyper_params {
    double w, c1, c2;
    double lr_min, lr_max, mom_min, mom_max;
    uint64_t seed;
};

struct swarm_hyper;

struct swarm_hyper *hyper_new(const struct hyper_params *prm);
void hyper_free(struct swarm_hyper **h);
/* Room for `count` particles (0, or -1 when out of memory); then a new
 * particle with stream `stream`: its id (0, 1, ... in order), or -1 when
 * out of memory (never after room was reserved). */
int hyper_reserve(struct swarm_hyper *h, size_t count);
int hyper_add(struct swarm_hyper *h, uint64_t stream);
/* Particle i now belongs to a new worker: a fresh point, best forgotten. */
void hyper_reset(struct swarm_hyper *h, int i, uint64_t stream);
/* Close `round`: x[i] non-NULL for the particles that pushed (as in
 * swarm_round; only read for NULL), loss[i] their losses (non-finite: not
 * credited). Credits, then moves. */
void hyper_round(struct swarm_hyper *h, uint64_t round, float *const *x, const double *loss);
size_t hyper_count(const struct swarm_hyper *h);
/* What particle i (< hyper_count) trains with now. */
void hyper_get(const struct swarm_hyper *h, int i, double *lr, double *momentum);
/* The last round's best point (lr, momentum), its loss and its particle;
 * -1 before any round credited one. */
int hyper_best(const struct swarm_hyper *h, double *lr, double *momentum, double *loss);

void hyper_save(const struct swarm_hyper *h, struct ckpt_writer *w);
int hyper_load(struct swarm_hyper *h, struct ckpt_reader *r);

#endif
