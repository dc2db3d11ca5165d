/* The PSO-weighted mean (pso --attractor mix): a second, small swarm that
 * searches the mixing weights of the workers' models.
 *
 * Particle i holds a vector a_i of K mixing weights, one per particle of
 * the swarm (K = the particle count). At the close of a round, particle i's
 * new position is the mixture  x_i' = sum_k alpha_ik x_k  over the
 * particles k that pushed, alpha_i = a_i normalized to sum 1 over them. Its
 * worker trains from there, and the loss it pushes next round is the
 * fitness of a_i: the mixing vector with the lowest such loss is the
 * particle's best, the best of those the swarm's. The mixing vectors move
 * with the PSO update of the K-dimensional space (inertia --mix-w, pulls
 * --mix-c1 toward the particle's best vector and --mix-c2 toward the
 * swarm's), clamped to [0, 1] per weight.
 *
 * Everything is keyed by the particles' random streams (the worker names),
 * not by their ids, and sums run in stream order: a seeded run gives the
 * same bits whatever order workers joined or pushed in, and a daemon owning
 * a slice of the vector mixes its slice with the same weights as the
 * others (the weights depend only on losses, streams and rounds). */
#ifndef PSOD_SWARM_MIX_H
#define PSOD_SWARM_MIX_H

#include <stddef.h>
#include <stdint.h>

#include "common/ckpt.h"
#include "server/strategy/strategy.h"

struct mix_params {
    double w, c1, c2; /* the PSO update of the mixing vectors */
    uint64_t seed;
};

struct swarm_mix;

struct swarm_mix *mix_new(const struct mix_params *prm);
void mix_free(struct swarm_mix **m);

/* Room for `count` particles: -1 when out of memory. Then, once the order
 * gained particles (o->count grew, up to the room reserved), mix_grow gives
 * each new one a mixing vector and every vector a weight for it. */
int mix_reserve(struct swarm_mix *m, size_t count);
void mix_grow(struct swarm_mix *m, const struct strategy_order *o);
/* Particle i now belongs to a new worker (o->key[i] changed): forget its
 * vector, its best and its weight in the others' vectors. */
void mix_reset(struct swarm_mix *m, const struct strategy_order *o, int i);

/* Close `round`: x[i] (NULL = did not push) and loss[i] as in swarm_round.
 * Credits each pushing particle's loss to the vector it was last given,
 * moves the vectors, and replaces every non-NULL x[i] by its mixture;
 * crc[i] receives the CRC-32C of the new x[i]. -1 when out of memory
 * (nothing changed then). */
int mix_round(struct swarm_mix *m, const struct strategy_order *o, uint64_t round, float *const *x,
              const double *loss, size_t n, uint32_t *crc);

/* alpha_i over the particles with present[k] != 0, by particle id, into
 * out[0..K) (the tests read the weights a round will use). */
void mix_weights(const struct swarm_mix *m, const struct strategy_order *o, int i,
                 const unsigned char *present, double *out);
/* The best vector's loss (+inf before any) and its particle (-1). */
double mix_best_loss(const struct swarm_mix *m);
int mix_best_particle(const struct swarm_mix *m);

void mix_save(const struct swarm_mix *m, struct ckpt_writer *w);
int mix_load(struct swarm_mix *m, struct ckpt_reader *r);

#endif
