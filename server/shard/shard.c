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
 * restarts from it in place) and workers rejoin.
 *
 * This file: the ranges, set-up, hello checks, status; shard_follower.c
 * the follower's side, shard_coord.c the coordinator's. */
#include "server/server_int.h"

#include "common/range.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/timeutil.h"

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
                   "that reads the shards from the status reply)",
                   sh->index, sh->count);
        return -1;
    }
    uint64_t off, len;
    range_of(h->shard_total, sh->count, sh->index, &off, &len);
    if (h->shard_offset != off || h->param_count != len) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, 0,
                   "range [%llu, %llu) of %llu does not match shard %d's [%llu, %llu)",
                   (unsigned long long)h->shard_offset,
                   (unsigned long long)(h->shard_offset + h->param_count),
                   (unsigned long long)h->shard_total, sh->index, (unsigned long long)off,
                   (unsigned long long)(off + len));
        return -1;
    }
    if (s->st && h->shard_total != sh->total) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_FINGERPRINT, 0,
                   "the swarm's vector has %llu parameters; the hello's %llu",
                   (unsigned long long)sh->total, (unsigned long long)h->shard_total);
        return -1;
    }
    return 0;
}

void srv_shard_adopt(struct server *s, const Psod__Hello *h)
{
    uint64_t len;
    if (s->sh.count <= 1)
        return;
    s->sh.total = h->shard_total;
    range_of(h->shard_total, s->sh.count, s->sh.index, &s->sh.offset, &len);
}

void srv_shard_timers(struct server *s, double now)
{
    if (s->sh.count <= 1)
        return;
    if (srv_follower(s))
        srv_shard_follower_timers(s, now);
    else
        srv_shard_coord_timers(s, now);
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
        range_of(sh->total, sh->count, k, &r->offset, &r->length);
        r->connected = k == 0 || sh->peer[k].registered;
        r->round = k == 0 ? s->round : sh->peer[k].round;
        ptrs[k] = r;
    }
    st->n_shard = (size_t)sh->count;
    st->shard = ptrs;
}
