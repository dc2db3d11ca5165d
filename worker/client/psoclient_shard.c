/* A sharded swarm seen from the worker (PROTOCOL.md, "Shards"): the join
 * asks the named daemon for its status; when it lists several daemons the
 * client opens one sub-client per daemon, each a whole client of its own
 * (socket, heartbeat thread, wire state) over its range of the vector.
 * A sync sends every range push before waiting for any position, so the
 * ranges travel in parallel, and assembles the positions in place in the
 * caller's vector (the ranges are disjoint slices of it). If any daemon did
 * not take its push, or restarted, every sub-client rejoins, until all
 * agree on the round. */
#include "worker/client/psoclient_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/range.h"
#include "common/timeutil.h"

int psoc__discover(struct psoc *c, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + c->opts.connect_timeout_ms;
    int budget = c->opts.connect_timeout_ms, rc;
    struct psoc_status st;
    for (int attempt = 1;; attempt++) {
        int64_t left = deadline - time_now_ms();
        c->opts.connect_timeout_ms = left < 4000 ? (int)(left > 100 ? left : 100) : 4000;
        rc = psoc_status(c, 0, &st, err, errlen);
        c->opts.connect_timeout_ms = budget;
        if (rc != PSOC_ETIMEOUT || time_now_ms() >= deadline)
            break;
        if (attempt == 1 || attempt % 4 == 0)
            psoc__say(c, 2, "psod at %s not answering yet (attempt %d, %.0f s left)", c->endpoint,
                      attempt, (deadline - time_now_ms()) / 1e3);
        if (c->opts.stop && *c->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
    }
    if (rc == PSOC_ETIMEOUT)
        return psoc__err(err, errlen, PSOC_ETIMEOUT,
                         "no answer from psod at %s within %d ms: is psod running there, and is "
                         "that the address it listens on (its 'listening on' line)?",
                         c->endpoint, budget);
    if (rc)
        return rc;
    int count = (int)st.n_shards;
    if (count <= 1) {
        psoc_status_free(&st);
        return 0;
    }
    if ((uint64_t)count > c->n || count > 64) {
        psoc_status_free(&st);
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "%d shards for %zu parameters (at most 64, "
                         "and one parameter each)",
                         count, c->n);
    }
    c->sub = calloc((size_t)count, sizeof *c->sub);
    if (!c->sub) {
        psoc_status_free(&st);
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    }
    c->nsub = count;
    for (int k = 0; k < count; k++) {
        rc = psoc_open(&c->sub[k], st.shard[k].endpoint, c->name, &c->opts, err, errlen);
        if (rc) {
            psoc_status_free(&st);
            psoc__close_shards(c);
            return rc;
        }
        struct psoc *s = c->sub[k];
        uint64_t off, len;
        range_of(c->n, count, k, &off, &len);
        s->n = len;
        s->shard_offset = off;
        s->shard_total = c->n;
        s->layout_hash = c->layout_hash;
        psoc_set_model(s, c->model, c->dataset, c->shape);
    }
    psoc__say(c, 1,
              "psod at %s is shard %u of a swarm of %d daemons; joining each with its "
              "range",
              c->endpoint, st.shard_index, count);
    psoc_status_free(&st);
    return count;
}

/* Hello to every daemon until all welcome us at the same round (a rollback
 * in progress shows as a disagreement for a moment). */
static int s_hello_all(struct psoc *c, float *weights, int budget_ms, int first_ms,
                       struct psoc_welcome *w0, int *attempts, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + budget_ms;
    *attempts = 0;
    for (;;) {
        ++*attempts;
        uint64_t round = 0;
        int agree = 1;
        for (int k = 0; k < c->nsub; k++) {
            struct psoc *s = c->sub[k];
            struct psoc_welcome w;
            int64_t left = deadline - time_now_ms();
            int tries,
                rc = psoc__hello_retry(s, weights + s->shard_offset, (int)(left > 500 ? left : 500),
                                       first_ms, &w, &tries, err, errlen);
            /* A follower learns the coordinator's decisions (a particle
             * retired for a newcomer) with the next commit: ask again. */
            while (rc == PSOC_EREFUSED && k > 0 &&
                   s->last_server_error == PSOD__ERROR_CODE__ERR_SWARM_FULL &&
                   time_now_ms() < deadline && !(c->opts.stop && *c->opts.stop)) {
                usleep(200000);
                left = deadline - time_now_ms();
                rc = psoc__hello_retry(s, weights + s->shard_offset, (int)(left > 500 ? left : 500),
                                       first_ms, &w, &tries, err, errlen);
            }
            if (rc)
                return rc;
            if (k == 0) {
                *w0 = w;
                round = w.round;
            }
            agree &= w.round == round;
        }
        if (agree)
            return PSOC_OK;
        if (time_now_ms() >= deadline)
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "the %d daemons of the swarm did not agree on a round within %d ms "
                             "(a shard down or rolling back?)",
                             c->nsub, budget_ms);
        if (c->opts.stop && *c->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
        usleep(200000);
    }
}

static void s_take_welcome(struct psoc *c, const struct psoc_welcome *w)
{
    struct psoc *s0 = c->sub[0];
    c->joined = 1;
    c->particle = w->particle_id;
    c->round = w->round;
    c->push_kind = s0->push_kind;
    c->positions_global = s0->positions_global;
    c->heartbeat_ms = s0->heartbeat_ms;
    c->wire = s0->wire;
}

int psoc__join_shards(struct psoc *c, float *weights, struct psoc_welcome *out, char *err,
                      size_t errlen)
{
    struct psoc_welcome w;
    int attempts;
    int rc = s_hello_all(c, weights, c->opts.connect_timeout_ms, 4000, &w, &attempts, err, errlen);
    if (rc)
        return rc;
    s_take_welcome(c, &w);
    if (out)
        *out = w;
    return PSOC_OK;
}

static int s_resync_shards(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                           size_t errlen)
{
    if (c->opts.reconnect_ms <= 0)
        return PSOC_ETIMEOUT;
    psoc__say(c, 2,
              "the swarm's daemons did not all take the push (%s); rejoining each, for up "
              "to %.0f s",
              err && err[0] ? err : "no answer", c->opts.reconnect_ms / 1e3);
    struct psoc_welcome w;
    int attempts;
    int rc = s_hello_all(c, weights, c->opts.reconnect_ms, 500, &w, &attempts, err, errlen);
    if (rc)
        return rc;
    s_take_welcome(c, &w);
    if (out) {
        memset(out, 0, sizeof *out);
        out->round = w.round;
        out->global_best_loss = w.global_best_loss;
        out->personal_best_loss = NAN;
        out->resynced = attempts;
        out->lr = w.lr; /* as the single daemon's resync: --hyper's point */
        out->momentum = w.momentum;
    }
    return PSOC_OK;
}

int psoc__sync_shards(struct psoc *c, float *weights, const float *gradient,
                      const struct psoc_report *rep, struct psoc_position *out, char *err,
                      size_t errlen)
{
    uint64_t seq[64];
    int sent[64], resync = 0, first = PSOC_OK;
    char why[256] = "";
    /* One seq for the push to every daemon (the coordinator matches the
     * followers' votes by it); a sub-client's own requests may have moved
     * its counter on. */
    uint64_t top = 0;
    for (int k = 0; k < c->nsub; k++)
        top = c->sub[k]->seq > top ? c->sub[k]->seq : top;
    for (int k = 0; k < c->nsub; k++) {
        struct psoc *s = c->sub[k];
        s->round = c->round;
        s->seq = top;
        int rc =
            psoc__push(s, weights + s->shard_offset, gradient ? gradient + s->shard_offset : NULL,
                       rep, &seq[k], why, sizeof why);
        sent[k] = rc == PSOC_OK;
        if (rc && first == PSOC_OK) {
            first = rc;
            snprintf(err, errlen, "shard %d (%s): %s", k, s->endpoint, why);
        }
        if (rc == PSOC_ESYS || rc == PSOC_ETIMEOUT)
            resync = 1; /* the send failed and the connection was reset */
    }
    struct psoc_position pos[64];
    for (int k = 0; k < c->nsub; k++) {
        if (!sent[k])
            continue;
        struct psoc *s = c->sub[k];
        int rs = 0, rc = psoc__position(s, weights + s->shard_offset, seq[k], &pos[k], &rs, why,
                                        sizeof why);
        if (rc && (first == PSOC_OK || (rs && !resync))) {
            first = rc;
            snprintf(err, errlen, "shard %d (%s): %s", k, s->endpoint, why);
        }
        resync |= rs;
    }
    if (!resync && first == PSOC_OK)
        for (int k = 1; k < c->nsub; k++)
            if (pos[k].round != pos[0].round) {
                resync = 1;
                snprintf(err, errlen, "shard %d is at round %llu, shard 0 at %llu", k,
                         (unsigned long long)pos[k].round, (unsigned long long)pos[0].round);
            }
    if (resync) {
        int rc = s_resync_shards(c, weights, out, err, errlen);
        return rc == PSOC_ETIMEOUT && c->opts.reconnect_ms <= 0 ? first : rc;
    }
    if (first)
        return first;
    c->round = pos[0].round;
    if (out)
        *out = pos[0];
    return PSOC_OK;
}

void psoc__close_shards(struct psoc *c)
{
    for (int k = 0; k < c->nsub; k++)
        if (c->sub[k]) {
            psoc_set_final(c->sub[k], c->final_accuracy, c->final_round);
            psoc_close(&c->sub[k]);
        }
    free(c->sub);
    c->sub = NULL;
    c->nsub = 0;
}
