/* Test fixtures shared by suites: small datasets written in the real IDX
 * format. A learnable pattern: image k of class y = k % 10 has a bright
 * 4x4 block at a position that depends on y, over seeded noise. */
#ifndef PSOD_TESTS_FIXTURES_H
#define PSOD_TESTS_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/rng.h"

static inline void fixture_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Write dir/PREFIX-images-idx3-ubyte and dir/PREFIX-labels-idx1-ubyte with
 * n learnable 28x28 images: noise uniform in [0, noise), the class's block
 * at `block` brightness on top of it (255 = easy; near `noise`, a task a
 * model does not learn perfectly). Returns 0 or -1. */
static inline int fixture_write_idx_ex(const char *dir, const char *prefix, uint32_t n,
                                       uint64_t seed, int block, int noise)
{
    size_t len = 16 + (size_t)n * 784;
    unsigned char *img = malloc(len), *lab = malloc(8 + (size_t)n);
    if (!img || !lab)
        return free(img), free(lab), -1;
    fixture_be32(img, 0x803), fixture_be32(img + 4, n), fixture_be32(img + 8, 28),
        fixture_be32(img + 12, 28);
    fixture_be32(lab, 0x801), fixture_be32(lab + 4, n);
    struct rng r;
    rng_seed(&r, seed);
    for (uint32_t k = 0; k < n; k++) {
        int y = (int)(k % 10);
        unsigned char *p = img + 16 + (size_t)k * 784;
        for (int i = 0; i < 784; i++)
            p[i] = (unsigned char)rng_below(&r, (uint32_t)noise);
        int oy = 2 + (y / 5) * 12, ox = 2 + (y % 5) * 5;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                int v = block >= 255 ? 255 : p[(oy + i) * 28 + ox + j] + block;
                p[(oy + i) * 28 + ox + j] = (unsigned char)(v > 255 ? 255 : v);
            }
        lab[8 + k] = (unsigned char)y;
    }
    char path[512];
    int rc = 0;
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(path, "wb");
    rc |= !f || fwrite(img, 1, len, f) != len;
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    f = fopen(path, "wb");
    rc |= !f || fwrite(lab, 1, 8 + (size_t)n, f) != 8 + (size_t)n;
    if (f)
        fclose(f);
    free(img), free(lab);
    return rc ? -1 : 0;
}

static inline int fixture_write_idx(const char *dir, const char *prefix, uint32_t n, uint64_t seed)
{
    return fixture_write_idx_ex(dir, prefix, n, seed, 255, 96);
}

#endif
