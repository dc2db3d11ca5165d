/* The member table and the low helpers every handler uses: lookups by
 * connection and by name (a worker's other connections prove themselves by
 * the session its Welcome carried), counts (active, pushed, whom a round
 * waits for), room for one more, and sending to a member. Nothing here
 * handles a message or closes a round. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"

double srv_silent_limit(const struct server *s)
{
    return (double)s->cfg.heartbeat_ms * (double)s->cfg.liveness / 1000.0;
}

struct member *srv_by_id(struct server *s, const struct wire_msg *in)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->m[i].id_len == in->id_len && memcmp(s->m[i].id, in->id, in->id_len) == 0)
            return &s->m[i];
    return NULL;
}

struct member *srv_by_name(struct server *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->m[i].name, name) == 0)
            return &s->m[i];
    return NULL;
}

size_t srv_active(const struct server *s)
{
    size_t a = 0;
    for (size_t i = 0; i < s->count; i++)
        a += s->m[i].active;
    return a;
}

size_t srv_pushed(const struct server *s)
{
    size_t p = 0;
    for (size_t i = 0; i < s->count; i++)
        p += s->m[i].has_push;
    return p;
}

/* Send `pos` (shared, not moved) to member `mb` with the given metadata. */
void srv_send_payload(struct server *s, struct member *mb, int command,
                      const ProtobufCMessage *meta)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, &mb->position);
    srv_send_msg(s, mb, command, meta, &copy);
}

/* Send `payload` (moved) to member `mb` with the given metadata. */
void srv_send_msg(struct server *s, struct member *mb, int command, const ProtobufCMessage *meta,
                  zmq_msg_t *payload)
{
    size_t bytes = zmq_msg_size(payload);
    if (wire_send(s->sock, mb->id, mb->id_len, command, meta, payload, ZMQ_DONTWAIT) != 0)
        log_warn("could not send %s to worker '%s': %s", wire_command_name(command), mb->name,
                 zmq_strerror(errno));
    else {
        s->bytes_out += bytes;
        s->obs.bytes_out_cmd[command > 0 && command < SRV_COMMANDS ? command : 0] += bytes;
    }
    zmq_msg_close(payload);
}

/* Room for one more member in every per-member array. */
int srv_reserve(struct server *s)
{
    if (s->count < s->cap)
        return 0;
    size_t cap = s->cap ? 2 * s->cap : 8;
    struct member *m = realloc(s->m, cap * sizeof *m);
    if (!m)
        return -1;
    s->m = m;
    float **xs = realloc(s->round_x, cap * sizeof *xs);
    if (!xs)
        return -1;
    s->round_x = xs;
    const float **prevs = realloc(s->round_prev, cap * sizeof *prevs);
    if (!prevs)
        return -1;
    s->round_prev = prevs;
    double *losses = realloc(s->round_loss, cap * sizeof *losses);
    if (!losses)
        return -1;
    s->round_loss = losses;
    double *pbl = realloc(s->round_pbest_loss, cap * sizeof *pbl);
    if (!pbl)
        return -1;
    s->round_pbest_loss = pbl;
    s->cap = cap;
    return 0;
}

/* Whether the hello (or heartbeat) carries mb's session. */
int srv_same_session(const struct member *mb, ProtobufCBinaryData sess)
{
    static const unsigned char none[PSOD_SESSION_LEN];
    if (sess.len != PSOD_SESSION_LEN || memcmp(mb->session, none, sizeof none) == 0)
        return 0;
    unsigned char diff = 0; /* constant time */
    for (size_t i = 0; i < PSOD_SESSION_LEN; i++)
        diff |= mb->session[i] ^ sess.data[i];
    return diff == 0;
}

struct member *srv_member_of(struct server *s, const struct wire_msg *in, const char *name,
                             ProtobufCBinaryData session)
{
    struct member *mb = srv_by_id(s, in);
    if (!mb && name) {
        /* A particle restored from a checkpoint and not yet claimed (pid 0)
         * has no session here: its worker still shows the one the previous
         * daemon gave it, so its name stands, as under protocol 1, until
         * its hello (a daemon restart must not evict a worker busy with
         * local steps). */
        mb = srv_by_name(s, name);
        if (mb && mb->pid != 0 && !srv_same_session(mb, session))
            mb = NULL;
    }
    return mb;
}

/* Names of the live workers the round still waits for, for log lines. */
void srv_waiting_for(const struct server *s, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->count && k + 1 < len; i++)
        if (s->m[i].active && !s->m[i].has_push)
            k += (size_t)snprintf(out + k, len - k, "%s'%s'", k ? ", " : "", s->m[i].name);
    if (k >= len)
        snprintf(out + len - 5, 5, "...");
}

/* A push that will not be in the round: dropped, and its worker told (it
 * rejoins, as after any round that closed without it). */
void srv_release_push(struct server *s, struct member *mb)
{
    if (!mb->has_push)
        return;
    if (s->st && s->ops->withdraw) /* the round's running sum may hold its buffer */
        s->ops->withdraw(s->st, (int)(mb - s->m));
    if (srv_position_spared(s, mb)) {
        /* Its position went at the push: the pushed weights stand in. */
        zmq_msg_close(&mb->position);
        zmq_msg_init(&mb->position);
        zmq_msg_move(&mb->position, &mb->push);
        mb->pos_crc_ok = 0;
    }
    zmq_msg_close(&mb->push);
    mb->has_push = 0;
    mb->votes = 0;
}

void srv_spare_position(struct server *s, struct member *mb)
{
    if (!mb->has_push || s->cfg.mode == SERVER_ASYNC || srv_compressed(mb) || !s->ops->reads_prev ||
        !s->st || s->ops->reads_prev(s->st))
        return;
    zmq_msg_close(&mb->position);
    zmq_msg_init(&mb->position);
    mb->pos_crc_ok = 0;
}

int srv_position_spared(const struct server *s, const struct member *mb)
{
    return mb->has_push && zmq_msg_size((zmq_msg_t *)&mb->position) != s->n * sizeof(float);
}

const zmq_msg_t *srv_position_of(const struct server *s, const struct member *mb)
{
    return srv_position_spared(s, mb) ? &mb->push : &mb->position;
}
