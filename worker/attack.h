/* A malicious worker, for experiments: what it pushes in place of its
 * honest weights (psoworker --attack). It trains honestly, so that its
 * honest change d = x - anchor (anchor: the position psod last sent it) is
 * its estimate of what the others push, then crafts:
 *
 *   signflip  anchor - s d           its drift reversed and amplified (s = 10)
 *   scale     s x                    its weights scaled (s = 10)
 *   noise     x + N(0, s^2)          Gaussian noise on every weight (s = 1)
 *   alie      anchor + d - s sigma   "a little is enough" (Baruch et al. 2019):
 *                                    sigma per coordinate, estimated from the
 *                                    spread of its own steps over the interval,
 *                                    sqrt(H) x their standard deviation (s = 1)
 *   ipm       anchor - s d           inner-product manipulation (Xie et al.
 *                                    2020): a small step against the honest
 *                                    mean (s = 0.5)
 *
 * The lying loss and verdicts are separate options (--lie-loss,
 * --lie-verdict); label flipping is --flip-labels. */
#ifndef PSOD_ATTACK_H
#define PSOD_ATTACK_H

#include <stddef.h>
#include <stdint.h>

enum attack_kind {
    ATTACK_NONE = 0,
    ATTACK_SIGNFLIP,
    ATTACK_SCALE,
    ATTACK_NOISE,
    ATTACK_ALIE,
    ATTACK_IPM
};
extern const char *const attack_names[]; /* "none", "signflip", ... NULL */

struct attack {
    int kind;
    double s; /* the attack's strength; see above */
    uint64_t seed;
    size_t n;
    float *last;         /* alie: the weights before the last step */
    double *sum, *sumsq; /* alie: sums of the interval's step changes */
    long steps;
    float *honest; /* the honest weights of the last push, to recover to */
    int have_honest;
};

/* The strength an attack uses when --attack-scale is not given. */
double attack_default_scale(int kind);
/* 0, or -1 when out of memory. */
int attack_init(struct attack *a, int kind, double s, uint64_t seed, size_t n);
void attack_free(struct attack *a);
/* An interval starts at x (alie: its step statistics start over). */
void attack_start(struct attack *a, const float *x);
/* A local step left the weights at x (alie). */
void attack_step(struct attack *a, const float *x);
/* x: the honest weights, replaced by the crafted ones; anchor: where the
 * interval started; `round` keys the noise. */
void attack_apply(struct attack *a, float *x, const float *anchor, uint64_t round);
/* The attacker diverged (its crafted position came back): its last honest
 * weights into x; 0 when there are none yet. */
int attack_recover(struct attack *a, float *x);

#endif
