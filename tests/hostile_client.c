/* hostile_client: a raw ZeroMQ peer that sends psod malformed messages.
 *
 *   hostile_client ENDPOINT [ROUNDS]
 *
 * Each round sends every kind of bad message below and waits for the
 * daemon's Error reply with the expected code. Then it sends one message
 * larger than the daemon's size limit on its own connection (ZeroMQ drops
 * that connection; no reply is possible) and checks the daemon still
 * answers a status request. Prints what it sent and received; exit 0 only
 * if every bad message got the right error and the daemon is still up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/psoclient.h"
#include "common/wire.h"

struct bad {
    const char *what;
    int expect;
    int nframes;
    const void *data[6];
    size_t len[6];
};

static int s_send(void *sock, const struct bad *b)
{
    for (int i = 0; i < b->nframes; i++)
        if (zmq_send(sock, b->data[i], b->len[i], i + 1 < b->nframes ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hostile_client ENDPOINT [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 10;
    static const unsigned char sig[5] = {'P', 'S', 'O', 'D', PSOD_PROTOCOL_VERSION};
    static const unsigned char sig9[5] = {'P', 'S', 'O', 'D', 9};
    static const unsigned char c_push = PSOD__COMMAND__CMD_PUSH, c_hb = PSOD__COMMAND__CMD_HEARTBEAT,
                               c_hello = PSOD__COMMAND__CMD_HELLO, c_bad = 77,
                               c_pos = PSOD__COMMAND__CMD_POSITION;
    unsigned char garbage[200], bigmeta[70 * 1024], f7[7] = {0}, f8[8] = {0};
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 37 + 11);
    memset(bigmeta, 0x08, sizeof bigmeta);
    /* A valid push and hello metadata, for the semantic refusals. */
    Psod__Push push = PSOD__PUSH__INIT;
    push.round = 0;
    push.loss = 1.0;
    unsigned char pushbuf[64];
    size_t pushlen = protobuf_c_message_pack(&push.base, pushbuf);
    Psod__Hello hello = PSOD__HELLO__INIT;
    hello.worker_name = "impostor"; /* routing id will not be "w:impostor" */
    hello.protocol_version = PSOD_PROTOCOL_VERSION;
    hello.param_count = 2;
    unsigned char hellobuf[64];
    size_t hellolen = protobuf_c_message_pack(&hello.base, hellobuf);

    const struct bad bads[] = {
        {"garbage frame", PSOD__ERROR_CODE__ERR_BAD_SIGNATURE, 1, {garbage}, {sizeof garbage}},
        {"empty frame", PSOD__ERROR_CODE__ERR_BAD_SIGNATURE, 1, {""}, {0}},
        {"wrong version", PSOD__ERROR_CODE__ERR_VERSION, 3, {sig9, &c_hb, ""}, {5, 1, 0}},
        {"signature only", PSOD__ERROR_CODE__ERR_MALFORMED, 1, {sig}, {5}},
        {"no metadata", PSOD__ERROR_CODE__ERR_MALFORMED, 2, {sig, &c_hb}, {5, 1}},
        {"too many frames", PSOD__ERROR_CODE__ERR_MALFORMED, 6, {sig, &c_hb, "", "", "", ""},
         {5, 1, 0, 0, 0, 0}},
        {"unknown command", PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, 3, {sig, &c_bad, ""}, {5, 1, 0}},
        {"long command", PSOD__ERROR_CODE__ERR_MALFORMED, 3, {sig, "ab", ""}, {5, 2, 0}},
        {"garbage metadata", PSOD__ERROR_CODE__ERR_MALFORMED, 3, {sig, &c_hello, garbage},
         {5, 1, sizeof garbage}},
        {"oversized metadata", PSOD__ERROR_CODE__ERR_TOO_LARGE, 3, {sig, &c_hello, bigmeta},
         {5, 1, sizeof bigmeta}},
        {"payload not float32", PSOD__ERROR_CODE__ERR_SIZE, 4, {sig, &c_push, pushbuf, f7},
         {5, 1, pushlen, 7}},
        {"heartbeat with payload", PSOD__ERROR_CODE__ERR_MALFORMED, 4, {sig, &c_hb, "", f8},
         {5, 1, 0, 8}},
        {"push before hello", PSOD__ERROR_CODE__ERR_NOT_JOINED, 4, {sig, &c_push, pushbuf, f8},
         {5, 1, pushlen, 8}},
        {"hello under another's id", PSOD__ERROR_CODE__ERR_MALFORMED, 4,
         {sig, &c_hello, hellobuf, f8}, {5, 1, hellolen, 8}},
        {"position to the daemon", PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, 4,
         {sig, &c_pos, "", f8}, {5, 1, 0, 8}},
    };
    const int nbad = (int)(sizeof bads / sizeof bads[0]);

    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "hostile_client: connect %s: %s\n", argv[1], zmq_strerror(errno));
        return 2;
    }
    int sent = 0, right = 0, wrong = 0, silent = 0;
    struct wire_limits lim = {0, 0};
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < nbad; k++) {
            if (s_send(sock, &bads[k]) != 0) {
                fprintf(stderr, "hostile_client: send: %s\n", zmq_strerror(errno));
                return 2;
            }
            sent++;
            struct wire_msg m;
            struct wire_error e;
            int rc = wire_recv(sock, 0, 0, &lim, &m, &e);
            if (rc < 0) {
                silent++;
                fprintf(stderr, "hostile_client: no reply to '%s'\n", bads[k].what);
                continue;
            }
            int code = rc == 0 && m.command == PSOD__COMMAND__CMD_ERROR
                           ? (int)((Psod__Error *)m.meta)->code
                           : -1;
            if (code == bads[k].expect) {
                right++;
            } else {
                wrong++;
                fprintf(stderr, "hostile_client: '%s' got %s, expected %s\n", bads[k].what,
                        code < 0 ? "a non-error reply" : wire_error_name(code),
                        wire_error_name(bads[k].expect));
            }
            wire_msg_clear(&m);
        }
    }
    zmq_close(sock);

    /* Larger than any limit: ZeroMQ itself cuts this connection. */
    void *big = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(big, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(big, argv[1]);
    size_t hugelen = argc > 3 ? (size_t)atol(argv[3]) : (size_t)8 << 20;
    void *huge = calloc(1, hugelen);
    zmq_send(big, sig, 5, ZMQ_SNDMORE);
    zmq_send(big, &c_push, 1, ZMQ_SNDMORE);
    zmq_send(big, pushbuf, pushlen, ZMQ_SNDMORE);
    zmq_send(big, huge, hugelen, 0);
    free(huge);
    zmq_close(big);
    zmq_ctx_term(ctx);

    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 5000;
    struct psoc *c;
    char err[256];
    struct psoc_status st;
    int alive = psoc_open(&c, argv[1], NULL, &o, err, sizeof err) == PSOC_OK &&
                psoc_status(c, 0, &st, err, sizeof err) == PSOC_OK;
    if (c)
        psoc_close(&c);
    printf("hostile_client: sent %d bad messages, %d right errors, %d wrong, %d unanswered; "
           "daemon %s%s%llu errors sent in all\n",
           sent, right, wrong, silent, alive ? "alive" : "NOT ANSWERING: ", alive ? ", " : err,
           alive ? (unsigned long long)st.errors_sent : 0ull);
    return right == sent && alive ? 0 : 1;
}
