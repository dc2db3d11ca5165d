/* The PSO-weighted mean: see swarm_mix.h. */
#include "server/strategy/swarm_mix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/rng.h"

#define MIX_VMAX 0.25                   /* largest change of one weight per round */
#define MIX_BLOCK 4096                  /* elements mixed per pass: K blocks stay in cache */
#define MIX_MAGIC 0x3158494d4f53500aULL /* checkpoint tag: "\nPSOMIX1" */

struct swarm_mix {
    struct mix_params prm;
    size_t count, cap;   /* particles; rows are cap long */
    double *a, *u, *pa;  /* count x cap: vector, velocity, best vector */
    double *pa_loss;     /* by particle */
    unsigned char *used; /* a_i was applied at the last close */
    int g;               /* particle whose best vector is the swarm's, -1 */
};

struct swarm_mix *mix_new(const struct mix_params *prm)
{
    struct swarm_mix *m = calloc(1, sizeof *m);
    if (m) {
        m->prm = *prm;
        m->g = -1;
    }
    return m;
}

void mix_free(struct swarm_mix **mp)
{
    struct swarm_mix *m = *mp;
    if (!m)
        return;
    free(m->a);
    free(m->u);
    free(m->pa);
    free(m->pa_loss);
    free(m->used);
    free(m);
    *mp = NULL;
}

/* 32 bits that name a stream, for the counter-based generator's index. */
static uint32_t s_tag(uint64_t stream) { return (uint32_t)(stream ^ (stream >> 32)); }

/* The starting weight particle `si` gives particle `sk` (streams): uniform
 * in [0.25, 1), so that vectors differ from the first round on. */
static double s_init(const struct swarm_mix *m, uint64_t si, uint64_t sk)
{
    float r1, r2;
    rng_uniform_pair(rng_key(m->prm.seed ^ si, 0, 0, 6), s_tag(sk), &r1, &r2);
    return 0.25 + 0.75 * (double)r1;
}

static void s_init_row(struct swarm_mix *m, const struct strategy_order *o, size_t i)
{
    for (size_t k = 0; k < m->count; k++) {
        double v = s_init(m, o->key[i], o->key[k]);
        m->a[i * m->cap + k] = v;
        m->pa[i * m->cap + k] = v;
        m->u[i * m->cap + k] = 0;
    }
    m->pa_loss[i] = INFINITY;
    m->used[i] = 0;
}

static int s_relayout(struct swarm_mix *m, size_t cap)
{
    /* The per-particle arrays first: growing them is harmless if the rest
     * fails, and the rows keep their stride until everything is in hand. */
    double *pl = realloc(m->pa_loss, cap * sizeof *pl);
    if (!pl)
        return -1;
    m->pa_loss = pl;
    unsigned char *us = realloc(m->used, cap);
    if (!us)
        return -1;
    m->used = us;
    double **arr[3] = {&m->a, &m->u, &m->pa};
    double *fresh[3];
    for (int t = 0; t < 3; t++) {
        fresh[t] = calloc(cap * cap, sizeof(double));
        if (!fresh[t]) {
            while (t-- > 0)
                free(fresh[t]);
            return -1;
        }
    }
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < m->count; i++)
            memcpy(fresh[t] + i * cap, *arr[t] + i * m->cap, m->count * sizeof(double));
        free(*arr[t]);
        *arr[t] = fresh[t];
    }
    m->cap = cap;
    return 0;
}

int mix_reserve(struct swarm_mix *m, size_t count)
{
    return count <= m->cap ? 0 : s_relayout(m, count < 8 ? 8 : 2 * count);
}

void mix_grow(struct swarm_mix *m, const struct strategy_order *o)
{
    if (o->count > m->cap)
        return; /* not reserved: the caller's bug, never an overrun */
    size_t old = m->count;
    m->count = o->count;
    for (size_t i = 0; i < m->count; i++) {
        if (i >= old) {
            s_init_row(m, o, i);
            continue;
        }
        for (size_t k = old; k < m->count; k++) {
            double v = s_init(m, o->key[i], o->key[k]);
            m->a[i * m->cap + k] = m->pa[i * m->cap + k] = v;
            m->u[i * m->cap + k] = 0;
        }
    }
}

void mix_reset(struct swarm_mix *m, const struct strategy_order *o, int i)
{
    if ((size_t)i >= m->count)
        return;
    s_init_row(m, o, (size_t)i);
    for (size_t j = 0; j < m->count; j++) {
        if (j == (size_t)i)
            continue;
        double v = s_init(m, o->key[j], o->key[i]);
        m->a[j * m->cap + i] = m->pa[j * m->cap + i] = v;
        m->u[j * m->cap + i] = 0;
    }
    if (m->g == i) {
        /* Its best vector is gone: the best of the others stands. */
        m->g = -1;
        for (size_t jj = 0; jj < o->count; jj++) {
            size_t j = o->idx[jj];
            if (isfinite(m->pa_loss[j]) && (m->g < 0 || m->pa_loss[j] < m->pa_loss[m->g]))
                m->g = (int)j;
        }
    }
}

void mix_weights(const struct swarm_mix *m, const struct strategy_order *o, int i,
                 const unsigned char *present, double *out)
{
    double sum = 0;
    size_t k_present = 0;
    for (size_t kk = 0; kk < o->count; kk++) {
        size_t k = o->idx[kk];
        out[k] = 0;
        if (present[k]) {
            sum += m->a[(size_t)i * m->cap + k];
            k_present++;
        }
    }
    for (size_t kk = 0; kk < o->count; kk++) {
        size_t k = o->idx[kk];
        if (present[k])
            out[k] = sum > 0 ? m->a[(size_t)i * m->cap + k] / sum : 1.0 / (double)k_present;
    }
}

/* Credit the losses, then one PSO step of every pushing particle's vector. */
static void s_move(struct swarm_mix *m, const struct strategy_order *o, uint64_t round,
                   float *const *x, const double *loss)
{
    for (size_t ii = 0; ii < o->count; ii++) {
        size_t i = o->idx[ii];
        if (x[i] && m->used[i] && isfinite(loss[i]) && loss[i] < m->pa_loss[i]) {
            m->pa_loss[i] = loss[i];
            memcpy(m->pa + i * m->cap, m->a + i * m->cap, m->count * sizeof(double));
        }
        if (isfinite(m->pa_loss[i]) && (m->g < 0 || m->pa_loss[i] < m->pa_loss[m->g]))
            m->g = (int)i;
    }
    if (m->g < 0)
        return; /* no vector has a fitness yet: they stay where they started */
    const double *ga = m->pa + (size_t)m->g * m->cap;
    for (size_t ii = 0; ii < o->count; ii++) {
        size_t i = o->idx[ii];
        if (!x[i])
            continue;
        double *a = m->a + i * m->cap, *u = m->u + i * m->cap, *pa = m->pa + i * m->cap;
        uint32_t key = rng_key(m->prm.seed ^ o->key[i], round, 0, 5);
        for (size_t k = 0; k < m->count; k++) {
            float r1, r2;
            rng_uniform_pair(key, s_tag(o->key[k]), &r1, &r2);
            double v =
                m->prm.w * u[k] + m->prm.c1 * r1 * (pa[k] - a[k]) + m->prm.c2 * r2 * (ga[k] - a[k]);
            v = v > MIX_VMAX ? MIX_VMAX : v < -MIX_VMAX ? -MIX_VMAX : v;
            u[k] = v;
            a[k] = a[k] + v < 0 ? 0 : a[k] + v > 1 ? 1 : a[k] + v;
        }
    }
}

int mix_round(struct swarm_mix *m, const struct strategy_order *o, uint64_t round, float *const *x,
              const double *loss, size_t n, uint32_t *crc)
{
    const size_t K = o->count;
    unsigned char *present = calloc(K ? K : 1, 1);
    double *alpha = malloc((K ? K : 1) * sizeof *alpha); /* one particle's, by id */
    float *wf = malloc((K ? K * K : 1) * sizeof *wf);
    size_t *ids = malloc((K ? K : 1) * sizeof *ids);
    float *scratch = malloc((K ? K : 1) * MIX_BLOCK * sizeof *scratch);
    int rc = -1;
    if (!present || !alpha || !wf || !ids || !scratch || m->count != K)
        goto out;
    size_t np = 0; /* pushing particles, in stream order */
    for (size_t kk = 0; kk < K; kk++)
        if (x[o->idx[kk]]) {
            present[o->idx[kk]] = 1;
            ids[np++] = o->idx[kk];
        }
    s_move(m, o, round, x, loss);
    for (size_t q = 0; q < np; q++) {
        mix_weights(m, o, (int)ids[q], present, alpha);
        for (size_t r = 0; r < np; r++)
            wf[q * np + r] = (float)alpha[ids[r]];
        crc[ids[q]] = 0;
        m->used[ids[q]] = 1;
    }
    for (size_t kk = 0; kk < K; kk++)
        if (!present[o->idx[kk]])
            m->used[o->idx[kk]] = 0;
    for (size_t done = 0; done < n; done += MIX_BLOCK) {
        size_t len = n - done < MIX_BLOCK ? n - done : MIX_BLOCK;
        for (size_t r = 0; r < np; r++)
            memcpy(scratch + r * MIX_BLOCK, x[ids[r]] + done, len * sizeof(float));
        for (size_t q = 0; q < np; q++) {
            float *y = x[ids[q]] + done;
            const float *w = wf + q * np;
            for (size_t e = 0; e < len; e++)
                y[e] = w[0] * scratch[e];
            for (size_t r = 1; r < np; r++) {
                const float *s = scratch + r * MIX_BLOCK, wr = w[r];
                for (size_t e = 0; e < len; e++)
                    y[e] += wr * s[e];
            }
            crc[ids[q]] = crc32c(crc[ids[q]], y, len * sizeof(float));
        }
    }
    rc = 0;
out:
    free(present);
    free(alpha);
    free(wf);
    free(ids);
    free(scratch);
    return rc;
}

double mix_best_loss(const struct swarm_mix *m) { return m->g >= 0 ? m->pa_loss[m->g] : INFINITY; }
int mix_best_particle(const struct swarm_mix *m) { return m->g; }

void mix_save(const struct swarm_mix *m, struct ckpt_writer *w)
{
    ckpt_put_u64(w, MIX_MAGIC);
    ckpt_put_u64(w, m->count);
    for (size_t i = 0; i < m->count; i++) {
        ckpt_put(w, m->a + i * m->cap, m->count * sizeof(double));
        ckpt_put(w, m->u + i * m->cap, m->count * sizeof(double));
        ckpt_put(w, m->pa + i * m->cap, m->count * sizeof(double));
        ckpt_put_f64(w, m->pa_loss[i]);
        ckpt_put_u64(w, m->used[i]);
    }
    ckpt_put_u64(w, (uint64_t)(int64_t)m->g);
}

int mix_load(struct swarm_mix *m, struct ckpt_reader *r)
{
    uint64_t magic, count, used, g;
    if (ckpt_get_u64(r, &magic) || magic != MIX_MAGIC) {
        snprintf(r->err, sizeof r->err,
                 "no mixing weights in the checkpoint (written without --attractor mix)");
        return -1;
    }
    if (ckpt_get_u64(r, &count))
        return -1;
    if (count != m->count) {
        snprintf(r->err, sizeof r->err, "mixing weights of %llu particles, expected %zu",
                 (unsigned long long)count, m->count);
        return -1;
    }
    for (size_t i = 0; i < m->count; i++) {
        if (ckpt_get(r, m->a + i * m->cap, m->count * sizeof(double)) ||
            ckpt_get(r, m->u + i * m->cap, m->count * sizeof(double)) ||
            ckpt_get(r, m->pa + i * m->cap, m->count * sizeof(double)) ||
            ckpt_get_f64(r, &m->pa_loss[i]) || ckpt_get_u64(r, &used))
            return -1;
        m->used[i] = used != 0;
    }
    if (ckpt_get_u64(r, &g))
        return -1;
    m->g = (int)(int64_t)g;
    if (m->g < -1 || m->g >= (int)m->count) {
        snprintf(r->err, sizeof r->err, "best mixing vector's particle %d out of range", m->g);
        return -1;
    }
    return 0;
}
