/* Suite: security. Real psod, psoworker, psoctl and hostile_client
 * processes on loopback, plus raw ZeroMQ peers in this process:
 *
 *   - thousands of bad messages while 3 workers train change nothing, and
 *     the daemon's error counters match what the attacker received;
 *   - NaN or infinite losses and weights, pushes for past or future rounds
 *     and bad checksums from a member are refused and never become a
 *     personal or global best;
 *   - CURVE: allowed keys train, unknown keys and keyless peers are refused;
 *   - admin requests change state only for admin keys;
 *   - --max-peers refuses connections beyond the limit. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/modelfile.h"
#include "worker/client/psoclient.h"
#include "common/wire.h"
#include "tests/lib/fixtures.h"
#include "tests/lib/proc.h"

static char bin[256];
static char dir[] = "/tmp/psod-security-XXXXXX";

static void setup(void) { proc_setup(bin, dir, "/tmp/psod-security-XXXXXX"); }
static void teardown(void) { proc_teardown(dir); }

/* psoctl ARGS...; returns its exit code, output in TAG.out/.err. */
static int s_past_round_2(const char *out) { return proc_after(out, "\"round\":") > 2; }

static int s_ctl(const char *tag, char *const args[])
{
    char ctl[300];
    proc_bin(ctl, sizeof ctl, "psoctl");
    char *argv[16] = {ctl};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return proc_wait(proc_spawn(argv, tag), 30);
}

/* ---- thousands of bad messages while 3 workers train ------------------ */

/* psod + 3 mlp workers on generated MNIST-format data, with or without a
 * hostile_client sending bad messages the whole time. Leaves the status
 * JSON psoctl read at the end in `status` and the attacker's report in
 * `hostile`. */
static double s_train(const char *tag, int attack, char *status, size_t slen, char *hostile,
                      size_t hlen)
{
    char ep[256], model[600], t[64], w[300], hc[300];
    snprintf(model, sizeof model, "%s/%s.psom", dir, tag);
    pid_t psod = proc_psod(tag, ep, sizeof ep,
                           (char *[]){"--workers", "3", "--strategy", "pso", "--model-out", model,
                                      "--max-payload-mb", "4", NULL});
    pid_t h = 0;
    if (attack) {
        proc_bin(hc, sizeof hc, "tests/hostile_client");
        snprintf(t, sizeof t, "%s-hostile", tag);
        /* --big: a 4 MiB + 4 B payload, just over --max-payload-mb 4 (the
         * mlp is 2.7 MB). */
        h = proc_spawn((char *[]){hc, ep, "--min-messages", "3000", "--big", "4194308", NULL}, t);
        usleep(100000);
    }
    proc_bin(w, sizeof w, "psoworker");
    pid_t p[3];
    double t0 = proc_now();
    for (int i = 0; i < 3; i++) {
        char name[16], idx[8];
        snprintf(name, sizeof name, "w%d", i);
        snprintf(idx, sizeof idx, "%d", i);
        snprintf(t, sizeof t, "%s-w%d", tag, i);
        p[i] = proc_spawn((char *[]){w,
                                     "--connect",
                                     ep,
                                     "--name",
                                     name,
                                     "--model",
                                     "mlp",
                                     "--dataset",
                                     "mnist",
                                     "--data-dir",
                                     dir,
                                     "--epochs",
                                     "2",
                                     "--batch",
                                     "32",
                                     "--lr",
                                     "0.02",
                                     "--sync-every",
                                     "2",
                                     "--shard-index",
                                     idx,
                                     "--shard-count",
                                     "3",
                                     "--delay-ms",
                                     "20", /* ~1 s of training to attack */
                                     "--progress-interval",
                                     "0",
                                     "--timeout-ms",
                                     "30000",
                                     NULL},
                          t);
    }
    for (int i = 0; i < 3; i++) {
        char err[4096];
        snprintf(t, sizeof t, "%s-w%d", tag, i);
        int rc = proc_wait(p[i], 120);
        proc_read(t, "err", err, sizeof err);
        ck_assert_msg(rc == 0, "%.1000s worker %d: %d: %.1000s", tag, i, rc, err);
    }
    double took = proc_now() - t0;
    hostile[0] = '\0';
    if (attack) {
        kill(h, SIGTERM); /* it goes on until it has sent --min-messages */
        int rc = proc_wait(h, 120);
        snprintf(t, sizeof t, "%s-hostile", tag);
        proc_read(t, "out", hostile, hlen);
        char err[4096];
        proc_read(t, "err", err, sizeof err);
        /* Check's messages are limited to a few KiB: keep them short. */
        ck_assert_msg(rc == 0, "hostile client: %d: %.1000s %.1000s", rc, hostile, err);
    }
    snprintf(t, sizeof t, "%s-status", tag);
    ck_assert_int_eq(s_ctl(t, (char *[]){"status", ep, "--json", NULL}), 0);
    proc_read(t, "out", status, slen);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    return took;
}

static size_t s_slurp(const char *path, unsigned char **data)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %.1000s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    *data = malloc((size_t)len);
    ck_assert_int_eq(fread(*data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return (size_t)len;
}

START_TEST(attack_changes_nothing_and_is_counted)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 1500, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 300, 2), 0);
    char clean[8192], attacked[8192], hostile[4096], ignored[16];
    double t_clean = s_train("clean", 0, clean, sizeof clean, ignored, sizeof ignored);
    double t_attacked = s_train("attacked", 1, attacked, sizeof attacked, hostile, sizeof hostile);
    fprintf(stderr, "training took %.2f s clean, %.2f s under attack\n%s", t_clean, t_attacked,
            hostile);

    /* The attacker got the error it expected for every message. */
    ck_assert_msg(strstr(hostile, " 0 wrong, 0 unanswered; daemon alive") != NULL, "%.1000s",
                  hostile);
    long sent = (long)proc_after(hostile, "sent ");
    const char *p = strstr(hostile, "\nhostile_client: "); /* N sent before the signal */
    long during = p ? strtol(p + 17, NULL, 10) : 0;
    ck_assert_msg(sent >= 3000, "only %ld bad messages", sent);
    ck_assert_msg(during >= 1000, "only %ld bad messages while the workers trained", during);

    /* The daemon counted exactly what it refused, code by code; the clean
     * run refused nothing. */
    ck_assert_msg(proc_after(clean, "\"errors_sent\":") == 0, "%.1000s", clean);
    long total = 0;
    for (int code = 1; code < PSOC_ERROR_CODES; code++) {
        char key[64];
        snprintf(key, sizeof key, "code %s ", wire_error_name(code));
        double want = strstr(hostile, key) ? proc_after(hostile, key) : 0;
        snprintf(key, sizeof key, "\"%s\":", wire_error_name(code));
        double got = strstr(attacked, key) ? proc_after(attacked, key) : 0;
        ck_assert_msg(want == got, "%.1000s: attacker received %.0f, daemon counted %.0f",
                      wire_error_name(code), want, got);
        total += (long)got;
    }
    ck_assert_int_eq(total, sent);
    ck_assert_int_eq((long)proc_after(attacked, "\"errors_sent\":"), sent);

    /* Training ended in exactly the same model, byte for byte. */
    unsigned char *a, *b;
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/clean.psom", dir);
    snprintf(pb, sizeof pb, "%s/attacked.psom", dir);
    size_t la = s_slurp(pa, &a), lb = s_slurp(pb, &b);
    ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "model files differ (%zu and %zu bytes)", la,
                  lb);
    free(a);
    free(b);
}
END_TEST

/* ---- NaN from a member ------------------------------------------------ */

#define DIM 10

/* One raw message from the evil member; returns the reply. */
static void s_evil_send(void *sock, int command, const ProtobufCMessage *meta, const float *x,
                        struct wire_msg *reply)
{
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, DIM * sizeof(float));
    memcpy(zmq_msg_data(&payload), x, DIM * sizeof(float));
    ck_assert_int_eq(wire_send(sock, NULL, 0, command, meta, &payload, 0), 0);
    zmq_msg_close(&payload);
    struct wire_error e;
    struct wire_limits lim = {0, 0};
    ck_assert_msg(wire_recv(sock, 0, 0, &lim, reply, &e) == 0, "no reply from psod");
}

/* A raw member: a DEALER connected to ep (routing id `rid`, or none),
 * joined as `name` at weights x with the rastrigin workers' fingerprint,
 * offering to verify when `verifier`; its particle and round. */
static void *s_evil_join(void *ctx, const char *ep, const char *rid, const char *name,
                         const float *x, int verifier, uint32_t *me, uint64_t *round)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, timeout = 30000;
    if (rid)
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, rid, strlen(rid));
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    ck_assert_int_eq(zmq_connect(sock, ep), 0);
    Psod__Hello hello = PSOD__HELLO__INIT;
    hello.worker_name = (char *)name;
    hello.protocol_version = PSOD_PROTOCOL_VERSION;
    hello.param_count = DIM;
    hello.layout_hash = psoc_layout_hash("objective:rastrigin:10");
    hello.payload_crc32c = crc32c(0, x, DIM * sizeof(float));
    hello.verifier = verifier;
    struct wire_msg m;
    s_evil_send(sock, PSOD__COMMAND__CMD_HELLO, &hello.base, x, &m);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_WELCOME);
    *me = ((Psod__Welcome *)m.meta)->particle_id;
    *round = ((Psod__Welcome *)m.meta)->round;
    wire_msg_clear(&m);
    return sock;
}

/* Two honest rastrigin workers, "a" and "b", for `rounds` rounds (tags
 * TAG-w0, TAG-w1). */
static void s_rastrigin_pair(const char *ep, const char *tag, const char *rounds, pid_t p[2])
{
    char w[300], t[48];
    proc_bin(w, sizeof w, "psoworker");
    for (int i = 0; i < 2; i++) {
        snprintf(t, sizeof t, "%s-w%d", tag, i);
        p[i] = proc_spawn((char *[]){w, "--objective", "rastrigin", "--dim", "10", "--rounds",
                                     (char *)rounds, "--sync-every", "10", "--lr", "0.005",
                                     "--name", i ? "b" : "a", "--connect", (char *)ep,
                                     "--timeout-ms", "30000", NULL},
                          t);
    }
}

START_TEST(nan_never_reaches_a_best)
{
    char ep[256], model[600];
    snprintf(model, sizeof model, "%s/nan.psom", dir);
    pid_t psod =
        proc_psod("nan", ep, sizeof ep,
                  (char *[]){"--workers", "3", "--strategy", "pso", "--model-out", model, NULL});
    /* The evil member joins first, with the rastrigin workers' fingerprint. */
    void *ctx = zmq_ctx_new();
    float x[DIM];
    for (int i = 0; i < DIM; i++)
        x[i] = 2.0f;
    uint32_t me;
    uint64_t round;
    void *sock = s_evil_join(ctx, ep, "w:evil", "evil", x, 0, &me, &round);
    struct wire_msg m;
    pid_t p[2];
    s_rastrigin_pair(ep, "nan", "20", p);
    /* Every round: poisoned pushes, each refused, then an honest one with a
     * loss far worse than the others'. */
    int refused = 0, refused_round = 0, refused_other = 0;
    for (int r = 0; r < 20; r++) {
        static const struct {
            double loss;
            float bad;       /* written into element 3; 0 = none */
            int round_delta; /* push for another round */
            int crc_off;     /* state a wrong checksum */
            int code;
        } poison[] = {
            {NAN, 0, 0, 0, PSOD__ERROR_CODE__ERR_NOT_FINITE},
            {-1e30, NAN, 0, 0, PSOD__ERROR_CODE__ERR_NOT_FINITE},
            {INFINITY, 0, 0, 0, PSOD__ERROR_CODE__ERR_NOT_FINITE},
            {-INFINITY, 0, 0, 0, PSOD__ERROR_CODE__ERR_NOT_FINITE},
            {0.0, INFINITY, 0, 0, PSOD__ERROR_CODE__ERR_NOT_FINITE},
            {0.0, 0, 5, 0, PSOD__ERROR_CODE__ERR_ROUND},  /* from the future */
            {0.0, 0, -1, 0, PSOD__ERROR_CODE__ERR_ROUND}, /* from the past */
            {0.0, 0, 0, 1, PSOD__ERROR_CODE__ERR_CHECKSUM},
        };
        for (size_t k = 0; k < sizeof poison / sizeof poison[0]; k++) {
            if (poison[k].round_delta < 0 && round == 0)
                continue;
            float y[DIM];
            memcpy(y, x, sizeof y);
            if (poison[k].bad != 0)
                y[3] = poison[k].bad;
            Psod__Push push = PSOD__PUSH__INIT;
            push.round = round + (uint64_t)(int64_t)poison[k].round_delta;
            push.loss = poison[k].loss;
            push.seq = 1000 + k;
            push.payload_crc32c = crc32c(0, y, sizeof y) + (uint32_t)poison[k].crc_off;
            s_evil_send(sock, PSOD__COMMAND__CMD_PUSH, &push.base, y, &m);
            ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_ERROR);
            ck_assert_int_eq(((Psod__Error *)m.meta)->code, poison[k].code);
            wire_msg_clear(&m);
            if (poison[k].code == PSOD__ERROR_CODE__ERR_NOT_FINITE)
                refused++;
            else if (poison[k].code == PSOD__ERROR_CODE__ERR_ROUND)
                refused_round++;
            else
                refused_other++;
        }
        Psod__Push push = PSOD__PUSH__INIT;
        push.round = round;
        push.loss = 1e6;
        push.seq = 1;
        push.payload_crc32c = crc32c(0, x, sizeof x);
        s_evil_send(sock, PSOD__COMMAND__CMD_PUSH, &push.base, x, &m);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        Psod__Position *pos = (Psod__Position *)m.meta;
        ck_assert_msg(isfinite(pos->global_best_loss) && pos->global_best_loss < 1e6,
                      "round %d: global best loss %g", r, pos->global_best_loss);
        ck_assert_uint_ne(pos->global_best_particle, me);
        ck_assert_msg(pos->personal_best_loss == 1e6, "round %d: evil's personal best %g", r,
                      pos->personal_best_loss);
        round = pos->round;
        memcpy(x, zmq_msg_data(&m.payload), sizeof x);
        for (int i = 0; i < DIM; i++)
            ck_assert(isfinite(x[i]));
        wire_msg_clear(&m);
    }
    Psod__Bye bye = PSOD__BYE__INIT;
    wire_send(sock, NULL, 0, PSOD__COMMAND__CMD_BYE, &bye.base, NULL, 0);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(proc_wait(p[i], 60), 0);

    char st[8192];
    ck_assert_int_eq(s_ctl("nan-status", (char *[]){"status", ep, "--json", NULL}), 0);
    proc_read("nan-status", "out", st, sizeof st);
    ck_assert_msg(proc_after(st, "\"ERR_NOT_FINITE\":") == refused, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"ERR_ROUND\":") == refused_round, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"ERR_CHECKSUM\":") == refused_other, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"global_best_particle\":") != me, "%.1000s", st);
    ck_assert_msg(isfinite(proc_after(st, "\"global_best_loss\":")), "%.1000s", st);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    /* The global model written at the end is finite throughout. */
    struct modelfile_info info;
    float *params;
    char err[512];
    ck_assert_msg(modelfile_read(model, &info, &params, err, sizeof err) == 0, "%.1000s", err);
    for (uint64_t i = 0; i < info.param_count; i++)
        ck_assert(isfinite(params[i]));
    ck_assert(isfinite(info.loss) && info.loss < 1e6);
    free(params);
}
END_TEST

/* --verify-best: a member that claims a loss it does not have is refused
 * by the worker psod asks to check it, every time, and never becomes the
 * global best; its hostile verdicts (NaN: refused; unasked: ignored) are
 * counted; a VERIFY sent to the daemon is not a request it serves. The
 * evil member is a verifier too: asked, it answers with the claim it was
 * given (the honest workers' claims are true). */
START_TEST(verified_best_refuses_a_liar_and_its_verdicts)
{
    char ep[256], model[600], t[32];
    snprintf(model, sizeof model, "%s/verify.psom", dir);
    pid_t psod = proc_psod("verify", ep, sizeof ep,
                           (char *[]){"--workers", "3", "--strategy", "pso", "--verify-best", "yes",
                                      "--model-out", model, NULL});
    void *ctx = zmq_ctx_new();
    float x[DIM];
    for (int i = 0; i < DIM; i++)
        x[i] = 4.5f; /* rastrigin about 400 */
    uint32_t me;
    uint64_t round;
    void *sock = s_evil_join(ctx, ep, NULL, "liar", x, 1, &me, &round);
    struct wire_msg m;
    /* not a request: a VERIFY to the daemon */
    Psod__Verify bogus = PSOD__VERIFY__INIT;
    bogus.payload_crc32c = crc32c(0, x, sizeof x);
    s_evil_send(sock, PSOD__COMMAND__CMD_VERIFY, &bogus.base, x, &m);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_ERROR);
    ck_assert_int_eq(((Psod__Error *)m.meta)->code, PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND);
    wire_msg_clear(&m);

    pid_t p[2];
    s_rastrigin_pair(ep, "verify", "12", p);
    int nan_sent = 0, ignored_sent = 0, asked = 0;
    Psod__Verdict answer = PSOD__VERDICT__INIT;
    int have_answer = 0;
    for (int r = 0; r < 12; r++) {
        /* a NaN verdict refuses the whole push */
        Psod__Verdict nan = PSOD__VERDICT__INIT;
        nan.loss = NAN;
        Psod__Push push = PSOD__PUSH__INIT;
        push.round = round;
        push.loss = 1e-9; /* the lie */
        push.seq = 500 + (uint64_t)r;
        push.payload_crc32c = crc32c(0, x, sizeof x);
        push.verdict = &nan;
        s_evil_send(sock, PSOD__COMMAND__CMD_PUSH, &push.base, x, &m);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_ERROR);
        ck_assert_int_eq(((Psod__Error *)m.meta)->code, PSOD__ERROR_CODE__ERR_NOT_FINITE);
        wire_msg_clear(&m);
        nan_sent++;
        /* the round's push: the answer to what it was asked, else a
         * verdict nobody asked for (ignored, the push still counts) */
        Psod__Verdict unasked = PSOD__VERDICT__INIT;
        unasked.round = round + 100;
        unasked.loss = 1e-9;
        push.verdict = have_answer ? &answer : &unasked;
        ignored_sent += !have_answer;
        have_answer = 0;
        push.seq = 1 + (uint64_t)r;
        s_evil_send(sock, PSOD__COMMAND__CMD_PUSH, &push.base, x, &m);
        if (m.command == PSOD__COMMAND__CMD_VERIFY) {
            Psod__Verify *v = (Psod__Verify *)m.meta;
            ck_assert_uint_ne(v->particle, me);
            ck_assert_uint_eq(v->seq, push.seq);
            ck_assert_uint_eq(zmq_msg_size(&m.payload), sizeof x);
            ck_assert_uint_eq(crc32c(0, zmq_msg_data(&m.payload), sizeof x), v->payload_crc32c);
            answer.round = v->round;
            answer.particle = v->particle;
            answer.payload_crc32c = v->payload_crc32c;
            answer.loss = v->claimed_loss;
            have_answer = 1;
            asked++;
            wire_msg_clear(&m);
            struct wire_error e;
            struct wire_limits lim = {0, 0};
            ck_assert_int_eq(wire_recv(sock, 0, 0, &lim, &m, &e), 0);
        }
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        Psod__Position *pos = (Psod__Position *)m.meta;
        ck_assert_msg(pos->global_best_particle != me || !isfinite(pos->global_best_loss),
                      "round %d: the liar is the global best (%g)", r, pos->global_best_loss);
        ck_assert_msg(!(pos->global_best_loss < 1), "round %d: global best loss %g", r,
                      pos->global_best_loss);
        round = pos->round;
        memcpy(x, zmq_msg_data(&m.payload), sizeof x);
        for (int i = 0; i < DIM; i++)
            x[i] = 4.5f; /* it stays where it lies from */
        wire_msg_clear(&m);
    }
    /* a bye with a NaN verdict: the verdict is refused, the bye honoured */
    Psod__Verdict nan = PSOD__VERDICT__INIT;
    nan.loss = NAN;
    Psod__Bye bye = PSOD__BYE__INIT;
    bye.verdict = &nan;
    ck_assert_int_eq(wire_send(sock, NULL, 0, PSOD__COMMAND__CMD_BYE, &bye.base, NULL, 0), 0);
    struct wire_error we;
    struct wire_limits wl = {0, 0};
    ck_assert_int_eq(wire_recv(sock, 0, 0, &wl, &m, &we), 0);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_ERROR);
    ck_assert_int_eq(((Psod__Error *)m.meta)->code, PSOD__ERROR_CODE__ERR_NOT_FINITE);
    wire_msg_clear(&m);
    nan_sent++;
    zmq_close(sock);
    zmq_ctx_term(ctx);
    for (int i = 0; i < 2; i++) {
        char err[4096];
        snprintf(t, sizeof t, "verify-w%d", i);
        int rc = proc_wait(p[i], 60);
        proc_read(t, "err", err, sizeof err);
        ck_assert_msg(rc == 0, "worker %d: %.2000s", i, err);
    }
    char st[8192];
    ck_assert_int_eq(s_ctl("verify-status", (char *[]){"status", ep, "--json", NULL}), 0);
    proc_read("verify-status", "out", st, sizeof st);
    ck_assert_msg(proc_after(st, "\"ERR_NOT_FINITE\":") == nan_sent, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"ignored\":") == ignored_sent, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"refused\":") >= 1, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"adopted\":") >= 1, "%.1000s", st);
    ck_assert_msg(proc_after(st, "\"global_best_particle\":") != me, "%.1000s", st);
    double gl = proc_after(st, "\"global_best_loss\":");
    ck_assert_msg(isfinite(gl) && gl > 1e-3, "%.1000s", st);
    fprintf(stderr, "verify: liar asked to verify %d times, %d NaN verdicts, %d ignored\n", asked,
            nan_sent, ignored_sent);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    char log[65536];
    proc_read("verify", "err", log, sizeof log);
    ck_assert_ptr_nonnull(strstr(log, "candidate refused: particle"));
    ck_assert_ptr_nonnull(strstr(log, "ignored a verdict from worker 'liar'"));
    /* The model file holds a verified best: not the liar's weights. */
    struct modelfile_info info;
    float *params;
    char err[512];
    ck_assert_msg(modelfile_read(model, &info, &params, err, sizeof err) == 0, "%.1000s", err);
    ck_assert(params[0] != 4.5f && isfinite(info.loss) && info.loss > 1e-3);
    free(params);
}
END_TEST

/* Trap 14b: a peer can only ever be itself. Under protocol 1 a worker's
 * routing id was "w:" + its name and psod handed a connection over to any
 * newcomer with that id, replies and all; and heartbeats from "h:" + name
 * kept a particle alive. Now psod's ROUTER assigns the ids and heartbeats
 * from another connection need the Welcome's session. */
START_TEST(a_peer_cannot_take_over_another_workers_connection)
{
    char ep[256], w[300], st[8192];
    /* Progress eviction off: only silence may evict a below. */
    pid_t psod = proc_psod("hijack", ep, sizeof ep,
                           (char *[]){"--workers", "1", "--heartbeat-ms", "100", "--liveness", "10",
                                      "--progress-factor", "0", NULL});
    proc_bin(w, sizeof w, "psoworker");
    pid_t a = proc_spawn((char *[]){w,    "--objective",    "rastrigin", "--dim",
                                    "10", "--rounds",       "1000000",   "--sync-every",
                                    "10", "--lr",           "0.005",     "--delay-ms",
                                    "1",  "--name",         "a",         "--connect",
                                    ep,   "--reconnect-ms", "0",         NULL},
                         "hijack-a");
    ck_assert(proc_wait_for("hijack", "err", "worker 'a' (", 10));
    /* The thief claims both of a's protocol-1 ids and listens. */
    void *ctx = zmq_ctx_new();
    void *thief = zmq_socket(ctx, ZMQ_DEALER), *beater = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, wait_ms = 1500;
    zmq_setsockopt(thief, ZMQ_ROUTING_ID, "w:a", 3);
    zmq_setsockopt(beater, ZMQ_ROUTING_ID, "h:a", 3);
    zmq_setsockopt(thief, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(beater, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(thief, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    ck_assert_int_eq(zmq_connect(thief, ep), 0);
    ck_assert_int_eq(zmq_connect(beater, ep), 0);
    ck_assert_int_eq(s_ctl("hijack-st1", (char *[]){"status", ep, "--json", NULL}), 0);
    proc_read("hijack-st1", "out", st, sizeof st);
    double r1 = proc_after(st, "\"round\":");
    /* Nothing of a's reaches the thief, and a goes on training. */
    zmq_msg_t got;
    zmq_msg_init(&got);
    ck_assert_int_eq(zmq_msg_recv(&got, thief, 0), -1);
    zmq_msg_close(&got);
    ck_assert_int_eq(s_ctl("hijack-st2", (char *[]){"status", ep, "--json", NULL}), 0);
    proc_read("hijack-st2", "out", st, sizeof st);
    ck_assert_msg(proc_after(st, "\"round\":") > r1 + 10, "%.1000s", st);
    /* a hangs; heartbeats in its name with a made-up session do not keep
     * its particle alive: evicted once silent for a second. */
    kill(a, SIGSTOP);
    unsigned char bogus[PSOD_SESSION_LEN];
    memset(bogus, 0x41, sizeof bogus);
    double t0 = proc_now();
    int evicted = 0;
    for (uint64_t seq = 1; !evicted && proc_now() - t0 < 4; seq++) {
        Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
        hb.seq = seq;
        hb.worker_name = "a";
        hb.session = (ProtobufCBinaryData){sizeof bogus, bogus};
        wire_send(beater, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL, ZMQ_DONTWAIT);
        usleep(100000);
        evicted = proc_wait_for("hijack", "err", "evicted worker 'a' (particle 0): silent", 0);
    }
    ck_assert_msg(evicted, "a was kept alive by another peer's heartbeats");
    kill(a, SIGCONT);
    kill(a, SIGKILL);
    proc_wait(a, 5);
    zmq_close(thief);
    zmq_close(beater);
    zmq_ctx_term(ctx);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
}
END_TEST

/* ---- CURVE ------------------------------------------------------------ */

/* psoctl keygen DIR/NAME */
static void s_keygen(const char *name)
{
    char base[600];
    snprintf(base, sizeof base, "%s/%s", dir, name);
    ck_assert_int_eq(s_ctl("keygen", (char *[]){"keygen", base, NULL}), 0);
}

static void s_keys(void)
{
    char d[600];
    snprintf(d, sizeof d, "%s/allow", dir);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/admin", dir);
    mkdir(d, 0755);
    s_keygen("server");
    s_keygen("allow/good");
    s_keygen("allow/other");
    s_keygen("admin/op");
    s_keygen("stranger"); /* not in any allow-list */
}

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

/* psod with CURVE, the allow and admin directories, checkpoints in DIR/ck
 * (at exit, on request and every 60 s, never by rounds: a test can tell
 * one it asked for); `resume` adds --resume DIR/ck. */
static pid_t s_curve_psod_ex(const char *tag, char *ep, size_t eplen, const char *workers,
                             int resume)
{
    static char secret[600], allow[600], admin[600], ck[600];
    s_path(secret, sizeof secret, "server.key");
    s_path(allow, sizeof allow, "allow");
    s_path(admin, sizeof admin, "admin");
    s_path(ck, sizeof ck, "ck");
    return proc_psod(tag, ep, eplen,
                     (char *[]){"--workers", (char *)workers, "--strategy", "avg", "--curve-secret",
                                secret, "--allow", allow, "--admin", admin, "--checkpoint-dir", ck,
                                "--checkpoint-every", "0", "--heartbeat-ms", "200",
                                /* without resume the list ends here */
                                resume ? "--resume" : NULL, ck, NULL});
}

static pid_t s_curve_psod(const char *tag, char *ep, size_t eplen, const char *workers)
{
    return s_curve_psod_ex(tag, ep, eplen, workers, 0);
}

/* An objective worker with the key pair `key` ("" = none). */
static pid_t s_curve_worker(const char *ep, const char *name, const char *key, const char *rounds,
                            const char *tag)
{
    char w[300], keyfile[600], server[600];
    proc_bin(w, sizeof w, "psoworker");
    snprintf(keyfile, sizeof keyfile, "%s/%s.key", dir, key);
    s_path(server, sizeof server, "server.pub");
    char *argv[] = {w, "--objective", "sphere", "--dim", "20", "--rounds", (char *)rounds,
                    "--sync-every", "5", "--name", (char *)name, "--connect", (char *)ep,
                    "--timeout-ms", "10000", "--delay-ms", "1",
                    /* without a key the argument list ends here */
                    key[0] ? "--curve-secret" : NULL, keyfile, "--curve-server", server, NULL};
    return proc_spawn(argv, tag);
}

START_TEST(curve_lets_in_allowed_keys_only)
{
    s_keys();
    char ep[256], log[16384], err[4096], out[8192];
    pid_t psod = s_curve_psod("curve", ep, sizeof ep, "1");
    proc_read("curve", "err", log, sizeof log);
    ck_assert_msg(strstr(log, "CURVE on: traffic is encrypted, 2 worker keys allowed, 1 admin") !=
                      NULL,
                  "%.1000s", log);

    /* A key not on the allow-list, and no key: refused, and told why. */
    double t0 = proc_now();
    ck_assert_int_ne(proc_wait(s_curve_worker(ep, "s", "stranger", "5", "curve-stranger"), 30), 0);
    proc_read("curve-stranger", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "refused this peer's key") != NULL, "%.1000s", err);
    ck_assert_int_ne(proc_wait(s_curve_worker(ep, "n", "", "5", "curve-nokey"), 30), 0);
    proc_read("curve-nokey", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "the daemon requires CURVE") != NULL, "%.1000s", err);
    double refused_in = proc_now() - t0;

    /* The allowed key trains. */
    ck_assert_int_eq(proc_wait(s_curve_worker(ep, "good", "allow/good", "20", "curve-good"), 60),
                     0);
    proc_read("curve-good", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "rounds 20") != NULL, "%.1000s", out);

    char key[600], server[600];
    s_path(key, sizeof key, "allow/good.key");
    s_path(server, sizeof server, "server.pub");
    ck_assert_int_eq(s_ctl("curve-st", (char *[]){"status", ep, "--json", "--curve-secret", key,
                                                  "--curve-server", server, NULL}),
                     0);
    proc_read("curve-st", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "\"encrypted\":true") != NULL, "%.1000s", out);
    ck_assert_msg(proc_after(out, "\"peers_refused\":") >= 2, "%.1000s", out);
    ck_assert_msg(proc_after(out, "\"round\":") == 20, "%.1000s", out);
    /* Even reading the status takes an allowed key. */
    ck_assert_int_ne(s_ctl("curve-st2", (char *[]){"status", ep, "--timeout-ms", "3000", NULL}), 0);

    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    proc_read("curve", "err", log, sizeof log);
    ck_assert_msg(strstr(log, "is not on the allow-list") != NULL, "%.1000s", log);
    /* The keyless peer: libzmq reports the mechanism mismatch to the daemon
     * when it sees it first, else only that the handshake failed. */
    ck_assert_msg(strstr(log, "the peer has no CURVE key") != NULL ||
                      strstr(log, "a peer without a CURVE key") != NULL,
                  "%.1000s", log);
    fprintf(stderr,
            "CURVE: unknown key and keyless worker refused and told in %.2f s; allowed "
            "key trained 20 rounds\n",
            refused_in);

    /* A secret key others can read is refused before anything is sent. */
    s_path(key, sizeof key, "allow/good.key");
    chmod(key, 0644);
    pid_t psod2 = s_curve_psod("curve2", ep, sizeof ep, "1");
    ck_assert_int_ne(proc_wait(s_curve_worker(ep, "good", "allow/good", "5", "curve-mode"), 30), 0);
    proc_read("curve-mode", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "readable by others") != NULL, "%.1000s", err);
    kill(psod2, SIGTERM);
    ck_assert_int_eq(proc_wait(psod2, 20), 0);
}
END_TEST

START_TEST(particle_belongs_to_its_key_across_a_restart)
{
    /* Two allowed keys: the second may not act as the first's worker, not
     * while the daemon runs and not after it restarts from its checkpoint. */
    s_keys();
    char ep[256], err[4096];
    pid_t psod = s_curve_psod("own", ep, sizeof ep, "1");
    ck_assert_int_eq(proc_wait(s_curve_worker(ep, "w", "allow/good", "5", "own-1"), 60), 0);
    ck_assert_int_ne(proc_wait(s_curve_worker(ep, "w", "allow/other", "5", "own-2"), 30), 0);
    proc_read("own-2", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "belongs to key 'good'") != NULL, "%.1000s", err);
    kill(psod, SIGTERM); /* final checkpoint */
    ck_assert_int_eq(proc_wait(psod, 20), 0);

    psod = s_curve_psod_ex("own-resumed", ep, sizeof ep, "1", 1);
    ck_assert_int_ne(proc_wait(s_curve_worker(ep, "w", "allow/other", "5", "own-3"), 30), 0);
    proc_read("own-3", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "belongs to key 'good'") != NULL, "%.1000s", err);
    ck_assert_int_eq(proc_wait(s_curve_worker(ep, "w", "allow/good", "5", "own-4"), 60), 0);
    proc_read("own-4", "err", err, sizeof err);
    ck_assert_msg(strstr(err, "(rejoined)") != NULL, "%.1000s", err);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
}
END_TEST

START_TEST(admin_requests_need_an_admin_key)
{
    s_keys();
    char ep[256], out[8192], log[16384], key[600], op[600], server[600], ck[600];
    s_path(key, sizeof key, "allow/good.key");
    s_path(op, sizeof op, "admin/op.key");
    s_path(server, sizeof server, "server.pub");
    pid_t psod = s_curve_psod("adm", ep, sizeof ep, "1");
    pid_t wk = s_curve_worker(ep, "good", "allow/good", "1000000", "adm-good");
    /* until the worker has joined and trained a few rounds */
    proc_ctl_until(
        "adm-st",
        (char *[]){"status", ep, "--json", "--curve-secret", key, "--curve-server", server, NULL},
        s_past_round_2, 10, out, sizeof out);
    ck_assert_msg(proc_after(out, "\"round\":") > 2, "%.1000s", out);

    /* A worker key, and no key at all: refused, nothing changes. */
    ck_assert_int_ne(s_ctl("adm-1", (char *[]){"stop", ep, "--curve-secret", key, "--curve-server",
                                               server, NULL}),
                     0);
    proc_read("adm-1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "ERR_UNAUTHORIZED") != NULL, "%.1000s", out);
    ck_assert_int_ne(s_ctl("adm-2", (char *[]){"evict", ep, "good", "--curve-secret", key,
                                               "--curve-server", server, NULL}),
                     0);
    proc_read("adm-2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "ERR_UNAUTHORIZED") != NULL, "%.1000s", out);
    ck_assert_int_ne(s_ctl("adm-nokey", (char *[]){"stop", ep, NULL}), 0);
    proc_read("adm-nokey", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "requires CURVE") != NULL, "%.1000s", out);
    /* psod has not exited (a zombie would pass kill(pid, 0)) and still
     * serves, with the worker in: nothing changed. */
    ck_assert_int_eq(waitpid(psod, NULL, WNOHANG), 0);
    ck_assert_int_eq(s_ctl("adm-alive", (char *[]){"status", ep, "--json", "--curve-secret", key,
                                                   "--curve-server", server, NULL}),
                     0);
    proc_read("adm-alive", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "\"active\":1,") != NULL, "%.1000s", out);
    s_path(ck, sizeof ck, "ck");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s/ckpt-* >/dev/null 2>&1", ck);
    ck_assert_int_ne(system(cmd), 0); /* no checkpoint yet (every 60 s) */

    /* The admin key: checkpoint, evict, stop. */
    ck_assert_int_eq(s_ctl("adm-3", (char *[]){"checkpoint", ep, "--curve-secret", op,
                                               "--curve-server", server, NULL}),
                     0);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(s_ctl("adm-4", (char *[]){"evict", ep, "good", "--curve-secret", op,
                                               "--curve-server", server, NULL}),
                     0);
    proc_read("adm-4", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "worker 'good' evicted") != NULL, "%.1000s", out);
    ck_assert_int_eq(s_ctl("adm-5", (char *[]){"stop", ep, "--curve-secret", op, "--curve-server",
                                               server, NULL}),
                     0);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    proc_read("adm", "err", log, sizeof log);
    ck_assert_msg(strstr(log, "admin 'op': worker 'good' evicted") != NULL, "%.1000s", log);
    ck_assert_msg(strstr(log, "admin 'op': stopping") != NULL, "%.1000s", log);
    kill(wk, SIGKILL);
    proc_wait(wk, 10);
}
END_TEST

START_TEST(admin_requests_without_curve_need_the_token_file)
{
    /* The token where the test says: psoctl's default place (for this
     * port) has none, a wrong token is refused, the right one stops psod. */
    char ep[256], out[8192], tok[600], wrong[600];
    s_path(tok, sizeof tok, "tok/admin.token");
    s_path(wrong, sizeof wrong, "wrong.token");
    pid_t psod = proc_psod("adm0", ep, sizeof ep,
                           (char *[]){"--workers", "1", "--admin-token-file", tok, NULL});
    struct stat st;
    ck_assert_int_eq(stat(tok, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_ne(s_ctl("adm0-1", (char *[]){"stop", ep, NULL}), 0);
    proc_read("adm0-1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "runs without CURVE") && strstr(out, "--admin-token-file"), "%.1000s",
                  out);
    FILE *f = fopen(wrong, "w");
    fprintf(f, "%064d\n", 7);
    fclose(f);
    ck_assert_int_ne(s_ctl("adm0-2", (char *[]){"stop", ep, "--admin-token", wrong, NULL}), 0);
    proc_read("adm0-2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "this one is not it"), "%.1000s", out);
    ck_assert_int_eq(s_ctl("adm0-3", (char *[]){"status", ep, NULL}), 0);
    ck_assert_int_eq(waitpid(psod, NULL, WNOHANG), 0);
    ck_assert_int_eq(s_ctl("adm0-4", (char *[]){"stop", ep, "--admin-token", tok, NULL}), 0);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    proc_read("adm0", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "admin (the token on this host): stopping"), "%.1000s", out);
    ck_assert_int_ne(stat(tok, &st), 0); /* removed at exit */

    /* The default place: psoctl finds it with no option at all. */
    psod = proc_psod("adm1", ep, sizeof ep, (char *[]){"--workers", "1", NULL});
    ck_assert_int_eq(s_ctl("adm1-1", (char *[]){"stop", ep, NULL}), 0);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    /* none: no file, and refused as before. */
    psod = proc_psod("adm2", ep, sizeof ep,
                     (char *[]){"--workers", "1", "--admin-token-file", "none", NULL});
    ck_assert_int_ne(s_ctl("adm2-1", (char *[]){"stop", ep, NULL}), 0);
    proc_read("adm2-1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "runs without CURVE)") != NULL, "%.1000s", out);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
}
END_TEST

/* ---- --max-peers ------------------------------------------------------ */

START_TEST(max_peers_refuses_extra_connections)
{
    char ep[256], out[8192];
    pid_t psod =
        proc_psod("peers", ep, sizeof ep, (char *[]){"--workers", "1", "--max-peers", "2", NULL});
    /* Two peers that stay connected (each asks for the status once, so
     * its handshake is done). */
    struct psoc *held[2];
    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 5000;
    char err[512];
    for (int i = 0; i < 2; i++) {
        struct psoc_status st;
        ck_assert_int_eq(psoc_open(&held[i], ep, NULL, &o, err, sizeof err), PSOC_OK);
        ck_assert_msg(psoc_status(held[i], 0, &st, err, sizeof err) == PSOC_OK, "%.1000s", err);
        psoc_status_free(&st);
    }
    ck_assert_int_ne(s_ctl("peers-3", (char *[]){"status", ep, NULL}), 0);
    proc_read("peers-3", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "too many peers") != NULL, "%.1000s", out);
    psoc_close(&held[1]);
    /* until the daemon has seen the connection close */
    ck_assert(proc_ctl_until("peers-4", (char *[]){"status", ep, "--json", NULL}, NULL, 5, out,
                             sizeof out));
    ck_assert_msg(proc_after(out, "\"peers_refused\":") >= 1, "%.1000s", out);
    ck_assert_msg(proc_after(out, "\"max_peers\":") == 2, "%.1000s", out);
    psoc_close(&held[0]);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    proc_read("peers", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "--max-peers 2") != NULL, "%.1000s", out);
}
END_TEST

START_TEST(a_request_after_a_refused_handshake_fails_instead_of_hanging)
{
    /* A keyless client whose handshake psod refused before it sent
     * anything has no connection to queue on: a plain send would block for
     * ever (psoctl once hung there, silent, one run in a few hundred). Each
     * request must come back refused, with the reason, in time. */
    s_keys();
    char ep[256], err[512];
    pid_t psod = s_curve_psod("refused", ep, sizeof ep, "1");
    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 3000;
    o.timeout_ms = 3000;
    alarm(60); /* a hang fails the test instead of stalling the suite */
    double t0 = proc_now();
    for (int i = 0; i < 24; i++) {
        struct psoc *c;
        ck_assert_int_eq(psoc_open(&c, ep, NULL, &o, err, sizeof err), PSOC_OK);
        usleep(i * 12000); /* the refused handshake comes first, or a retry */
        struct psoc_status st;
        ck_assert_int_eq(psoc_status(c, 0, &st, err, sizeof err), PSOC_EREFUSED);
        ck_assert_msg(strstr(err, "requires CURVE") != NULL, "%s", err);
        if (i == 23) { /* a second request is refused with the same reason */
            char reply[256];
            ck_assert_int_eq(
                psoc_admin(c, PSOC_ADMIN_STOP, NULL, reply, sizeof reply, err, sizeof err),
                PSOC_EREFUSED);
            ck_assert_msg(strstr(err, "requires CURVE") != NULL, "%s", err);
        }
        psoc_close(&c);
    }
    double t_requests = proc_now() - t0;
    ck_assert_msg(t_requests < 30, "%.1f s", t_requests);

    /* The worker's join: the same, within its own timeout. */
    float w[20] = {0};
    struct psoc *c;
    ck_assert_int_eq(psoc_open(&c, ep, "keyless", &o, err, sizeof err), PSOC_OK);
    usleep(500000);
    struct psoc_welcome wel;
    int rc = psoc_join(c, 20, 0x1234, w, &wel, err, sizeof err);
    ck_assert_msg(rc == PSOC_EREFUSED || rc == PSOC_ETIMEOUT, "%d %s", rc, err);
    psoc_close(&c);
    alarm(0);
    printf("refused handshake: 24 clients asked, answered in %.1f s, a join in %.1f s (%s)\n",
           t_requests, proc_now() - t0 - t_requests, err);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, attack_changes_nothing_and_is_counted);
    tcase_add_test(tc, nan_never_reaches_a_best);
    tcase_add_test(tc, verified_best_refuses_a_liar_and_its_verdicts);
    tcase_add_test(tc, a_peer_cannot_take_over_another_workers_connection);
    tcase_add_test(tc, curve_lets_in_allowed_keys_only);
    tcase_add_test(tc, particle_belongs_to_its_key_across_a_restart);
    tcase_add_test(tc, admin_requests_need_an_admin_key);
    tcase_add_test(tc, a_request_after_a_refused_handshake_fails_instead_of_hanging);
    tcase_add_test(tc, admin_requests_without_curve_need_the_token_file);
    tcase_add_test(tc, max_peers_refuses_extra_connections);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
