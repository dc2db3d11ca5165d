/* A malicious worker's pushes: see attack.h. */
#include "worker/attack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

const char *const attack_names[] = {"none", "signflip", "scale", "noise", "alie", "ipm", NULL};

double attack_default_scale(int kind)
{
    switch (kind) {
    case ATTACK_SIGNFLIP:
    case ATTACK_SCALE: return 10;
    case ATTACK_IPM: return 0.5;
    default: return 1;
    }
}

int attack_init(struct attack *a, int kind, double s, uint64_t seed, size_t n)
{
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->s = s;
    a->seed = seed;
    a->n = n;
    if (kind != ATTACK_NONE && !(a->honest = malloc(n * sizeof *a->honest)))
        return -1;
    if (kind != ATTACK_ALIE)
        return 0;
    a->last = malloc(n * sizeof *a->last);
    a->sum = calloc(n, sizeof *a->sum);
    a->sumsq = calloc(n, sizeof *a->sumsq);
    if (!a->last || !a->sum || !a->sumsq) {
        attack_free(a);
        return -1;
    }
    return 0;
}

void attack_free(struct attack *a)
{
    free(a->last);
    free(a->sum);
    free(a->sumsq);
    free(a->honest);
    a->honest = NULL;
    a->last = NULL;
    a->sum = a->sumsq = NULL;
}

void attack_start(struct attack *a, const float *x)
{
    if (a->kind != ATTACK_ALIE)
        return;
    memcpy(a->last, x, a->n * sizeof *x);
    memset(a->sum, 0, a->n * sizeof *a->sum);
    memset(a->sumsq, 0, a->n * sizeof *a->sumsq);
    a->steps = 0;
}

void attack_step(struct attack *a, const float *x)
{
    if (a->kind != ATTACK_ALIE)
        return;
    for (size_t e = 0; e < a->n; e++) {
        double d = (double)x[e] - a->last[e];
        a->sum[e] += d;
        a->sumsq[e] += d * d;
        a->last[e] = x[e];
    }
    a->steps++;
}

void attack_apply(struct attack *a, float *x, const float *anchor, uint64_t round)
{
    const float s = (float)a->s;
    if (a->honest) {
        memcpy(a->honest, x, a->n * sizeof *x);
        a->have_honest = 1;
    }
    switch (a->kind) {
    case ATTACK_SIGNFLIP:
    case ATTACK_IPM:
        for (size_t e = 0; e < a->n; e++)
            x[e] = anchor[e] - s * (x[e] - anchor[e]);
        break;
    case ATTACK_SCALE:
        for (size_t e = 0; e < a->n; e++)
            x[e] *= s;
        break;
    case ATTACK_NOISE: {
        struct rng r;
        rng_seed(&r, rng_splitmix64(a->seed ^ rng_splitmix64(round + 1)));
        for (size_t e = 0; e < a->n; e++)
            x[e] += (float)(a->s * rng_normal(&r));
        break;
    }
    case ATTACK_ALIE: {
        /* The interval's change is the sum of H steps; its spread across
         * workers about sqrt(H) times the spread of one step. */
        double h = a->steps > 0 ? (double)a->steps : 1;
        for (size_t e = 0; e < a->n; e++) {
            double mean = a->sum[e] / h, var = a->sumsq[e] / h - mean * mean;
            double sigma = sqrt(h * (var > 0 ? var : 0));
            x[e] = (float)((double)x[e] - a->s * sigma);
        }
        break;
    }
    default: break;
    }
}

int attack_recover(struct attack *a, float *x)
{
    if (!a->have_honest)
        return 0;
    memcpy(x, a->honest, a->n * sizeof *x);
    return 1;
}
