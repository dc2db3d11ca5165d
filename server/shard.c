/* Sharded swarms: S daemons, each owning a contiguous range of the flat
 * parameter vector (PROTOCOL.md, "Shards").
 *
 * Shard 0, the coordinator, decides what is global: membership, rounds,
 * losses, evictions, deadlines, quorum, checkpoints. Every other shard
 * (a follower) keeps its own member table from the workers' range hellos,
 * holds their range pushes, tells the coordinator which it holds (a vote),
 * and applies a round only when the coordinator's commit names the
 * particles in it, with the losses to use. A round is committed only once
 * every shard holds every push in it, so it happens on every shard or on
 * none; the element-wise update and the counter-based random factors then
 * give every shard the numbers one daemon would have computed.
 *
 * A follower talks to the coordinator on a connection of its own (a DEALER
 * to the first --shards endpoint): orders come only on it. A follower
 * (re)starting registers with the round it is in and the generations it
 * holds; unless every daemon is where the others are, the coordinator
 * rolls the swarm back to the newest generation all hold (each daemon
 * restarts from it in place) and workers rejoin. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/modelfile.h"
#include "common/timeutil.h"

void srv_shard_range(uint64_t total, int count, int k, uint64_t *offset, uint64_t *len)
{
    unsigned __int128 a = (unsigned __int128)total * (unsigned)k / (unsigned)count,
                      b = (unsigned __int128)total * (unsigned)(k + 1) / (unsigned)count;
    *offset = (uint64_t)a;
    *len = (uint64_t)(b - a);
}

/* The link's CURVE: the daemon's own pair, and its own public key as the
 * server's (one key set for every daemon). */
static int s_link_curve(struct server *s, char *err, size_t errlen)
{
    if (!s->cfg.curve_secret[0])
        return 0;
    struct keypair kp;
    if (keys_read(s->cfg.curve_secret, 1, &kp, err, errlen) != 0)
        return -1;
    int rc = zmq_setsockopt(s->sh.link, ZMQ_CURVE_SERVERKEY, kp.public_key, 40) |
             zmq_setsockopt(s->sh.link, ZMQ_CURVE_PUBLICKEY, kp.public_key, 40) |
             zmq_setsockopt(s->sh.link, ZMQ_CURVE_SECRETKEY, kp.secret_key, 40);
    memset(&kp, 0, sizeof kp);
    if (rc) {
        snprintf(err, errlen, "cannot set CURVE keys on the coordinator link: %s",
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int srv_shard_init(struct server *s, char *err, size_t errlen)
{
    struct shard_state *sh = &s->sh;
    if (!s->cfg.shards[0])
        return 0;
    char list[CONF_STRLEN];
    snprintf(list, sizeof list, "%s", s->cfg.shards);
    int count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    if (count > SHARD_MAX) {
        snprintf(err, errlen, "--shards names %d daemons; at most %d", count, SHARD_MAX);
        return -1;
    }
    sh->ep = calloc((size_t)count, sizeof *sh->ep);
    if (!sh->ep) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *save = NULL;
    int k = 0;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        snprintf(sh->ep[k++], CONF_STRLEN, "%s", t);
    }
    if (k != count || k < 1) {
        snprintf(err, errlen, "--shards '%s': empty entries", s->cfg.shards);
        return -1;
    }
    if (s->cfg.shard_index >= count) {
        snprintf(err, errlen, "--shard-index %ld, but --shards names %d daemons (0 to %d)",
                 s->cfg.shard_index, count, count - 1);
        return -1;
    }
    sh->count = count;
    sh->index = (int)s->cfg.shard_index;
    sh->fresh = 1;
    sh->restart_round = -1;
    for (int j = 1; j < count; j++)
        sh->all_votes |= 1ull << j;
    if (count == 1)
        return 0;
    if (s->cfg.model_out[0] && sh->index > 0)
        log_warn("--model-out on shard %d is ignored: the coordinator writes the whole model",
                 sh->index);
    if (sh->index > 0 && s->ctx) {
        sh->link = zmq_socket(s->ctx, ZMQ_DEALER);
        int linger = 0, ivl = 100, ivl_max = 2000;
        int64_t maxmsg = (int64_t)(s->lim.max_payload + s->lim.max_meta + 64);
        if (!sh->link) {
            snprintf(err, errlen, "cannot create the coordinator link: %s", zmq_strerror(errno));
            return -1;
        }
        zmq_setsockopt(sh->link, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sh->link, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(sh->link, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
        zmq_setsockopt(sh->link, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        if (s_link_curve(s, err, errlen) != 0)
            return -1;
        if (zmq_connect(sh->link, sh->ep[0]) != 0) {
            snprintf(err, errlen, "cannot connect to the coordinator at '%s': %s", sh->ep[0],
                     zmq_strerror(errno));
            return -1;
        }
    }
    log_info("shard %d of %d (%s); %s %s", sh->index, count, sh->ep[sh->index],
             sh->index ? "coordinator at" : "coordinating", sh->index ? sh->ep[0] : "the swarm");
    return 0;
}

void srv_shard_destroy(struct server *s)
{
    struct shard_state *sh = &s->sh;
    if (sh->link) {
        int linger = 1000; /* a final report or model range gets out */
        zmq_setsockopt(sh->link, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(sh->link);
    }
    for (int k = 0; k < SHARD_MAX; k++)
        free(sh->peer[k].gen);
    free(sh->model);
    free(sh->ep);
    memset(sh, 0, sizeof *sh);
}

int srv_shard_check_hello(struct server *s, struct wire_msg *in, const Psod__Hello *h)
{
    struct shard_state *sh = &s->sh;
    if (sh->count <= 1) {
        if (h->shard_total == 0 && h->shard_offset == 0)
            return 0;
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0,
                   "this daemon is not sharded: a hello carries the whole vector");
        return -1;
    }
    if (h->shard_total == 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0,
                   "psod runs shard %d of %d: a hello carries this shard's range (a client "
                   "that reads the shards from the status reply)", sh->index, sh->count);
        return -1;
    }
    uint64_t off, len;
    srv_shard_range(h->shard_total, sh->count, sh->index, &off, &len);
    if (h->shard_offset != off || h->param_count != len) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, 0,
                   "range [%llu, %llu) of %llu does not match shard %d's [%llu, %llu)",
                   (unsigned long long)h->shard_offset,
                   (unsigned long long)(h->shard_offset + h->param_count),
                   (unsigned long long)h->shard_total, sh->index, (unsigned long long)off,
                   (unsigned long long)(off + len));
        return -1;
    }
    if (sh->total && h->shard_total != sh->total) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_FINGERPRINT, 0,
                   "the swarm's vector has %llu parameters; the hello's %llu",
                   (unsigned long long)sh->total, (unsigned long long)h->shard_total);
        return -1;
    }
    sh->total = h->shard_total;
    sh->offset = off;
    return 0;
}

/* Follower -> coordinator ------------------------------------------------- */

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

static void s_report(struct server *s, int kind, const char *name, zmq_msg_t *payload,
                     uint32_t crc, uint64_t seq)
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
              "the swarm rolls back together", (unsigned long long)s->round, name);
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
                  "this shard (%s mode%s); ignored", (unsigned long long)o->round, o->n_name,
                  o->n_loss, o->async_step ? "one async step" : "a round",
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
        for (size_t g = 0; g < o->n_retired; g++) {
            struct member *mb = o->retired[g] ? srv_by_name(s, o->retired[g]) : NULL;
            if (mb && !mb->active)
                mb->retired = 1;
        }
        break;
    case PSOD__SHARD_ACTION__SHARD_COMMIT:
        if (o->round != s->round) {
            log_warn("coordinator's commit is for round %llu; this shard is in round %llu: "
                     "ignored", (unsigned long long)o->round, (unsigned long long)s->round);
            break;
        }
        s_apply_commit(s, o);
        break;
    case PSOD__SHARD_ACTION__SHARD_CHECKPOINT:
        if (o->round == s->round) {
            server_checkpoint(s);
            s_report(s, PSOD__SHARD_REPORT_KIND__REPORT_BEAT, NULL, NULL, 0, 0); /* its generations */
        } else
            log_warn("checkpoint ordered for round %llu; this shard is in round %llu",
                     (unsigned long long)o->round, (unsigned long long)s->round);
        break;
    case PSOD__SHARD_ACTION__SHARD_ROLLBACK:
        sh->restart = 1;
        sh->restart_round = o->none ? -2 : (long)o->round;
        s->done = 1;
        break;
    case PSOD__SHARD_ACTION__SHARD_MODEL:
        s_send_model(s);
        break;
    case PSOD__SHARD_ACTION__SHARD_STOP:
        log_info("the coordinator ends the run");
        s->done = 1;
        break;
    default:
        log_warn("coordinator sent shard action %d; ignored", (int)o->action);
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

/* Coordinator ----------------------------------------------------------- */

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
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                   "%s", s->sh.count > 1 ? "this shard takes orders only from its coordinator "
                                           "link; shard messages go to shard 0"
                                         : "this daemon is not sharded");
        return NULL;
    }
    if (index == 0 || index >= (uint32_t)s->sh.count) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_MALFORMED, 0, "shard index %u outside 1..%d",
                   index, s->sh.count - 1);
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
    srv_shard_range(sh->total, sh->count, k, &off, &len);
    size_t bytes = in->has_payload ? zmq_msg_size(&in->payload) : 0;
    if (!in->has_payload || !sh->model_pending || r->round != sh->model_round || bytes != len * sizeof(float) ||
        crc32c(0, zmq_msg_data(&in->payload), bytes) != r->payload_crc32c) {
        log_warn("shard %d sent a model range of %zu bytes for round %llu; expected %llu bytes "
                 "for round %llu with its CRC: ignored", k, bytes,
                 (unsigned long long)r->round, (unsigned long long)(len * sizeof(float)),
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
        char **retired = calloc(s->count + 1, sizeof *retired);
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_BEAT;
        o.round = s->round;
        for (size_t i = 0; retired && i < s->count; i++)
            if (s->m[i].retired)
                retired[o.n_retired++] = s->m[i].name;
        o.retired = retired;
        s_order_to(s, k, &o);
        free(retired);
        break;
    }
    case PSOD__SHARD_REPORT_KIND__REPORT_VOTE: {
        struct member *mb = r->name ? srv_by_name(s, r->name) : NULL;
        log_debug("shard %d votes for '%s', round %llu, push %llu (here: round %llu, push %llu%s)",
                  k, r->name ? r->name : "?", (unsigned long long)r->round,
                  (unsigned long long)r->seq, (unsigned long long)s->round,
                  mb ? (unsigned long long)mb->push_seq : 0ull,
                  mb && mb->has_push ? ", held" : "");
        if (!mb || (s->cfg.mode != SERVER_ASYNC && r->round != s->round))
            break; /* a vote for a round already closed */
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
    case PSOD__SHARD_REPORT_KIND__REPORT_MODEL:
        s_take_model(s, in, k, r);
        break;
    default:
        log_warn("shard %d sent report kind %d; ignored", k, (int)r->kind);
    }
}

/* Model file ------------------------------------------------------------ */

static int s_write_model(struct server *s)
{
    struct shard_state *sh = &s->sh;
    sh->model_pending = 0;
    struct modelfile_info info = {s->layout_hash, sh->total, sh->model_round, sh->model_loss,
                                  "", "", "", {0, 0, 0}, 0};
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
    while (sh->model_have != sh->all_votes && time_now_s() < deadline) {
        zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        for (int k = 0; k < 64; k++) {
            struct wire_msg in;
            struct wire_error werr;
            int r = wire_recv(s->sock, 1, ZMQ_DONTWAIT, &s->lim, &in, &werr);
            if (r < 0)
                break;
            if (r == 0 && in.command == PSOD__COMMAND__CMD_SHARD_REPORT)
                srv_handle_shard_report(s, &in);
            wire_msg_clear(&in); /* anything else waits for no one at the end */
        }
    }
    if (sh->model_have != sh->all_votes) {
        log_error("the global model was NOT assembled: shards missing after %.0f s (have "
                  "mask %llx of %llx)", wait_s, (unsigned long long)sh->model_have,
                  (unsigned long long)sh->all_votes);
        sh->model_pending = 0;
        return -1;
    }
    return s_write_model(s);
}

void srv_shard_timers(struct server *s, double now)
{
    struct shard_state *sh = &s->sh;
    if (sh->count <= 1)
        return;
    double beat = (double)s->cfg.heartbeat_ms / 1000.0, limit = srv_silent_limit(s);
    if (srv_follower(s)) {
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
        return;
    }
    if (sh->model_pending && sh->model_have == sh->all_votes)
        s_write_model(s);
    for (int k = 1; k < sh->count; k++) {
        struct shard_peer *p = &sh->peer[k];
        if (p->registered && now - p->last_seen > limit) {
            log_warn("shard %d (%s) silent for %.1f s: rounds wait for it to come back "
                     "(psod --resume)", k, sh->ep[k], now - p->last_seen);
            p->registered = 0;
            sh->ready = 0;
        }
    }
}

void srv_shard_status(struct server *s, Psod__Status *st, Psod__ShardStatus *rows,
                      Psod__ShardStatus **ptrs, char **eps)
{
    struct shard_state *sh = &s->sh;
    if (sh->count <= 1)
        return;
    for (int k = 0; k < sh->count; k++)
        eps[k] = sh->ep[k];
    st->n_shard_endpoint = (size_t)sh->count;
    st->shard_endpoint = eps;
    st->shard_index = (uint32_t)sh->index;
    if (sh->total)
        st->param_count = sh->total;
    if (!srv_coordinator(s))
        return;
    for (int k = 0; k < sh->count; k++) {
        Psod__ShardStatus *r = &rows[k];
        psod__shard_status__init(r);
        r->index = (uint32_t)k;
        r->endpoint = sh->ep[k];
        srv_shard_range(sh->total, sh->count, k, &r->offset, &r->length);
        r->connected = k == 0 || sh->peer[k].registered;
        r->round = k == 0 ? s->round : sh->peer[k].round;
        ptrs[k] = r;
    }
    st->n_shard = (size_t)sh->count;
    st->shard = ptrs;
}
