/* The swarm in a checkpoint (swarm.h: swarm_save, swarm_load): per
 * particle its velocity (zeros where it holds none) and personal best in
 * float32 whatever holds them, so that a run resumes under any --w and
 * --best-precision; the global best, and the verified best, the robust
 * attractor and the mixing weights where the swarm has them. */
#include "server/strategy/swarm_int.h"

#include <math.h>
#include <stdio.h>

#include "common/codec.h"
#include "server/strategy/swarm_mix.h"

/* A personal best in a checkpoint is float32 whatever holds it, so that
 * either precision resumes from either. */
#define WIDE_CHUNK 4096
static void s_put_best(const struct swarm *s, struct ckpt_writer *w, const struct particle *q)
{
    if (!q->pb) {
        ckpt_put(w, q->p, s->n * sizeof(float));
        return;
    }
    float buf[WIDE_CHUNK];
    for (size_t at = 0; at < s->n; at += WIDE_CHUNK) {
        size_t len = s->n - at < WIDE_CHUNK ? s->n - at : WIDE_CHUNK;
        codec_bf16_unpack(buf, q->pb + at, len);
        ckpt_put(w, buf, len * sizeof(float));
    }
}

static int s_get_best(const struct swarm *s, struct ckpt_reader *r, struct particle *q)
{
    if (!q->pb)
        return ckpt_get(r, q->p, s->n * sizeof(float));
    float buf[WIDE_CHUNK];
    for (size_t at = 0; at < s->n; at += WIDE_CHUNK) {
        size_t len = s->n - at < WIDE_CHUNK ? s->n - at : WIDE_CHUNK;
        if (ckpt_get(r, buf, len * sizeof(float)))
            return -1;
        for (size_t e = 0; e < len; e++)
            if (!isfinite(buf[e])) {
                snprintf(r->err, sizeof r->err, "a personal best holds a non-finite value");
                return -1;
            }
        codec_bf16_pack(q->pb + at, buf, len);
    }
    return 0;
}

/* A velocity's place in a checkpoint when the particle holds none: zeros,
 * as a run that never had w > 0 wrote them. */
static void s_put_zeros(struct ckpt_writer *w, size_t bytes)
{
    static const char zero[1 << 14];
    for (size_t left = bytes; left > 0;) {
        size_t len = left < sizeof zero ? left : sizeof zero;
        ckpt_put(w, zero, len);
        left -= len;
    }
}

/* ... and one read from a checkpoint into no velocity: skipped. */
static int s_skip(struct ckpt_reader *r, size_t bytes)
{
    char buf[1 << 14];
    for (size_t left = bytes; left > 0;) {
        size_t len = left < sizeof buf ? left : sizeof buf;
        if (ckpt_get(r, buf, len))
            return -1;
        left -= len;
    }
    return 0;
}

void swarm_save(const struct swarm *s, struct ckpt_writer *w)
{
    ckpt_put_u64(w, s->count);
    ckpt_put_u64(w, s->n);
    for (size_t i = 0; i < s->count; i++) {
        if (s->pt[i].v)
            ckpt_put(w, s->pt[i].v, s->n * sizeof(float));
        else
            s_put_zeros(w, s->n * sizeof(float));
        s_put_best(s, w, &s->pt[i]);
        ckpt_put_f64(w, s->pt[i].p_loss);
    }
    ckpt_put_f64(w, s->g_loss);
    ckpt_put_u64(w, (uint64_t)(int64_t)s->g_particle);
    if (s->g) {
        ckpt_put_u64(w, VERIFY_MAGIC);
        ckpt_put(w, s->g, s->n * sizeof(float));
        for (size_t i = 0; i < s->count; i++)
            ckpt_put_u64(w, (uint64_t)s->pt[i].judged | (uint64_t)s->pt[i].strikes << 1 |
                                (uint64_t)(s->pt[i].total & 0x7fffffffu) << 33);
    }
    if (s->ref) {
        ckpt_put_u64(w, ROBUST_MAGIC);
        ckpt_put(w, s->ref, s->n * sizeof(float));
    }
    if (s->mix)
        mix_save(s->mix, w);
}

int swarm_load(struct swarm *s, struct ckpt_reader *r)
{
    uint64_t count, n, gp;
    if (ckpt_get_u64(r, &count) || ckpt_get_u64(r, &n))
        return -1;
    if (count != s->count || n != s->n) {
        snprintf(r->err, sizeof r->err, "swarm of %llu x %llu, expected %zu x %zu",
                 (unsigned long long)count, (unsigned long long)n, s->count, s->n);
        return -1;
    }
    for (size_t i = 0; i < s->count; i++)
        if ((s->pt[i].v ? ckpt_get(r, s->pt[i].v, s->n * sizeof(float))
                        : s_skip(r, s->n * sizeof(float))) ||
            s_get_best(s, r, &s->pt[i]) || ckpt_get_f64(r, &s->pt[i].p_loss))
            return -1;
    if (ckpt_get_f64(r, &s->g_loss) || ckpt_get_u64(r, &gp))
        return -1;
    s->g_particle = (int)(int64_t)gp;
    if (s->g_particle < -1 || s->g_particle >= (int)s->count) {
        snprintf(r->err, sizeof r->err, "global best particle %d out of range", s->g_particle);
        return -1;
    }
    s->gx_of = -1;
    swarm__widen_best(s, 1);
    if (s->g) {
        uint64_t magic, judged;
        if (ckpt_get_u64(r, &magic) || magic != VERIFY_MAGIC) {
            snprintf(r->err, sizeof r->err,
                     "no verified global best in the checkpoint "
                     "(written without --verify-best)");
            return -1;
        }
        if (ckpt_get(r, s->g, s->n * sizeof(float)))
            return -1;
        for (size_t i = 0; i < s->count; i++) {
            if (ckpt_get_u64(r, &judged))
                return -1;
            s->pt[i].judged = (int)(judged & 1);
            s->pt[i].strikes = (uint32_t)(judged >> 1);
            s->pt[i].total = (uint32_t)(judged >> 33);
        }
    }
    if (s->ref) {
        uint64_t magic;
        if (ckpt_get_u64(r, &magic) || magic != ROBUST_MAGIC) {
            snprintf(r->err, sizeof r->err,
                     "no robust attractor in the checkpoint (written "
                     "without --aggregate)");
            return -1;
        }
        if (ckpt_get(r, s->ref, s->n * sizeof(float)))
            return -1;
        s->have_ref = 1;
    }
    return s->mix ? mix_load(s->mix, r) : 0;
}
