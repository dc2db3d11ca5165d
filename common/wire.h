/* The wire format of psod: framing, validation and (un)packing of one
 * multipart message. Both the daemon and the client library use it; it knows
 * nothing about swarms or training.
 *
 *   frame 0  signature: "PSOD" + one version byte (PSOD_PROTOCOL_VERSION)
 *   frame 1  command: one byte (enum Psod__Command)
 *   frame 2  metadata: the protobuf message of that command
 *   frame 3  payload: raw little-endian float32 values (some commands only)
 *
 * A ROUTER socket sees the peer's routing id before frame 0. Decoding never
 * trusts the peer: every size is checked against limits before anything is
 * allocated, and any error is returned as a psod error code plus a message
 * fit to send back to the peer. */
#ifndef PSOD_WIRE_H
#define PSOD_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "proto/psod.pb-c.h"

#define PSOD_SIGNATURE "PSOD"
/* 2: the daemon assigns routing ids; Welcome.session binds later hellos and
 * heartbeats to the process it welcomed. */
#define PSOD_PROTOCOL_VERSION 2
#define PSOD_SESSION_LEN 16
#define PSOD_SIGNATURE_LEN 5
#define WIRE_MAX_FRAMES 4
#define WIRE_MAX_ID 255
/* Worker names: 1 to WIRE_NAME_MAX printable characters without spaces, the
 * one rule psod, the client library and psoworker all apply. */
#define WIRE_NAME_MAX 127
int wire_valid_name(const char *name);
#define WIRE_DEFAULT_MAX_META (64 * 1024)

struct wire_limits {
    size_t max_meta;    /* bytes of the metadata frame */
    size_t max_payload; /* bytes of the payload frame */
};

struct wire_error {
    int code; /* Psod__ErrorCode; 0 when none */
    char message[256];
};

/* One decoded message. */
struct wire_msg {
    unsigned char id[WIRE_MAX_ID]; /* routing id (ROUTER side only) */
    size_t id_len;
    int command;            /* Psod__Command */
    ProtobufCMessage *meta; /* unpacked metadata, owned */
    zmq_msg_t payload;      /* valid when has_payload */
    int has_payload;
    size_t bytes;  /* total bytes received, all frames */
    char user[72]; /* ZAP user id of the connection ("" = none): with
                                    * CURVE the name of the peer's key */
};

/* Whether a command carries a payload: 0 never, 1 always, 2 optional. */
int wire_payload_rule(int command);
const ProtobufCMessageDescriptor *wire_descriptor(int command);
const char *wire_command_name(int command);

/* A tcp:// endpoint's port, when it names one, is 1..65535 (ZeroMQ would
 * take 99999 modulo 65536 and listen elsewhere without a word). 0, or -1
 * with err filled. */
int wire_check_port(const char *endpoint, char *err, size_t errlen);
const char *wire_error_name(int code);

/* Validate and decode frames (without routing id). Takes ownership of the
 * payload frame on success (moved into out->payload); the caller closes the
 * other frames. Returns 0, or a Psod__ErrorCode with `err` filled. */
int wire_decode(zmq_msg_t *frames, int nframes, int more_frames, const struct wire_limits *lim,
                struct wire_msg *out, struct wire_error *err);

/* Receive one whole message from `sock` (non-blocking when flags has
 * ZMQ_DONTWAIT). With `router`, the first frame is the routing id.
 * Returns 0 on success, a positive Psod__ErrorCode for a message that
 * arrived but is invalid (all its frames consumed, out->id filled so the
 * caller can reply), or -1 with errno set when nothing was received. */
int wire_recv(void *sock, int router, int flags, const struct wire_limits *lim,
              struct wire_msg *out, struct wire_error *err);

/* Free what wire_decode/wire_recv put in `m` (metadata and payload). */
void wire_msg_clear(struct wire_msg *m);

/* Send one message. `id` is the routing id (ROUTER side) or NULL.
 * `payload`, when not NULL, is sent and thereby emptied (zero-copy).
 * Returns 0 or -1 with errno set (EAGAIN, EHOSTUNREACH, ...). */
int wire_send(void *sock, const void *id, size_t id_len, int command, const ProtobufCMessage *meta,
              zmq_msg_t *payload, int flags);

/* Send an Error message. */
int wire_send_error(void *sock, const void *id, size_t id_len, int code, const char *message,
                    uint64_t seq, uint64_t round);

/* Make the payload's data float-aligned. ZeroMQ hands small messages out
 * of its receive buffer at any byte offset; such a payload is copied into
 * a buffer of its own. Returns 0, or -1 when out of memory. */
int wire_payload_align(zmq_msg_t *payload);

/* A frame that takes `buf` (malloc'd, `bytes` of it): ZeroMQ frees it once
 * sent. 0, or -1 (out of memory, or bytes 0) with buf freed. */
int wire_msg_adopt(zmq_msg_t *m, void *buf, size_t bytes);

/* Read one event from a ZeroMQ socket monitor (a PAIR connected to the
 * endpoint given to zmq_socket_monitor): the event number and its value.
 * Never blocks. Returns 0, or -1 when none is queued. */
/* Read and drop whatever a monitor socket holds, waiting 5 ms for more
 * after each event; for just before it is closed (an unread event that
 * names a long endpoint is a heap message libzmq loses at the context's
 * end). Stop the monitor first (zmq_socket_monitor(sock, NULL, 0)). */
void wire_monitor_drain(void *mon);
int wire_monitor_event(void *mon, uint16_t *event, uint32_t *value);

#endif
