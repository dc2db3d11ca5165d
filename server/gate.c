/* The gate: ZAP handler and connection monitor. See gate.h. */
#include "server/gate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/wire.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

struct gate {
    void *zap; /* REP bound to the context's ZAP endpoint */
    void *mon; /* PAIR reading the ROUTER's monitor events */
    struct keyring allow, admin;
    unsigned char own[32]; /* the daemon's public key: the other daemons of a sharded
                              * swarm hold the same pair (one key set) */
    int curve;
    long max_peers;
    uint32_t connected;
    uint64_t refused;
};

static int s_fail(struct gate *g, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail(struct gate *g, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    gate_destroy(&g);
    return -1;
}

int gate_new(struct gate **out, void *ctx, void *sock, const struct gate_config *cfg, char *err,
             size_t errlen)
{
    *out = NULL;
    int curve = cfg->curve_secret && cfg->curve_secret[0];
    if (!curve &&
        ((cfg->allow_dir && cfg->allow_dir[0]) || (cfg->admin_dir && cfg->admin_dir[0]))) {
        snprintf(err, errlen,
                 "--allow and --admin need --curve-secret (keys only mean something "
                 "with CURVE)");
        return -1;
    }
    if (!curve && cfg->max_peers <= 0)
        return 0;
    struct gate *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->curve = curve;
    g->max_peers = cfg->max_peers;
    if (curve) {
        if (!keys_curve_available())
            return s_fail(g, err, errlen, "--curve-secret: this libzmq was built without CURVE");
        if (!cfg->allow_dir || !cfg->allow_dir[0])
            return s_fail(g, err, errlen,
                          "--curve-secret needs --allow DIR: the public keys of "
                          "the workers that may join");
        struct keypair kp;
        if (keys_read(cfg->curve_secret, 1, &kp, err, errlen) != 0) {
            gate_destroy(&g);
            return -1;
        }
        if (keys_load_dir(cfg->allow_dir, &g->allow, err, errlen) != 0 ||
            (cfg->admin_dir && cfg->admin_dir[0] &&
             keys_load_dir(cfg->admin_dir, &g->admin, err, errlen) != 0)) {
            gate_destroy(&g);
            return -1;
        }
        if (g->allow.count == 0)
            log_warn("--allow '%s' holds no NAME.pub file: no worker can join", cfg->allow_dir);
        int one = 1;
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp.secret_key, KEYS_Z85_LEN) != 0)
            return s_fail(g, err, errlen, "cannot enable CURVE: %s", zmq_strerror(errno));
        zmq_z85_decode(g->own, kp.public_key);
        memset(&kp, 0, sizeof kp);
    }
    /* A ZAP domain makes libzmq consult the handler for NULL connections too,
     * which is how --max-peers is enforced without CURVE. */
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "psod", 4) != 0)
        return s_fail(g, err, errlen, "ZMQ_ZAP_DOMAIN: %s", zmq_strerror(errno));
    g->zap = zmq_socket(ctx, ZMQ_REP);
    if (!g->zap || zmq_bind(g->zap, ZAP_ENDPOINT) != 0)
        return s_fail(g, err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://psod-monitor-%p", (void *)g);
    if (zmq_socket_monitor(
            sock, mon,
            ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0 ||
        !(g->mon = zmq_socket(ctx, ZMQ_PAIR)) || zmq_connect(g->mon, mon) != 0)
        return s_fail(g, err, errlen, "cannot monitor the socket: %s", zmq_strerror(errno));
    int linger = 0;
    zmq_setsockopt(g->zap, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(g->mon, ZMQ_LINGER, &linger, sizeof linger);
    *out = g;
    return 0;
}

void gate_destroy(struct gate **gp)
{
    struct gate *g = *gp;
    if (!g)
        return;
    if (g->zap)
        zmq_close(g->zap);
    if (g->mon) {
        /* Events still queued would be lost inside libzmq at the context's
         * end (an event naming a long endpoint is a heap message): read
         * them first. server_destroy has stopped the monitor. */
        wire_monitor_drain(g->mon);
        zmq_close(g->mon);
    }
    keys_ring_free(&g->allow);
    keys_ring_free(&g->admin);
    free(g);
    *gp = NULL;
}

int gate_poll_items(struct gate *g, zmq_pollitem_t *items)
{
    if (!g)
        return 0;
    items[0] = (zmq_pollitem_t){g->zap, 0, ZMQ_POLLIN, 0};
    items[1] = (zmq_pollitem_t){g->mon, 0, ZMQ_POLLIN, 0};
    return 2;
}

static void s_monitor(struct gate *g)
{
    uint16_t event;
    uint32_t value;
    while (wire_monitor_event(g->mon, &event, &value) == 0) {
        switch (event) {
        case ZMQ_EVENT_ACCEPTED: g->connected++; break;
        case ZMQ_EVENT_DISCONNECTED:
            if (g->connected)
                g->connected--;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            g->refused++; /* the ZAP handler refused it and logged why */
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            g->refused++;
            log_ratelimited(LOG_WARN, "handshake-protocol",
                            "refused a connection: ZMTP handshake failed (protocol error "
                            "0x%x%s)",
                            value,
                            value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                                ? g->curve ? ": the peer has no CURVE key; give the worker "
                                             "--curve-secret and --curve-server"
                                           : ": the peer uses CURVE but this daemon has no "
                                             "--curve-secret"
                                : "");
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            g->refused++;
            log_ratelimited(LOG_WARN, "handshake-other",
                            "refused a connection: handshake failed (%s, or a connection "
                            "that closed mid-handshake)",
                            g->curve ? "a peer without a CURVE key or with a wrong server key"
                                     : "a peer that uses CURVE");
            break;
        }
    }
}

/* Receive one ZAP request (RFC 27): version, request id, domain, address,
 * identity, mechanism, credentials. Returns the frame count, 0 if none. */
#define ZAP_FRAMES 8
static int s_zap_recv(void *sock, zmq_msg_t *f)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_t *m = n < ZAP_FRAMES ? &f[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            return n;
        }
        more = zmq_msg_more(m);
        if (n < ZAP_FRAMES)
            n++;
        else
            zmq_msg_close(m);
    }
    return n;
}

static void s_zap_reply(void *sock, zmq_msg_t *reqid, const char *code, const char *text,
                        const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(reqid), zmq_msg_size(reqid), ZMQ_SNDMORE);
    zmq_send(sock, code, 3, ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

static void s_zap(struct gate *g)
{
    zmq_msg_t f[ZAP_FRAMES];
    int n;
    while ((n = s_zap_recv(g->zap, f)) > 0) {
        /* Count the connection this request is for before judging it. */
        s_monitor(g);
        char addr[64] = "?", mech[16] = "";
        if (n >= 6) {
            snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]),
                     (const char *)zmq_msg_data(&f[3]));
            snprintf(mech, sizeof mech, "%.*s", (int)zmq_msg_size(&f[5]),
                     (const char *)zmq_msg_data(&f[5]));
        }
        if (n < 6) {
            /* Not from libzmq; a REP socket must still answer. */
            zmq_msg_t empty;
            zmq_msg_init(&empty);
            s_zap_reply(g->zap, n >= 2 ? &f[1] : &empty, "500", "malformed ZAP request", "");
            zmq_msg_close(&empty);
        } else if (g->max_peers > 0 && g->connected > (uint32_t)g->max_peers) {
            log_ratelimited(LOG_WARN, "max-peers",
                            "refused a connection from %s: %u connections open, --max-peers %ld",
                            addr, g->connected - 1, g->max_peers);
            /* 500, not ZAP's "300 try later": libzmq sends no ERROR for 300,
             * so the peer would wait forever instead of being told. */
            s_zap_reply(g->zap, &f[1], "500", "too many peers", "");
        } else if (!g->curve) {
            s_zap_reply(g->zap, &f[1], strcmp(mech, "NULL") == 0 ? "200" : "400",
                        strcmp(mech, "NULL") == 0 ? "OK" : "mechanism not offered", "");
        } else if (strcmp(mech, "CURVE") != 0 || n < 7 || zmq_msg_size(&f[6]) != 32) {
            log_ratelimited(LOG_WARN, "zap", "refused a connection from %s: mechanism %s", addr,
                            mech);
            s_zap_reply(g->zap, &f[1], "400", "CURVE required", "");
        } else {
            const unsigned char *key = zmq_msg_data(&f[6]);
            const char *name;
            char user[KEYS_NAME_MAX + 8];
            if (memcmp(key, g->own, sizeof g->own) == 0) {
                log_debug("connection from %s with the daemon's own key (a shard)", addr);
                s_zap_reply(g->zap, &f[1], "200", "OK", GATE_USER_DAEMON);
            } else if ((name = keys_find(&g->admin, key)) != NULL) {
                snprintf(user, sizeof user, "admin:%s", name);
                log_debug("connection from %s with admin key '%s'", addr, name);
                s_zap_reply(g->zap, &f[1], "200", "OK", user);
            } else if ((name = keys_find(&g->allow, key)) != NULL) {
                log_debug("connection from %s with key '%s'", addr, name);
                s_zap_reply(g->zap, &f[1], "200", "OK", name);
            } else {
                char z85[KEYS_Z85_LEN + 1];
                zmq_z85_encode(z85, key, 32);
                log_ratelimited(LOG_WARN, "zap",
                                "refused a connection from %s: public key %s is not on the "
                                "allow-list",
                                addr, z85);
                s_zap_reply(g->zap, &f[1], "400", "key not allowed", "");
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}

void gate_process(struct gate *g)
{
    if (!g)
        return;
    s_monitor(g);
    s_zap(g);
}

void gate_stats(const struct gate *g, struct gate_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!g)
        return;
    st->connected = g->connected;
    st->refused = g->refused;
    st->encrypted = g->curve;
    st->allowed_keys = g->allow.count;
    st->admin_keys = g->admin.count;
}
