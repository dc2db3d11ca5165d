/* The PSO-PS update kernel (swarm.h: pso_update, pso_update_general,
 * pso_step_init). For one element of one particle
 *     p = x                 if this round's loss beat the personal best
 *     v = w v + c1 r1 (p - x) + c2 r2 (g - x)      (then clamped to +-vmax)
 *     x = x + v
 * done in one pass over x, v, p, g. The pass is bound by memory bandwidth;
 * with per-element random factors the hash that draws them must vectorize,
 * hence the AVX2 clone on x86-64. */
#include "server/strategy/swarm.h"

#include <string.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/pool.h"
#include "common/rng.h"
#include "common/simd.h"

void pso_step_init(struct pso_step *k, const struct pso_params *prm, uint64_t round,
                   uint64_t stream, uint64_t offset)
{
    k->w = (float)prm->w;
    k->c1 = (float)prm->c1;
    k->c2 = (float)prm->c2;
    k->vmax = (float)prm->vmax;
    k->per_element = prm->random_mode == PSO_RANDOM_ELEMENT;
    k->key = rng_key(prm->seed ^ stream, round, 0, 1);
    rng_uniform_pair(rng_key(prm->seed ^ stream, round, 0, 2), 0, &k->r1, &k->r2);
    k->offset = offset;
    k->a1 = NULL;
}

/* Each flag combination gets its own loop, so that the hot loop has no
 * branches and the compiler vectorizes it. `key` and `base` (the low 32
 * bits of the first element's global index) are fixed per block. */
#define PSO_LOOP(IMPROVED, PER_ELEMENT, CLAMP, MEAN, KEEPV)                                 \
    for (size_t i = 0; i < n; i++) {                                                        \
        float xi = x[i];                                                                    \
        float pi = p[i];                                                                    \
        if (IMPROVED)                                                                       \
            p[i] = pi = xi;                                                                 \
        float ai = MEAN ? a1[i] : pi;                                                       \
        float r1 = r1c, r2 = r2c;                                                           \
        if (PER_ELEMENT)                                                                    \
            rng_uniform_pair(key, base + (uint32_t)i, &r1, &r2);                            \
        float vi = (KEEPV ? w * v[i] : 0.0f) + c1 * r1 * (ai - xi) + c2 * r2 * (g[i] - xi); \
        if (CLAMP)                                                                          \
            vi = vi > vmax ? vmax : vi < -vmax ? -vmax : vi;                                \
        if (KEEPV)                                                                          \
            v[i] = vi;                                                                      \
        x[i] = xi + vi;                                                                     \
    }

PSOD_CLONES
static void s_update_block(float *restrict x, float *restrict v, float *restrict p,
                           const float *restrict g, const float *restrict a1, size_t n, int sel,
                           const struct pso_step *k, uint32_t key, uint32_t base)
{
    const float w = k->w, c1 = k->c1, c2 = k->c2, vmax = k->vmax, r1c = k->r1, r2c = k->r2;
    switch (sel) {
    case 0: PSO_LOOP(0, 0, 0, 0, 0) break;
    case 1: PSO_LOOP(0, 0, 1, 0, 0) break;
    case 2: PSO_LOOP(0, 1, 0, 0, 0) break;
    case 3: PSO_LOOP(0, 1, 1, 0, 0) break;
    case 4: PSO_LOOP(1, 0, 0, 0, 0) break;
    case 5: PSO_LOOP(1, 0, 1, 0, 0) break;
    case 6: PSO_LOOP(1, 1, 0, 0, 0) break;
    case 7: PSO_LOOP(1, 1, 1, 0, 0) break;
    case 8: PSO_LOOP(0, 0, 0, 1, 0) break;
    case 9: PSO_LOOP(0, 0, 1, 1, 0) break;
    case 10: PSO_LOOP(0, 1, 0, 1, 0) break;
    case 11: PSO_LOOP(0, 1, 1, 1, 0) break;
    case 12: PSO_LOOP(1, 0, 0, 1, 0) break;
    case 13: PSO_LOOP(1, 0, 1, 1, 0) break;
    case 14: PSO_LOOP(1, 1, 0, 1, 0) break;
    case 15: PSO_LOOP(1, 1, 1, 1, 0) break;
    case 16: PSO_LOOP(0, 0, 0, 0, 1) break;
    case 17: PSO_LOOP(0, 0, 1, 0, 1) break;
    case 18: PSO_LOOP(0, 1, 0, 0, 1) break;
    case 19: PSO_LOOP(0, 1, 1, 0, 1) break;
    case 20: PSO_LOOP(1, 0, 0, 0, 1) break;
    case 21: PSO_LOOP(1, 0, 1, 0, 1) break;
    case 22: PSO_LOOP(1, 1, 0, 0, 1) break;
    case 23: PSO_LOOP(1, 1, 1, 0, 1) break;
    case 24: PSO_LOOP(0, 0, 0, 1, 1) break;
    case 25: PSO_LOOP(0, 0, 1, 1, 1) break;
    case 26: PSO_LOOP(0, 1, 0, 1, 1) break;
    case 27: PSO_LOOP(0, 1, 1, 1, 1) break;
    case 28: PSO_LOOP(1, 0, 0, 1, 1) break;
    case 29: PSO_LOOP(1, 0, 1, 1, 1) break;
    case 30: PSO_LOOP(1, 1, 0, 1, 1) break;
    case 31: PSO_LOOP(1, 1, 1, 1, 1) break;
    }
}

/* 16 Ki elements (64 KiB of x): the block's x is still in L2 when the CRC
 * reads it back. Blocks never straddle a 2^32 boundary of the global index,
 * so the per-element key is constant within one. */
#define BLOCK ((size_t)1 << 14)

/* Elements a thread of the shared team (pool_for) updates at least. */
#define PART ((size_t)1 << 18)

struct s_update {
    float *x, *v, *p;
    const float *g, *a1;
    uint16_t *p16;       /* bf16 personal best in place of p, or NULL */
    const uint16_t *g16; /* bf16 global best in place of g (g_is_p: g is p) */
    int g_is_p;
    int sel, copy_p;
    const struct pso_step *k;
    int want_crc;
    uint32_t crc[POOL_MAX_PARTS];
    size_t len[POOL_MAX_PARTS];
};

/* The next block's length from global index `index` with `left` elements
 * to go: at most BLOCK, never across a 2^32 boundary of the index. */
static size_t s_block_len(uint64_t index, size_t left)
{
    size_t len = left < BLOCK ? left : BLOCK;
    uint64_t to_wrap = ((index >> 32) + 1) * ((uint64_t)1 << 32) - index;
    return len > to_wrap ? (size_t)to_wrap : len;
}

/* Elements [lo, hi) with p (and g) in bfloat16: each block widened into
 * scratch floats, updated as pso_update would, p narrowed back where the
 * update wrote it (improved, or the copy of x). */
static void s_update_part16(struct s_update *u, size_t lo, size_t hi, int part)
{
    const struct pso_step *k = u->k;
    float sp[BLOCK], sg[BLOCK];
    const int writes_p = u->copy_p || (u->sel & 4);
    uint32_t c = 0;
    for (size_t done = lo; done < hi;) {
        uint64_t index = k->offset + done;
        size_t len = s_block_len(index, hi - done);
        if (u->copy_p) /* p = x, as stored: the pulls read what is kept */
            codec_bf16_pack(u->p16 + done, u->x + done, len);
        codec_bf16_unpack(sp, u->p16 + done, len);
        const float *g = sp;
        if (!u->g_is_p) {
            codec_bf16_unpack(sg, u->g16 + done, len);
            g = sg;
        }
        s_update_block(u->x + done, u->v ? u->v + done : NULL, sp, g, u->a1 ? u->a1 + done : g, len,
                       u->sel, k, rng_key_hi(k->key, index), (uint32_t)index);
        if (writes_p && !u->copy_p)
            codec_bf16_pack(u->p16 + done, sp, len);
        if (u->want_crc)
            c = crc32c(c, u->x + done, len * sizeof(float));
        done += len;
    }
    u->crc[part] = c;
    u->len[part] = hi - lo;
}

/* Elements [lo, hi): the update block by block, the CRC of the new x. */
static void s_update_part(void *arg, size_t lo, size_t hi, int part)
{
    struct s_update *u = arg;
    const struct pso_step *k = u->k;
    if (u->p16) {
        s_update_part16(u, lo, hi, part);
        return;
    }
    if (u->copy_p)
        memcpy(u->p + lo, u->x + lo, (hi - lo) * sizeof(float));
    uint32_t c = 0;
    for (size_t done = lo; done < hi;) {
        uint64_t index = k->offset + done;
        size_t len = s_block_len(index, hi - done);
        s_update_block(u->x + done, u->v ? u->v + done : NULL, u->p + done, u->g + done,
                       u->a1 + done, len, u->sel, k, rng_key_hi(k->key, index), (uint32_t)index);
        if (u->want_crc)
            c = crc32c(c, u->x + done, len * sizeof(float));
        done += len;
    }
    u->crc[part] = c;
    u->len[part] = hi - lo;
}

/* pso_update and pso_update_bf16: p or p16 holds the personal best. */
static void s_update(float *x, float *v, float *p, const float *g, uint16_t *p16,
                     const uint16_t *g16, size_t n, int improved, const struct pso_step *k,
                     uint32_t *crc)
{
    int mean = k->a1 != NULL;
    /* With w = 0 the velocity is never read again: it is neither read nor
     * stored (a third less memory traffic per particle under the
     * defaults; a checkpoint then holds the velocities of the last round
     * with w > 0, zeros for a run that never had one). */
    int sel = (k->w != 0 && v ? 16 : 0) | (mean ? 8 : 0) | (improved ? 4 : 0) |
              (k->per_element ? 2 : 0) | (k->vmax > 0 ? 1 : 0);
    struct pso_step adjusted;
    int copy_p = 0;
    if (p16 ? !g16 : !g) {
        /* p = g = x after this step: the pull toward g is zero, and so is
         * the pull toward p unless the first attractor is the mean. p
         * stands in for g (read-only) once p = x is done here (per
         * range, before the range's update). */
        copy_p = 1;
        adjusted = *k;
        adjusted.c2 = 0;
        if (!mean) {
            adjusted.c1 = 0;
            adjusted.per_element = 0;
        }
        k = &adjusted;
        g = p;
        sel &= ~4;
        if (!mean)
            sel &= ~2;
    }
    struct s_update u = {x,           v,   p,      g, mean ? k->a1 : g, p16, g16,
                         p16 && !g16, sel, copy_p, k, crc != NULL,      {0}, {0}};
    int parts = pool_for(n, PART, s_update_part, &u);
    if (crc) {
        uint32_t c = u.crc[0];
        for (int q = 1; q < parts; q++)
            c = crc32c_combine(c, u.crc[q], u.len[q] * sizeof(float));
        *crc = c;
    }
}

void pso_update(float *x, float *v, float *p, const float *g, size_t n, int improved,
                const struct pso_step *k, uint32_t *crc)
{
    s_update(x, v, p, g, NULL, NULL, n, improved, k, crc);
}

void pso_update_bf16(float *x, float *v, uint16_t *p, const uint16_t *g, size_t n, int improved,
                     const struct pso_step *k, uint32_t *crc)
{
    s_update(x, v, NULL, NULL, p, g, n, improved, k, crc);
}

void pso_update_general(float *x, float *v, float *p, const float *a1, const float *g,
                        const float *prev, size_t n, int improved, int displacement,
                        const struct pso_step *k, uint32_t *crc)
{
    const float w = k->w, c1 = k->c1, c2 = k->c2, vmax = k->vmax;
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        if (improved)
            p[i] = xi; /* before a1[i], g[i] are read: they may be p */
        float r1 = k->r1, r2 = k->r2;
        if (k->per_element) {
            uint64_t index = k->offset + i;
            rng_uniform_pair(rng_key_hi(k->key, index), (uint32_t)index, &r1, &r2);
        }
        float inert = displacement ? xi - prev[i] : v ? v[i] : 0.0f;
        float vi = w * inert + c1 * r1 * (a1[i] - xi) + c2 * r2 * (g[i] - xi);
        if (vmax > 0)
            vi = vi > vmax ? vmax : vi < -vmax ? -vmax : vi;
        if (v)
            v[i] = vi;
        x[i] = (displacement ? prev[i] : xi) + vi;
    }
    if (crc)
        *crc = crc32c(0, x, n * sizeof(float));
}
