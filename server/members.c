/* The member table: a worker is known by its name; its connection's routing
 * id is the ROUTER's, and the session its Welcome carries (16 random bytes)
 * is what later hellos from a new connection of the same process, and its
 * heartbeats, show to be its own. A restarted worker gets its particle back.
 * Hello, heartbeats and bye live here; what a hello must be, and the wire
 * a worker gets, are hello.c's. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/payload.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "common/hash.h"

/* A new session for mb: getrandom(2), else (a kernel without it) time and
 * address bits mixed, still unknown to other peers. */
static void s_new_session(struct member *mb)
{
    if (getrandom(mb->session, sizeof mb->session, 0) == (ssize_t)sizeof mb->session)
        return;
    uint64_t a = hash_fnv1a64(mb->name) ^ (uint64_t)(time_now_s() * 1e9),
             b = (uint64_t)(uintptr_t)mb * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    memcpy(mb->session, &a, 8);
    memcpy(mb->session + 8, &b, 8);
}

/* Whether the hello comes from the process that holds mb (pid and host). */
static int s_same_process(const struct member *mb, const Psod__Hello *h)
{
    return mb->pid == h->pid && strcmp(mb->host, h->host ? h->host : "") == 0;
}

/* A fresh member for worker `name`, whose position is the hello's payload
 * (moved out of `in`). */
static void s_member_init(struct member *mb, const char *name, struct wire_msg *in)
{
    memset(mb, 0, sizeof *mb);
    snprintf(mb->name, sizeof mb->name, "%s", name);
    memcpy(mb->id, in->id, in->id_len);
    mb->id_len = in->id_len;
    snprintf(mb->key, sizeof mb->key, "%s", in->user);
    const Psod__Hello *h = (const Psod__Hello *)in->meta;
    snprintf(mb->host, sizeof mb->host, "%s", h->host ? h->host : "");
    mb->pid = h->pid;
    mb->verifier = h->verifier;
    mb->active = 1;
    mb->last_seen = time_now_s();
    mb->last_push_at = mb->last_seen;
    mb->last_loss = NAN;
    mb->last_acc = NAN;
    mb->pbest_acc = NAN;
    zmq_msg_init(&mb->position);
    zmq_msg_move(&mb->position, &in->payload);
    s_new_session(mb);
}

/* A hello by checksum (no payload): a vector psod holds whose CRC-32C is
 * the one named, copied into in->payload. Candidates: the shared position
 * and the members' positions whose CRC is known (pos_crc_ok); the one that
 * matches is read once more to confirm it, so a hello costs at most one
 * pass over a vector, as one carrying its weights does. 0, or -1: not
 * held. */
static int s_known_weights(const struct server *s, const Psod__Hello *h, struct wire_msg *in)
{
    const size_t bytes = h->param_count * sizeof(float);
    const zmq_msg_t *hit = NULL;
    if (s->have_shared && s->shared_crc == h->payload_crc32c)
        hit = &s->shared_position;
    for (size_t i = 0; !hit && i < s->count; i++)
        if (s->m[i].pos_crc_ok && s->m[i].pos_crc == h->payload_crc32c)
            hit = &s->m[i].position;
    if (!hit || zmq_msg_size((zmq_msg_t *)hit) != bytes ||
        crc32c(0, zmq_msg_data((zmq_msg_t *)hit), bytes) != h->payload_crc32c ||
        zmq_msg_init_size(&in->payload, bytes) != 0 || wire_payload_align(&in->payload))
        return -1;
    memcpy(zmq_msg_data(&in->payload), zmq_msg_data((zmq_msg_t *)hit), bytes);
    in->has_payload = 1;
    return 0;
}

/* The welcome; `named_crc` is the CRC-32C of the weights the hello carried
 * or named (0 with `named` false: none), and a position equal to those is
 * not sent again (same_weights). */
static void s_welcome(struct server *s, struct member *mb, int rejoined, int named,
                      uint32_t named_crc)
{
    srv_forget_intended(mb); /* it is sent mb->position whole */
    Psod__Welcome w = PSOD__WELCOME__INIT;
    w.particle_id = (uint32_t)(mb - s->m);
    w.round = s->round;
    w.param_count = s->n;
    w.payload_crc32c = crc32c(0, zmq_msg_data(&mb->position), zmq_msg_size(&mb->position));
    mb->pos_crc = w.payload_crc32c;
    mb->pos_crc_ok = 1;
    w.global_best_loss = s->ops->global_loss(s->st);
    w.rejoined = rejoined;
    w.strategy = (char *)s->ops->name;
    w.swarm_id = s->swarm_id;
    /* A fragment member holds the global model on the part synced only. */
    w.positions_global = s->ops->positions_global && mb->fragments < 2;
    w.heartbeat_ms = (uint32_t)s->cfg.heartbeat_ms;
    w.incarnation = s->incarnation;
    w.push_kind = (Psod__PayloadKind)s->ops->push_kind;
    w.model_name = s->model_name;
    w.pushes = mb->pushes;
    w.dataset = s->dataset;
    w.session = (ProtobufCBinaryData){sizeof mb->session, mb->session};
    w.encoding = (Psod__Encoding)mb->wire;
    w.density = (float)mb->density;
    w.fragments = mb->fragments;
    srv_hyper_fill(s, (int)(mb - s->m), &w.hyper, &w.lr, &w.momentum);
    w.shard_offset = s->sh.offset;
    if (named && named_crc == w.payload_crc32c) {
        w.same_weights = 1;
        zmq_msg_t none;
        zmq_msg_init(&none);
        srv_send_msg(s, mb, PSOD__COMMAND__CMD_WELCOME, &w.base, &none);
        return;
    }
    srv_send_payload(s, mb, PSOD__COMMAND__CMD_WELCOME, &w.base);
}

/* Another process under a live worker's name (two workers given one --name
 * would take the particle from each other forever): refused, unless the
 * hello carries the holder's session (the same process on a new
 * connection) or its pid and host (a first hello sent again before its
 * welcome came), the holder has been silent past liveness (a real restart) or
 * none has claimed the particle since a resume (pid 0). A new process on
 * the holder's own host takes over once the holder has missed two
 * heartbeats: a worker restarted after a crash (kill -9 leaves no bye)
 * should not wait out --liveness, and a live twin on that host would be
 * beating every interval. */
#define S_SAME_HOST_BEATS 2
static int s_name_taken(struct server *s, const struct member *mb, const Psod__Hello *h,
                        const struct wire_msg *in)
{
    double heard = time_now_s() - mb->last_seen, limit = srv_silent_limit(s);
    int same_host = h->host && h->host[0] && strcmp(mb->host, h->host) == 0;
    if (!mb->active || mb->pid == 0 || heard > limit || srv_same_session(mb, h->session) ||
        s_same_process(mb, h))
        return 0;
    if (same_host && heard > S_SAME_HOST_BEATS * s->cfg.heartbeat_ms / 1000.0) {
        log_info("worker '%s': a new process (pid %u) on %s takes over from pid %u, silent for "
                 "%.1f s (%d heartbeats missed)",
                 mb->name, h->pid, h->host, mb->pid, heard, S_SAME_HOST_BEATS);
        return 0;
    }
    srv_reject(s, in, PSOD__ERROR_CODE__ERR_NAME_TAKEN, 0,
               "worker name '%s' is held by a live worker (pid %u on %s, heard %.1f s ago); "
               "give this one another --name, or if that worker is gone, retry after %.0f s "
               "of its silence (--heartbeat-ms x --liveness; %.1f s on its own host)",
               mb->name, mb->pid, mb->host[0] ? mb->host : "?", heard, limit,
               S_SAME_HOST_BEATS * s->cfg.heartbeat_ms / 1000.0);
    return 1;
}

void srv_handle_hello(struct server *s, struct wire_msg *in)
{
    Psod__Hello *h = (Psod__Hello *)in->meta;
    char why[512];
    int code = srv_hello_malformed(s, h, why, sizeof why);
    if (code) {
        srv_reject(s, in, code, 0, "%s", why);
        return;
    }
    if (srv_shard_check_hello(s, in, h) != 0)
        return;
    if ((code = srv_hello_misfit(s, h, why, sizeof why))) {
        srv_reject(s, in, code, 0, "%s", why);
        return;
    }
    struct member *mb = srv_by_name(s, h->worker_name);
    if (mb && srv_foreign_key(s, mb, in, 0))
        return;
    if (mb && srv_verify_banned(s, (int)(mb - s->m))) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                   "worker '%s' was evicted for its strikes (claims or verdicts a quorum of "
                   "other workers refuted; --strike-limit %ld) and may not rejoin this swarm",
                   mb->name, s->cfg.sp.strike_limit);
        return;
    }
    if (mb && s_name_taken(s, mb, h, in))
        return;
    if (mb) {
        /* A restarted worker, or the same one on a new connection: give its
         * particle back on this connection; a push it made before is
         * dropped, since it will push this round again. Another process
         * gets a new session (the same one keeps its own, so that a second
         * welcome of a first join says what the first said). */
        if (!srv_same_session(mb, h->session) && !s_same_process(mb, h))
            s_new_session(mb);
        memcpy(mb->id, in->id, in->id_len);
        mb->id_len = in->id_len;
        srv_release_push(s, mb);
        mb->votes = 0;
        snprintf(mb->host, sizeof mb->host, "%s", h->host ? h->host : "");
        mb->pid = h->pid;
        mb->verifier = h->verifier;
        mb->active = 1;
        mb->evicted = 0;
        mb->retired = 0;
        mb->last_seen = time_now_s();
        /* Its progress is measured afresh from here. */
        mb->last_push_at = mb->last_seen;
        mb->slowest_interval = 0;
        mb->intervals = 0;
        log_info("worker '%s' (%s pid %u) rejoined particle %d at round %llu", mb->name,
                 h->host ? h->host : "?", h->pid, (int)(mb - s->m), (unsigned long long)s->round);
        srv_agree_wire(s, h, mb);
        s_welcome(s, mb, 1, in->has_payload || h->by_checksum, h->payload_crc32c);
        return;
    }
    long cap = s->cfg.max_workers > s->cfg.workers ? s->cfg.max_workers : s->cfg.workers;
    long slot_i = -1; /* an index: srv_reserve below may move the array */
    if ((long)s->count >= cap && s->st) {
        int gp = s->ops->global_particle(s->st);
        for (size_t i = 0; i < s->count && slot_i < 0; i++)
            if (s->m[i].retired && !s->m[i].active && (int)i != gp)
                slot_i = (long)i;
    }
    if ((long)s->count >= cap && slot_i < 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_SWARM_FULL, 0,
                   "all %zu particles are taken (--workers %ld, --max-workers %ld)", s->count,
                   s->cfg.workers, s->cfg.max_workers);
        return;
    }
    if (!in->has_payload && h->by_checksum &&
        !(s->st && h->param_count == s->n && s_known_weights(s, h, in) == 0)) {
        /* The usual answer to the first worker of a swarm (or one that
         * starts elsewhere): not an error, the hello comes again. */
        log_debug("worker '%s': weights %08x not held here; asking for them", h->worker_name,
                  h->payload_crc32c);
        wire_send_error(s->sock, in->id, in->id_len, PSOD__ERROR_CODE__ERR_NEED_WEIGHTS,
                        "the weights named by checksum are not held here; send them", 0, s->round);
        return;
    }
    if (!in->has_payload) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NEED_WEIGHTS, 0,
                   "a new particle needs its initial weights as payload");
        return;
    }
    size_t bytes = zmq_msg_size(&in->payload);
    if (bytes != h->param_count * sizeof(float)) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, 0,
                   "payload is %zu bytes, param_count says %llu", bytes,
                   (unsigned long long)h->param_count);
        return;
    }
    const float *x0 = zmq_msg_data(&in->payload);
    uint32_t crc;
    size_t bad = payload_check(x0, h->param_count, &crc);
    if (crc != h->payload_crc32c) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_CHECKSUM, 0, "initial weights fail their CRC-32C");
        return;
    }
    if (bad) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, 0,
                   "initial weights hold %zu NaN or infinite values", bad);
        return;
    }
    if (!s->st) {
        srv_shard_adopt(s, h);
        s->st = s->ops->create(h->param_count, s->sh.offset, &s->cfg.sp);
        if (s->st && srv_hyper_create(s) != 0) {
            s->ops->destroy(s->st);
            s->st = NULL;
        }
        if (!s->st) {
            srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for the swarm");
            return;
        }
        s->n = h->param_count;
        s->layout_hash = h->layout_hash;
        snprintf(s->model_name, sizeof s->model_name, "%s", h->model_name ? h->model_name : "");
        snprintf(s->dataset, sizeof s->dataset, "%s", h->dataset ? h->dataset : "");
        for (size_t k = 0; k < 3; k++)
            s->input_shape[k] = k < h->n_input_shape ? h->input_shape[k] : 0;
        log_info("swarm model set by '%s': %s%s%s, %zu parameters, layout %016llx", h->worker_name,
                 s->model_name[0] ? s->model_name : "unnamed model", s->dataset[0] ? " on " : "",
                 s->dataset, s->n, (unsigned long long)s->layout_hash);
    }
    if (srv_reserve(s) != 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for a particle");
        return;
    }
    /* A worker joining a swarm that has trained already starts from the
     * global model rather than from scratch. */
    const float *g = s->round > 0 ? s->ops->global(s->st) : NULL;
    if (g) {
        memcpy(zmq_msg_data(&in->payload), g, s->n * sizeof(float));
        log_info("worker '%s' joins a running swarm at round %llu: starting from the global "
                 "model",
                 h->worker_name, (unsigned long long)s->round);
    }
    if (slot_i >= 0) {
        struct member *slot = &s->m[slot_i];
        int i = (int)slot_i;
        log_info("worker '%s' (%s pid %u) takes over particle %d of retired worker '%s'",
                 h->worker_name, h->host ? h->host : "?", h->pid, i, slot->name);
        s->ops->reset(s->st, i, x0, hash_fnv1a64(h->worker_name));
        srv_verify_forget(s, i);
        srv_hyper_reset(s, i, hash_fnv1a64(h->worker_name));
        zmq_msg_close(&slot->position);
        srv_forget_intended(slot);
        s_member_init(slot, h->worker_name, in);
        srv_agree_wire(s, h, slot);
        s_welcome(s, slot, 0, 1, h->payload_crc32c);
        return;
    }
    if (srv_hyper_reserve(s) != 0 || s->ops->add(s->st, x0, hash_fnv1a64(h->worker_name)) < 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for a particle");
        return;
    }
    srv_hyper_add(s, hash_fnv1a64(h->worker_name));
    mb = &s->m[s->count++];
    s_member_init(mb, h->worker_name, in);
    srv_agree_wire(s, h, mb);
    char more[96] = "", spec[64];
    codec_spec_name(mb->wire, mb->density, mb->fragments, spec, sizeof spec);
    if ((long)s->count < s->cfg.workers)
        snprintf(more, sizeof more, "; rounds wait for %ld more worker%s to join",
                 s->cfg.workers - (long)s->count, s->cfg.workers - (long)s->count == 1 ? "" : "s");
    log_info("worker '%s' (%s pid %u) joined as particle %zu (%zu of %ld), %s payloads%s", mb->name,
             h->host ? h->host : "?", h->pid, s->count - 1, s->count, s->cfg.workers, spec, more);
    s_welcome(s, mb, 0, 1, h->payload_crc32c);
}

void srv_handle_heartbeat(struct server *s, struct wire_msg *in)
{
    /* From the worker's own connection, or from its heartbeat thread's (or
     * a new connection of its own) with its name and session. With CURVE
     * only the particle's own key keeps it alive. */
    const Psod__Heartbeat *beat = (const Psod__Heartbeat *)in->meta;
    struct member *mb = srv_member_of(s, in, beat->worker_name, beat->session);
    if (mb && (!mb->key[0] || strcmp(mb->key, in->user) == 0))
        mb->last_seen = time_now_s();
    Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
    hb.seq = beat->seq;
    hb.incarnation = s->incarnation;
    hb.joined = (uint32_t)s->count;
    hb.workers_expected = (uint32_t)s->cfg.workers;
    hb.pushed = (uint32_t)srv_pushed(s);
    hb.round = s->round;
    wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
              ZMQ_DONTWAIT);
}

void srv_handle_bye(struct server *s, struct wire_msg *in)
{
    Psod__Bye *b = (Psod__Bye *)in->meta;
    struct member *mb = srv_member_of(s, in, b->worker_name, b->session);
    if (!mb || srv_foreign_key(s, mb, in, 0) || !mb->active)
        return;
    /* A candidate sent with the last round's positions: its verdict comes
     * with the bye (there is no next push to carry it). */
    if (b->verdict && !isfinite(b->verdict->loss))
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, 0,
                   "the bye's verdict has loss %g: ignored (the bye is not)", b->verdict->loss);
    else if (b->verdict)
        srv_verify_verdict(s, mb, b->verdict);
    mb->active = 0;
    double acc = srv_accuracy(b->accuracy);
    if (!isnan(acc)) {
        mb->last_acc = acc;
        if (s->ops->positions_global && mb->fragments < 2) /* its weights: the model */
            srv_global_report(s, acc, b->round);
    }
    char said[96] = "no final test accuracy reported";
    if (!isnan(acc))
        snprintf(said, sizeof said, "final test accuracy %.2f%%", 100 * acc);
    else if (isfinite(b->accuracy))
        snprintf(said, sizeof said, "final test accuracy %g: not a fraction, ignored", b->accuracy);
    log_info("worker '%s' left: %s (%s)", mb->name, b->reason && b->reason[0] ? b->reason : "bye",
             said);
    if (srv_follower(s) && s->sh.stop_at > 0)
        srv_timers(s, time_now_s()); /* the last bye after the coordinator's stop */
    if (s->cfg.exit_when_done && !srv_follower(s) && srv_active(s) == 0 &&
        (long)s->count >= s->cfg.workers)
        s->done = 1;
}
