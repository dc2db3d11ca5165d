/* Rounds: the barrier, the update and its bookkeeping, and the timers
 * (eviction, retirement, deadlines). Taking a push is push.c's. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/sparse.h"
#include "common/timeutil.h"
#include "common/wire.h"

/* The worker that evaluates the global model for reports (one evaluation
 * per report is enough), chosen once per update, before the positions go
 * out: in turn among the active workers, so the cost is shared and one
 * slow evaluator does not hold every report. */
static void s_choose_evaluator(struct server *s)
{
    int last = s->evaluator;
    s->evaluator = -1;
    for (size_t k = 1; k <= s->count && s->evaluator < 0; k++) {
        size_t i = ((size_t)(last < 0 ? -1 : last) + k) % s->count;
        if (s->m[i].active)
            s->evaluator = (int)i;
    }
}

/* A sparse position: the top k of the change from what the worker holds
 * to the exact new position, at the worker's density. What is not sent
 * stays in the gap between the exact position (mb->intended) and what the
 * worker holds, so the next round's target still carries it: the
 * sparsity's error feedback on the way down. 0, or -1 when out of
 * memory. */
static int s_sparse_position(struct server *s, struct member *mb, float *target, zmq_msg_t *q,
                             size_t *bytes)
{
    size_t k = sparse_k(s->n, mb->density);
    void *buf = malloc(sparse_max_bytes(mb->wire, s->n, k, CODEC_BLOCK));
    *bytes =
        buf ? sparse_encode_step(mb->wire, s->n, k, target, zmq_msg_data(&mb->position), buf) : 0;
    return wire_msg_adopt(q, buf, *bytes);
}

/* A compressed position: the change from the position the worker holds
 * (mb->position) to the new one (mb->push), encoded into `q`; the new one
 * becomes what the worker will decode, bit for bit. Returns 0, or -1 when
 * out of memory (the worker then gets the float32 position). */
static int s_encode_position(struct server *s, struct member *mb, zmq_msg_t *q, Psod__Position *p)
{
    float *target = zmq_msg_data(&mb->push);
    if (!mb->intended && !(mb->intended = malloc(s->n * sizeof(float))))
        return -1;
    memcpy(mb->intended, target, s->n * sizeof(float)); /* before the wire rounds it */
    size_t bytes, off, len;
    if (mb->density > 0) {
        if (s_sparse_position(s, mb, target, q, &bytes) != 0)
            return -1;
        p->sparse = 1;
    } else {
        /* A fragment member gets the change of this round's part; the rest
         * of what it holds stays, and the gap to the exact position waits
         * for that part's round, as a sparse position's does. */
        srv_fragment_range(mb, s->n, s->round, &off, &len);
        const float *state = zmq_msg_data(&mb->position);
        bytes = codec_bytes(mb->wire, len, CODEC_BLOCK);
        if (zmq_msg_init_size(q, bytes) != 0)
            return -1;
        codec_encode_step(mb->wire, len, target + off, state + off, zmq_msg_data(q));
        if (len < s->n) {
            memcpy(target, state, off * sizeof(float));
            memcpy(target + off + len, state + off + len, (s->n - off - len) * sizeof(float));
            p->fragment = (uint32_t)(s->round % mb->fragments);
        }
    }
    p->encoding = (Psod__Encoding)mb->wire;
    p->block_size = codec_blocked(mb->wire) ? CODEC_BLOCK : 0;
    p->payload_crc32c = crc32c(0, zmq_msg_data(q), bytes);
    p->position_crc32c = crc32c(0, target, s->n * sizeof(float));
    return 0;
}

/* The pushed buffer, now holding the new position, becomes the stored
 * one. Where every position is the global model, the first float32 one of
 * a round is kept and the others share it: one buffer for the swarm
 * instead of one per member. */
static void s_store_position(struct server *s, struct member *mb, uint32_t crc, int compressed)
{
    mb->pos_crc = crc; /* a compressed one is the worker's, not this CRC's */
    mb->pos_crc_ok = !compressed;
    /* A compressed position is what that worker decodes, its own. */
    if (!s->ops->positions_global || compressed) {
        zmq_msg_move(&mb->position, &mb->push);
        return;
    }
    if (s->have_shared && s->shared_round == s->round && s->shared_crc == crc &&
        zmq_msg_size(&s->shared_position) == zmq_msg_size(&mb->push)) {
        zmq_msg_copy(&mb->position, &s->shared_position);
        return;
    }
    zmq_msg_move(&mb->position, &mb->push);
    if (s->have_shared)
        zmq_msg_close(&s->shared_position);
    zmq_msg_init(&s->shared_position);
    zmq_msg_copy(&s->shared_position, &mb->position);
    s->have_shared = 1;
    s->shared_round = s->round;
    s->shared_crc = crc;
}

/* A particle's new position is ready: it becomes the stored position and
 * goes out at once, so the I/O thread sends it while the daemon computes
 * the next particle. */
void srv_position_ready(void *ctx, int i, uint32_t crc)
{
    struct server *s = ctx;
    struct member *mb = &s->m[i];
    zmq_msg_t q;
    Psod__Position p = PSOD__POSITION__INIT;
    int compressed = mb->active && srv_compressed(mb) && s_encode_position(s, mb, &q, &p) == 0;
    if (!compressed) /* the float32 position, whole: held exactly */
        srv_forget_intended(mb);
    zmq_msg_close(&mb->position);
    zmq_msg_init(&mb->position);
    s_store_position(s, mb, crc, compressed);
    zmq_msg_close(&mb->push);
    mb->has_push = 0;
    if (!mb->active)
        return;
    p.round = s->round + 1;
    p.global_best_loss = s->ops->global_loss(s->st);
    if (!compressed)
        p.payload_crc32c = crc;
    p.particle_id = (uint32_t)i;
    p.personal_best_loss = s->ops->personal_best_loss(s->st, i);
    p.seq = mb->push_seq;
    p.global_best_particle = (uint32_t)s->ops->global_particle(s->st);
    p.evaluator = i == s->evaluator;
    srv_hyper_fill(s, i, &p.hyper, &p.lr, &p.momentum);
    if (compressed)
        srv_send_msg(s, mb, PSOD__COMMAND__CMD_POSITION, &p.base, &q);
    else
        srv_send_payload(s, mb, PSOD__COMMAND__CMD_POSITION, &p.base);
}

/* After an update (a closed round, or one push in async mode): accuracy
 * bookkeeping, the round counter, metrics, model file and checkpoint.
 * round_x[i] marks who pushed, round_pbest_loss[i] their personal best loss before. */
static void s_finish_round(struct server *s, double t0, double wait_s)
{
    /* pso: a particle whose personal best just became the weights it pushed
     * carries that push's accuracy; the global best's is its particle's. */
    for (size_t i = 0; i < s->count; i++) {
        double now_pb = s->ops->personal_best_loss(s->st, (int)i);
        if (s->round_x[i] && now_pb != s->round_pbest_loss[i] && !isnan(now_pb)) {
            s->m[i].pbest_acc = s->m[i].push_acc;
            s->m[i].pbest_round = s->round;
        }
    }
    int gp = s->ops->global_particle(s->st);
    if (gp >= 0 && !srv_verifying(s)) { /* verified: set at adoption (verify.c) */
        s->g_acc = s->m[gp].pbest_acc;
        s->g_acc_round = s->m[gp].pbest_round;
    }
    s->round++;
    double now = time_now_s();
    s->last_round_seconds = now - s->round_started;
    s->round_started = now;
    srv_metrics_line(s, now, now - t0, wait_s);
    srv_observe_round(s, now, now - t0, wait_s);
    log_debug("round %llu closed: global loss %.6g, update %.2f ms, round %.2f ms",
              (unsigned long long)s->round, s->ops->global_loss(s->st), (now - t0) * 1e3,
              s->last_round_seconds * 1e3);
    if (srv_follower(s))
        return; /* model files, checkpoints and the end are the coordinator's */
    if (s->cfg.save_every > 0 && s->round % (uint64_t)s->cfg.save_every == 0) {
        if (srv_coordinator(s))
            srv_shard_save_model(s, 0);
        else
            srv_save_model(s);
    }
    if (srv_maybe_checkpoint(s, now) && srv_coordinator(s))
        srv_shard_order(s, PSOD__SHARD_ACTION__SHARD_CHECKPOINT, s->round);
    /* Exact: no further push is served once the last round closed, even
     * from messages already queued in this drain (async mode). */
    if (s->cfg.max_rounds && s->round >= (uint64_t)s->cfg.max_rounds) {
        log_info("reached --max-rounds %ld", s->cfg.max_rounds);
        s->done = 1;
    }
}

void srv_drop_push(struct server *s, struct member *mb, const char *why)
{
    srv_release_push(s, mb);
    Psod__Error e = PSOD__ERROR__INIT;
    e.code = PSOD__ERROR_CODE__ERR_ROUND;
    e.message = (char *)why;
    e.seq = mb->push_seq;
    e.round = s->round;
    if (wire_send(s->sock, mb->id, mb->id_len, PSOD__COMMAND__CMD_ERROR, &e.base, NULL,
                  ZMQ_DONTWAIT) != 0)
        log_debug("could not tell worker '%s' its push was dropped", mb->name);
    s->errors[PSOD__ERROR_CODE__ERR_ROUND]++;
    log_info("push of worker '%s' for round %llu dropped: %s", mb->name,
             (unsigned long long)s->round, why);
}

/* A robust rule that needs more pushes than this round has: it runs with
 * a lower f (aggregate.c), and the operator is told. */
static void s_aggregate_note(const struct server *s)
{
    const struct agg_params *a = &s->cfg.sp.agg;
    size_t k = 0, need = agg_min_inputs(a);
    for (size_t i = 0; i < s->count; i++)
        k += s->round_x[i] != NULL;
    if (a->rule != AGG_MEAN && k > 0 && k < need)
        log_ratelimited(LOG_WARN, "aggregate-short",
                        "round %llu closes with %zu pushes, but --aggregate %s with "
                        "--aggregate-f %ld needs %zu: it runs with a lower f this round (fewer "
                        "bad workers tolerated)",
                        (unsigned long long)s->round, k, agg_rule_names[a->rule], a->f, need);
}

/* The part of the vector this round updates: with fragment payloads, the
 * round's part when every member that pushed syncs the same F; else all
 * of it (members on different counts, or none on fragments). */
static void s_round_part(struct server *s)
{
    if (!s->ops->part)
        return;
    const struct member *one = NULL;
    int same = 1;
    for (size_t i = 0; i < s->count; i++)
        if (s->m[i].has_push) {
            same &= !one || s->m[i].fragments == one->fragments;
            one = one ? one : &s->m[i];
        }
    size_t off = 0, len = s->n;
    if (one && same)
        srv_fragment_range(one, s->n, s->round, &off, &len);
    s->ops->part(s->st, off, len);
}

void srv_close_round(struct server *s)
{
    double t0 = time_now_s();
    if (srv_coordinator(s)) {
        for (size_t i = 0; i < s->count; i++)
            if (s->m[i].has_push && !srv_complete(s, &s->m[i]))
                srv_drop_push(s, &s->m[i], "the round closed before every shard held this push");
        srv_shard_commit(s, NULL);
    }
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        mb->votes = 0;
        s->round_x[i] = mb->has_push ? zmq_msg_data(&mb->push) : NULL;
        s->round_prev[i] = srv_position_spared(s, mb) ? NULL : (float *)srv_base_of(mb);
        s->round_loss[i] = mb->has_push ? mb->push_loss : INFINITY;
        s->round_pbest_loss[i] = s->ops->personal_best_loss(s->st, (int)i);
    }
    double wait_s = t0 - s->first_push;
    s_choose_evaluator(s);
    srv_verify_send(s); /* before the update moves the pushes */
    srv_hyper_round(s); /* the positions carry the new points */
    s_aggregate_note(s);
    s_round_part(s);
    s->ops->round(s->st, s->round, s->round_x, s->round_prev, s->round_loss, srv_position_ready, s);
    s_finish_round(s, t0, wait_s);
}

/* Pushes the round can close with: every shard holds them. */
static size_t s_complete_count(const struct server *s)
{
    size_t p = 0;
    for (size_t i = 0; i < s->count; i++)
        p += srv_complete(s, &s->m[i]);
    return p;
}

void srv_maybe_close_round(struct server *s)
{
    if ((long)s->count < s->cfg.workers || !srv_decides(s) || s->cfg.mode == SERVER_ASYNC)
        return;
    size_t pushed = s_complete_count(s);
    if (pushed == 0)
        return;
    if (s->cfg.quorum > 0 && (long)pushed >= s->cfg.quorum) {
        srv_close_round(s);
        return;
    }
    for (size_t i = 0; i < s->count; i++)
        if (s->m[i].active && !srv_complete(s, &s->m[i]))
            return;
    srv_close_round(s);
}

/* Asynchronous mode: the push is a round of its own, answered at once. The
 * round counter counts pushes. */
void srv_async_step(struct server *s, struct member *mb)
{
    double t0 = time_now_s();
    int i = (int)(mb - s->m);
    if (srv_coordinator(s))
        srv_shard_commit(s, mb);
    mb->votes = 0;
    for (size_t j = 0; j < s->count; j++) {
        s->round_x[j] = NULL;
        s->round_loss[j] = INFINITY;
    }
    float *x = zmq_msg_data(&mb->push);
    s->round_x[i] = x;
    s->round_loss[i] = mb->push_loss;
    s->round_pbest_loss[i] = s->ops->personal_best_loss(s->st, i);
    s_choose_evaluator(s);
    s->ops->push(s->st, s->round, i, x, srv_base_of(mb), mb->push_loss, srv_position_ready, s);
    s_finish_round(s, t0, 0);
}

/* Liveness is also progress: in a round others have pushed for, a worker
 * that has not pushed for --progress-factor times its own slowest interval
 * (at least the silence limit) is evicted although its heartbeat thread
 * still beats. Needs two intervals of history; async mode has no round to
 * hold up. Returns whether anyone was evicted. */
static int s_evict_stalled(struct server *s, double now, double silent_limit)
{
    if (s->cfg.progress_factor <= 0 || s->cfg.mode == SERVER_ASYNC || srv_pushed(s) == 0)
        return 0;
    int changed = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        double bound = s->cfg.progress_factor * mb->slowest_interval;
        if (bound < silent_limit)
            bound = silent_limit;
        if (!mb->active || mb->has_push || mb->intervals < 2 || now - mb->last_push_at <= bound)
            continue;
        mb->active = 0;
        mb->evicted = 1;
        changed = 1;
        log_warn("evicted worker '%s' (particle %zu): no push for %.1f s, over %g x its slowest "
                 "interval of %.2f s (--progress-factor), though its heartbeats go on; the "
                 "round no longer waits for it",
                 mb->name, i, now - mb->last_push_at, s->cfg.progress_factor, mb->slowest_interval);
    }
    return changed;
}

/* Timers: evict workers that have been silent for liveness intervals, or
 * have stopped making progress, and close a round that has passed its
 * deadline. */
void srv_timers(struct server *s, double now)
{
    srv_shard_timers(s, now);
    if (srv_follower(s))
        return; /* evictions and deadlines are the coordinator's */
    double silent_limit = srv_silent_limit(s);
    int changed = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        if (!mb->active || now - mb->last_seen <= silent_limit)
            continue;
        mb->active = 0;
        mb->evicted = 1;
        changed = 1;
        log_warn("evicted worker '%s' (particle %zu): silent for %.1f s (--heartbeat-ms %ld x "
                 "--liveness %ld); the round no longer waits for it",
                 mb->name, i, now - mb->last_seen, s->cfg.heartbeat_ms, s->cfg.liveness);
    }
    changed |= s_evict_stalled(s, now, silent_limit);
    if (changed)
        srv_maybe_close_round(s);
    if (s->cfg.retire_after > 0 && s->st) {
        int gp = s->ops->global_particle(s->st);
        for (size_t i = 0; i < s->count; i++) {
            struct member *mb = &s->m[i];
            if (mb->active || mb->retired || (int)i == gp ||
                now - mb->last_seen <= s->cfg.retire_after)
                continue;
            mb->retired = 1;
            log_info("retired particle %zu of worker '%s' (gone %.1f s, --retire-after %g): a "
                     "new worker may take it over",
                     i, mb->name, now - mb->last_seen, s->cfg.retire_after);
        }
    }
    if (s->cfg.round_timeout > 0 && srv_decides(s) && s_complete_count(s) > 0 &&
        now - s->first_push >= s->cfg.round_timeout && (long)s->count >= s->cfg.workers) {
        char who[256];
        srv_waiting_for(s, who, sizeof who);
        log_warn("round %llu closed at its deadline (--round-timeout %g s) with %zu pushes, "
                 "without %s",
                 (unsigned long long)s->round, s->cfg.round_timeout, srv_pushed(s), who);
        srv_close_round(s);
    }
}

/* An accuracy from a peer: a fraction in [0, 1], else "not evaluated". */
double srv_accuracy(double a) { return a >= 0 && a <= 1 ? a : NAN; }

/* A worker evaluated a position that was the global model (strategies with
 * positions_global): keep the newest report. */
void srv_global_report(struct server *s, double acc, uint64_t round)
{
    if (!isnan(acc) && (isnan(s->g_acc) || round >= s->g_acc_round)) {
        s->g_acc = acc;
        s->g_acc_round = round;
    }
}
