/* psoclient: see psoclient.h.
 *
 * One DEALER socket in a context of its own. The worker's name gives the
 * socket a stable routing id ("w:" + name), so a restarted worker is
 * recognised by the daemon. Requests are answered in order; replies whose
 * seq does not match the request (a late reply to a request we gave up on)
 * and heartbeats are skipped while waiting.
 *
 * Pushes send the caller's buffer zero-copy over tcp:// and ipc://. ZeroMQ
 * may keep reading that buffer until its I/O thread releases the message,
 * so before psoc_sync writes the new position into the same buffer it waits
 * for the release; on any failure the context is torn down, which also
 * releases it. The caller's buffer is therefore always free on return. */
#include "common/psoclient.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "common/keys.h"

/* Heartbeat intervals of silence after which the daemon counts as lost. */
#define PSOC_LIVENESS 10

struct psoc {
    void *ctx, *sock;
    char endpoint[256];
    char name[128];
    struct psoc_options opts;
    int zero_copy;
    int joined;
    uint32_t particle;
    uint64_t round, seq;
    size_t n;
    uint64_t layout_hash;
    int last_server_error;
    int push_kind, positions_global;
    uint32_t heartbeat_ms;
    uint64_t incarnation;
    double final_accuracy;
    uint64_t final_round;
    atomic_int released;
    /* The heartbeat thread: its own context and socket ("h:" + name), so
     * that liveness does not depend on what the caller is doing. */
    pthread_t beat_thread;
    int beat_running;
    atomic_int beat_stop;
    void *mon;               /* PAIR on the socket's monitor: handshake failures */
    int handshaken;          /* the current connection completed its handshake */
    int failed_handshakes;   /* connections lost before a handshake, in a row */
};

/* CURVE client options on a socket about to connect. */
static int s_apply_curve(void *sock, const struct psoc_options *o)
{
    if (!o->curve_server[0])
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->curve_server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, o->curve_public, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->curve_secret, 40) != 0)
        return -1;
    return 0;
}

/* Beat every heartbeat_ms on a socket of its own until told to stop. */
static void *s_beat_main(void *arg)
{
    struct psoc *c = arg;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (sock) {
        char id[WIRE_MAX_ID];
        int len = snprintf(id, sizeof id, "h:%s", c->name);
        int linger = 0, hwm = 10;
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, id, (size_t)len);
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (s_apply_curve(sock, &c->opts) == 0 && zmq_connect(sock, c->endpoint) == 0) {
            uint64_t seq = 0;
            while (!atomic_load(&c->beat_stop)) {
                Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
                hb.seq = ++seq;
                wire_send(sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
                          ZMQ_DONTWAIT);
                /* Drain the answers; sleep in small steps to stop promptly. */
                for (uint32_t waited = 0; waited < c->heartbeat_ms && !atomic_load(&c->beat_stop);
                     waited += 50) {
                    zmq_msg_t m;
                    zmq_msg_init(&m);
                    while (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) >= 0)
                        ;
                    zmq_msg_close(&m);
                    usleep(50000);
                }
            }
        }
        zmq_close(sock);
    }
    if (ctx)
        zmq_ctx_term(ctx);
    return NULL;
}

static void s_beat_start(struct psoc *c)
{
    if (c->beat_running || !c->opts.heartbeat_thread || c->heartbeat_ms == 0 || !c->name[0])
        return;
    atomic_store(&c->beat_stop, 0);
    c->beat_running = pthread_create(&c->beat_thread, NULL, s_beat_main, c) == 0;
}

static void s_beat_stop(struct psoc *c)
{
    if (!c->beat_running)
        return;
    atomic_store(&c->beat_stop, 1);
    pthread_join(c->beat_thread, NULL);
    c->beat_running = 0;
}

static int s_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void psoc_options_default(struct psoc_options *o)
{
    memset(o, 0, sizeof *o); /* every field, the CURVE keys among them */
    o->timeout_ms = 120000;
    o->connect_timeout_ms = 30000;
    o->reconnect_ms = 0;
    o->heartbeat_thread = 1;
    o->max_payload = (size_t)1 << 31;
}

int psoc_options_curve(struct psoc_options *o, const char *key_file, const char *server_key_file,
                       char *err, size_t errlen)
{
    struct keypair mine, server;
    if (!keys_curve_available())
        return s_err(err, errlen, PSOC_EINVAL, "this libzmq was built without CURVE");
    if (keys_read(key_file, 1, &mine, err, errlen) != 0 ||
        keys_read(server_key_file, 0, &server, err, errlen) != 0)
        return PSOC_EINVAL;
    memcpy(o->curve_public, mine.public_key, sizeof o->curve_public);
    memcpy(o->curve_secret, mine.secret_key, sizeof o->curve_secret);
    memcpy(o->curve_server, server.public_key, sizeof o->curve_server);
    memset(&mine, 0, sizeof mine);
    return PSOC_OK;
}

const char *psoc_strerror(int code)
{
    switch (code) {
    case PSOC_OK: return "ok";
    case PSOC_EINVAL: return "invalid argument";
    case PSOC_ETIMEOUT: return "timed out";
    case PSOC_EPROTO: return "protocol error";
    case PSOC_EREFUSED: return "refused by the daemon";
    case PSOC_ECHECKSUM: return "payload checksum mismatch";
    case PSOC_ESYS: return "system error";
    case PSOC_ESTATE: return "call out of order";
    }
    return "unknown error";
}

uint64_t psoc_layout_hash(const char *layout)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)layout; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

int psoc_last_server_error(const struct psoc *c) { return c->last_server_error; }

static void s_teardown(struct psoc *c, int linger_ms)
{
    if (c->mon) {
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

static int s_setup(struct psoc *c, char *err, size_t errlen)
{
    c->handshaken = 0;
    c->failed_handshakes = 0;
    c->ctx = zmq_ctx_new();
    if (!c->ctx)
        return s_err(err, errlen, PSOC_ESYS, "zmq_ctx_new: %s", zmq_strerror(errno));
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->sock) {
        int e = errno;
        s_teardown(c, 0);
        return s_err(err, errlen, PSOC_ESYS, "zmq_socket: %s", zmq_strerror(e));
    }
    int linger = 0, ivl = 100, ivl_max = 5000;
    int64_t maxmsg = (int64_t)c->opts.max_payload + 65536;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (c->name[0]) {
        char id[WIRE_MAX_ID];
        int len = snprintf(id, sizeof id, "w:%s", c->name);
        zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, id, (size_t)len);
    }
    if (s_apply_curve(c->sock, &c->opts) != 0) {
        int e = errno;
        s_teardown(c, 0);
        return s_err(err, errlen, PSOC_EINVAL, "cannot set CURVE keys: %s", zmq_strerror(e));
    }
    /* Watch the handshake: a refused key or a security mismatch is reported
     * at once instead of as a silent timeout. */
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://psoc-monitor-%p", (void *)c);
    if (zmq_socket_monitor(c->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ==
        0) {
        c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
        if (c->mon && zmq_connect(c->mon, mon) != 0) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
        if (c->mon)
            zmq_setsockopt(c->mon, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        int e = errno;
        s_teardown(c, 0);
        return s_err(err, errlen, PSOC_EINVAL, "cannot connect to '%s': %s", c->endpoint,
                     zmq_strerror(e));
    }
    return PSOC_OK;
}

int psoc_open(struct psoc **out, const char *endpoint, const char *name,
              const struct psoc_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!endpoint || strlen(endpoint) >= sizeof((struct psoc *)0)->endpoint)
        return s_err(err, errlen, PSOC_EINVAL, "endpoint missing or too long");
    if (name && (strlen(name) == 0 || strlen(name) >= sizeof((struct psoc *)0)->name))
        return s_err(err, errlen, PSOC_EINVAL, "worker name must be 1 to 127 characters");
    struct psoc *c = calloc(1, sizeof *c);
    if (!c)
        return s_err(err, errlen, PSOC_ESYS, "out of memory");
    strcpy(c->endpoint, endpoint);
    c->final_accuracy = NAN;
    if (name)
        strcpy(c->name, name);
    if (opts)
        c->opts = *opts;
    else
        psoc_options_default(&c->opts);
    c->zero_copy = strncmp(endpoint, "tcp://", 6) == 0 || strncmp(endpoint, "ipc://", 6) == 0;
    atomic_init(&c->released, 1);
    int rc = s_setup(c, err, errlen);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return PSOC_OK;
}

void psoc_close(struct psoc **cp)
{
    struct psoc *c = *cp;
    if (!c)
        return;
    s_beat_stop(c);
    if (c->joined && c->sock) {
        Psod__Bye bye = PSOD__BYE__INIT;
        bye.reason = "worker closed";
        bye.accuracy = c->final_accuracy;
        bye.round = c->final_round;
        wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_BYE, &bye.base, NULL, ZMQ_DONTWAIT);
    }
    s_teardown(c, 1000); /* give the bye a second to leave */
    free(c);
    *cp = NULL;
}

/* Reset after a failure: a fresh socket, same identity. */
static void s_reset(struct psoc *c)
{
    s_teardown(c, 0);
    char ignored[64];
    s_setup(c, ignored, sizeof ignored);
}

/* What the monitor saw: a failed handshake (PSOC_EREFUSED with the reason),
 * a connection closed while waiting for a welcome (PSOC_ETIMEOUT), or 0. */
static int s_monitor_event(struct psoc *c, int want, char *err, size_t errlen)
{
    int rc = 0;
    while (c->mon && rc == 0) {
        uint16_t event;
        uint32_t value;
        if (wire_monitor_event(c->mon, &event, &value) != 0)
            break;
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            c->handshaken = 1;
            c->failed_handshakes = 0;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            /* After a handshake: the daemon dropped us. Before one: the
             * handshake failed, usually without a word (a CURVE mismatch). */
            if (c->handshaken && want == PSOD__COMMAND__CMD_WELCOME)
                rc = s_err(err, errlen, PSOC_ETIMEOUT,
                           "psod at %s closed the connection before its welcome: a hello of "
                           "%zu parameters may be above its --max-payload-mb, or it restarted",
                           c->endpoint, c->n);
            else if (!c->handshaken && ++c->failed_handshakes >= 5)
                rc = s_err(err, errlen, PSOC_EREFUSED,
                           "handshake with psod at %s failed %d times: %s", c->endpoint,
                           c->failed_handshakes,
                           c->opts.curve_server[0]
                               ? "the daemon does not use CURVE, or --curve-server is not its "
                                 "public key"
                               : "the daemon requires CURVE (give --curve-secret and "
                                 "--curve-server)");
            c->handshaken = 0;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == 500)
            rc = s_err(err, errlen, PSOC_EREFUSED,
                       "psod at %s refused the connection: too many peers (its --max-peers)",
                       c->endpoint);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            rc = s_err(err, errlen, PSOC_EREFUSED,
                       "psod at %s refused this peer's key (status %u): its public key is not "
                       "in the daemon's --allow directory", c->endpoint, value);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            rc = s_err(err, errlen, PSOC_EREFUSED,
                       "handshake with psod at %s failed (protocol error 0x%x)%s", c->endpoint,
                       value,
                       value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                           ? c->opts.curve_server[0]
                                 ? ": the daemon does not use CURVE, this peer does"
                                 : ": the daemon requires CURVE (give --curve-secret and "
                                   "--curve-server)"
                           : "");
        if (rc == PSOC_EREFUSED)
            c->last_server_error = PSOD__ERROR_CODE__ERR_UNAUTHORIZED;
    }
    return rc;
}

/* Wait for the reply to request `seq` with command `want`. Returns 0 with
 * `m` filled, or a PSOC_E* code. */
static int s_await(struct psoc *c, int want, uint64_t seq, int timeout_ms, struct wire_msg *m,
                   char *err, size_t errlen)
{
    struct wire_limits lim = {0, c->opts.max_payload};
    int64_t deadline = time_now_ms() + timeout_ms;
    /* While a round is open (POSITION), beat at the daemon's interval: a
     * daemon that stops answering for PSOC_LIVENESS intervals is lost, and
     * one that answers with another incarnation has restarted; either way
     * the push is gone and the caller resyncs. */
    const int beats = want == PSOD__COMMAND__CMD_POSITION && c->heartbeat_ms > 0;
    int64_t last_heard = time_now_ms(), last_beat = last_heard;
    for (;;) {
        int64_t now = time_now_ms(), left = deadline - now;
        if (left <= 0) {
            s_reset(c);
            return s_err(err, errlen, PSOC_ETIMEOUT,
                         "no %s from %s within %d ms (is psod running there?)",
                         wire_command_name(want), c->endpoint, timeout_ms);
        }
        if (beats && now - last_heard > (int64_t)c->heartbeat_ms * PSOC_LIVENESS) {
            s_reset(c);
            return s_err(err, errlen, PSOC_ETIMEOUT,
                         "psod at %s silent for %lld ms (%d heartbeat intervals): lost",
                         c->endpoint, (long long)(now - last_heard), PSOC_LIVENESS);
        }
        if (beats && now - last_beat >= (int64_t)c->heartbeat_ms) {
            Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
            hb.seq = ++c->seq;
            wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
                      ZMQ_DONTWAIT);
            last_beat = now;
        }
        long wait = left > 1000 ? 1000 : (long)left;
        if (beats && wait > (long)c->heartbeat_ms)
            wait = (long)c->heartbeat_ms;
        zmq_pollitem_t items[2] = {{c->sock, 0, ZMQ_POLLIN, 0}, {c->mon, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, c->mon ? 2 : 1, wait);
        if (rc < 0 && errno != EINTR) {
            int e = errno;
            s_reset(c);
            return s_err(err, errlen, PSOC_ESYS, "zmq_poll: %s", zmq_strerror(e));
        }
        if (c->mon && (items[1].revents & ZMQ_POLLIN) && (rc = s_monitor_event(c, want, err, errlen))) {
            s_reset(c);
            return rc;
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        struct wire_error werr;
        rc = wire_recv(c->sock, 0, ZMQ_DONTWAIT, &lim, m, &werr);
        if (rc < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            int e = errno;
            s_reset(c);
            return s_err(err, errlen, PSOC_ESYS, "receive: %s", zmq_strerror(e));
        }
        if (rc > 0) {
            s_reset(c);
            return s_err(err, errlen, PSOC_EPROTO, "bad reply from daemon: %s", werr.message);
        }
        last_heard = time_now_ms();
        if (beats && m->command == PSOD__COMMAND__CMD_HEARTBEAT &&
            ((Psod__Heartbeat *)m->meta)->incarnation != 0 && c->incarnation != 0 &&
            ((Psod__Heartbeat *)m->meta)->incarnation != c->incarnation) {
            wire_msg_clear(m);
            s_reset(c);
            return s_err(err, errlen, PSOC_ETIMEOUT,
                         "psod at %s restarted while the round was open: the push is lost",
                         c->endpoint);
        }
        if (m->command == PSOD__COMMAND__CMD_ERROR) {
            Psod__Error *e = (Psod__Error *)m->meta;
            if (e->seq == seq || e->seq == 0) {
                c->last_server_error = e->code;
                int req = want == PSOD__COMMAND__CMD_POSITION  ? PSOD__COMMAND__CMD_PUSH
                          : want == PSOD__COMMAND__CMD_WELCOME   ? PSOD__COMMAND__CMD_HELLO
                          : want == PSOD__COMMAND__CMD_ADMIN_REPLY ? PSOD__COMMAND__CMD_ADMIN
                                                                   : PSOD__COMMAND__CMD_STATUS_REQUEST;
                rc = s_err(err, errlen, PSOC_EREFUSED, "daemon refused %s: %s (%s)",
                           wire_command_name(req), e->message, wire_error_name(e->code));
                wire_msg_clear(m);
                return rc;
            }
        } else if (m->command == want) {
            uint64_t got = want == PSOD__COMMAND__CMD_POSITION
                               ? ((Psod__Position *)m->meta)->seq
                               : seq;
            if (got == seq)
                return PSOC_OK;
        }
        wire_msg_clear(m); /* heartbeat, or a stale reply: keep waiting */
    }
}

/* Check the payload's size and CRC and copy it into `dst`. */
static int s_take_payload(struct psoc *c, struct wire_msg *m, uint32_t crc, float *dst,
                          char *err, size_t errlen)
{
    size_t bytes = zmq_msg_size(&m->payload);
    if (bytes != c->n * sizeof(float))
        return s_err(err, errlen, PSOC_EPROTO, "daemon sent %zu bytes of weights, expected %zu",
                     bytes, c->n * sizeof(float));
    /* Copy and check in one pass; on a mismatch the caller's weights are
     * already overwritten, so they are restored from nothing: report it and
     * let the worker decide (it must not train on them). */
    uint32_t got = wire_copy_crc(dst, zmq_msg_data(&m->payload), bytes);
    if (got != crc)
        return s_err(err, errlen, PSOC_ECHECKSUM,
                     "position checksum mismatch (got %08x, header says %08x); "
                     "the weights buffer holds the corrupt position", got, crc);
    return PSOC_OK;
}

/* HELLO with `weights` (used when the particle is new), WELCOME back into
 * `weights`. */
static int s_hello(struct psoc *c, float *weights, int timeout_ms, struct psoc_welcome *out,
                   char *err, size_t errlen)
{
    size_t n = c->n;
    uint64_t layout_hash = c->layout_hash;
    Psod__Hello h = PSOD__HELLO__INIT;
    h.worker_name = c->name;
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    h.param_count = n;
    h.layout_hash = layout_hash;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    h.host = host;
    h.pid = (uint32_t)getpid();
    zmq_msg_t payload;
    if (zmq_msg_init_size(&payload, n * sizeof(float)) != 0)
        return s_err(err, errlen, PSOC_ESYS, "out of memory for %zu weights", n);
    memcpy(zmq_msg_data(&payload), weights, n * sizeof(float));
    h.payload_crc32c = crc32c(0, weights, n * sizeof(float));
    if (wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_HELLO, &h.base, &payload, 0) != 0) {
        int e = errno;
        zmq_msg_close(&payload);
        return s_err(err, errlen, PSOC_ESYS, "send hello: %s", zmq_strerror(e));
    }
    zmq_msg_close(&payload);
    struct wire_msg m;
    int rc = s_await(c, PSOD__COMMAND__CMD_WELCOME, 0, timeout_ms, &m, err, errlen);
    if (rc)
        return rc;
    Psod__Welcome *w = (Psod__Welcome *)m.meta;
    if (w->param_count != n) {
        rc = s_err(err, errlen, PSOC_EPROTO, "daemon welcomed %llu parameters, we have %zu",
                   (unsigned long long)w->param_count, n);
    } else {
        rc = s_take_payload(c, &m, w->payload_crc32c, weights, err, errlen);
    }
    if (rc == PSOC_OK) {
        c->joined = 1;
        c->particle = w->particle_id;
        c->round = w->round;
        c->push_kind = (int)w->push_kind;
        c->heartbeat_ms = w->heartbeat_ms;
        c->incarnation = w->incarnation;
        s_beat_start(c);
        c->positions_global = w->positions_global;
        if (out) {
            out->particle_id = w->particle_id;
            out->round = w->round;
            out->global_best_loss = w->global_best_loss;
            out->rejoined = w->rejoined;
            snprintf(out->strategy, sizeof out->strategy, "%s", w->strategy ? w->strategy : "");
            out->positions_global = w->positions_global;
            out->push_gradients = w->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT;
            out->heartbeat_ms = w->heartbeat_ms;
        }
    }
    wire_msg_clear(&m);
    return rc;
}

int psoc_join(struct psoc *c, size_t n, uint64_t layout_hash, float *weights,
              struct psoc_welcome *out, char *err, size_t errlen)
{
    if (!c->name[0])
        return s_err(err, errlen, PSOC_ESTATE, "a status-only client cannot join");
    if (n == 0 || !weights || n * sizeof(float) > c->opts.max_payload)
        return s_err(err, errlen, PSOC_EINVAL, "need 1 to %zu weights", c->opts.max_payload / 4);
    c->n = n;
    c->layout_hash = layout_hash;
    return s_hello(c, weights, c->opts.connect_timeout_ms, out, err, errlen);
}

/* Get back in step with the daemon after a refused push (evicted, or the
 * round closed without us) or a lost daemon: HELLO again, retrying with
 * exponential back-off (0.5 s doubling to 8 s) for up to
 * opts.reconnect_ms. The particle's current position lands in `weights`. */
static int s_resync(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                    size_t errlen)
{
    int64_t deadline = time_now_ms() + c->opts.reconnect_ms;
    int wait_ms = 500;
    for (int attempt = 1;; attempt++) {
        struct psoc_welcome w;
        int64_t left = deadline - time_now_ms();
        int timeout = left < wait_ms ? (int)(left > 100 ? left : 100) : wait_ms;
        int rc = s_hello(c, weights, timeout, &w, err, errlen);
        if (rc == PSOC_OK) {
            if (out) {
                out->round = w.round;
                out->global_best_loss = w.global_best_loss;
                out->personal_best_loss = NAN;
                out->global_best_particle = 0;
                out->resynced = attempt;
            }
            return PSOC_OK;
        }
        if (rc != PSOC_ETIMEOUT || time_now_ms() >= deadline)
            return rc;
        if (wait_ms < 8000)
            wait_ms *= 2;
    }
}

static void s_release(void *data, void *hint)
{
    (void)data;
    atomic_store(&((struct psoc *)hint)->released, 1);
}

int psoc_sync(struct psoc *c, float *weights, double loss, uint64_t samples,
              struct psoc_position *out, char *err, size_t errlen)
{
    struct psoc_report r = {loss, samples, NAN, NAN, 0};
    return psoc_sync_ex(c, weights, NULL, &r, out, err, errlen);
}

int psoc_sync_ex(struct psoc *c, float *weights, const float *gradient,
                 const struct psoc_report *rep, struct psoc_position *out, char *err,
                 size_t errlen)
{
    if (!c->joined)
        return s_err(err, errlen, PSOC_ESTATE, "sync before join");
    if (!isfinite(rep->loss))
        return s_err(err, errlen, PSOC_EINVAL, "loss is %g; the daemon only takes finite losses",
                     rep->loss);
    if ((gradient != NULL) != (c->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT))
        return s_err(err, errlen, PSOC_EINVAL, "the daemon's strategy takes %s",
                     c->push_kind ? "gradients" : "weights");
    /* What travels: the weights, or the gradient (the reply still lands in
     * `weights`). Either buffer is sent zero-copy and released before we
     * return. */
    float *send = gradient ? (float *)gradient : weights;
    size_t bytes = c->n * sizeof(float);
    Psod__Push p = PSOD__PUSH__INIT;
    p.round = c->round;
    p.loss = rep->loss;
    p.samples = rep->samples;
    p.payload_crc32c = crc32c(0, send, bytes);
    p.seq = ++c->seq;
    p.accuracy = rep->accuracy;
    p.position_accuracy = rep->position_accuracy;
    p.position_round = rep->position_round;
    p.payload_kind = gradient ? PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT
                              : PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS;
    zmq_msg_t payload;
    if (c->zero_copy) {
        atomic_store(&c->released, 0);
        zmq_msg_init_data(&payload, send, bytes, s_release, c);
    } else if (zmq_msg_init_size(&payload, bytes) == 0) {
        memcpy(zmq_msg_data(&payload), send, bytes);
    } else {
        return s_err(err, errlen, PSOC_ESYS, "out of memory");
    }
    if (wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_PUSH, &p.base, &payload, 0) != 0) {
        int e = errno;
        zmq_msg_close(&payload);
        s_reset(c);
        return s_err(err, errlen, PSOC_ESYS, "send push: %s", zmq_strerror(e));
    }
    zmq_msg_close(&payload);
    struct wire_msg m;
    int rc = s_await(c, PSOD__COMMAND__CMD_POSITION, p.seq, c->opts.timeout_ms, &m, err, errlen);
    if (rc == PSOC_EREFUSED && (c->last_server_error == PSOD__ERROR_CODE__ERR_ROUND ||
                                c->last_server_error == PSOD__ERROR_CODE__ERR_NOT_JOINED)) {
        /* The round closed without us, or we were evicted: the daemon has
         * read the push, so ZeroMQ is done with the buffer; take it back,
         * then rejoin and continue from the particle's current position. */
        s_reset(c);
        return s_resync(c, weights, out, err, errlen);
    }
    if (rc == PSOC_ETIMEOUT && c->opts.reconnect_ms > 0)
        return s_resync(c, weights, out, err, errlen); /* s_await reset: buffer released */
    if (rc)
        return rc; /* s_await reset the connection: the buffer is released */
    /* The reply came after the daemon read the whole push, so ZeroMQ is done
     * with our buffer or about to be; wait for it before overwriting. */
    for (int spins = 0; !atomic_load(&c->released); spins++) {
        if (spins > 2000) { /* 2 s: something holds it; force the release */
            wire_msg_clear(&m);
            s_reset(c);
            return s_err(err, errlen, PSOC_ESYS, "push buffer not released by ZeroMQ");
        }
        usleep(1000);
    }
    Psod__Position *pos = (Psod__Position *)m.meta;
    rc = s_take_payload(c, &m, pos->payload_crc32c, weights, err, errlen);
    if (rc == PSOC_OK) {
        c->round = pos->round;
        if (out) {
            out->round = pos->round;
            out->global_best_loss = pos->global_best_loss;
            out->personal_best_loss = pos->personal_best_loss;
            out->global_best_particle = pos->global_best_particle;
            out->resynced = 0;
        }
    }
    wire_msg_clear(&m);
    return rc;
}

void psoc_set_final(struct psoc *c, double accuracy, uint64_t round)
{
    c->final_accuracy = accuracy;
    c->final_round = round;
}

int psoc_heartbeat(struct psoc *c, char *err, size_t errlen)
{
    Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
    hb.seq = ++c->seq;
    if (wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL, ZMQ_DONTWAIT))
        return s_err(err, errlen, PSOC_ESYS, "send heartbeat: %s", zmq_strerror(errno));
    return PSOC_OK;
}

int psoc_status(struct psoc *c, int with_particles, struct psoc_status *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    Psod__StatusRequest r = PSOD__STATUS_REQUEST__INIT;
    r.include_particles = with_particles != 0;
    if (wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_STATUS_REQUEST, &r.base, NULL, 0))
        return s_err(err, errlen, PSOC_ESYS, "send status request: %s", zmq_strerror(errno));
    struct wire_msg m;
    int rc = s_await(c, PSOD__COMMAND__CMD_STATUS, 0, c->opts.connect_timeout_ms, &m, err,
                     errlen);
    if (rc)
        return rc;
    Psod__Status *s = (Psod__Status *)m.meta;
    out->round = s->round;
    out->particles = s->particles;
    out->active = s->active;
    out->workers_expected = s->workers_expected;
    out->pushed_this_round = s->pushed_this_round;
    out->global_best_loss = s->global_best_loss;
    out->global_best_particle = s->global_best_particle;
    out->global_accuracy = s->global_accuracy;
    out->param_count = s->param_count;
    snprintf(out->strategy, sizeof out->strategy, "%s", s->strategy ? s->strategy : "");
    snprintf(out->version, sizeof out->version, "%s", s->version ? s->version : "");
    out->uptime_seconds = s->uptime_seconds;
    out->last_round_seconds = s->last_round_seconds;
    out->errors_sent = s->errors_sent;
    out->bytes_in = s->bytes_in;
    out->bytes_out = s->bytes_out;
    for (size_t i = 0; i < s->n_errors_by_code && i < PSOC_ERROR_CODES; i++)
        out->errors_by_code[i] = s->errors_by_code[i];
    out->peers_connected = s->peers_connected;
    out->peers_refused = s->peers_refused;
    out->encrypted = s->encrypted;
    out->max_peers = s->max_peers;
    if (s->n_particle) {
        out->particle = calloc(s->n_particle, sizeof *out->particle);
        if (!out->particle) {
            wire_msg_clear(&m);
            return s_err(err, errlen, PSOC_ESYS, "out of memory");
        }
        out->n_particles = s->n_particle;
        for (size_t i = 0; i < s->n_particle; i++) {
            Psod__ParticleStatus *p = s->particle[i];
            struct psoc_particle_status *q = &out->particle[i];
            q->id = p->id;
            snprintf(q->name, sizeof q->name, "%s", p->worker_name ? p->worker_name : "");
            q->last_loss = p->last_loss;
            q->best_loss = p->best_loss;
            q->age_seconds = p->age_seconds;
            q->pushes = p->pushes;
            q->last_round = p->last_round;
            q->pushed_this_round = p->pushed_this_round;
            q->active = p->active;
            q->evicted = p->evicted;
        }
    }
    wire_msg_clear(&m);
    return PSOC_OK;
}

int psoc_admin(struct psoc *c, int action, const char *worker, char *reply, size_t replylen,
               char *err, size_t errlen)
{
    Psod__Admin a = PSOD__ADMIN__INIT;
    a.action = (Psod__AdminAction)action;
    a.worker_name = (char *)(worker ? worker : "");
    if (wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_ADMIN, &a.base, NULL, 0))
        return s_err(err, errlen, PSOC_ESYS, "send admin request: %s", zmq_strerror(errno));
    struct wire_msg m;
    int rc = s_await(c, PSOD__COMMAND__CMD_ADMIN_REPLY, 0, c->opts.connect_timeout_ms, &m, err,
                     errlen);
    if (rc)
        return rc;
    Psod__AdminReply *r = (Psod__AdminReply *)m.meta;
    if (reply && replylen)
        snprintf(reply, replylen, "%s", r->message ? r->message : "");
    wire_msg_clear(&m);
    return PSOC_OK;
}

void psoc_status_free(struct psoc_status *s)
{
    free(s->particle);
    s->particle = NULL;
    s->n_particles = 0;
}
