/* A sharded swarm's follower (shard.c says what a sharded swarm is): its
 * connection to the coordinator, registration, votes, and the orders it
 * applies (commits, checkpoints, rollbacks, model ranges, the end). */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/timeutil.h"

static void s_link_send(struct server *s, int command, const ProtobufCMessage *meta,
                        zmq_msg_t *payload)
{
    if (!s->sh.link)
        return; /* detached (the fuzzers) */
    if (wire_send(s->sh.link, NULL, 0, command, meta, payload, ZMQ_DONTWAIT) != 0)
        log_ratelimited(LOG_WARN, "shard-link", "could not send %s to the coordinator: %s",
                        wire_command_name(command), zmq_strerror(errno));
    s->sh.link_sent = time_now_s();
}

static void s_register(struct server *s)
{
    uint64_t gen[64];
    Psod__ShardHello h = PSOD__SHARD_HELLO__INIT;
    h.index = (uint32_t)s->sh.index;
    h.count = (uint32_t)s->sh.count;
    h.total = s->sh.total;
    h.incarnation = s->incarnation;
    h.round = s->round;
    h.fresh = s->sh.fresh;
    h.n_generation = srv_generations(s, gen, 64);
    h.generation = gen;
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    s_link_send(s, PSOD__COMMAND__CMD_SHARD_HELLO, &h.base, NULL);
}

static void s_report(struct server *s, int kind, const char *name, zmq_msg_t *payload, uint32_t crc,
                     uint64_t seq)
{
    Psod__ShardReport r = PSOD__SHARD_REPORT__INIT;
    r.seq = seq;
    r.kind = (Psod__ShardReportKind)kind;
    r.index = (uint32_t)s->sh.index;
    r.incarnation = s->incarnation;
    r.round = s->round;
    r.name = (char *)(name ? name : "");
    r.payload_crc32c = crc;
    uint64_t gen[64];
    if (kind == PSOD__SHARD_REPORT_KIND__REPORT_BEAT) {
        r.n_generation = srv_generations(s, gen, 64);
        r.generation = gen;
    }
    s_link_send(s, PSOD__COMMAND__CMD_SHARD_REPORT, &r.base, payload);
}

void srv_shard_vote(struct server *s, struct member *mb)
{
    if (s->sh.registered)
        s_report(s, PSOD__SHARD_REPORT_KIND__REPORT_VOTE, mb->name, NULL, 0, mb->push_seq);
}

/* The coordinator named a particle this shard does not hold a push of: it
 * cannot compute the round. Start again from the newest generation; the
 * coordinator sees the restart and rolls the swarm back with us. */
static void s_lost_step(struct server *s, const char *name)
{
    log_error("the coordinator's commit of round %llu names worker '%s', whose push this "
              "shard does not hold; restarting from this shard's newest checkpoint so that "
              "the swarm rolls back together",
              (unsigned long long)s->round, name);
    uint64_t gen[1];
    s->sh.restart = 1;
    s->sh.restart_round = srv_generations(s, gen, 1) ? (long)gen[0] : -2;
    s->done = 1;
}

static void s_apply_commit(struct server *s, const Psod__ShardOrder *o)
{
    if (o->n_loss != o->n_name || !s->st || (o->async_step != 0) != (s->cfg.mode == SERVER_ASYNC) ||
        (o->async_step && o->n_name != 1)) {
        log_error("coordinator's commit of round %llu (%zu names, %zu losses, %s) does not fit "
                  "this shard (%s mode%s); ignored",
                  (unsigned long long)o->round, o->n_name, o->n_loss,
                  o->async_step ? "one async step" : "a round",
                  s->cfg.mode == SERVER_ASYNC ? "async" : "sync", s->st ? "" : ", no swarm yet");
        return;
    }
    char *in = calloc(s->count ? s->count : 1, 1);
    if (!in) {
        log_error("out of memory applying round %llu", (unsigned long long)o->round);
        return;
    }
    struct member *one = NULL;
    for (size_t j = 0; j < o->n_name; j++) {
        struct member *mb = o->name[j] ? srv_by_name(s, o->name[j]) : NULL;
        if (!mb || !mb->has_push || !isfinite(o->loss[j])) {
            free(in);
            s_lost_step(s, o->name[j] ? o->name[j] : "?");
            return;
        }
        in[mb - s->m] = 1;
        mb->push_loss = o->loss[j];
        one = mb;
    }
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        if (mb->has_push && !in[i] && !o->async_step)
            srv_drop_push(s, mb, "the round closed without this push on every shard");
        for (size_t g = 0; g < o->n_retired; g++)
            if (o->retired[g] && strcmp(o->retired[g], mb->name) == 0 && !mb->active)
                mb->retired = 1;
        for (size_t g = 0; g < o->n_gone; g++)
            if (o->gone[g] && strcmp(o->gone[g], mb->name) == 0 && mb->active) {
                mb->active = 0;
                mb->evicted = 1;
                log_info("worker '%s' gone at round %llu: the coordinator's commit says so",
                         mb->name, (unsigned long long)s->round);
            }
    }
    free(in);
    s->sh.fresh = 0;
    if (o->async_step) {
        if (one && o->n_name == 1)
            srv_async_step(s, one);
        return;
    }
    srv_close_round(s);
}

static void s_send_model(struct server *s)
{
    const float *g = s->st ? s->ops->global(s->st) : NULL;
    zmq_msg_t p;
    size_t bytes = g ? s->n * sizeof(float) : 0;
    if (zmq_msg_init_size(&p, bytes) != 0) {
        log_error("out of memory for the model range");
        return;
    }
    if (g)
        memcpy(zmq_msg_data(&p), g, bytes);
    s_report(s, PSOD__SHARD_REPORT_KIND__REPORT_MODEL, NULL, &p, crc32c(0, g, bytes), 0);
    zmq_msg_close(&p);
}

static void s_handle_order(struct server *s, const Psod__ShardOrder *o)
{
    struct shard_state *sh = &s->sh;
    sh->link_heard = time_now_s();
    if (o->action == PSOD__SHARD_ACTION__SHARD_ACK) {
        sh->registered = o->registered;
        sh->coord_incarnation = o->incarnation;
        if (!o->registered) {
            s_register(s);
            return;
        }
        log_info("registered with the coordinator at %s (round %llu)", sh->ep[0],
                 (unsigned long long)s->round);
        for (size_t i = 0; i < s->count; i++) /* votes it may have missed */
            if (s->m[i].has_push)
                srv_shard_vote(s, &s->m[i]);
        return;
    }
    if (!sh->registered || o->incarnation != sh->coord_incarnation) {
        if (sh->registered)
            log_warn("the coordinator restarted (incarnation %016llx); registering again",
                     (unsigned long long)o->incarnation);
        sh->registered = 0;
        s_register(s);
        return;
    }
    switch (o->action) {
    case PSOD__SHARD_ACTION__SHARD_BEAT:
        /* Free for a newcomer: what the coordinator retired, and a gone
         * particle whose slot the coordinator has handed over already. */
        for (size_t i = 0; i < s->count; i++) {
            struct member *mb = &s->m[i];
            int held = 0, retired = 0;
            for (size_t g = 0; g < o->n_member && !held; g++)
                held = o->member[g] && strcmp(o->member[g], mb->name) == 0;
            for (size_t g = 0; g < o->n_retired && !retired; g++)
                retired = o->retired[g] && strcmp(o->retired[g], mb->name) == 0;
            if (!mb->active && (retired || (!held && o->n_member > 0)))
                mb->retired = 1;
        }
        break;
    case PSOD__SHARD_ACTION__SHARD_COMMIT:
        if (o->round != s->round) {
            log_warn("coordinator's commit is for round %llu; this shard is in round %llu: "
                     "ignored",
                     (unsigned long long)o->round, (unsigned long long)s->round);
            break;
        }
        s_apply_commit(s, o);
        break;
    case PSOD__SHARD_ACTION__SHARD_CHECKPOINT:
        if (o->round == s->round) {
            server_checkpoint(s);
            s_report(s, PSOD__SHARD_REPORT_KIND__REPORT_BEAT, NULL, NULL, 0,
                     0); /* its generations */
        } else
            log_warn("checkpoint ordered for round %llu; this shard is in round %llu",
                     (unsigned long long)o->round, (unsigned long long)s->round);
        break;
    case PSOD__SHARD_ACTION__SHARD_ROLLBACK:
        sh->restart = 1;
        sh->restart_round = o->none ? -2 : (long)o->round;
        s->done = 1;
        break;
    case PSOD__SHARD_ACTION__SHARD_MODEL: s_send_model(s); break;
    case PSOD__SHARD_ACTION__SHARD_STOP:
        /* The workers said bye to the coordinator; their byes here may
         * still be on the way: wait for them (3 s at most), so that the
         * daemon does not close its socket under a message arriving. */
        log_info("the coordinator ends the run");
        sh->stop_at = time_now_s() + 3;
        break;
    default: log_warn("coordinator sent shard action %d; ignored", (int)o->action);
    }
}

int srv_shard_poll_item(struct server *s, zmq_pollitem_t *item)
{
    if (!s->sh.link)
        return 0;
    *item = (zmq_pollitem_t){s->sh.link, 0, ZMQ_POLLIN, 0};
    return 1;
}

void srv_shard_process_link(struct server *s)
{
    for (int k = 0; k < 256 && s->sh.link && !s->done; k++) {
        struct wire_msg in;
        struct wire_error werr;
        int r = wire_recv(s->sh.link, 0, ZMQ_DONTWAIT, &s->lim, &in, &werr);
        if (r < 0)
            break;
        if (r > 0)
            log_ratelimited(LOG_WARN, "shard-link", "bad message from the coordinator: %s",
                            werr.message);
        else if (in.command == PSOD__COMMAND__CMD_SHARD_ORDER)
            s_handle_order(s, (const Psod__ShardOrder *)in.meta);
        else if (in.command == PSOD__COMMAND__CMD_ERROR)
            log_ratelimited(LOG_WARN, "shard-link", "the coordinator refused a shard message: %s",
                            ((Psod__Error *)in.meta)->message);
        wire_msg_clear(&in);
    }
}

void server_handle_link_frames(struct server *s, zmq_msg_t *frames, int nframes)
{
    if (!srv_follower(s) || nframes > WIRE_MAX_FRAMES)
        return;
    struct wire_msg in;
    struct wire_error werr;
    memset(&in, 0, sizeof in);
    if (wire_decode(frames, nframes, 0, &s->lim, &in, &werr) != 0)
        return;
    if (in.command == PSOD__COMMAND__CMD_SHARD_ORDER)
        s_handle_order(s, (const Psod__ShardOrder *)in.meta);
    wire_msg_clear(&in);
}

void srv_shard_follower_timers(struct server *s, double now)
{
    struct shard_state *sh = &s->sh;
    if (sh->stop_at > 0 && (srv_active(s) == 0 || now >= sh->stop_at)) {
        s->done = 1;
        return;
    }
    double beat = (double)s->cfg.heartbeat_ms / 1000.0, limit = srv_silent_limit(s);
    if (sh->registered && now - sh->link_heard > limit) {
        log_warn("coordinator at %s silent for %.1f s: rounds wait for it", sh->ep[0],
                 now - sh->link_heard);
        sh->registered = 0;
    }
    if (now - sh->link_sent >= (sh->registered ? beat : 0.5)) {
        if (sh->registered)
            s_report(s, PSOD__SHARD_REPORT_KIND__REPORT_BEAT, NULL, NULL, 0, 0);
        else
            s_register(s);
    }
}
