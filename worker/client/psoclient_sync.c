/* Joining and synchronizing over the links (one per daemon; one daemon is
 * one link): psoc_join, psoc_sync(_ex), and the resync after a push a
 * daemon could not use. A sync sends every link's push before waiting for
 * any position, so the ranges travel in parallel, and assembles the
 * positions in place in the caller's vector (the ranges are disjoint
 * slices of it). If any daemon did not take its push, or restarted, every
 * link rejoins, until all agree on the round. Each daemon's side of it
 * (hello, push, position) is psoclient_link.c. */
#include "worker/client/psoclient_int.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/timeutil.h"

/* Hello to every daemon until all welcome us at the same round (a rollback
 * in progress shows as a disagreement for a moment); the first link's
 * welcome into w0. */
static int s_hello_all(struct psoc *c, float *weights, int budget_ms, int first_ms,
                       struct psoc_welcome *w0, int *attempts, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + budget_ms;
    *attempts = 0;
    for (;;) {
        uint64_t round = 0;
        int agree = 1;
        for (int k = 0; k < c->nlink; k++) {
            struct psoc_link *l = c->link[k];
            struct psoc_welcome w;
            int64_t left = deadline - time_now_ms();
            int tries, rc = psoc__hello_retry(l, weights, (int)(left > 500 ? left : 500), first_ms,
                                              &w, &tries, err, errlen);
            /* A follower learns the coordinator's decisions (a particle
             * retired for a newcomer) with the next commit: ask again. */
            while (rc == PSOC_EREFUSED && l->total && l->offset &&
                   l->last_server_error == PSOD__ERROR_CODE__ERR_SWARM_FULL &&
                   time_now_ms() < deadline && !(c->opts.stop && *c->opts.stop)) {
                usleep(200000);
                left = deadline - time_now_ms();
                rc = psoc__hello_retry(l, weights, (int)(left > 500 ? left : 500), first_ms, &w,
                                       &tries, err, errlen);
            }
            *attempts += k == 0 ? tries : 0;
            if (rc)
                return rc;
            if (k == 0) {
                *w0 = w;
                round = w.round;
            }
            agree &= w.round == round;
        }
        if (agree) {
            struct psoc_link *l0 = c->link[0];
            c->joined = 1;
            c->particle = w0->particle_id;
            c->round = w0->round;
            c->push_kind = l0->push_kind;
            c->positions_global = l0->positions_global;
            c->wire = l0->wire;
            return PSOC_OK;
        }
        if (time_now_ms() >= deadline)
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "the %d daemons of the swarm did not agree on a round within %d ms "
                             "(a shard down or rolling back?)",
                             c->nlink, budget_ms);
        if (c->opts.stop && *c->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
        usleep(200000);
    }
}

int psoc_join(struct psoc *c, size_t n, uint64_t layout_hash, float *weights,
              struct psoc_welcome *out, char *err, size_t errlen)
{
    if (!c->name[0])
        return psoc__err(err, errlen, PSOC_ESTATE, "a status-only client cannot join");
    if (n == 0 || !weights || n * sizeof(float) > c->opts.max_payload)
        return psoc__err(err, errlen, PSOC_EINVAL, "need 1 to %zu weights",
                         c->opts.max_payload / 4);
    c->n = n;
    c->layout_hash = layout_hash;
    psoc__say(c, 1, "connecting to psod at %s as '%s' (waiting up to %.0f s for its welcome)",
              c->link[c->ctl]->endpoint, c->name, c->opts.connect_timeout_ms / 1e3);
    int rc = psoc__discover(c, err, errlen);
    if (rc < 0)
        return rc;
    /* 4 s first: long enough for the monitor to see a failing handshake. */
    struct psoc_welcome w;
    int attempts;
    rc = s_hello_all(c, weights, c->opts.connect_timeout_ms, 4000, &w, &attempts, err, errlen);
    if (rc == PSOC_ETIMEOUT && c->nlink == 1)
        psoc__err(err, errlen, PSOC_ETIMEOUT,
                  "no answer from psod at %s within %d ms: is psod running there, and is that "
                  "the address it listens on (its 'listening on' line)? The hello and its "
                  "answer carry %.0f MB of weights each: a slow link needs a longer join "
                  "timeout",
                  c->link[0]->endpoint, c->opts.connect_timeout_ms, (double)n * 4 / 1e6);
    if (rc == PSOC_OK && out)
        *out = w;
    return rc;
}

/* Get back in step with the daemons after a refused push (evicted, or the
 * round closed without us) or a lost daemon: HELLO again, with back-off
 * from 0.5 s, for up to opts.reconnect_ms. The particle's current position
 * lands in `weights`. */
static int s_resync(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                    size_t errlen)
{
    int64_t start = time_now_ms();
    if (c->nlink == 1)
        psoc__say(c, 2, "psod at %s did not take the push (%s); rejoining, for up to %.0f s",
                  c->link[0]->endpoint, err && err[0] ? err : "no answer",
                  c->opts.reconnect_ms / 1e3);
    else
        psoc__say(c, 2,
                  "the swarm's daemons did not all take the push (%s); rejoining each, for up "
                  "to %.0f s",
                  err && err[0] ? err : "no answer", c->opts.reconnect_ms / 1e3);
    struct psoc_welcome w;
    int attempts;
    int rc = s_hello_all(c, weights, c->opts.reconnect_ms, 500, &w, &attempts, err, errlen);
    if (rc == PSOC_ETIMEOUT && c->nlink == 1)
        return psoc__err(err, errlen, PSOC_ETIMEOUT,
                         "lost psod at %s: no welcome in %d attempts over %.1f s "
                         "(--reconnect-ms %d)",
                         c->link[0]->endpoint, attempts, (time_now_ms() - start) / 1e3,
                         c->opts.reconnect_ms);
    if (rc == PSOC_OK && out) {
        memset(out, 0, sizeof *out);
        out->round = w.round;
        out->global_best_loss = w.global_best_loss;
        out->personal_best_loss = NAN;
        out->resynced = attempts;
        out->lr = w.lr; /* --hyper's point */
        out->momentum = w.momentum;
    }
    return rc;
}

/* A link's error as the caller reads it: naming the shard when there are
 * several daemons. */
static void s_link_error(const struct psoc *c, int k, const char *why, char *err, size_t errlen)
{
    if (c->nlink > 1)
        snprintf(err, errlen, "shard %d (%s): %s", k, c->link[k]->endpoint, why);
    else
        snprintf(err, errlen, "%s", why);
}

/* The push to every daemon, with one seq (the coordinator matches the
 * followers' votes by it; a link's own requests may have moved its
 * counter on): which links took it in sent[], the first error in *first
 * and err, *resync when no connection took it (the link was reset; when
 * other daemons took theirs, the swarm's ranges part unless every link
 * rejoins). Returns the seq. */
static uint64_t s_push_all(struct psoc *c, float *weights, const float *gradient,
                           const struct psoc_report *rep, int *sent, int *first, int *resync,
                           char *err, size_t errlen)
{
    uint64_t seq = 0;
    for (int k = 0; k < c->nlink; k++)
        seq = c->link[k]->seq > seq ? c->link[k]->seq : seq;
    seq++;
    char why[256];
    for (int k = 0; k < c->nlink; k++) {
        struct psoc_link *l = c->link[k];
        l->round = c->round;
        int rc = psoc__push(l, weights, gradient, rep, seq, why, sizeof why);
        sent[k] = rc == PSOC_OK;
        if (rc && *first == PSOC_OK) {
            *first = rc;
            s_link_error(c, k, why, err, errlen);
        }
        if ((rc == PSOC_ETIMEOUT || (c->nlink > 1 && rc == PSOC_ESYS)) && c->opts.reconnect_ms > 0)
            *resync = 1;
    }
    return seq;
}

/* The positions of push `seq` from the links that took it, into
 * `weights`; *pos is shard 0's. Daemons at different rounds, or a push a
 * daemon could not use, set *resync. Returns the first error (or `first`,
 * the push's). */
static int s_collect(struct psoc *c, float *weights, uint64_t seq, const int *sent, int first,
                     int *resync, struct psoc_position *pos0, char *err, size_t errlen)
{
    char why[256];
    struct psoc_position pos[64];
    memset(&pos[0], 0, sizeof pos[0]);
    for (int k = 0; k < c->nlink; k++) {
        if (!sent[k])
            continue;
        int rs = 0, rc = psoc__position(c->link[k], weights, seq, &pos[k], &rs, why, sizeof why);
        if (rc && (first == PSOC_OK || (rs && !*resync))) {
            first = rc;
            s_link_error(c, k, why, err, errlen);
        }
        *resync |= rs;
    }
    if (!*resync && first == PSOC_OK)
        for (int k = 1; k < c->nlink; k++)
            if (pos[k].round != pos[0].round) {
                *resync = 1;
                snprintf(err, errlen, "shard %d is at round %llu, shard 0 at %llu", k,
                         (unsigned long long)pos[k].round, (unsigned long long)pos[0].round);
            }
    *pos0 = pos[0];
    return first;
}

int psoc_sync(struct psoc *c, float *weights, double loss, uint64_t samples,
              struct psoc_position *out, char *err, size_t errlen)
{
    struct psoc_report r = {loss, samples, NAN, NAN, 0};
    return psoc_sync_ex(c, weights, NULL, &r, out, err, errlen);
}

int psoc_sync_ex(struct psoc *c, float *weights, const float *gradient,
                 const struct psoc_report *rep, struct psoc_position *out, char *err, size_t errlen)
{
    if (!c->joined)
        return psoc__err(err, errlen, PSOC_ESTATE, "sync before join");
    if (c->inflight)
        return psoc__err(err, errlen, PSOC_ESTATE,
                         "a sync is in flight (psoc_sync_begin): end it first");
    if (!isfinite(rep->loss))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "loss is %g; the daemon only takes finite losses", rep->loss);
    if ((gradient != NULL) != (c->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT))
        return psoc__err(err, errlen, PSOC_EINVAL, "the daemon's strategy takes %s",
                         c->push_kind ? "gradients" : "weights");
    int sent[64], resync = 0, first = PSOC_OK;
    uint64_t seq = s_push_all(c, weights, gradient, rep, sent, &first, &resync, err, errlen);
    struct psoc_position pos;
    first = s_collect(c, weights, seq, sent, first, &resync, &pos, err, errlen);
    if (resync)
        return s_resync(c, weights, out, err, errlen);
    if (first)
        return first;
    c->round = pos.round;
    if (out)
        *out = pos;
    if (c->nlink == 1)
        psoc__verify_run(c);
    return PSOC_OK;
}

int psoc_sync_pending(const struct psoc *c) { return c && c->inflight; }

/* The position of a sync in flight (c->arrived) into the weights the
 * caller trained on since the push: the swarm's result plus the steps
 * taken meanwhile, or Streaming DiLoCo's merge A x + (1 - A) P where the
 * position moved (each link's part; after a rejoin, everywhere). */
static void s_apply(struct psoc *c, float *weights, int rejoined)
{
    const double a = c->opts.overlap_mix;
    if (a < 0) { /* where nothing came, arrived is at_push: x stays */
        for (size_t i = 0; i < c->n; i++)
            weights[i] = c->arrived[i] + (weights[i] - c->at_push[i]);
        return;
    }
    const float fa = (float)a, fb = (float)(1 - a);
    for (int k = 0; k < (rejoined ? 1 : c->nlink); k++) {
        size_t lo = rejoined ? 0 : c->part_off[k], hi = rejoined ? c->n : lo + c->part_len[k];
        for (size_t i = lo; i < hi; i++)
            weights[i] = fa * weights[i] + fb * c->arrived[i];
    }
}

int psoc_sync_begin(struct psoc *c, const float *weights, const struct psoc_report *rep, char *err,
                    size_t errlen)
{
    if (!c->joined)
        return psoc__err(err, errlen, PSOC_ESTATE, "sync before join");
    if (c->inflight)
        return psoc__err(err, errlen, PSOC_ESTATE, "a sync is in flight: end it first");
    if (c->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT)
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "the daemon's strategy takes gradients: a sync cannot overlap the "
                         "steps that make them");
    if (!isfinite(rep->loss))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "loss is %g; the daemon only takes finite losses", rep->loss);
    if ((!c->at_push && !(c->at_push = malloc(c->n * sizeof(float)))) ||
        (!c->arrived && !(c->arrived = malloc(c->n * sizeof(float)))))
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory for a sync in flight");
    memcpy(c->at_push, weights, c->n * sizeof(float));
    memcpy(c->arrived, weights, c->n * sizeof(float));
    for (int k = 0; k < c->nlink; k++) {
        psoc__part(c->link[k], c->round, &c->part_off[k], &c->part_len[k]);
        c->part_off[k] += c->link[k]->offset;
    }
    c->inflight = 1;
    c->inflight_rc = PSOC_OK;
    c->inflight_resync = 0;
    c->inflight_err[0] = 0;
    /* The push goes from `arrived`, which nobody touches until the position
     * lands in it (a zero-copy push is released by then). */
    c->inflight_seq = s_push_all(c, c->arrived, NULL, rep, c->sent, &c->inflight_rc,
                                 &c->inflight_resync, c->inflight_err, sizeof c->inflight_err);
    return PSOC_OK;
}

int psoc_sync_end(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                  size_t errlen)
{
    if (!c->inflight)
        return psoc__err(err, errlen, PSOC_ESTATE, "no sync in flight");
    c->inflight = 0;
    int first = c->inflight_rc, resync = c->inflight_resync;
    if (first)
        snprintf(err, errlen, "%s", c->inflight_err);
    struct psoc_position pos;
    first = s_collect(c, c->arrived, c->inflight_seq, c->sent, first, &resync, &pos, err, errlen);
    if (resync) {
        first = s_resync(c, c->arrived, &pos, err, errlen);
        if (first)
            return first;
    } else if (first) {
        return first;
    }
    s_apply(c, weights, resync);
    c->round = pos.round;
    if (out)
        *out = pos;
    if (c->nlink == 1)
        psoc__verify_run(c);
    return PSOC_OK;
}
