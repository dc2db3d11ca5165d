/* Writes the fuzzers' seed corpus: valid inputs that reach deep into each
 * target, so mutation starts from messages the daemon accepts.
 *
 *   make_corpus DIR     writes DIR/{wire,server,ckpt,modelfile,codec}/NAME
 *
 * The corpus in tests/fuzz/corpus was made by this program; `make
 * fuzz-corpus` makes it again. Inputs are built with the same wire code and
 * the same daemon the fuzzers test, so they stay valid as the protocol
 * changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/range.h"
#include "common/sparse.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/modelfile.h"
#include "worker/client/psoclient.h"
#include "common/wire.h"
#include "server/server.h"

#define N 4 /* parameters in the corpus's swarm */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void s_put(struct buf *b, const void *d, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, d, len);
    b->len += len;
}

static void s_frame(struct buf *b, const void *d, size_t len)
{
    unsigned char h[2] = {(unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    s_put(b, h, 2);
    s_put(b, d, len);
}

/* One message's frames: signature, command, metadata, and a payload of
 * `len` raw bytes when p is not NULL. */
static void s_message_raw(struct buf *b, int command, const ProtobufCMessage *meta, const void *p,
                          size_t len)
{
    unsigned char sig[5] = {'P', 'S', 'O', 'D', PSOD_PROTOCOL_VERSION},
                  cmd = (unsigned char)command;
    unsigned char mb[1024];
    size_t ml = protobuf_c_message_pack(meta, mb);
    s_frame(b, sig, 5);
    s_frame(b, &cmd, 1);
    s_frame(b, mb, ml);
    if (p)
        s_frame(b, p, len);
}

/* The same with the corpus's N float32 values (or none) as payload. */
static int s_message(struct buf *b, int command, const ProtobufCMessage *meta, const float *x)
{
    s_message_raw(b, command, meta, x, N * sizeof(float));
    return x ? 4 : 3;
}

/* A server-target message header (sender, key, frame count), then frames. */
static void s_server_msg(struct buf *b, int who, int user, int command,
                         const ProtobufCMessage *meta, const float *x)
{
    unsigned char h[2] = {(unsigned char)(who | user << 2), (unsigned char)(x ? 4 : 3)};
    s_put(b, h, 2);
    s_message(b, command, meta, x);
}

static void s_write(const char *dir, const char *sub, const char *name, const void *d, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* One message, alone, as a wire-target input named `name`. */
static void s_wire(const char *dir, const char *name, int command, const ProtobufCMessage *meta,
                   const float *x)
{
    struct buf b = {0};
    s_message(&b, command, meta, x);
    s_write(dir, "wire", name, b.p, b.len);
    free(b.p);
}

/* The wire kind of the conversation being written (0: fp32), and its
 * density (sparse payloads, 0: dense). */
static int s_wire_kind;
static double s_wire_density;
/* Fragment payloads: the parts (0: whole), part round mod that a push. */
static unsigned s_wire_fragments;
/* Sharded conversations: the hellos' range of a vector of 2 N. */
static uint64_t s_shard_total, s_shard_offset;

/* Conversations for --verify-best: hellos offer to verify, b's pushes
 * carry the verdict on a's candidate of the round before. */
static int s_verify;

/* Hellos name their weights by checksum, without a payload. */
static int s_by_checksum;

static void s_hello(struct buf *b, const char *name, const float *x, int server, int who, int user)
{
    Psod__Hello h = PSOD__HELLO__INIT;
    h.verifier = s_verify;
    h.encoding = (Psod__Encoding)s_wire_kind;
    h.density = (float)s_wire_density;
    h.fragments = s_wire_fragments;
    h.worker_name = (char *)name;
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    h.param_count = N;
    h.layout_hash = 42;
    h.payload_crc32c = crc32c(0, x, N * sizeof(float));
    h.shard_total = s_shard_total;
    h.shard_offset = s_shard_offset;
    h.by_checksum = s_by_checksum;
    if (server)
        s_server_msg(b, who, user, PSOD__COMMAND__CMD_HELLO, &h.base, s_by_checksum ? NULL : x);
    else
        s_message(b, PSOD__COMMAND__CMD_HELLO, &h.base, x);
}

static void s_push(struct buf *b, uint64_t round, double loss, const float *x, int gradient,
                   int server, int who, int user, const Psod__Verdict *verdict)
{
    Psod__Push p = PSOD__PUSH__INIT;
    p.verdict = (Psod__Verdict *)verdict;
    p.round = round;
    p.loss = loss;
    p.samples = 64;
    p.seq = round + 1;
    p.accuracy = 0.5;
    p.position_accuracy = 0.5;
    p.position_round = round;
    p.payload_kind =
        gradient ? PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT : PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS;
    p.payload_crc32c = crc32c(0, x, N * sizeof(float));
    if (s_wire_kind || s_wire_density > 0 || s_wire_fragments > 1) {
        /* The change from a position a little off x, as a worker sends it. */
        unsigned char q[128];
        float ref[N];
        for (int i = 0; i < N; i++)
            ref[i] = x[i] * 0.875f;
        size_t len = codec_bytes(s_wire_kind, N, CODEC_BLOCK);
        if (s_wire_density > 0) {
            len = sparse_encode(s_wire_kind, N, sparse_k(N, s_wire_density), x,
                                gradient ? NULL : ref, NULL, q);
            p.sparse = 1;
        } else { /* dense: the whole vector, or this round's part of it */
            size_t off, n;
            range_fragment(N, s_wire_fragments, round, &off, &n);
            len = codec_bytes(s_wire_kind, n, CODEC_BLOCK);
            codec_encode(s_wire_kind, n, x + off, gradient ? NULL : ref + off, NULL, q);
            p.fragment = s_wire_fragments > 1 ? (uint32_t)(round % s_wire_fragments) : 0;
        }
        p.encoding = (Psod__Encoding)s_wire_kind;
        p.block_size = codec_blocked(s_wire_kind) ? CODEC_BLOCK : 0;
        p.payload_crc32c = crc32c(0, q, len);
        unsigned char h[2] = {(unsigned char)(who | user << 2), 4};
        s_put(b, h, 2);
        s_message_raw(b, PSOD__COMMAND__CMD_PUSH, &p.base, q, len);
        return;
    }
    if (server)
        s_server_msg(b, who, user, PSOD__COMMAND__CMD_PUSH, &p.base, x);
    else
        s_message(b, PSOD__COMMAND__CMD_PUSH, &p.base, x);
}

/* A whole conversation: two workers join, push three rounds, ask for status,
 * an admin checkpoints and a worker leaves. Returns it in `b`. */
static void s_conversation(struct buf *b, int config, int rounds)
{
    static const float xa[N] = {0.5f, -1, 2, 0.25f}, xb[N] = {-0.5f, 1, 0.125f, 3};
    int gradient = config % 8 == 4; /* ssgd */
    unsigned char c = (unsigned char)config;
    s_put(b, &c, 1);
    s_verify = config >> 7 & 1;
    s_hello(b, "a", xa, 1, 0, 1);
    if (s_by_checksum) { /* b asks for a's weights by checksum, then its own */
        s_hello(b, "b", xa, 1, 1, 2);
        s_hello(b, "b", xb, 1, 1, 2);
        s_by_checksum = 0;
    }
    s_hello(b, "b", xb, 1, 1, 2);
    for (int r = 0; r < rounds; r++) {
        Psod__Verdict v = PSOD__VERDICT__INIT;
        v.round = (uint64_t)r - 1;
        v.particle = 0;
        v.payload_crc32c = crc32c(0, xa, sizeof xa);
        v.loss = 2.0 / r;
        s_push(b, (uint64_t)r, 2.0 / (r + 1), xa, gradient, 1, 0, 1, NULL);
        s_push(b, (uint64_t)r, 3.0 / (r + 1), xb, gradient, 1, 1, 2, s_verify && r ? &v : NULL);
        /* From a's heartbeat connection: its name and a session (the
         * fuzzer mutates it; psod's is random). */
        static uint8_t session[PSOD_SESSION_LEN] = "0123456789abcdef";
        Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
        hb.seq = (uint64_t)r;
        hb.worker_name = "a";
        hb.session = (ProtobufCBinaryData){sizeof session, session};
        s_server_msg(b, 2, 1, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL);
    }
    if (s_verify) { /* b's verdict on the last round's candidate */
        Psod__Verdict v = PSOD__VERDICT__INIT;
        v.round = (uint64_t)rounds - 1;
        v.payload_crc32c = crc32c(0, xa, sizeof xa);
        v.loss = 2.0 / rounds;
        Psod__Bye bb = PSOD__BYE__INIT;
        bb.reason = "done";
        bb.verdict = &v;
        s_server_msg(b, 1, 2, PSOD__COMMAND__CMD_BYE, &bb.base, NULL);
    }
    Psod__StatusRequest sr = PSOD__STATUS_REQUEST__INIT;
    sr.include_particles = 1;
    s_server_msg(b, 3, 0, PSOD__COMMAND__CMD_STATUS_REQUEST, &sr.base, NULL);
    Psod__ModelRequest mr = PSOD__MODEL_REQUEST__INIT;
    mr.seq = 9;
    mr.safe = config & 1;
    s_server_msg(b, 3, 0, PSOD__COMMAND__CMD_MODEL_REQUEST, &mr.base, NULL);
    Psod__Admin a = PSOD__ADMIN__INIT;
    a.action = PSOD__ADMIN_ACTION__ADMIN_EVICT;
    a.worker_name = "b";
    s_server_msg(b, 3, 3, PSOD__COMMAND__CMD_ADMIN, &a.base, NULL);
    /* An operator's token (wrong: the fuzzed daemon writes none). */
    a.action = PSOD__ADMIN_ACTION__ADMIN_STOP;
    a.token = "00000000000000000000000000000000000000000000000000000000000000ff";
    s_server_msg(b, 3, 3, PSOD__COMMAND__CMD_ADMIN, &a.base, NULL);
    Psod__Bye bye = PSOD__BYE__INIT;
    bye.reason = "done";
    bye.accuracy = 0.9;
    s_server_msg(b, 0, 1, PSOD__COMMAND__CMD_BYE, &bye.base, NULL);
    s_verify = 0;
}

/* A conversation of three rounds in `config` whose workers speak `kind`
 * (sparse at `density`, or in `fragments` parts), written as
 * server/conversation-WHAT-KIND-STRATEGY. */
static void s_wire_conversation(struct buf *b, const char *dir, const char *what, int kind,
                                double density, unsigned fragments, int config,
                                const char *strategy)
{
    char name[48];
    b->len = 0;
    s_wire_kind = kind;
    s_wire_density = density;
    s_wire_fragments = fragments;
    s_conversation(b, config, 3);
    s_wire_kind = 0;
    s_wire_density = 0;
    s_wire_fragments = 0;
    snprintf(name, sizeof name, "conversation-%s-%s-%s", what, codec_name(kind), strategy);
    s_write(dir, "server", name, b->p, b->len);
}

/* fuzz_shard: a coordinator (config < 64) of two daemons with the other one
 * registering, voting and sending its model range; or a follower taking
 * its coordinator's orders. */
static void s_shard_conversation(struct buf *b, int config, int rounds)
{
    static const float xa[N] = {0.5f, -1, 2, 0.25f}, xb[N] = {-0.5f, 1, 0.125f, 3};
    int gradient = config % 8 == 4, follower = config >= 64;
    unsigned char c = (unsigned char)config;
    s_put(b, &c, 1);
    s_shard_total = 2 * N;
    s_shard_offset = follower ? N : 0;
    if (follower) {
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_ACK;
        o.registered = 1;
        o.incarnation = 7;
        s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
    } else {
        Psod__ShardHello sh = PSOD__SHARD_HELLO__INIT;
        uint64_t gen[1] = {0};
        sh.index = 1;
        sh.count = 2;
        sh.incarnation = 5;
        sh.fresh = 1;
        sh.protocol_version = PSOD_PROTOCOL_VERSION;
        sh.n_generation = 1;
        sh.generation = gen;
        s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_HELLO, &sh.base, NULL);
    }
    s_hello(b, "a", xa, 1, 0, 1);
    s_hello(b, "b", xb, 1, 1, 2);
    for (int r = 0; r < rounds; r++) {
        s_push(b, (uint64_t)r, 2.0 / (r + 1), xa, gradient, 1, 0, 1, NULL);
        s_push(b, (uint64_t)r, 3.0 / (r + 1), xb, gradient, 1, 1, 2, NULL);
        if (follower) {
            char *names[2] = {"a", "b"};
            double loss[2] = {2.0 / (r + 1), 3.0 / (r + 1)};
            Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
            o.action = PSOD__SHARD_ACTION__SHARD_COMMIT;
            o.round = (uint64_t)r;
            o.incarnation = 7;
            o.n_name = o.n_loss = 2;
            o.name = names;
            o.loss = loss;
            o.async_step = config & 8 ? 1 : 0;
            if (o.async_step) { /* one push per step */
                o.n_name = o.n_loss = 1;
                s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
                o.round++;
                o.name = names + 1;
                o.loss = loss + 1;
            }
            s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
            o.action = r == 1 ? PSOD__SHARD_ACTION__SHARD_MODEL : PSOD__SHARD_ACTION__SHARD_BEAT;
            o.n_name = o.n_loss = 0;
            s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
        } else {
            const char *names[2] = {"a", "b"};
            for (int k = 0; k < 2; k++) {
                Psod__ShardReport v = PSOD__SHARD_REPORT__INIT;
                v.kind = PSOD__SHARD_REPORT_KIND__REPORT_VOTE;
                v.index = 1;
                v.incarnation = 5;
                v.round = (uint64_t)(config & 8 ? 2 * r + k : r);
                v.name = (char *)names[k];
                v.seq = (uint64_t)r + 1; /* s_push's */
                s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_REPORT, &v.base, NULL);
            }
            Psod__ShardReport m = PSOD__SHARD_REPORT__INIT;
            m.kind = PSOD__SHARD_REPORT_KIND__REPORT_MODEL;
            m.index = 1;
            m.incarnation = 5;
            m.round = (uint64_t)r + 1;
            m.payload_crc32c = crc32c(0, xa, N * sizeof(float));
            s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_REPORT, &m.base, xa);
            m.kind = PSOD__SHARD_REPORT_KIND__REPORT_BEAT;
            s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_REPORT, &m.base, NULL);
        }
    }
    Psod__StatusRequest sr = PSOD__STATUS_REQUEST__INIT;
    sr.include_particles = 1;
    s_server_msg(b, 3, 0, PSOD__COMMAND__CMD_STATUS_REQUEST, &sr.base, NULL);
    if (follower) {
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_ROLLBACK;
        o.round = 0;
        o.incarnation = 7;
        s_server_msg(b, 2, 3, PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
    }
    s_shard_total = s_shard_offset = 0;
}

/* Run a conversation through a real daemon and take its checkpoint. */
static void s_checkpoint(const char *dir, int config)
{
    int strategy = config & 7;
    char tmp[] = "/tmp/psod-corpus-XXXXXX", err[512];
    if (!mkdtemp(tmp))
        abort();
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    config_defaults(server_options(&cfg, (struct config_table[SERVER_OPTION_TABLES]){{0}}), err,
                    sizeof err);
    cfg.strategy = strategy;
    cfg.sp.verify = config >> 7 & 1 && strategy == 0;
    cfg.hyper = config >> 7 & 1; /* as fuzz_server_new */
    cfg.workers = 2;
    cfg.max_peers = 0;
    cfg.progress_interval = 0;
    snprintf(cfg.checkpoint_dir, sizeof cfg.checkpoint_dir, "%s", tmp);
    struct server *s;
    if (server_new_detached(&s, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "make_corpus: %s\n", err);
        exit(1);
    }
    struct buf b = {0};
    s_conversation(&b, config, 3);
    /* Feed it message by message, as the server fuzzer would. */
    const unsigned char *p = b.p + 1;
    size_t left = b.len - 1;
    while (left >= 2) {
        static const char *const ids[4] = {"w:a", "w:b", "h:a", "stranger"};
        static const char *const users[4] = {"", "a", "b", "admin:op"};
        int who = p[0] & 3, user = (p[0] >> 2) & 3, count = p[1];
        p += 2;
        left -= 2;
        zmq_msg_t f[6];
        int n = 0;
        while (n < count && left >= 2) {
            size_t len = (size_t)p[0] | (size_t)p[1] << 8;
            zmq_msg_init_size(&f[n], len);
            memcpy(zmq_msg_data(&f[n]), p + 2, len);
            p += 2 + len;
            left -= 2 + len;
            n++;
        }
        server_handle_frames(s, ids[who], strlen(ids[who]), users[user], f, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    if (server_round(s) != 3 || server_checkpoint(s) != 0) {
        fprintf(stderr, "make_corpus: strategy %d: round %llu, checkpoint failed\n", strategy,
                (unsigned long long)server_round(s));
        exit(1);
    }
    server_destroy(&s);
    char cmd[4200], path[4096];
    snprintf(cmd, sizeof cmd, "ls %s/ckpt-*.psck", tmp);
    FILE *ls = popen(cmd, "r");
    if (!ls || !fgets(path, sizeof path, ls))
        abort();
    pclose(ls);
    path[strcspn(path, "\n")] = '\0';
    FILE *f = fopen(path, "rb");
    struct buf img = {0};
    unsigned char c = (unsigned char)config, chunk[4096];
    s_put(&img, &c, 1);
    size_t got;
    while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        s_put(&img, chunk, got);
    if (f)
        fclose(f);
    char name[32];
    snprintf(name, sizeof name, "strategy-%d", config);
    s_write(dir, "ckpt", name, img.p, img.len);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        abort();
    free(img.p);
    free(b.p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0755);
    log_init("make_corpus", LOG_ERROR, stderr);
    static const float x[N] = {1, 2, 3, 4};
    struct buf b = {0};

    /* wire: one of every message a peer can send or receive. */
    s_hello(&b, "worker-1", x, 0, 0, 0);
    s_write(dir, "wire", "hello", b.p, b.len);
    b.len = 0;
    s_push(&b, 7, 0.25, x, 0, 0, 0, 0, NULL);
    s_write(dir, "wire", "push", b.p, b.len);
    b.len = 0;
    Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
    hb.seq = 3;
    hb.incarnation = 99;
    hb.worker_name = "a";
    s_wire(dir, "heartbeat", PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL);
    hb.joined = 2; /* the daemon's answer: whom the open round waits for */
    hb.workers_expected = 3;
    hb.pushed = 1;
    hb.round = 4;
    s_wire(dir, "heartbeat-waiting", PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL);
    Psod__Welcome w = PSOD__WELCOME__INIT;
    w.particle_id = 1;
    w.param_count = N;
    w.strategy = "pso";
    w.hyper = 1;
    w.lr = 0.05;
    w.momentum = 0.9;
    s_wire(dir, "welcome", PSOD__COMMAND__CMD_WELCOME, &w.base, x);
    Psod__Position pos = PSOD__POSITION__INIT;
    pos.round = 2;
    pos.hyper = 1;
    pos.lr = 0.01;
    pos.momentum = 0.5;
    s_wire(dir, "position", PSOD__COMMAND__CMD_POSITION, &pos.base, x);
    Psod__Verify vf = PSOD__VERIFY__INIT;
    vf.round = 2;
    vf.particle = 1;
    vf.claimed_loss = 0.125;
    vf.payload_crc32c = crc32c(0, x, N * sizeof(float));
    vf.seq = 3;
    s_wire(dir, "verify", PSOD__COMMAND__CMD_VERIFY, &vf.base, x);
    Psod__Verdict vd = PSOD__VERDICT__INIT;
    vd.round = 2;
    vd.particle = 1;
    vd.payload_crc32c = vf.payload_crc32c;
    vd.loss = 0.25;
    b.len = 0;
    s_push(&b, 3, 0.25, x, 0, 0, 0, 0, &vd);
    s_write(dir, "wire", "push-verdict", b.p, b.len);
    Psod__ModelRequest mreq = PSOD__MODEL_REQUEST__INIT;
    mreq.seq = 4;
    mreq.safe = 1;
    s_wire(dir, "model-request", PSOD__COMMAND__CMD_MODEL_REQUEST, &mreq.base, NULL);
    Psod__Model mdl = PSOD__MODEL__INIT;
    mdl.seq = 4;
    mdl.round = 2;
    mdl.loss = 0.5;
    mdl.payload_crc32c = crc32c(0, x, N * sizeof(float));
    mdl.param_count = N;
    mdl.kind = "verified global best";
    uint32_t shape[3] = {1, 28, 28};
    mdl.model_name = "lenet5";
    mdl.dataset = "mnist";
    mdl.layout_hash = 0x1234abcdULL;
    mdl.n_input_shape = 3;
    mdl.input_shape = shape;
    mdl.strategy = "pso";
    mdl.total_params = N;
    s_wire(dir, "model", PSOD__COMMAND__CMD_MODEL, &mdl.base, x);
    b.len = 0;
    Psod__Error e = PSOD__ERROR__INIT;
    e.code = PSOD__ERROR_CODE__ERR_ROUND;
    e.message = "push for round 1, current is 2";
    s_wire(dir, "error", PSOD__COMMAND__CMD_ERROR, &e.base, NULL);
    Psod__Status st = PSOD__STATUS__INIT;
    Psod__ParticleStatus ps = PSOD__PARTICLE_STATUS__INIT, *pp = &ps;
    uint64_t codes[3] = {0, 5, 1};
    ps.worker_name = "worker-1";
    st.strategy = "pso";
    st.n_particle = 1;
    st.particle = &pp;
    st.n_errors_by_code = 3;
    st.errors_by_code = codes;
    s_wire(dir, "status", PSOD__COMMAND__CMD_STATUS, &st.base, NULL);
    Psod__Admin a = PSOD__ADMIN__INIT;
    a.action = PSOD__ADMIN_ACTION__ADMIN_EVICT;
    a.worker_name = "worker-1";
    s_wire(dir, "admin", PSOD__COMMAND__CMD_ADMIN, &a.base, NULL);

    /* server: a conversation per strategy, and async for pso and avg. */
    static const int configs[] = {0, 1, 2, 3, 4, 8, 9, 128, 129};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        char name[32];
        b.len = 0;
        s_conversation(&b, configs[i], 3);
        snprintf(name, sizeof name, "conversation-%d", configs[i]);
        s_write(dir, "server", name, b.p, b.len);
    }

    /* server: each compressed kind, for a strategy of weights and for ssgd's
     * gradients, asked for at hello (the config's top bits leave psod at
     * --wire any). */
    for (int kind = 1; kind < CODEC_KINDS; kind++)
        for (int c = 0; c < 2; c++) {
            char name[48];
            b.len = 0;
            s_wire_kind = kind;
            s_conversation(&b, c ? 4 : 0, 3);
            s_wire_kind = 0;
            snprintf(name, sizeof name, "conversation-%s-%s", codec_name(kind), c ? "ssgd" : "pso");
            s_write(dir, "server", name, b.p, b.len);
        }
    /* server: hellos by checksum (one psod holds, one it does not) */
    b.len = 0;
    s_by_checksum = 1;
    s_conversation(&b, 1, 2);
    s_write(dir, "server", "conversation-by-checksum", b.p, b.len);
    /* server: sparse payloads (half the entries) in float32 and int2, avg
     * and ssgd; fragment payloads (two parts) in float32 and int4, pso and
     * avg. */
    for (int kind = 0; kind < CODEC_KINDS; kind += CODEC_INT2)
        for (int c = 0; c < 2; c++)
            s_wire_conversation(&b, dir, "topk", kind, 0.5, 0, c ? 4 : 1, c ? "ssgd" : "avg");
    for (int kind = 0; kind < CODEC_KINDS; kind += CODEC_INT4)
        for (int c = 0; c < 2; c++)
            s_wire_conversation(&b, dir, "frag", kind, 0, 2, c, c ? "avg" : "pso");

    /* shard: the coordinator and a follower, for pso, avg, ssgd and async pso. */
    static const int shard_configs[] = {0, 1, 4, 8, 64, 65, 68, 72};
    for (size_t i = 0; i < sizeof shard_configs / sizeof shard_configs[0]; i++) {
        char name[32];
        b.len = 0;
        s_shard_conversation(&b, shard_configs[i], 3);
        snprintf(name, sizeof name, "%s-%d", shard_configs[i] >= 64 ? "follower" : "coordinator",
                 shard_configs[i] % 64);
        s_write(dir, "shard", name, b.p, b.len);
    }
    {
        Psod__ShardHello sh = PSOD__SHARD_HELLO__INIT;
        sh.index = 1;
        sh.count = 2;
        s_wire(dir, "shard-hello", PSOD__COMMAND__CMD_SHARD_HELLO, &sh.base, NULL);
        Psod__ShardOrder o = PSOD__SHARD_ORDER__INIT;
        o.action = PSOD__SHARD_ACTION__SHARD_COMMIT;
        s_wire(dir, "shard-order", PSOD__COMMAND__CMD_SHARD_ORDER, &o.base, NULL);
        Psod__ShardReport r = PSOD__SHARD_REPORT__INIT;
        r.kind = PSOD__SHARD_REPORT_KIND__REPORT_MODEL;
        s_wire(dir, "shard-report", PSOD__COMMAND__CMD_SHARD_REPORT, &r.base, x);
    }

    /* codec: a payload of each kind (kind, block, n, bytes), as fuzz_codec reads it. */
    for (int kind = 0; kind < CODEC_KINDS; kind++) {
        enum { CN = 300 };
        float v[CN];
        for (int i = 0; i < CN; i++)
            v[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        unsigned char q[5 + CN * 4];
        q[0] = (unsigned char)kind;
        q[1] = CODEC_BLOCK & 0xff;
        q[2] = CODEC_BLOCK >> 8;
        q[3] = CN & 0xff;
        q[4] = CN >> 8;
        codec_encode(kind, CN, v, NULL, NULL, q + 5);
        b.len = 0;
        s_put(&b, q, 5 + codec_bytes(kind, CN, CODEC_BLOCK));
        s_write(dir, "codec", codec_name(kind), b.p, b.len);
        /* sparse: the top 30 of the same values, as fuzz_sparse reads it */
        unsigned char *sq = malloc(5 + sparse_max_bytes(kind, CN, 30, CODEC_BLOCK));
        memcpy(sq, q, 5);
        size_t sb = sparse_encode(kind, CN, 30, v, NULL, NULL, sq + 5);
        b.len = 0;
        s_put(&b, sq, 5 + sb);
        s_write(dir, "sparse", codec_name(kind), b.p, b.len);
        free(sq);
    }

    /* ckpt: what each strategy's daemon writes after that conversation. */
    for (int strategy = 0; strategy < 5; strategy++)
        s_checkpoint(dir, strategy);
    s_checkpoint(dir, 128); /* pso --verify-best --hyper */
    s_checkpoint(dir, 129); /* avg --hyper */

    /* modelfile: a small model as psod writes it. */
    char tmp[] = "/tmp/psod-corpus-model-XXXXXX", err[512];
    int fd = mkstemp(tmp);
    if (fd < 0)
        abort();
    close(fd);
    struct modelfile_info info = {42, N, 3, 0.5, "pso", "mlp", "mnist", {1, 28, 28}, 0};
    if (modelfile_write(tmp, &info, x, err, sizeof err) != 0) {
        fprintf(stderr, "make_corpus: %s\n", err);
        return 1;
    }
    FILE *f = fopen(tmp, "rb");
    unsigned char mbuf[256];
    size_t ml = f ? fread(mbuf, 1, sizeof mbuf, f) : 0;
    if (f)
        fclose(f);
    unlink(tmp);
    s_write(dir, "modelfile", "small", mbuf, ml);
    free(b.p);
    printf("make_corpus: wrote %s/{wire,server,ckpt,modelfile,codec}\n", dir);
    return 0;
}
