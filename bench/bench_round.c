/* bench_round: time of one synchronous round through a real psod, next to
 * raw ZeroMQ moving the same bytes, in the same run.
 *
 *   bench_round PSOD_BINARY [ROUNDS [PARAMETERS WORKERS]]
 *
 * For each size (64Ki, 1Mi, 4Mi float32 parameters) and worker count
 * (1, 2, 4), K worker processes loop: push n floats, wait, receive n
 * floats. With psod they use the client library (CRC-32C both ways, NaN
 * check, the PSO-PS update, particle state); the reference is a bare ROUTER
 * that collects K messages and echoes each back, with bare DEALER clients
 * (zmq_send / zmq_recv into the same kind of buffer). Round time is
 * wall time over the timed rounds divided by their count, taken as the
 * slowest worker's; each cell is the median of 3 repetitions.
 *
 * BENCH_REPS=R takes the median of R repetitions (3; at most 15), each a
 * psod run then a raw run, so slow phases of a shared machine hit both.
 * BENCH_WIRE=bf16 (fp16, int8) makes the psod workers send compressed
 * payloads, against raw ZeroMQ still moving float32.
 *
 * With BENCH_VERIFY=1 it measures what --verify-best costs: every worker
 * pushes a loss lower than any before (so each round has a candidate: the
 * daemon copies it into a VERIFY, a worker measures it with a verifier that
 * reads every weight, and its verdict rides on the next push), psod with
 * --verify-best next to psod without it on the same losses, and raw ZeroMQ.
 *
 * With BENCH_AGGREGATE=1 it measures the robust rules' cost (avg, 4
 * workers): psod with --aggregate mean, median, trimmed (f = 1) and cclip
 * side by side, and raw ZeroMQ.
 *
 * BENCH_STRATEGY=avg (any strategy taking weights) runs psod with it
 * instead of pso; BENCH_THREADS=T gives it --threads T (0, its cores, by
 * default). BENCH_LADDER=1 with PARAMETERS and WORKERS (any counts,
 * up to 64 workers) prints one row of the scale ladder
 * (bench/scale-ladder.sh): round times, bytes a second through psod and
 * psod's peak resident memory; BENCH_LADDER=header with the table's head.
 *
 * With BENCH_CURVE=1 in the environment it measures CURVE's cost instead:
 * psod with --curve-secret and an allow-list next to psod without, and raw
 * ZeroMQ with CURVE next to raw ZeroMQ without, for the same cells. */
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "worker/client/psoclient.h"
#include "common/timeutil.h"

#define WARMUP 5

static int s_rounds = 40;
static int s_wire;        /* BENCH_WIRE: the psod workers' payload encoding */
static int s_verify_mode; /* BENCH_VERIFY: falling losses, verifiers offered */
static int s_verify_on;   /* this run's psod has --verify-best */
static const char *s_agg; /* BENCH_AGGREGATE: this run's psod is avg --aggregate s_agg */
static const char *s_strategy = "pso"; /* BENCH_STRATEGY: the plain table's psod strategy */
static const char *s_threads = "0";    /* BENCH_THREADS: psod --threads (0: its cores) */
static long s_psod_hwm_kib;            /* the last psod run's peak resident memory */
static long s_psod_rss_kib;            /* ... and its resident memory at the end */

/* A verifier that reads every weight, as a real one must (its evaluation
 * on the fitness set is the worker's cost, not the protocol's). */
static int s_verifier(void *ctx, const float *x, size_t n, double *loss)
{
    (void)ctx;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    *loss = isfinite(sum) ? 0 : 1; /* below any claim: adopted */
    return 0;
}

/* CURVE keys for the BENCH_CURVE table (Z85) and where psod finds them. */
static char s_server_pub[41], s_server_sec[41], s_worker_pub[41], s_worker_sec[41];
static char s_keydir[64];

static void s_client_curve(void *sock)
{
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s_server_pub, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, s_worker_pub, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, s_worker_sec, 40);
}

/* Key files for psod: DIR/server.key and DIR/allow/bench.pub. */
static void s_make_keys(void)
{
    zmq_curve_keypair(s_server_pub, s_server_sec);
    zmq_curve_keypair(s_worker_pub, s_worker_sec);
    snprintf(s_keydir, sizeof s_keydir, "/tmp/bench-round-keys-%d", (int)getpid());
    char path[128];
    mkdir(s_keydir, 0700);
    snprintf(path, sizeof path, "%s/allow", s_keydir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/server.key", s_keydir);
    FILE *f = fopen(path, "w");
    fprintf(f, "public-key = %s\nsecret-key = %s\n", s_server_pub, s_server_sec);
    fclose(f);
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/allow/bench.pub", s_keydir);
    f = fopen(path, "w");
    fprintf(f, "public-key = %s\n", s_worker_pub);
    fclose(f);
}

static void s_remove_keys(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_keydir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_keydir);
}

/* Worker body, psod flavour: returns seconds per round. */
static double s_psod_worker(const char *ep, int id, size_t n, int curve)
{
    char name[32], err[256];
    snprintf(name, sizeof name, "bench%d", id);
    float *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(i % 97) * 0.01f;
    struct psoc *c;
    struct psoc_options o;
    psoc_options_default(&o);
    o.wire = s_wire;
    /* 16 hellos of 256 MiB take psod longer than the default 30 s on 2
     * cores: the join waits (the round's time is what is measured). */
    o.connect_timeout_ms = 600000;
    if (curve) {
        memcpy(o.curve_server, s_server_pub, 41);
        memcpy(o.curve_public, s_worker_pub, 41);
        memcpy(o.curve_secret, s_worker_sec, 41);
    }
    if (psoc_open(&c, ep, name, &o, err, sizeof err) ||
        (s_verify_mode && (psoc_set_verifier(c, s_verifier, NULL), 0)) ||
        psoc_join(c, n, 1, w, NULL, err, sizeof err)) {
        fprintf(stderr, "bench worker: %s\n", err);
        exit(1);
    }
    double t0 = 0;
    for (int r = 0; r < WARMUP + s_rounds; r++) {
        if (r == WARMUP)
            t0 = time_now_s();
        double loss = s_verify_mode ? 1.0 / (r + 1) + 1e-3 * id : 1.0 + r;
        if (psoc_sync(c, w, loss, 1, NULL, err, sizeof err)) {
            fprintf(stderr, "bench worker: %s\n", err);
            exit(1);
        }
    }
    double dt = (time_now_s() - t0) / s_rounds;
    psoc_close(&c);
    free(w);
    return dt;
}

static double s_raw_worker(const char *ep, int id, size_t n, int curve)
{
    (void)id;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    if (curve)
        s_client_curve(s);
    zmq_connect(s, ep);
    float *w = malloc(n * sizeof *w);
    memset(w, 0, n * sizeof *w);
    double t0 = 0;
    for (int r = 0; r < WARMUP + s_rounds; r++) {
        if (r == WARMUP)
            t0 = time_now_s();
        zmq_send(s, w, n * sizeof *w, 0);
        if (zmq_recv(s, w, n * sizeof *w, 0) < 0)
            exit(1);
    }
    double dt = (time_now_s() - t0) / s_rounds;
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(w);
    return dt;
}

/* The raw reference server: collect K messages, echo each to its sender. */
static void s_raw_server(void *sock, int k)
{
    zmq_msg_t id[64], body[64];
    for (;;) {
        for (int i = 0; i < k; i++) {
            zmq_msg_init(&id[i]);
            zmq_msg_init(&body[i]);
            if (zmq_msg_recv(&id[i], sock, 0) < 0 || zmq_msg_recv(&body[i], sock, 0) < 0)
                return;
        }
        for (int i = 0; i < k; i++) {
            zmq_msg_send(&id[i], sock, ZMQ_SNDMORE);
            zmq_msg_send(&body[i], sock, 0);
        }
    }
}

static pid_t s_start_psod(const char *bin, int k, int curve, char *ep, size_t eplen)
{
    char epfile[64], workers[16], key[128], allow[128];
    snprintf(epfile, sizeof epfile, "/tmp/bench-round-%d.ep", (int)getpid());
    snprintf(workers, sizeof workers, "%d", k);
    snprintf(key, sizeof key, "%s/server.key", s_keydir);
    snprintf(allow, sizeof allow, "%s/allow", s_keydir);
    unlink(epfile);
    pid_t pid = fork();
    if (pid == 0) {
        if (curve)
            execl(bin, bin, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile, "--workers",
                  workers, "--progress-interval", "0", "--log-level", "warn", "--curve-secret", key,
                  "--allow", allow, (char *)NULL);
        else if (s_agg)
            execl(bin, bin, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile, "--workers",
                  workers, "--progress-interval", "0", "--log-level", "warn", "--strategy", "avg",
                  "--aggregate", s_agg, (char *)NULL);
        else
            execl(bin, bin, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile, "--workers",
                  workers, "--progress-interval", "0", "--log-level", "warn", "--verify-best",
                  s_verify_on ? "yes" : "no", "--strategy", s_strategy, "--max-payload-mb", "4096",
                  "--threads", s_threads, "--liveness", "100", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(epfile, "r");
        if (f && fgets(ep, (int)eplen, f)) {
            fclose(f);
            ep[strcspn(ep, "\n")] = '\0';
            unlink(epfile);
            return pid;
        }
        if (f)
            fclose(f);
        usleep(10000);
    }
    fprintf(stderr, "psod did not start\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    exit(1);
}

/* The children of the run in progress, for s_on_signal: an interrupted
 * bench leaves no psod, server or worker behind. */
static volatile pid_t s_children[65];
static volatile sig_atomic_t s_nchildren;

static void s_on_signal(int sig)
{
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i] > 0)
            kill(s_children[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A failure of the run in progress: its processes go too. */
static void s_fail(const char *why)
{
    fprintf(stderr, "%s\n", why);
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
        }
    exit(1);
}

/* A process's memory figure from /proc (VmHWM: peak resident, VmRSS:
 * resident now) in KiB, 0 if unknown. */
static long s_mem_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kib;
}

/* Run K workers of the given flavour (raw ZeroMQ or psod, with CURVE or
 * not); return the slowest one's round time. */
static double s_run(int raw, int curve, const char *bin, int k, size_t n)
{
    char ep[256];
    pid_t server;
    if (raw) {
        /* ZeroMQ contexts do not survive fork: the server child makes its
         * own and reports its endpoint through a pipe. */
        int epfd[2];
        if (pipe(epfd) != 0)
            exit(1);
        server = fork();
        if (server == 0) {
            void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_ROUTER);
            if (curve) { /* no ZAP handler in this context: every key is accepted */
                int one = 1;
                zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one);
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, s_server_sec, 40);
            }
            zmq_bind(sock, "tcp://127.0.0.1:*");
            size_t len = sizeof ep;
            zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len);
            if (write(epfd[1], ep, sizeof ep) != sizeof ep)
                _exit(1);
            s_raw_server(sock, k);
            _exit(0);
        }
        close(epfd[1]);
        if (read(epfd[0], ep, sizeof ep) != sizeof ep)
            exit(1);
        close(epfd[0]);
    } else {
        server = s_start_psod(bin, k, curve, ep, sizeof ep);
    }
    s_children[0] = server;
    s_nchildren = 1;
    int fds[2];
    if (pipe(fds) != 0)
        exit(1);
    pid_t workers[64];
    for (int i = 0; i < k; i++) {
        if ((workers[i] = fork()) == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            close(fds[0]);
            double dt = raw ? s_raw_worker(ep, i, n, curve) : s_psod_worker(ep, i, n, curve);
            if (write(fds[1], &dt, sizeof dt) != sizeof dt)
                _exit(1);
            _exit(0);
        }
    }
    for (int i = 0; i < k; i++)
        s_children[1 + i] = workers[i];
    s_nchildren = 1 + k;
    close(fds[1]);
    double worst = 0, dt;
    for (int i = 0; i < k; i++) {
        if (read(fds[0], &dt, sizeof dt) != sizeof dt)
            s_fail("a bench worker failed");
        if (dt > worst)
            worst = dt;
    }
    close(fds[0]);
    for (int i = 0; i < k; i++)
        waitpid(workers[i], NULL, 0);
    if (!raw) {
        s_psod_hwm_kib = s_mem_kib(server, "VmHWM");
        s_psod_rss_kib = s_mem_kib(server, "VmRSS");
    }
    kill(server, raw ? SIGKILL : SIGTERM);
    waitpid(server, NULL, 0);
    s_nchildren = 0;
    return worst;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* BENCH_AGGREGATE: 4 workers under avg, each rule beside the mean. */
static int s_aggregate_table(const char *bin, int reps, size_t only_n)
{
    static const char *const rules[] = {"mean", "median", "trimmed", "cclip"};
    size_t sizes[] = {1 << 16, 1 << 20, 1 << 22};
    printf(
        "| parameters | workers | mean (ms) | median (ms) | trimmed (ms) | cclip (ms) | median / "
        "mean | trimmed / mean | cclip / mean | raw ZeroMQ (ms) |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    fflush(stdout);
    for (int a = 0; a < 3; a++) {
        if (only_n && sizes[a] != only_n)
            continue;
        double t[4][15], r[15], med[4];
        for (int rep = 0; rep < reps; rep++) {
            for (int q = 0; q < 4; q++) {
                s_agg = rules[q];
                t[q][rep] = s_run(0, 0, bin, 4, sizes[a]);
            }
            s_agg = NULL;
            r[rep] = s_run(1, 0, bin, 4, sizes[a]);
        }
        for (int q = 0; q < 4; q++) {
            qsort(t[q], (size_t)reps, sizeof **t, s_cmp);
            med[q] = t[q][reps / 2];
        }
        qsort(r, (size_t)reps, sizeof *r, s_cmp);
        printf("| %zu | 4 | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx | %.2f |\n", sizes[a],
               med[0] * 1e3, med[1] * 1e3, med[2] * 1e3, med[3] * 1e3, med[1] / med[0],
               med[2] / med[0], med[3] / med[0], r[reps / 2] * 1e3);
        fflush(stdout);
    }
    return 0;
}

/* BENCH_LADDER: one cell of the scale ladder (bench/scale-ladder.sh):
 * psod (BENCH_STRATEGY) and raw ZeroMQ, the median of `reps` each, with
 * the bytes a second through the daemon and psod's peak resident memory,
 * also as float32 vectors of n per worker (the swarm's constant vectors
 * included). BENCH_LADDER=header prints the table's head first. */
static int s_ladder_cell(const char *bin, int reps, size_t n, int k, int header)
{
    if (header) {
        printf("| strategy | parameters | workers | MB moved per round | psod round (ms) | raw "
               "ZeroMQ round (ms) | ratio | GB/s through psod | psod peak RSS (MiB) | float32 "
               "vectors per worker, peak | psod RSS after the rounds (MiB) | vectors per worker, "
               "then |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    }
    fflush(stdout);
    double p[15], r[15];
    long hwm = 0, rss = 0;
    for (int rep = 0; rep < reps; rep++) {
        p[rep] = s_run(0, 0, bin, k, n);
        hwm = s_psod_hwm_kib > hwm ? s_psod_hwm_kib : hwm;
        rss = s_psod_rss_kib > rss ? s_psod_rss_kib : rss;
        r[rep] = s_run(1, 0, bin, k, n);
    }
    qsort(p, (size_t)reps, sizeof *p, s_cmp);
    qsort(r, (size_t)reps, sizeof *r, s_cmp);
    double bytes = 2.0 * k * (double)n * 4, pm = p[reps / 2], rm = r[reps / 2];
    double vec = (double)k * (double)n * 4 / 1024.0; /* KiB of one vector per worker */
    printf("| %s | %zu | %d | %.1f | %.2f | %.2f | %.2fx | %.2f | %.0f | %.2f | %.0f | %.2f |\n",
           s_strategy, n, k, bytes / 1e6, pm * 1e3, rm * 1e3, pm / rm, bytes / pm / 1e9,
           hwm / 1024.0, hwm / vec, rss / 1024.0, rss / vec);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_round PSOD_BINARY [ROUNDS]\n");
        return 2;
    }
    if (argc > 2)
        s_rounds = atoi(argv[2]);
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    /* The same heap policy psod uses, for both flavours of workers and the
     * raw server (forked from here), so that only the protocol differs. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    size_t only_n = argc > 3 ? (size_t)atol(argv[3]) : 0; /* run one cell only */
    int only_k = argc > 4 ? atoi(argv[4]) : 0;
    size_t sizes[] = {1 << 16, 1 << 20, 1 << 22};
    int ks[] = {1, 2, 4};
    if (only_k > 64) {
        fprintf(stderr, "bench_round: at most 64 workers\n");
        return 2;
    }
    const char *sv = getenv("BENCH_STRATEGY"), *tv = getenv("BENCH_THREADS");
    if (sv && *sv)
        s_strategy = sv;
    if (tv && *tv)
        s_threads = tv;

    const char *rv = getenv("BENCH_REPS"), *wv = getenv("BENCH_WIRE");
    int reps = rv && atoi(rv) > 0 ? atoi(rv) : 3;
    if (reps > 15)
        reps = 15;
    if (wv && *wv && (s_wire = psoc_wire_parse(wv)) < 0) {
        fprintf(stderr, "bench_round: BENCH_WIRE=%s: fp32, fp16, bf16 or int8\n", wv);
        return 2;
    }
    const char *mv = getenv("BENCH_LADDER");
    if (mv && *mv && strcmp(mv, "0") != 0) {
        if (!only_n || !only_k) {
            fprintf(stderr, "bench_round: BENCH_LADDER=1 needs PARAMETERS and WORKERS\n");
            return 2;
        }
        return s_ladder_cell(argv[1], reps, only_n, only_k, mv[0] == 'h');
    }
    const char *cv = getenv("BENCH_CURVE"), *vv = getenv("BENCH_VERIFY");
    int curve = cv && *cv && strcmp(cv, "0") != 0;
    s_verify_mode = vv && *vv && strcmp(vv, "0") != 0;
    const char *av = getenv("BENCH_AGGREGATE");
    if (av && *av && strcmp(av, "0") != 0)
        return s_aggregate_table(argv[1], reps, only_n);
    if (s_verify_mode) {
        printf("| parameters | workers | MB moved per round | psod (ms) | psod --verify-best (ms) "
               "| verify cost | raw ZeroMQ (ms) |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|\n");
        fflush(stdout);
    } else if (curve) {
        s_make_keys();
        printf("| parameters | workers | MB moved per round | psod (ms) | psod + CURVE (ms) | "
               "CURVE cost, psod | raw ZeroMQ (ms) | raw + CURVE (ms) | CURVE cost, raw |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        fflush(stdout); /* before any fork */
    } else {
        printf("| parameters | workers | MB moved per round | psod round (ms) | raw ZeroMQ round "
               "(ms) | ratio |\n");
        printf("|---:|---:|---:|---:|---:|---:|\n");
        fflush(stdout);
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            if ((only_n && sizes[a] != only_n) || (only_k && ks[b] != only_k))
                continue;
            double p[15], r[15], pc[15], rc[15];
            if (s_verify_mode && ks[b] < 2)
                continue; /* a candidate needs another worker to verify it */
            for (int rep = 0; rep < reps; rep++) {
                s_verify_on = 0;
                p[rep] = s_run(0, 0, argv[1], ks[b], sizes[a]);
                r[rep] = s_run(1, 0, argv[1], ks[b], sizes[a]);
                if (s_verify_mode) {
                    s_verify_on = 1;
                    pc[rep] = s_run(0, 0, argv[1], ks[b], sizes[a]);
                    s_verify_on = 0;
                }
                if (curve) {
                    pc[rep] = s_run(0, 1, argv[1], ks[b], sizes[a]);
                    rc[rep] = s_run(1, 1, argv[1], ks[b], sizes[a]);
                }
            }
            qsort(p, (size_t)reps, sizeof *p, s_cmp);
            qsort(r, (size_t)reps, sizeof *r, s_cmp);
            double mb = 2.0 * ks[b] * (double)sizes[a] * 4 / 1e6;
            if (s_verify_mode) {
                qsort(pc, (size_t)reps, sizeof *pc, s_cmp);
                printf("| %zu | %d | %.1f | %.2f | %.2f | %.2fx | %.2f |\n", sizes[a], ks[b], mb,
                       p[reps / 2] * 1e3, pc[reps / 2] * 1e3, pc[reps / 2] / p[reps / 2],
                       r[reps / 2] * 1e3);
            } else if (curve) {
                qsort(pc, (size_t)reps, sizeof *pc, s_cmp);
                qsort(rc, (size_t)reps, sizeof *rc, s_cmp);
                printf("| %zu | %d | %.1f | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n",
                       sizes[a], ks[b], mb, p[reps / 2] * 1e3, pc[reps / 2] * 1e3,
                       pc[reps / 2] / p[reps / 2], r[reps / 2] * 1e3, rc[reps / 2] * 1e3,
                       rc[reps / 2] / r[reps / 2]);
            } else {
                printf("| %zu | %d | %.1f | %.2f | %.2f | %.2f |\n", sizes[a], ks[b], mb,
                       p[reps / 2] * 1e3, r[reps / 2] * 1e3, p[reps / 2] / r[reps / 2]);
            }
            fflush(stdout);
        }
    if (curve)
        s_remove_keys();
    return 0;
}
