/* hostile_client: a raw ZeroMQ peer that sends psod bad messages.
 *
 *   hostile_client ENDPOINT [--rounds N] [--min-messages N] [--big BYTES]
 *                           [--huge BYTES]
 *
 * Each round sends every kind of bad message below (malformed, truncated,
 * wrong-version, oversized, NaN, unauthorized) and waits for the daemon's
 * Error reply with the expected code. It runs --rounds rounds, or, without
 * it, until SIGTERM/SIGINT, and then on until at least --min-messages were
 * sent. --big BYTES adds, every 16th round, a payload above the daemon's
 * --max-payload-mb (ERR_TOO_LARGE). At the end it sends one message of
 * --huge bytes (default 8 MiB) on a connection of its own: above ZeroMQ's
 * hard limit, so the daemon's socket drops that connection and no reply is
 * possible. Then it checks the daemon still answers a status request.
 *
 * Prints a summary line and one "code NAME COUNT" line per error code it
 * received, so a test can compare them with the daemon's counters. Exit 0
 * only if every bad message got the right error and the daemon is alive. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "worker/client/psoclient.h"
#include "common/wire.h"

struct bad {
    const char *what;
    int expect;
    int nframes;
    const void *data[6];
    size_t len[6];
};

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

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
        fprintf(stderr, "usage: hostile_client ENDPOINT [--rounds N] [--min-messages N] "
                        "[--big BYTES] [--huge BYTES]\n");
        return 2;
    }
    long rounds = -1, min_messages = 0;
    size_t big = 0, hugelen = (size_t)8 << 20;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds"))
            rounds = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-messages"))
            min_messages = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--big"))
            big = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--huge"))
            hugelen = (size_t)atol(argv[i + 1]);
        else {
            fprintf(stderr, "hostile_client: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);

    static const unsigned char sig[5] = {'P', 'S', 'O', 'D', PSOD_PROTOCOL_VERSION};
    static const unsigned char sig9[5] = {'P', 'S', 'O', 'D', 9};
    static const unsigned char c_push = PSOD__COMMAND__CMD_PUSH,
                               c_hb = PSOD__COMMAND__CMD_HEARTBEAT,
                               c_hello = PSOD__COMMAND__CMD_HELLO, c_bad = 77,
                               c_pos = PSOD__COMMAND__CMD_POSITION,
                               c_status = PSOD__COMMAND__CMD_STATUS_REQUEST,
                               c_admin = PSOD__COMMAND__CMD_ADMIN,
                               c_welcome = PSOD__COMMAND__CMD_WELCOME,
                               c_mreq = PSOD__COMMAND__CMD_MODEL_REQUEST,
                               c_model = PSOD__COMMAND__CMD_MODEL;
    unsigned char garbage[200], bigmeta[70 * 1024], f7[7] = {0}, f8[8] = {0};
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 37 + 11);
    memset(bigmeta, 0x08, sizeof bigmeta);
    /* Valid metadata, for the refusals that need a message that parses. */
    Psod__Push push = PSOD__PUSH__INIT;
    push.round = 0;
    push.loss = 1.0;
    unsigned char pushbuf[64];
    size_t pushlen = protobuf_c_message_pack(&push.base, pushbuf);
    /* NaN loss, and NaN weights with a matching CRC, from a stranger. */
    float nanw[2] = {NAN, 1.0f};
    Psod__Push nanpush = PSOD__PUSH__INIT;
    nanpush.loss = NAN;
    unsigned char nanbuf[64];
    size_t nanlen = protobuf_c_message_pack(&nanpush.base, nanbuf);
    Psod__Push nanwpush = PSOD__PUSH__INIT;
    nanwpush.loss = -1e30; /* the best loss there could be, with poisoned weights */
    nanwpush.payload_crc32c = crc32c(0, nanw, sizeof nanw);
    unsigned char nanwbuf[64];
    size_t nanwlen = protobuf_c_message_pack(&nanwpush.base, nanwbuf);
    Psod__Hello hello = PSOD__HELLO__INIT;
    hello.worker_name = "impostor";
    hello.session = (ProtobufCBinaryData){3, (uint8_t *)"abc"}; /* a session is 16 bytes */
    hello.protocol_version = PSOD_PROTOCOL_VERSION;
    hello.param_count = 2;
    hello.payload_crc32c = crc32c(0, nanw, sizeof nanw);
    unsigned char hellobuf[64];
    size_t hellolen = protobuf_c_message_pack(&hello.base, hellobuf);
    Psod__Hello hello9 = PSOD__HELLO__INIT;
    hello9.worker_name = "future";
    hello9.protocol_version = 9;
    unsigned char hello9buf[64];
    size_t hello9len = protobuf_c_message_pack(&hello9.base, hello9buf);
    Psod__Admin admin = PSOD__ADMIN__INIT;
    admin.action = PSOD__ADMIN_ACTION__ADMIN_STOP;
    unsigned char adminbuf[16];
    size_t adminlen = protobuf_c_message_pack(&admin.base, adminbuf);

    const struct bad bads[] = {
        {"garbage frame", PSOD__ERROR_CODE__ERR_BAD_SIGNATURE, 1, {garbage}, {sizeof garbage}},
        {"empty frame", PSOD__ERROR_CODE__ERR_BAD_SIGNATURE, 1, {""}, {0}},
        {"wrong version", PSOD__ERROR_CODE__ERR_VERSION, 3, {sig9, &c_hb, ""}, {5, 1, 0}},
        {"hello from a future protocol",
         PSOD__ERROR_CODE__ERR_VERSION,
         3,
         {sig, &c_hello, hello9buf},
         {5, 1, hello9len}},
        {"signature only", PSOD__ERROR_CODE__ERR_MALFORMED, 1, {sig}, {5}},
        {"no metadata", PSOD__ERROR_CODE__ERR_MALFORMED, 2, {sig, &c_hb}, {5, 1}},
        {"too many frames",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         6,
         {sig, &c_hb, "", "", "", ""},
         {5, 1, 0, 0, 0, 0}},
        {"unknown command", PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, 3, {sig, &c_bad, ""}, {5, 1, 0}},
        {"long command", PSOD__ERROR_CODE__ERR_MALFORMED, 3, {sig, "ab", ""}, {5, 2, 0}},
        {"garbage metadata",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         3,
         {sig, &c_hello, garbage},
         {5, 1, sizeof garbage}},
        {"truncated metadata",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         4,
         {sig, &c_push, pushbuf, f8},
         {5, 1, pushlen - 3, 8}},
        {"oversized metadata",
         PSOD__ERROR_CODE__ERR_TOO_LARGE,
         3,
         {sig, &c_hello, bigmeta},
         {5, 1, sizeof bigmeta}},
        {"hello payload not float32",
         PSOD__ERROR_CODE__ERR_SIZE,
         4,
         {sig, &c_hello, hello9buf, f7},
         {5, 1, hello9len, 7}},
        {"heartbeat with payload",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         4,
         {sig, &c_hb, "", f8},
         {5, 1, 0, 8}},
        {"status request with payload",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         4,
         {sig, &c_status, "", f8},
         {5, 1, 0, 8}},
        {"push before hello",
         PSOD__ERROR_CODE__ERR_NOT_JOINED,
         4,
         {sig, &c_push, pushbuf, f8},
         {5, 1, pushlen, 8}},
        {"NaN loss from a stranger",
         PSOD__ERROR_CODE__ERR_NOT_JOINED,
         4,
         {sig, &c_push, nanbuf, f8},
         {5, 1, nanlen, 8}},
        {"NaN weights from a stranger",
         PSOD__ERROR_CODE__ERR_NOT_JOINED,
         4,
         {sig, &c_push, nanwbuf, nanw},
         {5, 1, nanwlen, sizeof nanw}},
        {"hello with a malformed session, NaN weights",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         4,
         {sig, &c_hello, hellobuf, nanw},
         {5, 1, hellolen, sizeof nanw}},
        {"position to the daemon",
         PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND,
         4,
         {sig, &c_pos, "", f8},
         {5, 1, 0, 8}},
        {"welcome without payload",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         3,
         {sig, &c_welcome, ""},
         {5, 1, 0}},
        {"admin stop without a key",
         PSOD__ERROR_CODE__ERR_UNAUTHORIZED,
         3,
         {sig, &c_admin, adminbuf},
         {5, 1, adminlen}},
        {"model request with payload",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         4,
         {sig, &c_mreq, "", f8},
         {5, 1, 0, 8}},
        {"model request with garbage metadata",
         PSOD__ERROR_CODE__ERR_MALFORMED,
         3,
         {sig, &c_mreq, garbage},
         {5, 1, sizeof garbage}},
        {"model to the daemon",
         PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND,
         4,
         {sig, &c_model, "", f8},
         {5, 1, 0, 8}},
    };
    const int nbad = (int)(sizeof bads / sizeof bads[0]);
    void *bigpayload = big ? calloc(1, big) : NULL;
    const struct bad toobig = {"payload above --max-payload-mb",
                               PSOD__ERROR_CODE__ERR_TOO_LARGE,
                               4,
                               {sig, &c_push, pushbuf, bigpayload},
                               {5, 1, pushlen, big}};

    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "hostile_client: connect %s: %s\n", argv[1], zmq_strerror(errno));
        return 2;
    }
    long sent = 0, right = 0, wrong = 0, silent = 0, before_signal = -1;
    long got[PSOC_ERROR_CODES] = {0};
    struct wire_limits lim = {0, 0};
    for (long r = 0; rounds < 0 ? !s_stop || sent < min_messages : r < rounds; r++) {
        for (int k = 0; k <= nbad; k++) {
            const struct bad *b = k < nbad ? &bads[k] : &toobig;
            if (k == nbad && !(big && r % 16 == 0))
                continue;
            if (s_send(sock, b) != 0) {
                fprintf(stderr, "hostile_client: send: %s\n", zmq_strerror(errno));
                return 2;
            }
            sent++;
            if (s_stop && before_signal < 0)
                before_signal = sent - 1;
            struct wire_msg m;
            struct wire_error e;
            int rc;
            while ((rc = wire_recv(sock, 0, 0, &lim, &m, &e)) < 0 && errno == EINTR)
                ; /* SIGTERM arrived mid-wait: the reply is still coming */
            if (rc < 0) {
                silent++;
                fprintf(stderr, "hostile_client: no reply to '%s'\n", b->what);
                continue;
            }
            int code = rc == 0 && m.command == PSOD__COMMAND__CMD_ERROR
                           ? (int)((Psod__Error *)m.meta)->code
                           : -1;
            if (code >= 0 && code < PSOC_ERROR_CODES)
                got[code]++;
            if (code == b->expect) {
                right++;
            } else {
                wrong++;
                fprintf(stderr, "hostile_client: '%s' got %s, expected %s\n", b->what,
                        code < 0 ? "a non-error reply" : wire_error_name(code),
                        wire_error_name(b->expect));
            }
            wire_msg_clear(&m);
        }
    }
    zmq_close(sock);
    free(bigpayload);

    /* Larger than any limit: ZeroMQ itself cuts this connection. */
    void *bigsock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(bigsock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(bigsock, argv[1]);
    void *huge = calloc(1, hugelen);
    zmq_send(bigsock, sig, 5, ZMQ_SNDMORE);
    zmq_send(bigsock, &c_push, 1, ZMQ_SNDMORE);
    zmq_send(bigsock, pushbuf, pushlen, ZMQ_SNDMORE);
    zmq_send(bigsock, huge, hugelen, 0);
    free(huge);
    zmq_close(bigsock);
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
    printf("hostile_client: sent %ld bad messages, %ld right errors, %ld wrong, %ld unanswered; "
           "daemon %s%s%llu errors sent in all\n",
           sent, right, wrong, silent, alive ? "alive" : "NOT ANSWERING: ", alive ? ", " : err,
           alive ? (unsigned long long)st.errors_sent : 0ull);
    if (rounds < 0)
        printf("hostile_client: %ld sent before the signal\n",
               before_signal < 0 ? sent : before_signal);
    for (int i = 0; i < PSOC_ERROR_CODES; i++)
        if (got[i])
            printf("code %s %ld\n", wire_error_name(i), got[i]);
    return right == sent && alive ? 0 : 1;
}
