/* Suite: common/wire (framing, validation, round trips). */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "common/payload.h"

static void *ctx, *a, *b;
static const struct wire_limits lim = {1024, 1 << 20};

static void setup(void)
{
    ctx = zmq_ctx_new();
    a = zmq_socket(ctx, ZMQ_PAIR);
    b = zmq_socket(ctx, ZMQ_PAIR);
    ck_assert_int_eq(zmq_bind(a, "inproc://wire"), 0);
    ck_assert_int_eq(zmq_connect(b, "inproc://wire"), 0);
}

static void teardown(void)
{
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

/* Send raw frames from b, receive on a, return wire_recv's code. */
static int s_raw(const void *const *data, const size_t *len, int n, struct wire_msg *m,
                 struct wire_error *e)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_ge(zmq_send(b, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0), 0);
    return wire_recv(a, 0, 0, &lim, m, e);
}

START_TEST(push_round_trip_with_payload)
{
    float w[1000];
    for (int i = 0; i < 1000; i++)
        w[i] = (float)i * 0.5f;
    Psod__Push p = PSOD__PUSH__INIT;
    p.round = 17;
    p.loss = 0.125;
    p.samples = 640;
    p.payload_crc32c = 0xdeadbeef;
    p.seq = 3;
    zmq_msg_t pl;
    zmq_msg_init_size(&pl, sizeof w);
    memcpy(zmq_msg_data(&pl), w, sizeof w);
    ck_assert_int_eq(wire_send(b, NULL, 0, PSOD__COMMAND__CMD_PUSH, &p.base, &pl, 0), 0);
    zmq_msg_close(&pl);
    struct wire_msg m;
    struct wire_error e;
    ck_assert_int_eq(wire_recv(a, 0, 0, &lim, &m, &e), 0);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_PUSH);
    Psod__Push *q = (Psod__Push *)m.meta;
    ck_assert_uint_eq(q->round, 17);
    ck_assert_double_eq(q->loss, 0.125);
    ck_assert_uint_eq(q->samples, 640);
    ck_assert_uint_eq(q->payload_crc32c, 0xdeadbeef);
    ck_assert_uint_eq(q->seq, 3);
    ck_assert(m.has_payload);
    ck_assert_uint_eq(zmq_msg_size(&m.payload), sizeof w);
    ck_assert_mem_eq(zmq_msg_data(&m.payload), w, sizeof w);
    wire_msg_clear(&m);
}
END_TEST

START_TEST(every_command_round_trips)
{
    for (int cmd = 1; cmd <= PSOD__COMMAND__CMD_STATUS; cmd++) {
        const ProtobufCMessageDescriptor *d = wire_descriptor(cmd);
        ck_assert_ptr_nonnull(d);
        ProtobufCMessage *msg = calloc(1, d->sizeof_message);
        d->message_init(msg);
        zmq_msg_t pl, *plp = NULL;
        if (wire_payload_rule(cmd) == 1) {
            zmq_msg_init_size(&pl, 8);
            memset(zmq_msg_data(&pl), 0, 8);
            plp = &pl;
        }
        ck_assert_int_eq(wire_send(b, NULL, 0, cmd, msg, plp, 0), 0);
        if (plp)
            zmq_msg_close(plp);
        struct wire_msg m;
        struct wire_error e;
        ck_assert_msg(wire_recv(a, 0, 0, &lim, &m, &e) == 0, "%s: %s", wire_command_name(cmd),
                      e.message);
        ck_assert_int_eq(m.command, cmd);
        ck_assert_ptr_eq(m.meta->descriptor, d);
        wire_msg_clear(&m);
        free(msg);
    }
}
END_TEST

START_TEST(status_with_particles_round_trips)
{
    Psod__Status st = PSOD__STATUS__INIT;
    Psod__ParticleStatus p1 = PSOD__PARTICLE_STATUS__INIT, p2 = PSOD__PARTICLE_STATUS__INIT;
    Psod__ParticleStatus *pp[2] = {&p1, &p2};
    p1.worker_name = "a";
    p2.worker_name = "bb";
    p2.best_loss = INFINITY;
    st.n_particle = 2;
    st.particle = pp;
    st.global_best_loss = 1.5;
    st.strategy = "pso";
    ck_assert_int_eq(wire_send(b, NULL, 0, PSOD__COMMAND__CMD_STATUS, &st.base, NULL, 0), 0);
    struct wire_msg m;
    struct wire_error e;
    ck_assert_int_eq(wire_recv(a, 0, 0, &lim, &m, &e), 0);
    Psod__Status *q = (Psod__Status *)m.meta;
    ck_assert_uint_eq(q->n_particle, 2);
    ck_assert_str_eq(q->particle[1]->worker_name, "bb");
    ck_assert(isinf(q->particle[1]->best_loss));
    ck_assert_str_eq(q->strategy, "pso");
    wire_msg_clear(&m);
}
END_TEST

static const unsigned char SIG[5] = {'P', 'S', 'O', 'D', PSOD_PROTOCOL_VERSION};

START_TEST(rejects_bad_signature_and_version)
{
    struct wire_msg m;
    struct wire_error e;
    unsigned char cmd = PSOD__COMMAND__CMD_HEARTBEAT;
    const void *d1[] = {"XSOD\x01", &cmd, ""};
    size_t l1[] = {5, 1, 0};
    ck_assert_int_eq(s_raw(d1, l1, 3, &m, &e), PSOD__ERROR_CODE__ERR_BAD_SIGNATURE);
    const void *d2[] = {"PSOD\x09", &cmd, ""};
    ck_assert_int_eq(s_raw(d2, l1, 3, &m, &e), PSOD__ERROR_CODE__ERR_VERSION);
    ck_assert_ptr_nonnull(strstr(e.message, "version 9"));
    const void *d3[] = {"PSOD", &cmd, ""};
    size_t l3[] = {4, 1, 0};
    ck_assert_int_eq(s_raw(d3, l3, 3, &m, &e), PSOD__ERROR_CODE__ERR_BAD_SIGNATURE);
}
END_TEST

START_TEST(rejects_truncated_and_extra_frames)
{
    struct wire_msg m;
    struct wire_error e;
    unsigned char cmd = PSOD__COMMAND__CMD_HEARTBEAT;
    const void *d[] = {SIG, &cmd, "", "x", "y", "z"};
    size_t l[] = {5, 1, 0, 1, 1, 1};
    ck_assert_int_eq(s_raw(d, l, 1, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_int_eq(s_raw(d, l, 2, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_int_eq(s_raw(d, l, 6, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    /* The socket is still in step: the next message decodes. */
    ck_assert_int_eq(s_raw(d, l, 3, &m, &e), 0);
    wire_msg_clear(&m);
    /* Heartbeat with a payload frame, push without one. */
    unsigned char f4[4] = {0};
    const void *d4[] = {SIG, &cmd, "", f4};
    size_t l4[] = {5, 1, 0, 4};
    ck_assert_int_eq(s_raw(d4, l4, 4, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    unsigned char push = PSOD__COMMAND__CMD_PUSH;
    const void *d5[] = {SIG, &push, ""};
    ck_assert_int_eq(s_raw(d5, l4, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
}
END_TEST

START_TEST(rejects_unknown_command_garbage_and_oversize)
{
    struct wire_msg m;
    struct wire_error e;
    unsigned char bad = 200, two[2] = {1, 1}, hello = PSOD__COMMAND__CMD_HELLO;
    const void *d1[] = {SIG, &bad, ""};
    size_t l1[] = {5, 1, 0};
    ck_assert_int_eq(s_raw(d1, l1, 3, &m, &e), PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND);
    const void *d2[] = {SIG, two, ""};
    size_t l2[] = {5, 2, 0};
    ck_assert_int_eq(s_raw(d2, l2, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    unsigned char garbage[64];
    for (int i = 0; i < 64; i++)
        garbage[i] = (unsigned char)(0xff - i);
    const void *d3[] = {SIG, &hello, garbage};
    size_t l3[] = {5, 1, 64};
    ck_assert_int_eq(s_raw(d3, l3, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    unsigned char *big = calloc(1, 2048);
    const void *d4[] = {SIG, &hello, big};
    size_t l4[] = {5, 1, 2048};
    ck_assert_int_eq(s_raw(d4, l4, 3, &m, &e), PSOD__ERROR_CODE__ERR_TOO_LARGE);
    unsigned char push = PSOD__COMMAND__CMD_PUSH;
    unsigned char *huge = calloc(1, (1 << 20) + 4);
    const void *d5[] = {SIG, &push, "", huge};
    size_t l5[] = {5, 1, 0, (1 << 20) + 4};
    ck_assert_int_eq(s_raw(d5, l5, 4, &m, &e), PSOD__ERROR_CODE__ERR_TOO_LARGE);
    /* Hello payloads are float32; a push's size depends on its encoding. */
    const void *d6[] = {SIG, &hello, "", huge};
    size_t l6[] = {5, 1, 0, 7};
    ck_assert_int_eq(s_raw(d6, l6, 4, &m, &e), PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(s_raw(d5, l6, 4, &m, &e), 0);
    wire_msg_clear(&m);
    /* So are a VERIFY's (a candidate's weights), which needs one. */
    unsigned char verify = PSOD__COMMAND__CMD_VERIFY;
    const void *d7[] = {SIG, &verify, "", huge};
    ck_assert_int_eq(s_raw(d7, l6, 4, &m, &e), PSOD__ERROR_CODE__ERR_SIZE);
    ck_assert_int_eq(s_raw(d7, l6, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    size_t l7[] = {5, 1, 0, 8};
    ck_assert_int_eq(s_raw(d7, l7, 4, &m, &e), 0);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_VERIFY);
    wire_msg_clear(&m);
    free(big);
    free(huge);
}
END_TEST

START_TEST(rejects_field_number_zero)
{
    /* Found by fuzz_wire: protobuf-c takes a tag of field number 0 (here
     * the overlong varint 0x80 0x00) as an unknown field, which protobuf
     * forbids and which does not survive being packed again. */
    struct wire_msg m;
    struct wire_error e;
    unsigned char hb = PSOD__COMMAND__CMD_HEARTBEAT, meta[] = {0x08, 0x01, 0x80, 0x00, 0x05};
    const void *d[] = {SIG, &hb, meta};
    size_t l[] = {5, 1, sizeof meta};
    ck_assert_int_eq(s_raw(d, l, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_ptr_nonnull(strstr(e.message, "field number 0"));
    ck_assert_ptr_null(m.meta);
    /* The same inside a nested message (found by fuzz_wire in CI): a Status
     * whose ParticleStatus holds field 0 as a 64-bit value. */
    unsigned char st = PSOD__COMMAND__CMD_STATUS, meta3[] = {0x72, 0x0a, 0x81, 0x00, 0x12, 0x08,
                                                             0x77, 0x6f, 0x01, 0x00, 0x00, 0x00};
    const void *d3[] = {SIG, &st, meta3};
    size_t l3[] = {5, 1, sizeof meta3};
    ck_assert_int_eq(s_raw(d3, l3, 3, &m, &e), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_ptr_nonnull(strstr(e.message, "field number 0"));
    /* An unknown field with a real number is kept (newer peers). */
    unsigned char meta2[] = {0x08, 0x01, 0xf8, 0x07, 0x05};
    const void *d2[] = {SIG, &hb, meta2};
    size_t l2[] = {5, 1, sizeof meta2};
    ck_assert_int_eq(s_raw(d2, l2, 3, &m, &e), 0);
    ck_assert_uint_eq(m.meta->n_unknown_fields, 1);
    wire_msg_clear(&m);
}
END_TEST

START_TEST(decode_every_truncation_of_a_valid_message)
{
    /* Cut the metadata of a valid hello at every length: never a crash;
     * either an error or a decoded message. */
    Psod__Hello h = PSOD__HELLO__INIT;
    h.worker_name = "worker-with-a-name";
    h.param_count = 123456789;
    h.layout_hash = 0x1234567890abcdefull;
    h.protocol_version = 1;
    unsigned char buf[256];
    size_t len = protobuf_c_message_pack(&h.base, buf);
    unsigned char hello = PSOD__COMMAND__CMD_HELLO;
    for (size_t cut = 0; cut <= len; cut++) {
        zmq_msg_t f[3];
        zmq_msg_init_size(&f[0], 5);
        memcpy(zmq_msg_data(&f[0]), SIG, 5);
        zmq_msg_init_size(&f[1], 1);
        memcpy(zmq_msg_data(&f[1]), &hello, 1);
        zmq_msg_init_size(&f[2], cut);
        memcpy(zmq_msg_data(&f[2]), buf, cut);
        struct wire_msg m;
        struct wire_error e;
        int rc = wire_decode(f, 3, 0, &lim, &m, &e);
        ck_assert(rc == 0 || rc == PSOD__ERROR_CODE__ERR_MALFORMED);
        if (cut == len) {
            ck_assert_int_eq(rc, 0);
            ck_assert_str_eq(((Psod__Hello *)m.meta)->worker_name, "worker-with-a-name");
        }
        wire_msg_clear(&m);
        for (int i = 0; i < 3; i++)
            zmq_msg_close(&f[i]);
    }
}
END_TEST

START_TEST(small_payloads_come_out_float_aligned)
{
    /* Over TCP, ZeroMQ packs small frames into its receive buffer at any
     * offset; metadata of every length from 0 to 8 shifts the payload. */
    void *ra = zmq_socket(ctx, ZMQ_PAIR), *rb = zmq_socket(ctx, ZMQ_PAIR);
    char ep[128];
    size_t eplen = sizeof ep;
    ck_assert_int_eq(zmq_bind(ra, "tcp://127.0.0.1:*"), 0);
    zmq_getsockopt(ra, ZMQ_LAST_ENDPOINT, ep, &eplen);
    ck_assert_int_eq(zmq_connect(rb, ep), 0);
    for (size_t metalen = 0; metalen < 9; metalen++) {
        Psod__Push p = PSOD__PUSH__INIT;
        p.seq = metalen ? (1ull << (7 * (metalen - 1))) : 0;
        float w[16]; /* above ZeroMQ's 33-byte in-struct messages */
        for (int i = 0; i < 16; i++)
            w[i] = 1.5f * (float)i - 7.0f;
        zmq_msg_t pl;
        zmq_msg_init_size(&pl, sizeof w);
        memcpy(zmq_msg_data(&pl), w, sizeof w);
        ck_assert_int_eq(wire_send(rb, NULL, 0, PSOD__COMMAND__CMD_PUSH, &p.base, &pl, 0), 0);
        zmq_msg_close(&pl);
        struct wire_msg m;
        struct wire_error e;
        ck_assert_int_eq(wire_recv(ra, 0, 0, &lim, &m, &e), 0);
        ck_assert_uint_eq((uintptr_t)zmq_msg_data(&m.payload) % sizeof(float), 0);
        ck_assert_mem_eq(zmq_msg_data(&m.payload), w, sizeof w);
        wire_msg_clear(&m);
    }
    int linger = 0;
    zmq_setsockopt(ra, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(rb, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(ra);
    zmq_close(rb);
}
END_TEST

START_TEST(counts_nonfinite)
{
    float x[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i - 50.0f;
    ck_assert_uint_eq(payload_count_nonfinite(x, 100), 0);
    x[3] = NAN;
    x[50] = INFINITY;
    x[99] = -INFINITY;
    ck_assert_uint_eq(payload_count_nonfinite(x, 100), 3);
    x[4] = 3.4e38f;
    x[5] = 1e-45f; /* denormal is finite */
    ck_assert_uint_eq(payload_count_nonfinite(x, 100), 3);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(wire_command_name(PSOD__COMMAND__CMD_PUSH), "push");
    ck_assert_str_eq(wire_command_name(99), "unknown");
    ck_assert_str_eq(wire_error_name(PSOD__ERROR_CODE__ERR_CHECKSUM), "ERR_CHECKSUM");
}
END_TEST

START_TEST(ports_outside_their_range_are_refused)
{
    char err[256];
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:5555", err, sizeof err), 0);
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:*", err, sizeof err), 0);
    ck_assert_int_eq(wire_check_port("tcp://[::1]:65535", err, sizeof err), 0);
    ck_assert_int_eq(wire_check_port("ipc:///tmp/x:99999", err, sizeof err), 0);
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:99999", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "port 99999 is outside 1..65535"), "%s", err);
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:0", err, sizeof err), -1);
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:12345678901234567890", err, sizeof err), -1);
    ck_assert_int_eq(wire_check_port("tcp://127.0.0.1:55x", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a number"), "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, push_round_trip_with_payload);
    tcase_add_test(tc, every_command_round_trips);
    tcase_add_test(tc, status_with_particles_round_trips);
    tcase_add_test(tc, rejects_bad_signature_and_version);
    tcase_add_test(tc, rejects_truncated_and_extra_frames);
    tcase_add_test(tc, rejects_unknown_command_garbage_and_oversize);
    tcase_add_test(tc, rejects_field_number_zero);
    tcase_add_test(tc, decode_every_truncation_of_a_valid_message);
    tcase_add_test(tc, small_payloads_come_out_float_aligned);
    tcase_add_test(tc, counts_nonfinite);
    tcase_add_test(tc, names);
    tcase_add_test(tc, ports_outside_their_range_are_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
