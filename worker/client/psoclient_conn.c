/* One connection to one daemon: its DEALER socket in a context of its own,
 * CURVE, the monitor that reports a refused handshake, and a reset after a
 * failure; and how the library says things (psoc__err into the caller's
 * buffer, psoc__say to its log). The low room of the library: it calls no
 * other file of it. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"

int psoc__err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* CURVE client options on a socket about to connect. */
int psoc__apply_curve(void *sock, const struct psoc_options *o)
{
    if (!o->curve_server[0])
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->curve_server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, o->curve_public, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->curve_secret, 40) != 0)
        return -1;
    return 0;
}

void psoc__say(const struct psoc *c, int level, const char *fmt, ...)
{
    if (!c->opts.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->opts.log(c->opts.log_ctx, level, msg);
}

void psoc__teardown(struct psoc *c, int linger_ms)
{
    if (c->mon) {
        /* Stop the monitor and read what it queued: an event left unread
         * (one naming a long ipc:// path is a heap message) is lost inside
         * libzmq when the context ends. */
        if (c->sock)
            zmq_socket_monitor(c->sock, NULL, 0);
        wire_monitor_drain(c->mon);
        zmq_close(c->mon);
        c->mon = NULL;
    }
    if (c->sock) {
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(c->sock);
        c->sock = NULL;
    }
    if (c->ctx) {
        zmq_ctx_term(c->ctx); /* blocks until every message is released */
        c->ctx = NULL;
    }
    atomic_store(&c->released, 1);
}

int psoc__setup(struct psoc *c, char *err, size_t errlen)
{
    c->handshaken = 0;
    c->failed_handshakes = 0;
    c->ctx = zmq_ctx_new();
    if (!c->ctx)
        return psoc__err(err, errlen, PSOC_ESYS, "zmq_ctx_new: %s", zmq_strerror(errno));
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->sock) {
        int e = errno;
        psoc__teardown(c, 0);
        return psoc__err(err, errlen, PSOC_ESYS, "zmq_socket: %s", zmq_strerror(e));
    }
    int linger = 0, ivl = 100, ivl_max = 5000;
    int64_t maxmsg = (int64_t)c->opts.max_payload + 65536;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* No ZMQ_ROUTING_ID: psod's ROUTER assigns one per connection, and the
     * Welcome's session vouches for this process on a new one. */
    if (psoc__apply_curve(c->sock, &c->opts) != 0) {
        int e = errno;
        psoc__teardown(c, 0);
        return psoc__err(err, errlen, PSOC_EINVAL, "cannot set CURVE keys: %s", zmq_strerror(e));
    }
    /* Watch the handshake: a refused key or a security mismatch is reported
     * at once instead of as a silent timeout. */
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://psoc-monitor-%p", (void *)c);
    if (zmq_socket_monitor(c->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
        if (c->mon && zmq_connect(c->mon, mon) != 0) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
        if (c->mon)
            zmq_setsockopt(c->mon, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (wire_check_port(c->endpoint, err, errlen) != 0) {
        psoc__teardown(c, 0);
        return PSOC_EINVAL;
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        int e = errno;
        psoc__teardown(c, 0);
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "cannot connect to '%s': %s (expected tcp://HOST:PORT, e.g. "
                         "tcp://10.0.0.1:5555, or ipc://PATH)",
                         c->endpoint, zmq_strerror(e));
    }
    return PSOC_OK;
}

/* Reset after a failure: a fresh socket (a new connection, so a new routing
 * id at psod; the session says it is still us). */
void psoc__reset(struct psoc *c)
{
    psoc__teardown(c, 0);
    char ignored[64];
    psoc__setup(c, ignored, sizeof ignored);
}
