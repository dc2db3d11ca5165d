/* A sharded swarm's coordinator (shard.c says what a sharded swarm is):
 * the shards' registrations and votes, the commit of each round, the check
 * that every daemon is at one round (else the rollback), and the model
 * file assembled from the ranges. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/range.h"
#include "common/log.h"
#include "common/modelfile.h"
#include "common/timeutil.h"

static void s_order_to(struct server *s, int k, Psod__ShardOrder *o)
{
    struct shard_peer *p = &s->sh.peer[k];
    o->incarnation = s->incarnation;
    if (wire_send(s->sock, p->id, p->id_len, PSOD__COMMAND__CMD_SHARD_ORDER, &o->base, NULL,
                  ZMQ_DONTWAIT) != 0)
        log_ratelimited(LOG_WARN, "shard-order", "could not send an order to shard %d: %s", k,
                        zmq_strerror(errno));
}

void srv_shard_order(struct server *s, int action, uint64_t round)
{
    Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
    o.action = (Psod__ShardAction)action;
    o.round = round;
    for (int k = 1; k < s->sh.count; k++)
        if (s->sh.peer[k].registered)
            s_order_to(s, k, &o);
}

void srv_shard_commit(struct server *s, const struct member *async_mb)
{
    size_t n = 0, ng = 0, nr = 0;
    char **names = calloc(s->count + 1, sizeof *names), **gone = calloc(s->count + 1, sizeof *gone),
         **retired = calloc(s->count + 1, sizeof *retired);
    double *loss = calloc(s->count + 1, sizeof *loss);
    if (!names || !gone || !loss || !retired) {
        log_error("out of memory for a commit; the shards will not follow this round");
        free(names), free(gone), free(loss), free(retired);
        return;
    }
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        if (async_mb ? mb == async_mb : mb->has_push) {
            names[n] = mb->name;
            loss[n++] = mb->push_loss;
        }
        if (!mb->active)
            gone[ng++] = mb->name;
        if (mb->retired)
            retired[nr++] = mb->name;
    }
    Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
    o.action = PSOD__SHARD_ACTION__SHARD_COMMIT;
    o.round = s->round;
    o.n_name = n;
    o.name = names;
    o.n_loss = n;
    o.loss = loss;
    o.n_gone = ng;
    o.gone = gone;
    o.async_step = async_mb != NULL;
    o.n_retired = nr;
    o.retired = retired;
    for (int k = 1; k < s->sh.count; k++) {
        s_order_to(s, k, &o);
        s->sh.peer[k].fresh = 0;
    }
    s->sh.fresh = 0;
    free(names), free(gone), free(loss), free(retired);
}

/* The swarm agrees: what waited for it goes on. */
static void s_on_ready(struct server *s)
{
    if (s->cfg.mode != SERVER_ASYNC) {
        srv_maybe_close_round(s);
        return;
    }
    for (size_t i = 0; i < s->count && !s->done; i++)
        if (srv_complete(s, &s->m[i]))
            srv_async_step(s, &s->m[i]);
}

/* Whether every daemon can go on from where it is; else roll back to the
 * newest generation all of them hold. */
static void s_check_swarm(struct server *s)
{
    struct shard_state *sh = &s->sh;
    for (int k = 1; k < sh->count; k++)
        if (!sh->peer[k].registered) {
            sh->ready = 0;
            return;
        }
    int all_fresh = sh->fresh, same = 1, steady = 1;
    for (int k = 1; k < sh->count; k++) {
        struct shard_peer *p = &sh->peer[k];
        all_fresh &= p->fresh;
        same &= p->round == s->round;
        steady &= p->incarnation == p->steady_incarnation;
    }
    if (same && (all_fresh || steady)) {
        if (!steady)
            log_info("all %d shards are at round %llu: rounds open", sh->count,
                     (unsigned long long)s->round);
        for (int k = 1; k < sh->count; k++)
            sh->peer[k].steady_incarnation = sh->peer[k].incarnation;
        sh->ready = 1;
        s_on_ready(s);
        return;
    }
    /* The newest generation every daemon holds. */
    uint64_t mine[64];
    size_t nm = srv_generations(s, mine, 64);
    long target = -2;
    for (size_t g = 0; g < nm && target == -2; g++) {
        int all = 1;
        for (int k = 1; k < sh->count && all; k++) {
            int has = 0;
            for (size_t j = 0; j < sh->peer[k].ngen; j++)
                has |= sh->peer[k].gen[j] == mine[g];
            all &= has;
        }
        if (all)
            target = (long)mine[g];
    }
    if (target >= 0)
        log_warn("the shards are not at one round (coordinator at %llu, restarted shards "
                 "among them): the swarm rolls back to generation %ld, the newest all hold",
                 (unsigned long long)s->round, target);
    else
        log_warn("the shards are not at one round and hold no common checkpoint: the swarm "
                 "starts afresh from the workers' weights");
    Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
    o.action = PSOD__SHARD_ACTION__SHARD_ROLLBACK;
    o.round = target >= 0 ? (uint64_t)target : 0;
    o.none = target < 0;
    for (int k = 1; k < sh->count; k++) {
        struct shard_peer *p = &sh->peer[k];
        if (p->fresh && target >= 0 && p->round == (uint64_t)target)
            continue;
        s_order_to(s, k, &o);
        p->registered = 0;
    }
    sh->ready = 0;
    if (!(sh->fresh && target >= 0 && s->round == (uint64_t)target)) {
        sh->restart = 1;
        sh->restart_round = target;
        s->done = 1;
    }
}

/* The registered shard a message comes from, or NULL (logged). */
static struct shard_peer *s_peer_of(struct server *s, const struct wire_msg *in, uint32_t index)
{
    if (s->sh.count > 1 && s->cfg.curve_secret[0] && strcmp(in->user, GATE_USER_DAEMON) != 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                   "shard messages come only from a daemon holding the swarm's key pair");
        return NULL;
    }
    if (!srv_coordinator(s)) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0, "%s",
                   s->sh.count > 1 ? "this shard takes orders only from its coordinator "
                                     "link; shard messages go to shard 0"
                                   : "this daemon is not sharded");
        return NULL;
    }
    if (index == 0 || index >= (uint32_t)s->sh.count) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_MALFORMED, 0, "shard index %u outside 1..%d", index,
                   s->sh.count - 1);
        return NULL;
    }
    return &s->sh.peer[index];
}

void srv_handle_shard_hello(struct server *s, struct wire_msg *in)
{
    const Psod__ShardHello *h = (const Psod__ShardHello *)in->meta;
    struct shard_peer *p = s_peer_of(s, in, h->index);
    if (!p)
        return;
    if (h->protocol_version != PSOD_PROTOCOL_VERSION || h->count != (uint32_t)s->sh.count ||
        (h->total && s->sh.total && h->total != s->sh.total) || h->n_generation > 64) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_FINGERPRINT, 0,
                   "shard %u says protocol %u, %u shards, %llu parameters; the coordinator "
                   "runs protocol %d, %d shards, %llu parameters",
                   h->index, h->protocol_version, h->count, (unsigned long long)h->total,
                   PSOD_PROTOCOL_VERSION, s->sh.count, (unsigned long long)s->sh.total);
        return;
    }
    uint64_t *gen = malloc((h->n_generation + 1) * sizeof *gen);
    if (!gen) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory");
        return;
    }
    if (h->n_generation)
        memcpy(gen, h->generation, h->n_generation * sizeof *gen);
    free(p->gen);
    p->gen = gen;
    p->ngen = h->n_generation;
    int k = (int)(p - s->sh.peer);
    int again = p->registered && p->incarnation == h->incarnation && p->round == h->round &&
                p->id_len == in->id_len && memcmp(p->id, in->id, in->id_len) == 0;
    if (p->incarnation && p->incarnation != h->incarnation)
        log_warn("shard %d restarted (round %llu, %zu checkpoints)", k,
                 (unsigned long long)h->round, p->ngen);
    p->incarnation = h->incarnation;
    p->round = h->round;
    p->fresh = h->fresh;
    memcpy(p->id, in->id, in->id_len);
    p->id_len = in->id_len;
    p->registered = 1;
    p->last_seen = time_now_s();
    Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
    o.action = PSOD__SHARD_ACTION__SHARD_ACK;
    o.registered = 1;
    o.round = s->round;
    s_order_to(s, k, &o);
    if (again) /* a registration repeated while the first was on its way */
        return;
    log_info("shard %d registered from %s's connection: round %llu%s", k, s->sh.ep[k],
             (unsigned long long)h->round, h->fresh ? ", fresh" : "");
    /* A shard back on a new connection, same process and round, lost
     * nothing; anything else is checked against the swarm. */
    s->sh.ready = 0;
    s_check_swarm(s);
}

static void s_take_model(struct server *s, struct wire_msg *in, int k, const Psod__ShardReport *r)
{
    struct shard_state *sh = &s->sh;
    uint64_t off, len;
    range_of(sh->total, sh->count, k, &off, &len);
    size_t bytes = in->has_payload ? zmq_msg_size(&in->payload) : 0;
    if (!in->has_payload || !sh->model_pending || r->round != sh->model_round ||
        bytes != len * sizeof(float) ||
        crc32c(0, zmq_msg_data(&in->payload), bytes) != r->payload_crc32c) {
        log_warn("shard %d sent a model range of %zu bytes for round %llu; expected %llu bytes "
                 "for round %llu with its CRC: ignored",
                 k, bytes, (unsigned long long)r->round, (unsigned long long)(len * sizeof(float)),
                 (unsigned long long)sh->model_round);
        return;
    }
    memcpy(sh->model + off, zmq_msg_data(&in->payload), bytes);
    sh->model_have |= 1ull << k;
}

void srv_handle_shard_report(struct server *s, struct wire_msg *in)
{
    const Psod__ShardReport *r = (const Psod__ShardReport *)in->meta;
    struct shard_peer *p = s_peer_of(s, in, r->index);
    if (!p)
        return;
    int k = (int)(p - s->sh.peer);
    if (!p->registered || p->incarnation != r->incarnation || p->id_len != in->id_len ||
        memcmp(p->id, in->id, in->id_len) != 0) {
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_ACK; /* register first */
        o.incarnation = s->incarnation;
        wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL,
                  ZMQ_DONTWAIT);
        return;
    }
    p->last_seen = time_now_s();
    p->round = r->round;
    switch (r->kind) {
    case PSOD__SHARD_REPORT_KIND__REPORT_BEAT: {
        uint64_t *gen = r->n_generation <= 64 ? malloc((r->n_generation + 1) * sizeof *gen) : NULL;
        if (gen) {
            if (r->n_generation)
                memcpy(gen, r->generation, r->n_generation * sizeof *gen);
            free(p->gen);
            p->gen = gen;
            p->ngen = r->n_generation;
        }
        /* With the particles retired so far: a newcomer may take one over
         * before the next commit. */
        char **retired = calloc(s->count + 1, sizeof *retired),
             **member = calloc(s->count + 1, sizeof *member);
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_BEAT;
        o.round = s->round;
        for (size_t i = 0; retired && member && i < s->count; i++) {
            if (s->m[i].retired)
                retired[o.n_retired++] = s->m[i].name;
            member[o.n_member++] = s->m[i].name;
        }
        o.retired = retired;
        o.member = member;
        s_order_to(s, k, &o);
        free(retired);
        free(member);
        break;
    }
    case PSOD__SHARD_REPORT_KIND__REPORT_VOTE: {
        struct member *mb = r->name ? srv_by_name(s, r->name) : NULL;
        log_debug("shard %d votes for '%s', round %llu, push %llu (here: round %llu, push %llu%s)",
                  k, r->name ? r->name : "?", (unsigned long long)r->round,
                  (unsigned long long)r->seq, (unsigned long long)s->round,
                  mb ? (unsigned long long)mb->push_seq : 0ull, mb && mb->has_push ? ", held" : "");
        if (!mb || (s->cfg.mode != SERVER_ASYNC && r->round != s->round))
            break;                    /* a vote for a round already closed */
        if (r->seq != mb->vote_seq) { /* the votes for another push of this worker */
            mb->vote_seq = r->seq;
            mb->votes = 0;
        }
        mb->votes |= 1ull << k;
        if (srv_complete(s, mb) && s->sh.ready) {
            if (s->cfg.mode == SERVER_ASYNC)
                srv_async_step(s, mb);
            else
                srv_maybe_close_round(s);
        }
        break;
    }
    case PSOD__SHARD_REPORT_KIND__REPORT_MODEL: s_take_model(s, in, k, r); break;
    default: log_warn("shard %d sent report kind %d; ignored", k, (int)r->kind);
    }
}

/* Model file ------------------------------------------------------------ */

static int s_write_model(struct server *s)
{
    struct shard_state *sh = &s->sh;
    sh->model_pending = 0;
    struct modelfile_info info = {
        s->layout_hash, sh->total, sh->model_round, sh->model_loss, "", "", "", {0, 0, 0}, 0};
    snprintf(info.strategy, sizeof info.strategy, "%s", s->ops->name);
    snprintf(info.model, sizeof info.model, "%.31s", s->model_name);
    snprintf(info.dataset, sizeof info.dataset, "%.15s", s->dataset);
    memcpy(info.input_shape, s->input_shape, sizeof info.input_shape);
    char err[512];
    if (modelfile_write(s->cfg.model_out, &info, sh->model, err, sizeof err) != 0) {
        log_error("could not save the global model: %s", err);
        return -1;
    }
    log_debug("global model of round %llu assembled from %d shards into %s",
              (unsigned long long)sh->model_round, sh->count, s->cfg.model_out);
    return 1;
}

int srv_shard_save_model(struct server *s, double wait_s)
{
    struct shard_state *sh = &s->sh;
    if (!s->cfg.model_out[0] || !s->st || !s->ops->global(s->st) || !sh->total)
        return 0;
    if (!sh->model && !(sh->model = malloc(sh->total * sizeof(float)))) {
        log_error("out of memory for the global model");
        return -1;
    }
    sh->model_round = s->round;
    sh->model_loss = s->ops->global_loss(s->st);
    memcpy(sh->model, s->ops->global(s->st), s->n * sizeof(float)); /* ours: offset 0 */
    sh->model_have = 0;
    sh->model_pending = 1;
    srv_shard_order(s, PSOD__SHARD_ACTION__SHARD_MODEL, s->round);
    if (wait_s <= 0)
        return 0; /* the ranges come in with the reports; see srv_shard_timers */
    double deadline = time_now_s() + wait_s;
    while (sh->model_have != sh->all_votes && !sh->restart && time_now_s() < deadline) {
        /* The gate too: a shard reconnecting now (this coordinator just
         * restarted) gets through its handshake only when the gate answers
         * (ZAP), as in the loop. */
        zmq_pollitem_t it[4] = {{s->sock, 0, ZMQ_POLLIN, 0}};
        int nit = 1 + gate_poll_items(s->gate, it + 1);
        int pr = zmq_poll(it, nit, 100);
        gate_process(s->gate);
        if (pr <= 0 || !(it[0].revents & ZMQ_POLLIN))
            continue;
        for (int k = 0; k < 64; k++) {
            struct wire_msg in;
            struct wire_error werr;
            int r = wire_recv(s->sock, 1, ZMQ_DONTWAIT, &s->lim, &in, &werr);
            if (r < 0)
                break;
            if (r == 0 && in.command == PSOD__COMMAND__CMD_SHARD_REPORT)
                srv_handle_shard_report(s, &in);
            /* A shard that (re)registers now, after a restart of this
             * coordinator or of itself, missed the order: it gets it again
             * (a range given twice counts once). */
            if (r == 0 && in.command == PSOD__COMMAND__CMD_SHARD_HELLO) {
                srv_handle_shard_hello(s, &in);
                srv_shard_order(s, PSOD__SHARD_ACTION__SHARD_MODEL, s->round);
            }
            wire_msg_clear(&in); /* anything else waits for no one at the end */
        }
    }
    if (sh->restart) {
        /* A shard came back without this coordinator's newest generation:
         * the swarm rolls back, this daemon too, and the model of the
         * generation all hold is the one to write (server_run, psod.c). */
        sh->model_pending = 0;
        return 0;
    }
    if (sh->model_have != sh->all_votes) {
        log_error("the global model was NOT assembled: shards missing after %.0f s (have "
                  "mask %llx of %llx)",
                  wait_s, (unsigned long long)sh->model_have, (unsigned long long)sh->all_votes);
        sh->model_pending = 0;
        return -1;
    }
    return s_write_model(s);
}

void srv_shard_coord_timers(struct server *s, double now)
{
    struct shard_state *sh = &s->sh;
    double limit = srv_silent_limit(s);
    if (sh->model_pending && sh->model_have == sh->all_votes)
        s_write_model(s);
    for (int k = 1; k < sh->count; k++) {
        struct shard_peer *p = &sh->peer[k];
        if (p->registered && now - p->last_seen > limit) {
            log_warn("shard %d (%s) silent for %.1f s: rounds wait for it to come back "
                     "(psod --resume)",
                     k, sh->ep[k], now - p->last_seen);
            p->registered = 0;
            sh->ready = 0;
        }
    }
}
