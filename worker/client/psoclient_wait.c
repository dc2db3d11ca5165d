/* Waiting for a reply: request matching (seq), heartbeats while a round
 * is open, a lost or restarted daemon, and handshake failures read from
 * the socket monitor. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/timeutil.h"

/* What the monitor saw: a failed handshake (PSOC_EREFUSED with the reason),
 * a connection closed while waiting for a welcome (PSOC_ETIMEOUT), one
 * closed while waiting for a position (S_DROPPED, err filled), or 0. */
#define S_DROPPED 1
/* How long a dropped connection's last messages are looked for. */
#define S_DRAIN_MS 200
static int s_monitor_event(struct psoc_link *l, int want, char *err, size_t errlen)
{
    int rc = 0;
    while (l->mon && rc == 0) {
        uint16_t event;
        uint32_t value;
        if (wire_monitor_event(l->mon, &event, &value) != 0)
            break;
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            l->handshaken = 1;
            l->failed_handshakes = 0;
            l->refused[0] = '\0';
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            /* After a handshake: the daemon dropped us. Before one: the
             * handshake failed, usually without a word (a CURVE mismatch). */
            if (l->handshaken && want == PSOD__COMMAND__CMD_WELCOME)
                rc = psoc__err(err, errlen, PSOC_ETIMEOUT,
                               "psod at %s closed the connection before its welcome: a hello of "
                               "%zu parameters may be above its --max-payload-mb, or it restarted",
                               l->endpoint, l->n);
            else if (l->handshaken && want == PSOD__COMMAND__CMD_POSITION) {
                /* The next connection has another routing id: a reply to
                 * this one can never arrive, unless it already has (psod
                 * answered, then went away): the caller drains first. */
                psoc__err(err, errlen, PSOC_ETIMEOUT,
                          "the connection to psod at %s dropped while the round was open: "
                          "the push is lost",
                          l->endpoint);
                rc = S_DROPPED;
            } else if (!l->handshaken && ++l->failed_handshakes >= 5)
                rc = psoc__err(err, errlen, PSOC_EREFUSED,
                               "handshake with psod at %s failed %d times: %s", l->endpoint,
                               l->failed_handshakes,
                               l->api->opts.curve_server[0]
                                   ? "the daemon does not use CURVE, or --curve-server is not its "
                                     "public key"
                                   : "the daemon requires CURVE (give --curve-secret and "
                                     "--curve-server)");
            l->handshaken = 0;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == 500)
            rc = psoc__err(err, errlen, PSOC_EREFUSED,
                           "psod at %s refused the connection: too many peers (its --max-peers)",
                           l->endpoint);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            rc = psoc__err(err, errlen, PSOC_EREFUSED,
                           "psod at %s refused this peer's key (status %u): its public key is not "
                           "in the daemon's --allow directory",
                           l->endpoint, value);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            rc = psoc__err(err, errlen, PSOC_EREFUSED,
                           "handshake with psod at %s failed (protocol error 0x%x)%s", l->endpoint,
                           value,
                           value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                               ? l->api->opts.curve_server[0]
                                     ? ": the daemon does not use CURVE, this peer does"
                                     : ": the daemon requires CURVE (give --curve-secret and "
                                       "--curve-server)"
                               : "");
        if (rc == PSOC_EREFUSED) {
            l->last_server_error = l->api->last_server_error = PSOD__ERROR_CODE__ERR_UNAUTHORIZED;
            snprintf(l->refused, sizeof l->refused, "%s", err);
        }
    }
    return rc;
}

/* While a push waits for its round: tell the caller's log when the swarm
 * is not full (psod --workers N with fewer joined), at once and then every
 * 30 s, so a worker short of company does not sit silent. */
#define S_WAITING_EVERY_MS 30000
static void s_say_waiting(struct psoc_link *l, const Psod__Heartbeat *hb)
{
    if (hb->workers_expected == 0 || hb->joined >= hb->workers_expected)
        return;
    int64_t now = time_now_ms();
    if (l->said_waiting_at && now - l->said_waiting_at < S_WAITING_EVERY_MS)
        return;
    l->said_waiting_at = now;
    uint32_t more = hb->workers_expected - hb->joined;
    psoc__say(l->api, 1,
              "psod at %s waits for %u more worker%s of %u to join before round %llu can "
              "close (%u joined, %u pushed); start %s with this --connect",
              l->endpoint, more, more == 1 ? "" : "s", hb->workers_expected,
              (unsigned long long)hb->round, hb->joined, hb->pushed, more == 1 ? "it" : "them");
}

/* Hand a request to the socket within timeout_ms. A DEALER with no
 * connection ready blocks a plain send for ever (a daemon that refuses the
 * handshake, or one between reconnects), so the send does not wait: while
 * nothing can take the message, the monitor is read for a refused
 * handshake, and the caller learns of a daemon that never takes it.
 * `want` is the reply the request is for. On failure the payload is still
 * the caller's. */
int psoc__send(struct psoc_link *l, int command, const ProtobufCMessage *meta, zmq_msg_t *payload,
               int want, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + timeout_ms;
    /* While a sync is in flight its position is the next reply on every
     * link: another request would take it (the heartbeat thread has a
     * socket of its own). psoc_sync_end first. */
    if (l->api->inflight && command != PSOD__COMMAND__CMD_PUSH)
        return psoc__err(err, errlen, PSOC_ESTATE,
                         "a sync is in flight (psoc_sync_begin): end it before %s",
                         wire_command_name(command));
    for (;;) {
        if (wire_send(l->sock, NULL, 0, command, meta, payload, ZMQ_DONTWAIT) == 0)
            return PSOC_OK;
        if (errno != EAGAIN && errno != EINTR)
            return psoc__err(err, errlen, PSOC_ESYS, "send %s: %s", wire_command_name(command),
                             zmq_strerror(errno));
        int64_t left = deadline - time_now_ms();
        if (left <= 0 && l->refused[0])
            return psoc__err(err, errlen, PSOC_EREFUSED, "%s", l->refused);
        if (left <= 0)
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "no connection to psod at %s took the %s within %d ms (is psod "
                             "running there?)",
                             l->endpoint, wire_command_name(command), timeout_ms);
        if (l->api->opts.stop && *l->api->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while sending %s",
                             wire_command_name(command));
        zmq_pollitem_t items[2] = {{l->sock, 0, ZMQ_POLLOUT, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, l->mon ? 2 : 1, left > 100 ? 100 : (long)left);
        if (rc < 0 && errno != EINTR)
            return psoc__err(err, errlen, PSOC_ESYS, "zmq_poll: %s", zmq_strerror(errno));
        /* A dropped connection before the request went is no lost
         * request: the next connection takes it. */
        if (l->mon && (items[1].revents & ZMQ_POLLIN) &&
            (rc = s_monitor_event(l, want, err, errlen)) && rc != S_DROPPED)
            return rc;
    }
}

/* Wait for the reply to request `seq` with command `want`. Returns 0 with
 * `m` filled, or a PSOC_E* code. */
int psoc__await(struct psoc_link *l, int want, uint64_t seq, int timeout_ms, struct wire_msg *m,
                char *err, size_t errlen)
{
    struct wire_limits lim = {0, l->api->opts.max_payload};
    int64_t deadline = time_now_ms() + timeout_ms;
    /* While a round is open (POSITION), beat at the daemon's interval: a
     * daemon that stops answering for PSOC_LIVENESS intervals is lost, and
     * one that answers with another incarnation has restarted; either way
     * the push is gone and the caller resyncs. */
    const int beats = want == PSOD__COMMAND__CMD_POSITION && l->heartbeat_ms > 0;
    int64_t last_heard = time_now_ms(), dropped_at = 0;
    /* The first beat at once: its answer says whom the round waits for. */
    int64_t last_beat = last_heard - (beats ? (int64_t)l->heartbeat_ms : 0);
    for (;;) {
        int64_t now = time_now_ms(), left = deadline - now;
        if (dropped_at && now - dropped_at > S_DRAIN_MS) {
            psoc__reset(l);
            return PSOC_ETIMEOUT; /* err says the connection dropped */
        }
        if (l->api->opts.stop && *l->api->opts.stop) {
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while waiting for %s",
                             wire_command_name(want));
        }
        /* What either socket heard last (the heartbeat thread's too):
         * heartbeats work both ways. */
        int64_t heard = atomic_load(&l->heard_ms);
        uint64_t inc = atomic_load(&l->heard_incarnation);
        if (heard > last_heard)
            last_heard = heard;
        if (beats && inc != 0 && l->incarnation != 0 && inc != l->incarnation) {
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "psod at %s restarted while the round was open: the push is lost",
                             l->endpoint);
        }
        if (left <= 0) {
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "no %s from %s within %d ms (is psod running there?)",
                             wire_command_name(want), l->endpoint, timeout_ms);
        }
        if (beats && now - last_heard > (int64_t)l->heartbeat_ms * PSOC_LIVENESS) {
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ETIMEOUT,
                             "psod at %s silent for %lld ms (%d heartbeat intervals): lost",
                             l->endpoint, (long long)(now - last_heard), PSOC_LIVENESS);
        }
        if (beats && now - last_beat >= (int64_t)l->heartbeat_ms) {
            Psod__Heartbeat hb;
            uint64_t session[2];
            psoc__heartbeat(l, ++l->seq, &hb, session);
            wire_send(l->sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL, ZMQ_DONTWAIT);
            last_beat = now;
        }
        long wait = left > 1000 ? 1000 : (long)left;
        if (beats && wait > (long)l->heartbeat_ms)
            wait = (long)l->heartbeat_ms;
        if (dropped_at && wait > S_DRAIN_MS / 4)
            wait = S_DRAIN_MS / 4;
        zmq_pollitem_t items[2] = {{l->sock, 0, ZMQ_POLLIN, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, l->mon ? 2 : 1, wait);
        if (rc < 0 && errno != EINTR) {
            int e = errno;
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ESYS, "zmq_poll: %s", zmq_strerror(e));
        }
        if (l->mon && (items[1].revents & ZMQ_POLLIN) &&
            (rc = s_monitor_event(l, want, err, errlen))) {
            if (rc == S_DROPPED) {
                /* A reply psod sent before it went is still readable. */
                if (!dropped_at)
                    dropped_at = time_now_ms();
            } else {
                psoc__reset(l);
                return rc;
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        struct wire_error werr;
        rc = wire_recv(l->sock, 0, ZMQ_DONTWAIT, &lim, m, &werr);
        if (rc < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            int e = errno;
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ESYS, "receive: %s", zmq_strerror(e));
        }
        if (rc > 0) {
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_EPROTO, "bad reply from daemon: %s", werr.message);
        }
        last_heard = time_now_ms();
        if (m->command == PSOD__COMMAND__CMD_HEARTBEAT) {
            /* Checked at the top of the loop with the heartbeat thread's. */
            const Psod__Heartbeat *hb = (const Psod__Heartbeat *)m->meta;
            if (hb->incarnation)
                atomic_store(&l->heard_incarnation, (unsigned long long)hb->incarnation);
            if (want == PSOD__COMMAND__CMD_POSITION)
                s_say_waiting(l, hb);
            wire_msg_clear(m);
            continue;
        }
        if (m->command == PSOD__COMMAND__CMD_ERROR) {
            Psod__Error *e = (Psod__Error *)m->meta;
            if (e->seq == seq || e->seq == 0) {
                l->last_server_error = l->api->last_server_error = e->code;
                int req = want == PSOD__COMMAND__CMD_POSITION      ? PSOD__COMMAND__CMD_PUSH
                          : want == PSOD__COMMAND__CMD_WELCOME     ? PSOD__COMMAND__CMD_HELLO
                          : want == PSOD__COMMAND__CMD_ADMIN_REPLY ? PSOD__COMMAND__CMD_ADMIN
                          : want == PSOD__COMMAND__CMD_MODEL ? PSOD__COMMAND__CMD_MODEL_REQUEST
                                                             : PSOD__COMMAND__CMD_STATUS_REQUEST;
                rc = psoc__err(err, errlen, PSOC_EREFUSED, "daemon refused %s: %s (%s)",
                               wire_command_name(req), e->message, wire_error_name(e->code));
                wire_msg_clear(m);
                return rc;
            }
        } else if (m->command == PSOD__COMMAND__CMD_VERIFY && want == PSOD__COMMAND__CMD_POSITION) {
            psoc__take_verify(l->api, m, seq); /* measured once the position is in */
        } else if (m->command == want) {
            uint64_t got =
                want == PSOD__COMMAND__CMD_POSITION ? ((Psod__Position *)m->meta)->seq : seq;
            if (got == seq)
                return PSOC_OK;
        }
        wire_msg_clear(m); /* heartbeat, or a stale reply: keep waiting */
    }
}
