/* Random numbers for the swarm, counter-based so that they depend only on
 * (seed, round, particle, stream, element index) and never on the order in
 * which pushes arrive or on which daemon owns a slice of the vector: a
 * daemon that owns elements [a, b) draws exactly the numbers one daemon
 * owning everything would draw for them. */
#ifndef PSOD_RNG_H
#define PSOD_RNG_H

#include <stdint.h>

uint64_t rng_splitmix64(uint64_t x);

/* Key for one (seed, round, particle, stream) tuple. */
uint32_t rng_key(uint64_t seed, uint64_t round, uint32_t particle, uint32_t stream);

/* Two uniform floats in [0, 1) for element `index` under `key`, 16 bits of
 * resolution each, from one 32-bit hash (murmur3's finalizer): cheap enough
 * that the update, which draws two per element, stays memory-bound. Inline
 * so the update kernel vectorizes it. */
static inline void rng_uniform_pair(uint32_t key, uint32_t index, float *a, float *b)
{
    uint32_t h = (key ^ index) + 0x9E3779B9u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    *a = (float)(h >> 16) * (1.0f / 65536.0f);
    *b = (float)(h & 0xffffu) * (1.0f / 65536.0f);
}

/* The key for elements whose index has the given upper 32 bits. */
static inline uint32_t rng_key_hi(uint32_t key, uint64_t index)
{
    return key ^ (uint32_t)(index >> 32) * 0x9E3779B9u;
}

/* A small sequential generator (xoshiro256**) for the worker side:
 * initial positions, data shuffling. State is 32 bytes, serializable. */
struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_double(struct rng *r);              /* [0, 1) */
double rng_normal(struct rng *r);              /* standard normal */
uint64_t rng_below(struct rng *r, uint64_t n); /* [0, n), n > 0 */

#endif
