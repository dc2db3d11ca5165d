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
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/timeutil.h"
#include "common/hash.h"
#include "common/keys.h"

int psoc__err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
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

_Static_assert(PSOC_NAME_MAX == WIRE_NAME_MAX, "one name limit");

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

void psoc_set_model(struct psoc *c, const char *model, const char *dataset, const uint32_t shape[3])
{
    snprintf(c->model, sizeof c->model, "%s", model ? model : "");
    snprintf(c->dataset, sizeof c->dataset, "%s", dataset ? dataset : "");
    for (int k = 0; k < 3; k++)
        c->shape[k] = shape ? shape[k] : 0;
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

int psoc_wire_parse(const char *name) { return name ? codec_parse(name) : -1; }
const char *psoc_wire_name(int wire) { return codec_name(wire); }

int psoc_options_curve(struct psoc_options *o, const char *key_file, const char *server_key_file,
                       char *err, size_t errlen)
{
    struct keypair mine, server;
    if (!keys_curve_available())
        return psoc__err(err, errlen, PSOC_EINVAL, "this libzmq was built without CURVE");
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
    case PSOC_EINTR: return "interrupted";
    }
    return "unknown error";
}

uint64_t psoc_layout_hash(const char *layout) { return hash_fnv1a64(layout); }

size_t psoc_struct_size(const char *name)
{
    static const struct {
        const char *name;
        size_t size;
    } t[] = {
        {"psoc_options", sizeof(struct psoc_options)},
        {"psoc_welcome", sizeof(struct psoc_welcome)},
        {"psoc_report", sizeof(struct psoc_report)},
        {"psoc_position", sizeof(struct psoc_position)},
        {"psoc_particle_status", sizeof(struct psoc_particle_status)},
        {"psoc_status", sizeof(struct psoc_status)},
        {"psoc_shard_status", sizeof(struct psoc_shard_status)},
        {"psoc_model_info", sizeof(struct psoc_model_info)},
    };
    for (size_t i = 0; name && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].name, name) == 0)
            return t[i].size;
    return 0;
}

int psoc_last_server_error(const struct psoc *c) { return c->last_server_error; }

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

int psoc_open(struct psoc **out, const char *endpoint, const char *name,
              const struct psoc_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!endpoint || strlen(endpoint) >= sizeof((struct psoc *)0)->endpoint)
        return psoc__err(err, errlen, PSOC_EINVAL, "endpoint missing or too long");
    if (name && !wire_valid_name(name))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "worker name must be 1 to %d printable characters without spaces",
                         PSOC_NAME_MAX);
    if (opts && (opts->wire < 0 || opts->wire >= CODEC_KINDS))
        return psoc__err(err, errlen, PSOC_EINVAL, "wire kind %d: fp32, fp16, bf16 or int8",
                         opts->wire);
    struct psoc *c = calloc(1, sizeof *c);
    if (!c)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
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
    int rc = psoc__setup(c, err, errlen);
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
    psoc__beat_stop(c);
    if (c->nsub) {
        psoc__close_shards(c); /* each says bye to its daemon */
        c->joined = 0;
    }
    if (c->joined && c->sock) {
        Psod__Bye bye = PSOD__BYE__INIT;
        bye.reason = "worker closed";
        bye.accuracy = c->final_accuracy;
        bye.round = c->final_round;
        /* The socket may be a new connection (after a reset): say whose. */
        uint64_t sw[2];
        bye.worker_name = c->name;
        bye.session = psoc__session(c, sw);
        Psod__Verdict verdict; /* measured after the last sync */
        if (psoc__verdict(c, &verdict))
            bye.verdict = &verdict;
        wire_send(c->sock, NULL, 0, PSOD__COMMAND__CMD_BYE, &bye.base, NULL, ZMQ_DONTWAIT);
    }
    psoc__teardown(c, 1000); /* give the bye a second to leave */
    free(c->ref);
    free(c->cand);
    free(c->resid);
    free(c);
    *cp = NULL;
}

/* Reset after a failure: a fresh socket (a new connection, so a new routing
 * id at psod; the session says it is still us). */
void psoc__reset(struct psoc *c)
{
    psoc__teardown(c, 0);
    char ignored[64];
    psoc__setup(c, ignored, sizeof ignored);
}
