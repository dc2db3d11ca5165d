/* A link's connection to its daemon: the DEALER socket in a context of its
 * own, CURVE, the monitor that reports a refused handshake, and a reset
 * after a failure; and how the library says things (psoc__err into the
 * caller's buffer, psoc__say to its log). The low room of the library: it
 * calls no other file of it. */
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

static void s_teardown(struct psoc_link *l, int linger_ms)
{
    if (l->mon) {
        /* Stop the monitor and read what it queued: an event left unread
         * (one naming a long ipc:// path is a heap message) is lost inside
         * libzmq when the context ends. */
        if (l->sock)
            zmq_socket_monitor(l->sock, NULL, 0);
        wire_monitor_drain(l->mon);
        zmq_close(l->mon);
        l->mon = NULL;
    }
    if (l->sock) {
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
        l->sock = NULL;
    }
    if (l->ctx) {
        zmq_ctx_term(l->ctx); /* blocks until every message is released */
        l->ctx = NULL;
    }
    atomic_store(&l->released, 1);
}

static int s_setup(struct psoc_link *l, char *err, size_t errlen)
{
    const struct psoc_options *o = &l->api->opts;
    l->handshaken = 0;
    l->failed_handshakes = 0;
    l->ctx = zmq_ctx_new();
    if (!l->ctx)
        return psoc__err(err, errlen, PSOC_ESYS, "zmq_ctx_new: %s", zmq_strerror(errno));
    l->sock = zmq_socket(l->ctx, ZMQ_DEALER);
    if (!l->sock) {
        int e = errno;
        s_teardown(l, 0);
        return psoc__err(err, errlen, PSOC_ESYS, "zmq_socket: %s", zmq_strerror(e));
    }
    int linger = 0, ivl = 100, ivl_max = 5000;
    int64_t maxmsg = (int64_t)o->max_payload + 65536;
    zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(l->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(l->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(l->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* No ZMQ_ROUTING_ID: psod's ROUTER assigns one per connection, and the
     * Welcome's session vouches for this process on a new one. */
    if (psoc__apply_curve(l->sock, o) != 0) {
        int e = errno;
        s_teardown(l, 0);
        return psoc__err(err, errlen, PSOC_EINVAL, "cannot set CURVE keys: %s", zmq_strerror(e));
    }
    /* Watch the handshake: a refused key or a security mismatch is reported
     * at once instead of as a silent timeout. */
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://psoc-monitor-%p", (void *)l);
    if (zmq_socket_monitor(l->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        l->mon = zmq_socket(l->ctx, ZMQ_PAIR);
        if (l->mon && zmq_connect(l->mon, mon) != 0) {
            zmq_close(l->mon);
            l->mon = NULL;
        }
        if (l->mon)
            zmq_setsockopt(l->mon, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (wire_check_port(l->endpoint, err, errlen) != 0) {
        s_teardown(l, 0);
        return PSOC_EINVAL;
    }
    if (zmq_connect(l->sock, l->endpoint) != 0) {
        int e = errno;
        s_teardown(l, 0);
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "cannot connect to '%s': %s (expected tcp://HOST:PORT, e.g. "
                         "tcp://10.0.0.1:5555, or ipc://PATH)",
                         l->endpoint, zmq_strerror(e));
    }
    return PSOC_OK;
}

int psoc__link_new(struct psoc *c, const char *endpoint, uint64_t offset, size_t n, uint64_t total,
                   struct psoc_link **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!endpoint || strlen(endpoint) >= sizeof((struct psoc_link *)0)->endpoint)
        return psoc__err(err, errlen, PSOC_EINVAL, "endpoint missing or too long");
    struct psoc_link *l = calloc(1, sizeof *l);
    if (!l)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    l->api = c;
    strcpy(l->endpoint, endpoint);
    l->offset = offset;
    l->n = n;
    l->total = total;
    l->zero_copy = strncmp(endpoint, "tcp://", 6) == 0 || strncmp(endpoint, "ipc://", 6) == 0;
    atomic_init(&l->released, 1);
    int rc = s_setup(l, err, errlen);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return PSOC_OK;
}

void psoc__link_free(struct psoc_link **lp, int linger_ms)
{
    struct psoc_link *l = *lp;
    if (!l)
        return;
    s_teardown(l, linger_ms);
    free(l->ref);
    free(l->resid);
    free(l);
    *lp = NULL;
}

/* Reset after a failure: a fresh socket (a new connection, so a new routing
 * id at psod; the session says it is still us). */
void psoc__reset(struct psoc_link *l)
{
    s_teardown(l, 0);
    char ignored[64];
    s_setup(l, ignored, sizeof ignored);
}
