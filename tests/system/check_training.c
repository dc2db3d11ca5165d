/* Suite: training through psod. Real psod and psoworker processes on
 * loopback, on generated MNIST-format data: every strategy trains and its
 * model file evaluates to what the run reported, over float32 and over
 * compressed payloads, seeded runs are byte-identical whatever order the
 * pushes arrive in, and workers on engine threads repeat their bits. (Failures and recovery are check_cluster's.) */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/strategy/strategy.h"
#include "tests/lib/fixtures.h"
#include "tests/lib/proc.h"

static char bin[256];
static char dir[] = "/tmp/psod-training-XXXXXX";

static void setup(void) { proc_setup(bin, dir, "/tmp/psod-training-XXXXXX"); }
static void teardown(void) { proc_teardown(dir); }

/* Start mlp worker `i` of 3 (name wN, shard N of 3, batch 32, lr 0.02)
 * against ep with the options of this run in `extra` (NULL-terminated). */
static pid_t s_mlp_worker(const char *ep, int i, const char *tag, char *const extra[])
{
    char w[300], name[16], idx[16];
    proc_bin(w, sizeof w, "psoworker");
    snprintf(name, sizeof name, "w%d", i);
    snprintf(idx, sizeof idx, "%d", i);
    char *argv[48] = {w,      "--connect",     (char *)ep, "--name",        name, "--model",
                      "mlp",  "--data-dir",    dir,        "--batch",       "32", "--lr",
                      "0.02", "--shard-index", idx,        "--shard-count", "3",  "--timeout-ms",
                      "30000"};
    int n = 19;
    for (int k = 0; extra[k] && n < 47; k++)
        argv[n++] = extra[k];
    argv[n] = NULL;
    return proc_spawn(argv, tag);
}

/* psod plus 3 mlp workers on generated MNIST-format data for one strategy:
 * psod exits by itself once all leave (--exit-when-done); the global model
 * it writes must have learned (loss under a threshold, accuracy far above
 * chance) and evaluate to exactly the accuracy the run reported. */
/* `wires`: the three workers' --wire kinds, NULL for float32. */
static void s_strategy_run(const char *strategy, const char *const *wires)
{
    char ep[256], tag[96], model[600], metrics[600], run[64];
    snprintf(run, sizeof run, "%s%s", strategy, wires ? "-wire" : "");
    snprintf(model, sizeof model, "%s/%s.psom", dir, run);
    snprintf(metrics, sizeof metrics, "%s/%s.jsonl", dir, run);
    /* ssgd takes one global step per round with the daemon's learning rate:
     * 30 steps here, so a larger one than the workers' local 0.02. */
    pid_t psod =
        proc_psod(run, ep, sizeof ep,
                  (char *[]){"--workers", "3", "--strategy", (char *)strategy, "--exit-when-done",
                             "--model-out", model, "--metrics", metrics, "--ssgd-lr", "0.1", NULL});
    pid_t p[3];
    for (int i = 0; i < 3; i++) {
        snprintf(tag, sizeof tag, "%s-w%d", run, i);
        p[i] = s_mlp_worker(ep, i, tag,
                            (char *[]){"--dataset", "mnist", "--epochs", "2", "--sync-every", "4",
                                       "--eval-every", "1", "--progress-interval", "0", "--wire",
                                       wires ? (char *)wires[i] : "fp32", NULL});
    }
    for (int i = 0; i < 3; i++) {
        snprintf(tag, sizeof tag, "%s-w%d", run, i);
        int rc = proc_wait(p[i], 120);
        char err[8192];
        proc_read(tag, "err", err, sizeof err);
        ck_assert_msg(rc == 0, "%.1000s worker %d: %d: %.1000s", run, i, rc, err);
        /* Compressed: every position decoded to the daemon's floats (a
         * mismatch would have made the worker rejoin). */
        ck_assert_msg(strstr(err, "did not use this push") == NULL, "%s worker %d: %.2000s", run, i,
                      err);
        if (wires) {
            char want[64];
            snprintf(want, sizeof want, "%s payloads", wires[i]);
            ck_assert_msg(strstr(err, want) != NULL, "%s worker %d: %.1000s", run, i, err);
        }
    }
    ck_assert_int_eq(proc_wait(psod, 20), 0); /* left by itself */
    char log[16384], last[8192], out[2048];
    proc_read(run, "err", log, sizeof log);
    proc_last_line(metrics, last, sizeof last);
    double loss = proc_after(last, "\"global_loss\":");
    ck_assert_msg(loss < 0.6, "%.1000s: global loss %g: %.1000s", strategy, loss, last);
    /* The model file evaluates to what the run reported. */
    char w[300];
    proc_bin(w, sizeof w, "psoworker");
    snprintf(tag, sizeof tag, "%s-eval", run);
    pid_t e =
        proc_spawn((char *[]){w, "--eval", model, "--model", "mlp", "--data-dir", dir, NULL}, tag);
    ck_assert_int_eq(proc_wait(e, 60), 0);
    proc_read(tag, "out", out, sizeof out);
    double acc = proc_after(out, "test accuracy ");
    const char *fin = strstr(log, "final: ");
    ck_assert_msg(fin != NULL, "%.1000s", log);
    double reported = proc_after(fin, "test accuracy ");
    fprintf(stderr,
            "strategy %s, 3 workers%s: global loss %.4f, model file accuracy %.4f, "
            "reported %.4f\n",
            strategy, wires ? " (fp16, bf16, int8)" : "", loss, acc, reported);
    ck_assert_msg(acc > 0.8, "%.1000s: accuracy %g: %.1000s", run, acc, out);
    /* easgd's center is never sent to a worker; a compressed position is
     * the global model within one rounding of a change. */
    if (strcmp(strategy, "easgd") != 0)
        ck_assert_msg(fabs(acc - reported) < (wires ? 0.02 : 1e-5),
                      "%.1000s: file %.6f, reported %.6f", run, acc, reported);
}

START_TEST(every_strategy_trains_and_its_model_file_matches)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 1500, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 300, 2), 0);
    s_strategy_run(strategy_choices[_i], NULL);
}
END_TEST

/* Every strategy with every compressed kind: one worker each on fp16, bf16
 * and int8, in one swarm. */
START_TEST(every_strategy_trains_over_compressed_payloads)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 1500, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 300, 2), 0);
    static const char *const wires[3] = {"fp16", "bf16", "int8"};
    s_strategy_run(strategy_choices[_i], wires);
}
END_TEST

/* One seeded run of `strategy` with 3 workers whose local steps take
 * delays[i] ms (so pushes arrive in another order), each on `threads`
 * engine threads, with psod options `pextra`, every worker's `wextra` and
 * worker 0's `first` (NULL-terminated, up to 8 each); its model file. */
static void s_seeded_run_with(const char *strategy, const int *delays, const char *threads,
                              const char *const *pextra, const char *const *wextra,
                              const char *const *first, const char *tag, char *model, size_t mlen)
{
    char ep[256], t[96];
    snprintf(model, mlen, "%s/%s.psom", dir, tag);
    char *pargs[24] = {"--workers",        "3",           "--strategy",
                       (char *)strategy,   "--seed",      "7",
                       "--exit-when-done", "--model-out", model};
    int np = 9;
    for (int k = 0; pextra && pextra[k] && np < 23; k++)
        pargs[np++] = (char *)pextra[k];
    pargs[np] = NULL;
    pid_t psod = proc_psod(tag, ep, sizeof ep, pargs);
    pid_t p[3];
    for (int i = 0; i < 3; i++) {
        char delay[16];
        snprintf(delay, sizeof delay, "%d", delays[i]);
        snprintf(t, sizeof t, "%s-w%d", tag, i);
        char *wargs[32] = {"--epochs",     "1", "--sync-every", "2",
                           "--eval-every", "0", "--delay-ms",   delay,
                           "--seed",       "3", "--threads",    (char *)threads};
        int nw = 12;
        for (int k = 0; wextra && wextra[k] && nw < 20; k++)
            wargs[nw++] = (char *)wextra[k];
        for (int k = 0; i == 0 && first && first[k] && nw < 28; k++)
            wargs[nw++] = (char *)first[k];
        wargs[nw] = NULL;
        p[i] = s_mlp_worker(ep, i, t, wargs);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(t, sizeof t, "%s-w%d", tag, i);
        int rc = proc_wait(p[i], 120);
        char err[4096];
        proc_read(t, "err", err, sizeof err);
        ck_assert_msg(rc == 0, "%s worker %d: %d: %.2000s", tag, i, rc, err);
    }
    ck_assert_int_eq(proc_wait(psod, 20), 0);
}

static void s_seeded_run_on(const char *strategy, const int *delays, const char *threads,
                            const char *tag, char *model, size_t mlen)
{
    s_seeded_run_with(strategy, delays, threads, NULL, NULL, NULL, tag, model, mlen);
}

/* The test accuracy of a model file, by psoworker --eval. */
static double s_eval(const char *model, const char *tag)
{
    char w[300], out[2048];
    proc_bin(w, sizeof w, "psoworker");
    pid_t e = proc_spawn(
        (char *[]){w, "--eval", (char *)model, "--data-dir", dir, "--threads", "2", NULL}, tag);
    ck_assert_int_eq(proc_wait(e, 60), 0);
    proc_read(tag, "out", out, sizeof out);
    return proc_after(out, "test accuracy ");
}

/* The worker (0, 1, 2) that pushed first in each round, from psod's debug
 * log (DIR/TAG.err), as a string of digits. */
static void s_first_pushers(const char *tag, char *out, size_t len)
{
    static char log[1 << 20];
    proc_read(tag, "err", log, sizeof log);
    size_t k = 0;
    for (const char *p = log; (p = strstr(p, ": push 1 from 'w")) && k + 1 < len; p++)
        out[k++] = p[strlen(": push 1 from 'w")];
    out[k] = '\0';
}

START_TEST(seeded_runs_are_byte_identical_whatever_order_pushes_arrive_in)
{
    /* psod sums a round's mean while pushes arrive; in stream order, so
     * the floats cannot depend on who was first. Two runs with opposite
     * worker speeds: the same model file, byte for byte. */
    const char *strategy = _i == 0 ? "pso" : "avg";
    ck_assert_int_eq(fixture_write_idx(dir, "train", 900, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 100, 2), 0);
    static const int fast_first[3] = {0, 15, 30}, slow_first[3] = {30, 15, 0};
    static const char *const debug[] = {"--log-level", "debug", NULL};
    char a[600], b[600], tag[32], firsts[2][64];
    for (int run = 0; run < 2; run++) {
        snprintf(tag, sizeof tag, "%s-order-%c", strategy, 'a' + run);
        s_seeded_run_with(strategy, run ? slow_first : fast_first, "1", debug, NULL, NULL, tag,
                          run ? b : a, sizeof a);
        /* Who pushed first in each round: the runs must differ there, or
         * the test shows nothing about order. */
        s_first_pushers(tag, firsts[run], sizeof firsts[run]);
    }
    ck_assert_msg(strlen(firsts[0]) >= 3 && strncmp(firsts[0], firsts[1], 3) != 0,
                  "%s: the first pushers were the same in both runs: %s / %s", strategy, firsts[0],
                  firsts[1]);
    size_t la = 0, lb = 0;
    unsigned char *fa = proc_slurp(a, &la), *fb = proc_slurp(b, &lb);
    ck_assert_ptr_nonnull(fa);
    ck_assert_ptr_nonnull(fb);
    ck_assert_uint_gt(la, 1000);
    ck_assert_msg(la == lb && memcmp(fa, fb, la) == 0, "%s: model files differ (%zu, %zu bytes)",
                  strategy, la, lb);
    free(fa);
    free(fb);
}
END_TEST

START_TEST(engine_threads_repeat_their_bits_and_agree_with_one_thread)
{
    /* Workers on 2 engine threads: two seeded runs give the same model file
     * byte for byte; one thread trains to the same accuracy within the
     * drift that rounding differences grow into over 30 steps. */
    ck_assert_int_eq(fixture_write_idx(dir, "train", 900, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 300, 2), 0);
    static const int none[3] = {0, 0, 0};
    char a[600], b[600], c[600];
    s_seeded_run_on("pso", none, "2", "threads-2a", a, sizeof a);
    s_seeded_run_on("pso", none, "2", "threads-2b", b, sizeof b);
    s_seeded_run_on("pso", none, "1", "threads-1", c, sizeof c);
    size_t la = 0, lb = 0;
    unsigned char *fa = proc_slurp(a, &la), *fb = proc_slurp(b, &lb);
    ck_assert_ptr_nonnull(fa);
    ck_assert_ptr_nonnull(fb);
    ck_assert_msg(la == lb && memcmp(fa, fb, la) == 0, "2 threads: model files differ");
    free(fa);
    free(fb);
    double acc2 = s_eval(a, "threads-eval-2"), acc1 = s_eval(c, "threads-eval-1");
    fprintf(stderr, "engine threads: accuracy %.4f on 2 threads, %.4f on 1\n", acc2, acc1);
    ck_assert_msg(acc2 > 0.5 && fabs(acc2 - acc1) < 0.05, "accuracy %.4f against %.4f", acc2, acc1);
}
END_TEST

/* The scenario options of the experiments (docs/RESULTS.md): each seeded
 * run gives the same model file twice, and pushes arriving in another
 * order do not change it. */
static const char *const s_scen_psod[][5] = {
    {"--attractor", "weighted", "--temperature", "0.1", NULL},
    {NULL},
    {NULL},
    {"--attractor", "best", NULL},
    {"--attractor", "mix", NULL},
    {"--verify-best", "yes", NULL},
    {"--hyper", "yes", NULL},
    {"--aggregate", "cclip", "--verify-best", "yes", NULL},
    {"--aggregate", "trimmed", NULL},
};
static const char *const s_scen_workers[][7] = {
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--shard-mode", "dirichlet", "--shard-alpha", "0.5", NULL},
    {"--shard-mode", "classes", "--shard-classes", "2", "--weight-noise", "0.01", NULL},
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--fitness", "shared", "--holdout", "100", NULL},
    {"--shard-mode", "dirichlet", "--shard-alpha", "0.5", NULL},
};
/* 5: a worker that lies about its fitness, refused by the verifiers.
 * 6: particles that carry their learning rate and momentum (--hyper).
 * 7: pso's robust attractor (cclip) with a verified quorum against a
 *    sign-flipping attacker; 8: trimmed mean against ALIE. */
static const char *const s_scen_first[][4] = {
    {NULL},
    {NULL},
    {NULL},
    {"--shuffle-labels", NULL},
    {"--shuffle-labels", NULL},
    {"--shuffle-labels", "--lie-loss", "0.01", NULL},
    {NULL},
    {"--attack", "signflip", NULL},
    {"--attack", "alie", NULL},
};

START_TEST(scenario_options_are_byte_identical_twice)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 900, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 100, 2), 0);
    static const int fast_first[3] = {0, 10, 20}, slow_first[3] = {20, 10, 0};
    char a[600], b[600], tag[32];
    snprintf(tag, sizeof tag, "scenario%d-a", _i);
    s_seeded_run_with("pso", fast_first, "1", s_scen_psod[_i], s_scen_workers[_i], s_scen_first[_i],
                      tag, a, sizeof a);
    snprintf(tag, sizeof tag, "scenario%d-b", _i);
    s_seeded_run_with("pso", slow_first, "1", s_scen_psod[_i], s_scen_workers[_i], s_scen_first[_i],
                      tag, b, sizeof b);
    size_t la = 0, lb = 0;
    unsigned char *fa = proc_slurp(a, &la), *fb = proc_slurp(b, &lb);
    ck_assert_ptr_nonnull(fa);
    ck_assert_ptr_nonnull(fb);
    ck_assert_uint_gt(la, 1000);
    ck_assert_msg(la == lb && memcmp(fa, fb, la) == 0, "scenario %d: model files differ", _i);
    free(fa);
    free(fb);
    if (_i == 6) {
        /* Every worker trained with what psod handed it. */
        for (int w = 0; w < 3; w++) {
            char log[65536], t[48];
            snprintf(t, sizeof t, "scenario6-a-w%d", w);
            proc_read(t, "err", log, sizeof log);
            ck_assert_ptr_nonnull(strstr(log, "psod --hyper: training with learning rate"));
            ck_assert_ptr_nonnull(strstr(log, "psod --hyper: the run ended with learning rate"));
        }
    }
    if (_i == 5) {
        /* Without --verify-best the liar's weights are the global best,
         * the model file; with it they never are. */
        char c[600];
        s_seeded_run_with("pso", fast_first, "1", NULL, s_scen_workers[_i], s_scen_first[_i],
                          "scenario5-unverified", c, sizeof c);
        double verified = s_eval(a, "scenario5-eval-a"), unverified = s_eval(c, "scenario5-eval-c");
        char log[65536];
        proc_read("scenario5-a", "err", log, sizeof log);
        fprintf(stderr, "lying worker: model accuracy %.4f verified, %.4f unverified\n", verified,
                unverified);
        ck_assert_ptr_nonnull(strstr(log, "candidate refused: particle"));
        ck_assert_ptr_nonnull(strstr(log, "new global best: particle"));
        ck_assert_msg(verified > 0.3 && verified > unverified + 0.2, "accuracy %.4f, %.4f",
                      verified, unverified);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("training");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, every_strategy_trains_and_its_model_file_matches, 0, STRATEGY_COUNT);
    tcase_add_loop_test(tc, every_strategy_trains_over_compressed_payloads, 0, STRATEGY_COUNT);
    tcase_add_loop_test(tc, seeded_runs_are_byte_identical_whatever_order_pushes_arrive_in, 0, 2);
    tcase_add_test(tc, engine_threads_repeat_their_bits_and_agree_with_one_thread);
    tcase_add_loop_test(tc, scenario_options_are_byte_identical_twice, 0, 9);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
