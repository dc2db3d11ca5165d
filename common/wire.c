/* Wire format: see wire.h and proto/PROTOCOL.md. */
#include "common/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    int payload; /* 0 never, 1 always, 2 optional */
} s_commands[] = {
    [PSOD__COMMAND__CMD_NONE] = {"none", NULL, 0},
    [PSOD__COMMAND__CMD_HELLO] = {"hello", &psod__hello__descriptor, 2},
    [PSOD__COMMAND__CMD_WELCOME] = {"welcome", &psod__welcome__descriptor, 1},
    [PSOD__COMMAND__CMD_PUSH] = {"push", &psod__push__descriptor, 1},
    [PSOD__COMMAND__CMD_POSITION] = {"position", &psod__position__descriptor, 1},
    [PSOD__COMMAND__CMD_HEARTBEAT] = {"heartbeat", &psod__heartbeat__descriptor, 0},
    [PSOD__COMMAND__CMD_ERROR] = {"error", &psod__error__descriptor, 0},
    [PSOD__COMMAND__CMD_BYE] = {"bye", &psod__bye__descriptor, 0},
    [PSOD__COMMAND__CMD_STATUS_REQUEST] = {"status-request", &psod__status_request__descriptor, 0},
    [PSOD__COMMAND__CMD_STATUS] = {"status", &psod__status__descriptor, 0},
    [PSOD__COMMAND__CMD_ADMIN] = {"admin", &psod__admin__descriptor, 0},
    [PSOD__COMMAND__CMD_ADMIN_REPLY] = {"admin-reply", &psod__admin_reply__descriptor, 0},
    [PSOD__COMMAND__CMD_SHARD_HELLO] = {"shard-hello", &psod__shard_hello__descriptor, 0},
    [PSOD__COMMAND__CMD_SHARD_ORDER] = {"shard-order", &psod__shard_order__descriptor, 0},
    [PSOD__COMMAND__CMD_SHARD_REPORT] = {"shard-report", &psod__shard_report__descriptor, 2},
    [PSOD__COMMAND__CMD_VERIFY] = {"verify", &psod__verify__descriptor, 1},
    [PSOD__COMMAND__CMD_MODEL_REQUEST] = {"model-request", &psod__model_request__descriptor, 0},
    [PSOD__COMMAND__CMD_MODEL] = {"model", &psod__model__descriptor, 1},
};
#define N_COMMANDS ((int)(sizeof s_commands / sizeof s_commands[0]))

static int s_known(int command) { return command > 0 && command < N_COMMANDS; }

int wire_payload_rule(int command) { return s_known(command) ? s_commands[command].payload : 0; }

const ProtobufCMessageDescriptor *wire_descriptor(int command)
{
    return s_known(command) ? s_commands[command].desc : NULL;
}

int wire_check_port(const char *endpoint, char *err, size_t errlen)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return 0;
    const char *colon = strrchr(endpoint + 6, ':');
    if (!colon || colon[1] == '*' || colon[1] == '\0')
        return 0; /* no port, or any free one: ZeroMQ says what it thinks */
    const char *p = colon + 1;
    if (strspn(p, "0123456789") != strlen(p)) {
        snprintf(err, errlen,
                 "'%s': the port '%s' is not a number (tcp://ADDRESS:PORT, 1 to "
                 "65535, or * for any free port)",
                 endpoint, p);
        return -1;
    }
    long port = strlen(p) > 6 ? 100000 : strtol(p, NULL, 10);
    if (port < 1 || port > 65535) {
        snprintf(err, errlen, "'%s': port %s is outside 1..65535", endpoint, p);
        return -1;
    }
    return 0;
}

const char *wire_command_name(int command)
{
    return s_known(command) ? s_commands[command].name : "unknown";
}

const char *wire_error_name(int code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&psod__error_code__descriptor, code);
    return v ? v->name : "ERR_UNKNOWN";
}

static int s_fail(struct wire_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(struct wire_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

/* Whether `m` or any message inside it kept an unknown field numbered 0. */
static int s_has_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *sub = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (sub[k] && s_has_field_zero(sub[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
            if (sub && s_has_field_zero(sub))
                return 1;
        }
    }
    return 0;
}

int wire_decode(zmq_msg_t *frames, int nframes, int more_frames, const struct wire_limits *lim,
                struct wire_msg *out, struct wire_error *err)
{
    out->meta = NULL;
    out->has_payload = 0;
    out->command = 0;
    err->code = 0;
    err->message[0] = '\0';

    if (nframes < 1)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "empty message");
    const unsigned char *sig = zmq_msg_data(&frames[0]);
    size_t siglen = zmq_msg_size(&frames[0]);
    if (siglen != PSOD_SIGNATURE_LEN || memcmp(sig, PSOD_SIGNATURE, 4) != 0)
        return s_fail(err, PSOD__ERROR_CODE__ERR_BAD_SIGNATURE,
                      "first frame must be \"PSOD\" plus a version byte (%zu bytes received)",
                      siglen);
    if (sig[4] != PSOD_PROTOCOL_VERSION)
        return s_fail(
            err, PSOD__ERROR_CODE__ERR_VERSION,
            "protocol version %u not supported (this side speaks %u: psod and its workers "
            "must come from releases with the same protocol)",
            sig[4], PSOD_PROTOCOL_VERSION);
    if (nframes < 3 || more_frames)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED,
                      "expected 3 or 4 frames after the routing id, received %d%s", nframes,
                      more_frames ? " or more" : "");
    if (zmq_msg_size(&frames[1]) != 1)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "command frame must be 1 byte, not %zu",
                      zmq_msg_size(&frames[1]));
    int command = *(const unsigned char *)zmq_msg_data(&frames[1]);
    if (!s_known(command))
        return s_fail(err, PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, "unknown command %d", command);
    out->command = command;

    size_t metalen = zmq_msg_size(&frames[2]);
    size_t max_meta = lim && lim->max_meta ? lim->max_meta : WIRE_DEFAULT_MAX_META;
    if (metalen > max_meta)
        return s_fail(err, PSOD__ERROR_CODE__ERR_TOO_LARGE, "%s metadata is %zu bytes, limit %zu",
                      wire_command_name(command), metalen, max_meta);

    int rule = s_commands[command].payload;
    if (nframes == 4 && rule == 0)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "%s carries no payload frame",
                      wire_command_name(command));
    if (nframes == 3 && rule == 1)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "%s needs a payload frame",
                      wire_command_name(command));
    if (nframes == 4) {
        size_t plen = zmq_msg_size(&frames[3]);
        if (lim && lim->max_payload && plen > lim->max_payload)
            return s_fail(err, PSOD__ERROR_CODE__ERR_TOO_LARGE, "payload is %zu bytes, limit %zu",
                          plen, lim->max_payload);
        /* Hello, welcome and verify payloads are float32 vectors; a push's or a
         * position's size depends on its encoding (fp16, bf16, int8) and
         * is its receiver's to check. */
        int f32 = command == PSOD__COMMAND__CMD_HELLO || command == PSOD__COMMAND__CMD_WELCOME ||
                  command == PSOD__COMMAND__CMD_VERIFY;
        if (f32 && plen % sizeof(float))
            return s_fail(err, PSOD__ERROR_CODE__ERR_SIZE,
                          "%s payload is %zu bytes, not a whole number of float32 values",
                          wire_command_name(command), plen);
    }

    out->meta = protobuf_c_message_unpack(s_commands[command].desc, NULL, metalen,
                                          zmq_msg_data(&frames[2]));
    if (!out->meta)
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "%s metadata does not parse",
                      wire_command_name(command));
    /* protobuf-c keeps fields it does not know (newer peers may send more),
     * but accepts field number 0, which protobuf forbids and which would not
     * survive being packed again. */
    if (s_has_field_zero(out->meta)) {
        protobuf_c_message_free_unpacked(out->meta, NULL);
        out->meta = NULL;
        return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "%s metadata holds field number 0",
                      wire_command_name(command));
    }
    if (nframes == 4) {
        zmq_msg_init(&out->payload);
        zmq_msg_move(&out->payload, &frames[3]);
        out->has_payload = 1;
        if (wire_payload_align(&out->payload) != 0) {
            wire_msg_clear(out);
            return s_fail(err, PSOD__ERROR_CODE__ERR_INTERNAL, "out of memory for the payload");
        }
    }
    return 0;
}

int wire_recv(void *sock, int router, int flags, const struct wire_limits *lim,
              struct wire_msg *out, struct wire_error *err)
{
    zmq_msg_t frames[WIRE_MAX_FRAMES + 1];
    int n = 0, more = 1, extra = 0;
    out->id_len = 0;
    out->bytes = 0;
    out->meta = NULL;
    out->has_payload = 0;
    out->user[0] = '\0';
    err->code = 0;

    if (router) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, flags) < 0) {
            zmq_msg_close(&id);
            return -1;
        }
        out->id_len = zmq_msg_size(&id) <= WIRE_MAX_ID ? zmq_msg_size(&id) : WIRE_MAX_ID;
        memcpy(out->id, zmq_msg_data(&id), out->id_len);
        more = zmq_msg_more(&id);
        zmq_msg_close(&id);
        flags &= ~ZMQ_DONTWAIT; /* the rest of a multipart message is already here */
    }
    while (more) {
        zmq_msg_t *f = n < WIRE_MAX_FRAMES ? &frames[n] : &frames[WIRE_MAX_FRAMES];
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, flags) < 0) {
            int e = errno;
            zmq_msg_close(f);
            for (int i = 0; i < n && i < WIRE_MAX_FRAMES; i++)
                zmq_msg_close(&frames[i]);
            if (n == 0 && !router) {
                errno = e;
                return -1;
            }
            return s_fail(err, PSOD__ERROR_CODE__ERR_MALFORMED, "message cut short");
        }
        flags &= ~ZMQ_DONTWAIT;
        if (n == 0) {
            const char *user = zmq_msg_gets(f, "User-Id");
            snprintf(out->user, sizeof out->user, "%s", user ? user : "");
        }
        out->bytes += zmq_msg_size(f);
        more = zmq_msg_more(f);
        if (n < WIRE_MAX_FRAMES)
            n++;
        else {
            extra++; /* drain and drop frames past the last we accept */
            zmq_msg_close(f);
        }
    }
    int rc = wire_decode(frames, n, extra, lim, out, err);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

int wire_monitor_event(void *mon, uint16_t *event, uint32_t *value)
{
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        return -1;
    }
    *event = 0;
    *value = 0;
    if (zmq_msg_size(&ev) >= 6) {
        memcpy(event, zmq_msg_data(&ev), 2);
        memcpy(value, (const char *)zmq_msg_data(&ev) + 2, 4);
    }
    while (zmq_msg_more(&ev)) { /* the endpoint frame */
        zmq_msg_close(&ev);
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, mon, 0) < 0)
            break;
    }
    zmq_msg_close(&ev);
    return 0;
}

void wire_msg_clear(struct wire_msg *m)
{
    if (m->meta)
        protobuf_c_message_free_unpacked(m->meta, NULL);
    m->meta = NULL;
    if (m->has_payload)
        zmq_msg_close(&m->payload);
    m->has_payload = 0;
}

int wire_send(void *sock, const void *id, size_t id_len, int command, const ProtobufCMessage *meta,
              zmq_msg_t *payload, int flags)
{
    unsigned char sig[PSOD_SIGNATURE_LEN] = {'P', 'S', 'O', 'D', PSOD_PROTOCOL_VERSION};
    unsigned char cmd = (unsigned char)command;
    unsigned char stackbuf[1024];
    size_t len = protobuf_c_message_get_packed_size(meta);
    unsigned char *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    protobuf_c_message_pack(meta, buf);
    int rc = 0;
    if (id && zmq_send(sock, id, id_len, flags | ZMQ_SNDMORE) < 0)
        rc = -1;
    /* After the first frame the rest of the message is queued atomically. */
    if (rc == 0 && zmq_send(sock, sig, sizeof sig, flags | ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, &cmd, 1, flags | ZMQ_SNDMORE) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(sock, buf, len, flags | (payload ? ZMQ_SNDMORE : 0)) < 0)
        rc = -1;
    if (rc == 0 && payload && zmq_msg_send(payload, sock, flags) < 0)
        rc = -1;
    if (buf != stackbuf)
        free(buf);
    return rc;
}

int wire_send_error(void *sock, const void *id, size_t id_len, int code, const char *message,
                    uint64_t seq, uint64_t round)
{
    Psod__Error e = PSOD__ERROR__INIT;
    e.code = (Psod__ErrorCode)code;
    e.message = (char *)message;
    e.seq = seq;
    e.round = round;
    return wire_send(sock, id, id_len, PSOD__COMMAND__CMD_ERROR, &e.base, NULL, ZMQ_DONTWAIT);
}

static void s_free(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int wire_payload_align(zmq_msg_t *payload)
{
    const void *data = zmq_msg_data(payload);
    size_t size = zmq_msg_size(payload);
    if (((uintptr_t)data & (sizeof(float) - 1)) == 0)
        return 0;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, size ? size : 1) != 0)
        return -1;
    memcpy(buf, data, size);
    zmq_msg_t fresh;
    if (zmq_msg_init_data(&fresh, buf, size, s_free, NULL) != 0) {
        free(buf);
        return -1;
    }
    zmq_msg_close(payload);
    zmq_msg_init(payload);
    zmq_msg_move(payload, &fresh);
    return 0;
}

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int wire_msg_adopt(zmq_msg_t *m, void *buf, size_t bytes)
{
    if (!buf || !bytes || zmq_msg_init_data(m, buf, bytes, s_free_buf, NULL) != 0) {
        free(buf);
        return -1;
    }
    return 0;
}

int wire_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > WIRE_NAME_MAX)
        return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 33 || (unsigned char)*p > 126)
            return 0;
    return 1;
}

void wire_monitor_drain(void *mon)
{
    zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&it, 1, 5) > 0) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, mon, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
        if (rc < 0)
            break;
    }
}
