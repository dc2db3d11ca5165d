/* A peer that speaks the wire by hand (a DEALER, wire_send/wire_recv), for
 * the daemon suites that must send what the client library never would:
 * a push for another round, a NaN, a second push, a payload of the wrong
 * size. Header-only; used with tests/lib/inproc.h. */
#ifndef PSOD_TESTS_RAWPEER_H
#define PSOD_TESTS_RAWPEER_H

#include <check.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/crc32c.h"
#include "common/wire.h"
#include "proto/psod.pb-c.h"

struct rawpeer {
    void *ctx, *sock;
};

static inline void rawpeer_open(struct rawpeer *p, const char *endpoint)
{
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(p->sock, endpoint), 0);
}

static inline void rawpeer_close(struct rawpeer *p)
{
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
}

/* Send `meta` with n floats (n = 0: no payload frame). */
static inline void rawpeer_send(struct rawpeer *p, int command, const ProtobufCMessage *meta,
                                const float *x, size_t n)
{
    zmq_msg_t payload;
    if (n) {
        zmq_msg_init_size(&payload, n * sizeof(float));
        memcpy(zmq_msg_data(&payload), x, n * sizeof(float));
    }
    ck_assert_int_eq(wire_send(p->sock, NULL, 0, command, meta, n ? &payload : NULL, 0), 0);
    if (n)
        zmq_msg_close(&payload);
}

/* The next message within ms into m: 0, or -1 when none came. */
static inline int rawpeer_recv(struct rawpeer *p, int ms, struct wire_msg *m)
{
    zmq_pollitem_t it = {p->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0)
        return -1;
    struct wire_limits lim = {1 << 20, 1 << 26};
    struct wire_error e;
    return wire_recv(p->sock, 0, 0, &lim, m, &e) == 0 ? 0 : -1;
}

/* The error code of the next message, which must be an ERROR, with its
 * message in why. */
static inline int rawpeer_error(struct rawpeer *p, char *why, size_t len)
{
    struct wire_msg m;
    ck_assert_msg(rawpeer_recv(p, 5000, &m) == 0, "no reply");
    ck_assert_msg(m.command == PSOD__COMMAND__CMD_ERROR, "reply %s, not an error",
                  wire_command_name(m.command));
    const Psod__Error *e = (const Psod__Error *)m.meta;
    int code = (int)e->code;
    snprintf(why, len, "%s", e->message ? e->message : "");
    wire_msg_clear(&m);
    return code;
}

/* HELLO as `name` with n floats x (layout 7), offering to verify or not;
 * the Welcome into m (wire_msg_clear it). */
static inline void rawpeer_hello(struct rawpeer *p, const char *name, const float *x, size_t n,
                                 int verifier, struct wire_msg *m)
{
    Psod__Hello h = PSOD__HELLO__INIT;
    h.worker_name = (char *)name;
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    h.param_count = n;
    h.layout_hash = 7;
    h.payload_crc32c = crc32c(0, x, n * sizeof(float));
    h.pid = (uint32_t)getpid();
    h.host = "rawpeer";
    h.verifier = verifier != 0;
    rawpeer_send(p, PSOD__COMMAND__CMD_HELLO, &h.base, x, n);
    ck_assert_msg(rawpeer_recv(p, 5000, m) == 0, "no welcome");
    ck_assert_msg(m->command == PSOD__COMMAND__CMD_WELCOME, "%s, not a welcome: %s",
                  wire_command_name(m->command),
                  m->command == PSOD__COMMAND__CMD_ERROR ? ((Psod__Error *)m->meta)->message : "");
}

/* HELLO as `name` with n floats x (layout 7); the Welcome's round. */
static inline uint64_t rawpeer_join(struct rawpeer *p, const char *name, const float *x, size_t n)
{
    struct wire_msg m;
    rawpeer_hello(p, name, x, n, 0, &m);
    uint64_t round = ((const Psod__Welcome *)m.meta)->round;
    wire_msg_clear(&m);
    return round;
}

/* PUSH of n floats x for `round` with `loss` and a right CRC. */
static inline void rawpeer_push(struct rawpeer *p, uint64_t seq, uint64_t round, double loss,
                                const float *x, size_t n)
{
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = seq;
    q.round = round;
    q.loss = loss;
    q.samples = 1;
    q.payload_crc32c = crc32c(0, x, n * sizeof(float));
    rawpeer_send(p, PSOD__COMMAND__CMD_PUSH, &q.base, x, n);
}

#endif
