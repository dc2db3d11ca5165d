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

/* Uniform float in [0, 1) for element `index` under `key` (24-bit mantissa).
 * Inline so the update kernel vectorizes it. */
static inline float rng_uniform(uint32_t key, uint64_t index)
{
    /* murmur3's 32-bit finalizer over key ^ (index mixed); 2 multiplies. */
    uint32_t h = key ^ (uint32_t)index ^ (uint32_t)(index >> 32) * 0x9E3779B9u;
    h += 0x9E3779B9u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

/* A small sequential generator (xoshiro256**) for the worker side:
 * initial positions, data shuffling. State is 32 bytes, serializable. */
struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_double(struct rng *r);          /* [0, 1) */
double rng_normal(struct rng *r);          /* standard normal */
uint64_t rng_below(struct rng *r, uint64_t n); /* [0, n), n > 0 */

#endif
