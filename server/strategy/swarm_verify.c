/* The verified global best and the strikes (swarm.h, prm.verify and
 * prm.strike_limit): which personal best is the candidate, the verdict on
 * it, strikes and exclusion, and the safe model a diverged particle starts
 * again from. The daemon's side (panels, quorums, messages) is
 * server/verify.c. */
#include "server/strategy/swarm_int.h"

#include <math.h>
#include <string.h>

int swarm_candidate(const struct swarm *s, float *const *x, const double *loss, double *claimed,
                    const float **weights)
{
    if (!s->g)
        return -1;
    /* Fewest refusals first, then the lowest loss: a worker caught lying
     * does not keep honest candidates from their turn. */
    int best = -1, best_new = 0;
    double bl = INFINITY;
    for (size_t i = 0; i < s->count; i++) {
        const struct particle *q = &s->pt[i];
        int improved = x && x[i] && loss[i] < q->p_loss;
        double pl = improved ? loss[i] : q->p_loss;
        if (!(improved || !q->judged) || !(pl < s->g_loss) || swarm__out(s, i))
            continue;
        if (best < 0 || q->strikes < s->pt[best].strikes ||
            (q->strikes == s->pt[best].strikes && pl < bl)) {
            best = (int)i;
            best_new = improved;
            bl = pl;
        }
    }
    if (best >= 0) {
        *claimed = bl;
        *weights = best_new ? x[best] : s->pt[best].p;
    }
    return best;
}

int swarm_judge(struct swarm *s, int i, double measured)
{
    if (!s->g || i < 0 || (size_t)i >= s->count || !isfinite(measured))
        return -1;
    struct particle *q = &s->pt[i];
    double claimed = q->p_loss;
    q->judged = 1;
    if (measured <= claimed + s->prm.verify_tol * fabs(claimed) + 1e-6) {
        memcpy(s->g, q->p, s->n * sizeof(float));
        s->g_loss = measured > claimed ? measured : claimed;
        s->g_particle = i;
        q->strikes = 0; /* it told the truth */
        return 1;
    }
    q->p_loss = measured;
    q->strikes++;
    q->total++;
    return 0;
}
int swarm_strike(struct swarm *s, int i)
{
    if (i < 0 || (size_t)i >= s->count)
        return 0;
    s->pt[i].total++;
    return swarm__out(s, (size_t)i);
}

const float *swarm_safe(const struct swarm *s, const char **kind)
{
    if (s->g && s->g_particle >= 0) {
        *kind = "verified global best";
        return s->g;
    }
    if (s->ref && s->have_ref) {
        *kind = "robust attractor";
        return s->ref;
    }
    *kind = "global best";
    return s->g ? NULL : swarm_best(s); /* verified, none adopted yet: nothing is safe */
}

int swarm_excluded(const struct swarm *s, int i)
{
    return i >= 0 && (size_t)i < s->count && swarm__out(s, (size_t)i);
}

uint32_t swarm_strikes(const struct swarm *s, int i)
{
    return i >= 0 && (size_t)i < s->count ? s->pt[i].total : 0;
}
