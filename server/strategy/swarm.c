/* PSO-PS swarm state: see swarm.h. The particles' velocities and
 * personal bests, the global best (a copy under --verify-best), the
 * attractors (mean, fitness-weighted, mix, robust); the fused
 * element-wise update itself is in swarm_kernel.c, checkpoints in
 * swarm_ckpt.c, the verified best and the strikes in swarm_verify.c. */
#include "server/strategy/swarm_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/payload.h"
#include "server/strategy/strategy.h"
#include "server/strategy/swarm_mix.h"

static float *s_alloc_floats(size_t n)
{
    void *p = NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        return NULL;
    return p;
}

/* A particle holds a velocity only when the update reads it again: inertia
 * from the velocity with w > 0. Under the defaults (w 0) and with
 * displacement inertia each particle is its personal best alone. */
static int s_keeps_velocity(const struct swarm *s)
{
    return s->prm.w != 0 && s->prm.inertia == PSO_INERTIA_VELOCITY;
}

/* The personal best's storage: float32, or bfloat16 (best_bf16). */
static int s_alloc_best(const struct swarm *s, struct particle *q)
{
    q->p = NULL;
    q->pb = NULL;
    if (!s->prm.best_bf16)
        return (q->p = s_alloc_floats(s->n)) ? 0 : -1;
    void *b = NULL;
    size_t bytes = (s->n * sizeof(uint16_t) + 63) & ~(size_t)63;
    if (posix_memalign(&b, 64, bytes ? bytes : 64) != 0)
        return -1;
    q->pb = b;
    return 0;
}

static void s_set_best(const struct swarm *s, struct particle *q, const float *x)
{
    if (q->pb)
        codec_bf16_pack(q->pb, x, s->n);
    else
        memcpy(q->p, x, s->n * sizeof(float));
}

void swarm__widen_best(struct swarm *s, int improved)
{
    if (s->gx && s->g_particle >= 0 && (improved || s->g_particle != s->gx_of)) {
        codec_bf16_unpack(s->gx, s->pt[s->g_particle].pb, s->n);
        s->gx_of = s->g_particle;
    }
}

struct swarm *swarm_new(size_t n, uint64_t offset, const struct pso_params *prm)
{
    struct swarm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n;
    s->offset = offset;
    s->prm = *prm;
    s->g_loss = INFINITY;
    s->g_particle = -1;
    s->gx_of = -1;
    if (prm->verify) {
        /* Zeros until the first adoption: read with c2 = 0 until then. */
        if (!(s->g = s_alloc_floats(n))) {
            free(s);
            return NULL;
        }
        memset(s->g, 0, n * sizeof(float));
    }
    if (prm->best_bf16 && !(s->gx = s_alloc_floats(n))) {
        free(s->g);
        free(s);
        return NULL;
    }
    if (swarm__robust(s) && !(s->ref = s_alloc_floats(n))) {
        free(s->gx);
        free(s->g);
        free(s);
        return NULL;
    }
    if (prm->attractor == PSO_ATTRACT_MIX) {
        struct mix_params mp = {prm->mix_w, prm->mix_c1, prm->mix_c2, prm->seed};
        if (!(s->mix = mix_new(&mp))) {
            free(s->ref);
            free(s->g);
            free(s);
            return NULL;
        }
    }
    return s;
}

void swarm_destroy(struct swarm **sp)
{
    struct swarm *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->pt[i].v);
        free(s->pt[i].p);
        free(s->pt[i].pb);
    }
    free(s->pt);
    free(s->mean);
    free(s->center);
    strategy_order_free(&s->ord);
    strategy_sum_free(&s->sum);
    mix_free(&s->mix);
    free(s->g);
    free(s->gx);
    free(s->ref);
    free(s);
    *sp = NULL;
}

int swarm_add(struct swarm *s, const float *x0, uint64_t stream)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        struct particle *pt = realloc(s->pt, cap * sizeof *pt);
        if (!pt)
            return -1;
        s->pt = pt;
        s->cap = cap;
    }
    struct particle *q = &s->pt[s->count];
    int keep_v = s_keeps_velocity(s);
    q->v = keep_v ? s_alloc_floats(s->n) : NULL;
    if (s_alloc_best(s, q) != 0 || (keep_v && !q->v)) {
        free(q->v);
        free(q->p);
        free(q->pb);
        return -1;
    }
    if (q->v)
        memset(q->v, 0, s->n * sizeof(float));
    s_set_best(s, q, x0);
    q->p_loss = INFINITY;
    q->stream = stream;
    q->judged = 0;
    q->strikes = 0;
    q->total = 0;
    if ((s->mix && mix_reserve(s->mix, s->count + 1) < 0) ||
        strategy_order_add(&s->ord, stream) < 0) {
        free(q->v);
        free(q->p);
        free(q->pb);
        return -1;
    }
    if (s->mix)
        mix_grow(s->mix, &s->ord); /* reserved: cannot fail */
    if (s->ref && !s->have_ref) {  /* the robust attractor starts where the first particle does */
        memcpy(s->ref, x0, s->n * sizeof(float));
        s->have_ref = 1;
    }
    return (int)s->count++;
}

/* PSO_ATTRACT_WEIGHTED: mean = sum_i w_i x_i over this round's pushes with
 * a finite loss, w = softmax(-loss / temperature), taken from the lowest
 * loss so that exp cannot overflow. Particles are added in the order of
 * their workers' streams (as the plain mean is), so the bits depend neither
 * on the order pushes arrived in nor on the order workers joined. */
static int s_weighs(const struct swarm *s, float *const *x, const double *loss, size_t i,
                    int trusted_only)
{
    return x[i] && isfinite(loss[i]) && !swarm__out(s, i) &&
           (!trusted_only || s->pt[i].strikes == 0);
}

/* The loss a push is weighed by. Verified: no claim counts as better than
 * the verified global best's loss (an unverified claim below it ties with
 * it), so a lying loss cannot take the attractor. */
static double s_weigh_loss(const struct swarm *s, double l)
{
    return s->g && s->g_particle >= 0 && l < s->g_loss ? s->g_loss : l;
}

static void s_weighted_mean(struct swarm *s, float *const *x, const double *loss)
{
    /* Verified: a particle whose claimed best was refused, and none of
     * whose claims was adopted since, has no weight (unless every pusher
     * is such a one): its losses are not to be believed. */
    int trusted = 0;
    for (size_t i = 0; s->g && i < s->count && !trusted; i++)
        trusted = s_weighs(s, x, loss, i, 1);
    double lmin = INFINITY, wsum = 0;
    for (size_t i = 0; i < s->count; i++)
        if (s_weighs(s, x, loss, i, trusted) && s_weigh_loss(s, loss[i]) < lmin)
            lmin = s_weigh_loss(s, loss[i]);
    for (size_t j = 0; j < s->ord.count; j++) {
        size_t i = s->ord.idx[j];
        if (s_weighs(s, x, loss, i, trusted))
            wsum += exp(-(s_weigh_loss(s, loss[i]) - lmin) / s->prm.temperature);
    }
    memset(s->mean, 0, s->n * sizeof(float));
    for (size_t j = 0; j < s->ord.count; j++) {
        size_t i = s->ord.idx[j];
        if (!s_weighs(s, x, loss, i, trusted))
            continue;
        const float wi =
            (float)(exp(-(s_weigh_loss(s, loss[i]) - lmin) / s->prm.temperature) / wsum);
        const float *xi = x[i];
        float *m = s->mean;
        for (size_t e = 0; e < s->n; e++)
            m[e] += wi * xi[e];
    }
}

/* PSO_ATTRACT_MIX: personal bests kept (the global best is the model users
 * take home), then every pushed position becomes its mixture. -1 when out
 * of memory: the caller's update toward the plain mean stands in. */
static int s_mix_round(struct swarm *s, uint64_t round, float *const *x, const double *loss,
                       const unsigned char *improved, swarm_done_fn *done, void *ctx)
{
    uint32_t *crc = malloc((s->count ? s->count : 1) * sizeof *crc);
    if (!crc)
        return -1;
    for (size_t i = 0; i < s->count; i++)
        if (improved[i])
            memcpy(s->pt[i].p, x[i], s->n * sizeof(float));
    if (mix_round(s->mix, &s->ord, round, x, loss, s->n, crc) < 0) {
        free(crc);
        return -1; /* p = x where improved again in the caller's pass: harmless */
    }
    for (size_t i = 0; i < s->count; i++)
        if (x[i] && done)
            done(ctx, (int)i, crc[i]);
    free(crc);
    return 0;
}

int swarm_reads_prev(const struct swarm *s)
{
    return s->prm.inertia == PSO_INERTIA_DISPLACEMENT || swarm__robust(s);
}

void swarm_round(struct swarm *s, uint64_t round, float *const *x, const float *const *prev,
                 const double *loss, swarm_done_fn *done, void *ctx)
{
    /* Personal bests first: only the losses are needed to pick the global
     * best, which is always the best personal best (g is p[best], never a
     * copy). A particle's improved p is written by its own update pass, so
     * the best particle is updated before the others read its p as g. */
    unsigned char improved[s->count ? s->count : 1];
    /* xm: the pushes that count toward the attractor (excluded particles'
     * do not; they still move, and get their positions back). */
    float *xm[s->count ? s->count : 1];
    int best = -1;
    for (size_t i = 0; i < s->count; i++) {
        improved[i] = x[i] && loss[i] < s->pt[i].p_loss;
        xm[i] = swarm__out(s, i) ? NULL : x[i];
        if (improved[i]) {
            s->pt[i].p_loss = loss[i];
            s->pt[i].judged = 0;
        }
        if (!swarm__out(s, i) && (best < 0 || s->pt[i].p_loss < s->pt[best].p_loss))
            best = (int)i;
    }
    /* Verified: the global best moves only in swarm_judge. */
    if (!s->g && best >= 0 && s->pt[best].p_loss < s->g_loss) {
        s->g_loss = s->pt[best].p_loss;
        s->g_particle = best;
    }
    int gb = s->g_particle;
    if (gb < 0 && !s->g)
        return; /* nobody pushed a finite loss yet: nothing moves */
    if (s->mix && s_mix_round(s, round, x, loss, improved, done, ctx) == 0)
        return;
    int general = s->prm.inertia == PSO_INERTIA_DISPLACEMENT;
    int use_mean = s->prm.attractor != PSO_ATTRACT_BEST;
    if (use_mean) {
        /* The mean of the pushed positions, before any of them moves. */
        if (!s->mean && !(s->mean = s_alloc_floats(s->n)))
            use_mean = 0; /* out of memory: the personal best stands in */
        else if (s->prm.attractor == PSO_ATTRACT_WEIGHTED)
            s_weighted_mean(s, xm, loss);
        else {
            size_t k = 0;
            if (s->ref && strategy_aggregate(&s->prm.agg, s->mean, xm, prev, s->ref, &s->ord, s->n,
                                             &k) == 0) {
                if (k > 0)
                    memcpy(s->ref, s->mean, s->n * sizeof(float));
            } else {
                strategy_sum_finish(&s->sum, &s->ord, s->mean, xm, s->n, round, &k);
            }
            if (k == 0)
                use_mean = 0; /* every push excluded: the personal bests stand in */
        }
    }
    for (size_t j = 0; j < s->count; j++) {
        size_t i = gb < 0 ? j : j == 0 ? (size_t)gb : j <= (size_t)gb ? j - 1 : j;
        if (!x[i])
            continue;
        struct pso_step k;
        pso_step_init(&k, &s->prm, round, s->pt[i].stream, s->offset);
        /* The best particle that just improved has p = g = x: no pulls
         * (g = NULL says so without aliasing x). A verified global best
         * is a copy of its own; none adopted yet: no pull toward it. */
        const float *g = s->g ? s->g : (int)i == gb && improved[i] ? NULL : s->pt[gb].p;
        if (s->g && gb < 0)
            k.c2 = 0;
        uint32_t crc = 0;
        if (general) {
            const float *a1 = use_mean ? s->mean : s->pt[i].p;
            pso_update_general(x[i], s->pt[i].v, s->pt[i].p, a1, g ? g : s->pt[i].p,
                               prev ? prev[i] : NULL, s->n, improved[i],
                               s->prm.inertia == PSO_INERTIA_DISPLACEMENT, &k, done ? &crc : NULL);
        } else if (s->prm.best_bf16) {
            k.a1 = use_mean ? s->mean : NULL;
            const uint16_t *g16 = (int)i == gb && improved[i] ? NULL : s->pt[gb].pb;
            pso_update_bf16(x[i], s->pt[i].v, s->pt[i].pb, g16, s->n, improved[i], &k,
                            done ? &crc : NULL);
        } else {
            k.a1 = use_mean ? s->mean : NULL;
            pso_update(x[i], s->pt[i].v, s->pt[i].p, g, s->n, improved[i], &k, done ? &crc : NULL);
        }
        if (done)
            done(ctx, (int)i, crc);
    }
    swarm__widen_best(s, gb >= 0 && improved[gb]);
}

int swarm_arrive(struct swarm *s, uint64_t round, int i, const float *x, struct payload_check *chk)
{
    if (s->prm.attractor != PSO_ATTRACT_MEAN || s->ref || swarm__out(s, (size_t)i))
        return 0;
    if (!s->mean && !(s->mean = s_alloc_floats(s->n)))
        return 0; /* the close finds out again */
    return strategy_sum_arrive(&s->sum, &s->ord, s->mean, s->n, round, i, x, chk);
}

void swarm_push(struct swarm *s, uint64_t step, int i, float *x, const float *prev, double loss,
                swarm_done_fn *done, void *ctx)
{
    struct particle *q = &s->pt[i];
    const size_t n = s->n;
    int improved = loss < q->p_loss;
    if (improved)
        q->p_loss = loss;
    if (q->p_loss < s->g_loss) {
        s->g_loss = q->p_loss;
        s->g_particle = i;
    }
    int gb = s->g_particle;
    int use_mean = s->prm.attractor != PSO_ATTRACT_BEST; /* weighted: the plain mean */
    if (use_mean && !s->center) {
        if ((s->center = s_alloc_floats(n)) != NULL)
            memcpy(s->center, prev, n * sizeof(float));
        else
            use_mean = 0;
    }
    if (use_mean) {
        const float inv = 1.0f / (float)s->count;
        for (size_t e = 0; e < n; e++)
            s->center[e] += (x[e] - prev[e]) * inv;
    }
    struct pso_step k;
    pso_step_init(&k, &s->prm, step, q->stream, s->offset);
    const float *g = gb == i && improved ? NULL : s->pt[gb].p;
    uint32_t crc = 0;
    if (s->prm.inertia == PSO_INERTIA_DISPLACEMENT) {
        pso_update_general(x, q->v, q->p, use_mean ? s->center : q->p, g ? g : q->p, prev, n,
                           improved, 1, &k, done ? &crc : NULL);
    } else if (s->prm.best_bf16) {
        k.a1 = use_mean ? s->center : NULL;
        pso_update_bf16(x, q->v, q->pb, gb == i && improved ? NULL : s->pt[gb].pb, n, improved, &k,
                        done ? &crc : NULL);
    } else {
        k.a1 = use_mean ? s->center : NULL;
        pso_update(x, q->v, q->p, g, n, improved, &k, done ? &crc : NULL);
    }
    swarm__widen_best(s, gb == i && improved);
    if (done)
        done(ctx, i, crc);
}

void swarm_reset(struct swarm *s, int i, const float *x0, uint64_t stream)
{
    struct particle *q = &s->pt[i];
    if (q->v)
        memset(q->v, 0, s->n * sizeof(float));
    s_set_best(s, q, x0);
    q->p_loss = INFINITY;
    q->stream = stream;
    q->judged = 0;
    q->strikes = 0;
    q->total = 0;
    strategy_order_rekey(&s->ord, (uint32_t)i, stream);
    if (s->mix)
        mix_reset(s->mix, &s->ord, i);
}

double swarm_best_loss(const struct swarm *s) { return s->g_loss; }
int swarm_best_particle(const struct swarm *s) { return s->g_particle; }
const float *swarm_best(const struct swarm *s)
{
    return s->g_particle < 0 ? NULL : s->g ? s->g : s->gx ? s->gx : s->pt[s->g_particle].p;
}

void swarm_withdraw(struct swarm *s, int i) { strategy_sum_withdraw(&s->sum, i); }

double swarm_personal_best_loss(const struct swarm *s, int i) { return s->pt[i].p_loss; }
const float *swarm_personal_best(const struct swarm *s, int i) { return s->pt[i].p; }
