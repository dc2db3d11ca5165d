/* Hyperparameter particles: see swarm_hyper.h. */
#include "server/strategy/swarm_hyper.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

#define HYPER_DIM 2
#define HYPER_VMAX 0.25
#define HYPER_MAGIC 0x31525059484f5350ULL /* checkpoint tag: "PSOHYPR1" */

struct hyper_particle {
    double z[HYPER_DIM], v[HYPER_DIM], pz[HYPER_DIM];
    double p_loss;
    uint64_t stream;
};

struct swarm_hyper {
    struct hyper_params prm;
    struct hyper_particle *pt;
    size_t count, cap;
    int g;                /* the last round's lowest loss, -1 before any */
    double gz[HYPER_DIM]; /* ... the point it had trained with */
    double g_loss;
};

struct swarm_hyper *hyper_new(const struct hyper_params *prm)
{
    struct swarm_hyper *h = calloc(1, sizeof *h);
    if (h) {
        h->prm = *prm;
        h->g = -1;
        h->g_loss = INFINITY;
    }
    return h;
}

void hyper_free(struct swarm_hyper **hp)
{
    if (!*hp)
        return;
    free((*hp)->pt);
    free(*hp);
    *hp = NULL;
}

static void s_start(struct swarm_hyper *h, struct hyper_particle *q, uint64_t stream)
{
    float r1, r2;
    rng_uniform_pair(rng_key(h->prm.seed ^ stream, 0, 0, 7), 0, &r1, &r2);
    q->z[0] = q->pz[0] = r1;
    q->z[1] = q->pz[1] = r2;
    q->v[0] = q->v[1] = 0;
    q->p_loss = INFINITY;
    q->stream = stream;
}

int hyper_reserve(struct swarm_hyper *h, size_t count)
{
    if (count <= h->cap)
        return 0;
    size_t cap = count < 8 ? 8 : 2 * count;
    struct hyper_particle *pt = realloc(h->pt, cap * sizeof *pt);
    if (!pt)
        return -1;
    h->pt = pt;
    h->cap = cap;
    return 0;
}

int hyper_add(struct swarm_hyper *h, uint64_t stream)
{
    if (hyper_reserve(h, h->count + 1) != 0)
        return -1;
    s_start(h, &h->pt[h->count], stream);
    return (int)h->count++;
}

void hyper_reset(struct swarm_hyper *h, int i, uint64_t stream)
{
    if (i < 0 || (size_t)i >= h->count)
        return;
    s_start(h, &h->pt[i], stream);
}

void hyper_round(struct swarm_hyper *h, uint64_t round, float *const *x, const double *loss)
{
    /* Credit each point with the loss pushed after training with it; the
     * swarm's attractor is this round's best (the losses of one round are
     * comparable, those of rounds apart are not: training lowers them all). */
    int g = -1;
    for (size_t i = 0; i < h->count; i++) {
        struct hyper_particle *q = &h->pt[i];
        if (!x[i] || !isfinite(loss[i]))
            continue;
        if (loss[i] < q->p_loss) {
            q->p_loss = loss[i];
            memcpy(q->pz, q->z, sizeof q->pz);
        }
        if (g < 0 || loss[i] < loss[g] || (loss[i] == loss[g] && q->stream < h->pt[g].stream))
            g = (int)i;
    }
    if (g < 0)
        return; /* nothing to credit: nobody moves */
    h->g = g;
    h->g_loss = loss[g];
    memcpy(h->gz, h->pt[g].z, sizeof h->gz);
    for (size_t i = 0; i < h->count; i++) {
        struct hyper_particle *q = &h->pt[i];
        if (!x[i])
            continue;
        for (int d = 0; d < HYPER_DIM; d++) {
            float r1, r2;
            rng_uniform_pair(rng_key(h->prm.seed ^ q->stream, round, 0, 8), (uint32_t)d, &r1, &r2);
            double v = h->prm.w * q->v[d] + h->prm.c1 * r1 * (q->pz[d] - q->z[d]) +
                       h->prm.c2 * r2 * (h->gz[d] - q->z[d]);
            v = v > HYPER_VMAX ? HYPER_VMAX : v < -HYPER_VMAX ? -HYPER_VMAX : v;
            double z = q->z[d] + v;
            q->z[d] = z < 0 ? 0 : z > 1 ? 1 : z;
            q->v[d] = v;
        }
    }
}

static void s_values(const struct swarm_hyper *h, const double *z, double *lr, double *momentum)
{
    const struct hyper_params *p = &h->prm;
    *lr = exp(log(p->lr_min) + z[0] * (log(p->lr_max) - log(p->lr_min)));
    *momentum = p->mom_min + z[1] * (p->mom_max - p->mom_min);
}

size_t hyper_count(const struct swarm_hyper *h) { return h->count; }

void hyper_get(const struct swarm_hyper *h, int i, double *lr, double *momentum)
{
    s_values(h, h->pt[i].z, lr, momentum);
}

int hyper_best(const struct swarm_hyper *h, double *lr, double *momentum, double *loss)
{
    if (h->g < 0)
        return -1;
    s_values(h, h->gz, lr, momentum);
    *loss = h->g_loss;
    return h->g;
}

void hyper_save(const struct swarm_hyper *h, struct ckpt_writer *w)
{
    ckpt_put_u64(w, HYPER_MAGIC);
    ckpt_put_u64(w, h->count);
    for (size_t i = 0; i < h->count; i++) {
        const struct hyper_particle *q = &h->pt[i];
        for (int d = 0; d < HYPER_DIM; d++) {
            ckpt_put_f64(w, q->z[d]);
            ckpt_put_f64(w, q->v[d]);
            ckpt_put_f64(w, q->pz[d]);
        }
        ckpt_put_f64(w, q->p_loss);
    }
    ckpt_put_u64(w, (uint64_t)(int64_t)h->g);
    ckpt_put_f64(w, h->g_loss);
    for (int d = 0; d < HYPER_DIM; d++)
        ckpt_put_f64(w, h->gz[d]);
}

int hyper_load(struct swarm_hyper *h, struct ckpt_reader *r)
{
    uint64_t magic, count;
    if (ckpt_get_u64(r, &magic) || magic != HYPER_MAGIC) {
        snprintf(r->err, sizeof r->err,
                 "no hyperparameter particles in the checkpoint (written without --hyper)");
        return -1;
    }
    if (ckpt_get_u64(r, &count))
        return -1;
    if (count != h->count) {
        snprintf(r->err, sizeof r->err, "hyperparameters of %llu particles, expected %zu",
                 (unsigned long long)count, h->count);
        return -1;
    }
    for (size_t i = 0; i < h->count; i++) {
        struct hyper_particle *q = &h->pt[i];
        for (int d = 0; d < HYPER_DIM; d++)
            if (ckpt_get_f64(r, &q->z[d]) || ckpt_get_f64(r, &q->v[d]) ||
                ckpt_get_f64(r, &q->pz[d]))
                return -1;
        if (ckpt_get_f64(r, &q->p_loss))
            return -1;
        for (int d = 0; d < HYPER_DIM; d++)
            if (!(q->z[d] >= 0 && q->z[d] <= 1 && q->pz[d] >= 0 && q->pz[d] <= 1 &&
                  isfinite(q->v[d]))) {
                snprintf(r->err, sizeof r->err,
                         "hyperparameter point of particle %zu out of "
                         "range",
                         i);
                return -1;
            }
        if (isnan(q->p_loss)) {
            snprintf(r->err, sizeof r->err, "NaN hyperparameter loss of particle %zu", i);
            return -1;
        }
    }
    uint64_t g;
    if (ckpt_get_u64(r, &g) || ckpt_get_f64(r, &h->g_loss))
        return -1;
    h->g = (int)(int64_t)g;
    for (int d = 0; d < HYPER_DIM; d++)
        if (ckpt_get_f64(r, &h->gz[d]))
            return -1;
    if (h->g < -1 || h->g >= (int)h->count || isnan(h->g_loss)) {
        snprintf(r->err, sizeof r->err, "hyperparameters' best particle %d out of range", h->g);
        return -1;
    }
    return 0;
}
