/* Suite: psod and psoworker as users meet them. Each test is a trap a new
 * or careless user fell into (issue 11), run with the real binaries on
 * loopback: a lost model reported as saved, two workers under one name, a
 * resume that threw the metrics away, a worker that died without a bye on
 * Ctrl-C, a restarted worker that began its epochs again, --eval guessing
 * the model, silent waits, and options read the wrong way. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/fixtures.h"
#include "tests/lib/proc.h"

static char bin[256];
static char dir[] = "/tmp/psod-usage-XXXXXX";
static char out[1 << 16];

static void setup(void) { proc_setup(bin, dir, "/tmp/psod-usage-XXXXXX"); }
static void teardown(void) { proc_teardown(dir); }

static void s_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* A rastrigin worker; `extra` (NULL-terminated, may be NULL) appended. */
static pid_t s_worker(const char *ep, const char *name, const char *rounds, const char *tag,
                      char *const extra[])
{
    char w[300];
    proc_bin(w, sizeof w, "psoworker");
    char *argv[40] = {w,
                      "--objective",
                      "rastrigin",
                      "--dim",
                      "10",
                      "--rounds",
                      (char *)rounds,
                      "--sync-every",
                      "10",
                      "--lr",
                      "0.005",
                      "--name",
                      (char *)name,
                      "--connect",
                      (char *)ep,
                      "--timeout-ms",
                      "20000"};
    int n = 17;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return proc_spawn(argv, tag);
}

/* psod run to the end on its own; returns its exit status. */
static int s_psod_alone(const char *tag, char *const args[])
{
    char psod[300];
    proc_bin(psod, sizeof psod, "psod");
    char *argv[40] = {psod, "--bind", "tcp://127.0.0.1:*", "--progress-interval", "0"};
    int n = 5;
    for (int i = 0; args[i] && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return proc_wait(proc_spawn(argv, tag), 20);
}

START_TEST(unusable_paths_are_refused_at_start_and_a_lost_model_fails_the_run)
{
    char p[600], q[600];
    ck_assert_int_eq(s_psod_alone("p1", (char *[]){"--model-out", "/nonexistent/m.psom", NULL}), 1);
    proc_read("p1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "--model-out '/nonexistent/m.psom': directory '/nonexistent' does "
                              "not exist"),
                  "%.2000s", out);
    s_path(p, sizeof p, "plain-file");
    FILE *f = fopen(p, "w");
    fclose(f);
    ck_assert_int_eq(s_psod_alone("p2", (char *[]){"--checkpoint-dir", p, NULL}), 1);
    proc_read("p2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "is not a directory"), "%.2000s", out);
    ck_assert_int_eq(s_psod_alone("p3", (char *[]){"--metrics", "/nonexistent/m.jsonl", NULL}), 1);

    /* The directory goes away during the run: the final save fails, psod
     * says so, never "written to", and exits 1. */
    s_path(p, sizeof p, "sub");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    s_path(q, sizeof q, "sub/m.psom");
    char ep[256];
    pid_t psod =
        proc_psod("lost", ep, sizeof ep,
                  (char *[]){"--workers", "1", "--exit-when-done", "--model-out", q, NULL});
    ck_assert_int_eq(rmdir(p), 0);
    ck_assert_int_eq(proc_wait(s_worker(ep, "a", "5", "lost-a", NULL), 30), 0);
    ck_assert_int_eq(proc_wait(psod, 10), 1);
    proc_read("lost", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "could not save the global model"), "%.2000s", out);
    ck_assert_msg(strstr(out, "was NOT saved"), "%.2000s", out);
    ck_assert_msg(!strstr(out, "written to"), "%.2000s", out);

    /* The checkpoint directory goes away: each checkpoint fails, psod says
     * so once (not every round), and its final one failing exits 1. */
    s_path(p, sizeof p, "ck");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    psod = proc_psod("ckfail", ep, sizeof ep,
                     (char *[]){"--workers", "1", "--exit-when-done", "--checkpoint-dir", p,
                                "--checkpoint-every", "1", NULL});
    ck_assert_int_eq(rmdir(p), 0);
    ck_assert_int_eq(proc_wait(s_worker(ep, "a", "20", "ckfail-a", NULL), 30), 0);
    ck_assert_int_eq(proc_wait(psod, 10), 1);
    proc_read("ckfail", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "ERROR checkpoint of round 1 failed (1 so far)"), "%.3000s", out);
    ck_assert_msg(!strstr(out, "failed (2 so far)"), "%.3000s", out); /* said once a minute */
    ck_assert_msg(strstr(out, "the final checkpoint (round 20) was not written"), "%.3000s", out);
}
END_TEST

START_TEST(a_second_worker_under_a_live_name_is_refused)
{
    char ep[256];
    pid_t psod = proc_psod("dup", ep, sizeof ep, (char *[]){"--workers", "2", NULL});
    pid_t a = s_worker(ep, "x", "40", "dup-a", NULL);
    ck_assert(proc_wait_for("dup", "err", "worker 'x' (", 10));
    pid_t twin = s_worker(ep, "x", "40", "dup-twin", (char *[]){"--join-timeout-ms", "5000", NULL});
    ck_assert_int_eq(proc_wait(twin, 20), 1);
    proc_read("dup-twin", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "ERR_NAME_TAKEN") && strstr(out, "held by a live worker (pid"),
                  "%.2000s", out);
    /* The swarm is not deadlocked: a second, distinct worker completes it. */
    pid_t b = s_worker(ep, "y", "40", "dup-b", NULL);
    ck_assert_int_eq(proc_wait(a, 30), 0);
    ck_assert_int_eq(proc_wait(b, 30), 0);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
    proc_read("dup", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "refused peer 'w:x': ERR_NAME_TAKEN"), "%.2000s", out);
}
END_TEST

static int s_lines(const char *path, unsigned long long *first, unsigned long long *last)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[1 << 14];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long r = 0;
        ck_assert_int_eq(sscanf(line, "{\"round\":%llu", &r), 1);
        if (n == 0)
            *first = r;
        *last = r;
        n++;
    }
    fclose(f);
    return n;
}

START_TEST(a_worker_restarted_after_kill_9_is_back_within_seconds)
{
    /* No bye from a killed worker: its restart on the same host takes the
     * particle over once psod has missed two of its heartbeats (2 s here),
     * not after --liveness (10 s), and the swarm trains on. */
    char ep[256];
    pid_t psod = proc_psod("k9", ep, sizeof ep, (char *[]){"--workers", "2", NULL});
    pid_t a = s_worker(ep, "a", "100000", "k9-a", (char *[]){"--delay-ms", "2", NULL});
    pid_t b = s_worker(ep, "b", "100000", "k9-b", (char *[]){"--delay-ms", "2", NULL});
    ck_assert(proc_wait_for("k9-a", "err", "joined", 10));
    usleep(500000);
    kill(a, SIGKILL);
    ck_assert_int_eq(proc_wait(a, 5), -SIGKILL);
    double t0 = proc_now();
    a = s_worker(ep, "a", "100000", "k9-a2", (char *[]){"--delay-ms", "2", NULL});
    ck_assert(proc_wait_for("k9-a2", "err", "(rejoined)", 8));
    double back = proc_now() - t0;
    ck_assert_msg(back < 6, "back after %.1f s", back);
    proc_read("k9", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "worker 'a': a new process (pid") &&
                      strstr(out, "takes over from pid"),
                  "%.3000s", out);
    proc_read("k9-a2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "held by a live worker") && strstr(out, "trying again"), "%.3000s",
                  out);
    kill(a, SIGTERM);
    kill(b, SIGTERM);
    ck_assert_int_ge(proc_wait(a, 20), 0);
    ck_assert_int_ge(proc_wait(b, 20), 0);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
    printf("kill -9: the restarted worker was back in %.1f s\n", back);
}
END_TEST

START_TEST(resume_keeps_the_metrics_history_and_refuses_a_missing_directory)
{
    char ck[600], metrics[600], ep[256];
    s_path(ck, sizeof ck, "ck");
    s_path(metrics, sizeof metrics, "m.jsonl");
    /* A typo in --resume does not start a new swarm over the old one. */
    ck_assert_int_eq(s_psod_alone("r0", (char *[]){"--resume", ck, NULL}), 1);
    proc_read("r0", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "does not exist (a typo?"), "%.2000s", out);
    ck_assert_int_eq(mkdir(ck, 0755), 0);
    ck_assert_int_eq(s_psod_alone("r1", (char *[]){"--resume", ck, NULL}), 1);
    proc_read("r1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "holds no checkpoint"), "%.2000s", out);

    /* --resume-or-start: the first start of a job. 10 rounds, checkpoint. */
    pid_t psod = proc_psod("r2", ep, sizeof ep,
                           (char *[]){"--workers", "1", "--resume", ck, "--resume-or-start",
                                      "--metrics", metrics, "--max-rounds", "10", NULL});
    pid_t a = s_worker(ep, "a", "1000", "r2-a", (char *[]){"--reconnect-ms", "0", NULL});
    ck_assert_int_eq(proc_wait(psod, 30), 0);
    proc_wait(a, 30);
    unsigned long long first, last;
    ck_assert_int_eq(s_lines(metrics, &first, &last), 10);
    /* A line of a round after the checkpoint, as a crash leaves behind. */
    FILE *f = fopen(metrics, "a");
    fputs("{\"round\":11,\"time\":1}\n", f);
    fclose(f);
    psod = proc_psod("r3", ep, sizeof ep,
                     (char *[]){"--workers", "1", "--resume", ck, "--metrics", metrics,
                                "--max-rounds", "15", NULL});
    a = s_worker(ep, "a", "1000", "r3-a", (char *[]){"--reconnect-ms", "0", NULL});
    ck_assert_int_eq(proc_wait(psod, 30), 0);
    proc_wait(a, 30);
    int lines = s_lines(metrics, &first, &last);
    proc_read("r3", "err", out, sizeof out);
    if (lines != 15 || first != 1 || last != 15) {
        char log[4000];
        memcpy(log, out, sizeof log - 1);
        log[sizeof log - 1] = '\0';
        FILE *m = fopen(metrics, "r");
        size_t got = m ? fread(out, 1, sizeof out - 1, m) : 0;
        out[got] = '\0';
        if (m)
            fclose(m);
        ck_abort_msg("%d lines, rounds %llu..%llu; metrics:\n%.6000s\npsod:\n%s", lines, first,
                     last, out, log);
    }
    ck_assert_msg(strstr(out, "kept 10 lines up to round 10, dropped 1"), "%.2000s", out);
}
END_TEST

START_TEST(sigterm_and_sigint_end_a_worker_with_a_bye)
{
    char ep[256];
    /* Liveness of 60 s: without a bye the round would wait that long. */
    pid_t psod = proc_psod("sig", ep, sizeof ep,
                           (char *[]){"--workers", "2", "--max-workers", "3", "--heartbeat-ms",
                                      "1000", "--liveness", "60", NULL});
    pid_t a = s_worker(ep, "a", "100000", "sig-a", (char *[]){"--delay-ms", "2", NULL});
    pid_t b = s_worker(ep, "b", "300", "sig-b", NULL);
    ck_assert(proc_wait_for("sig", "err", "worker 'b' (", 10));
    usleep(300000);
    double t0 = proc_now();
    kill(a, SIGTERM);
    ck_assert_int_eq(proc_wait(a, 5), 143);
    ck_assert_double_lt(proc_now() - t0, 3);
    proc_read("sig-a", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "(interrupted)"), "%.2000s", out);
    ck_assert(proc_wait_for("sig", "err", "worker 'a' left", 5));
    /* b finishes its 300 rounds alone, long before a 60 s eviction. */
    ck_assert_int_eq(proc_wait(b, 20), 0);
    pid_t c = s_worker(ep, "c", "100000", "sig-c", NULL);
    ck_assert(proc_wait_for("sig", "err", "worker 'c' (", 10));
    kill(c, SIGINT);
    ck_assert_int_eq(proc_wait(c, 5), 130);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
}
END_TEST

/* An mlp worker on the fixture data. */
static pid_t s_mlp(const char *ep, const char *name, const char *tag, char *const extra[])
{
    char w[300];
    proc_bin(w, sizeof w, "psoworker");
    char *argv[48] = {w,          "--model",      "mlp", "--dataset", "mnist",      "--data-dir",
                      dir,        "--epochs",     "2",   "--batch",   "32",         "--lr",
                      "0.05",     "--sync-every", "4",   "--name",    (char *)name, "--connect",
                      (char *)ep, "--eval-every", "0"};
    int n = 21;
    for (int i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return proc_spawn(argv, tag);
}

START_TEST(a_rejoined_worker_resumes_its_schedule_and_eval_reads_the_model_file)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 1000, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 300, 2), 0);
    char ep[256], model[600];
    s_path(model, sizeof model, "m.psom");
    pid_t psod = proc_psod("rj", ep, sizeof ep,
                           (char *[]){"--workers", "1", "--heartbeat-ms", "100", "--liveness", "5",
                                      "--model-out", model, "--exit-when-done", NULL});
    /* 31 steps an epoch, 62 in all, 20 ms each. */
    pid_t a = s_mlp(ep, "a", "rj-a", (char *[]){"--delay-ms", "20", NULL});
    ck_assert(proc_wait_for("rj", "err", "worker 'a' (", 10));
    usleep(700000);
    kill(a, SIGKILL);
    proc_wait(a, 5);
    ck_assert(proc_wait_for("rj", "err", "evicted worker 'a'", 5));
    a = s_mlp(ep, "a", "rj-a2", NULL);
    ck_assert_int_eq(proc_wait(a, 30), 0);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
    proc_read("rj-a2", "err", out, sizeof out);
    double at = proc_after(out, "resuming at step ");
    ck_assert_msg(at >= 4 && at < 62, "%.2000s", out);
    proc_read("rj-a2", "out", out, sizeof out);
    ck_assert_msg(proc_after(out, " steps ") == 62, "%.2000s", out);

    /* --eval without --model takes the model from the file ... */
    char w[300];
    proc_bin(w, sizeof w, "psoworker");
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){w, "--eval", model, "--data-dir", dir, NULL}, "ev1"), 20),
        0);
    proc_read("ev1", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "model mlp dataset mnist"), "%.2000s", out);
    /* ... and refuses a dataset the model was not trained on. */
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){w, "--eval", model, "--dataset",
                                                     "fashion-mnist", "--data-dir", dir, NULL},
                                          "ev2"),
                               20),
                     1);
    proc_read("ev2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "was trained on mnist, not --dataset fashion-mnist"), "%.2000s", out);
}
END_TEST

START_TEST(a_worker_of_another_model_is_told_by_name)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 300, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 100, 2), 0);
    char ep[256];
    pid_t psod = proc_psod("nm", ep, sizeof ep, (char *[]){"--workers", "2", NULL});
    pid_t a = s_mlp(ep, "a", "nm-a", (char *[]){"--epochs", "50", NULL});
    ck_assert(proc_wait_for("nm", "err", "swarm model set by 'a': mlp on mnist", 10));
    /* No --model: a rastrigin particle, refused by name. */
    ck_assert_int_eq(proc_wait(s_worker(ep, "r", "5", "nm-r", NULL), 20), 1);
    proc_read("nm-r", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "this swarm trains mlp on mnist") &&
                      strstr(out, "the hello is for objective:rastrigin:10"),
                  "%.2000s", out);
    kill(a, SIGKILL);
    proc_wait(a, 5);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
}
END_TEST

START_TEST(psoctl_model_writes_the_swarms_model_and_another_dataset_is_refused)
{
    ck_assert_int_eq(fixture_write_idx(dir, "train", 300, 1), 0);
    ck_assert_int_eq(fixture_write_idx(dir, "t10k", 100, 2), 0);
    char ep[256], got[600], fin[600], ctl[300], w[300], o1[4096], o2[4096];
    s_path(got, sizeof got, "got.psom");
    s_path(fin, sizeof fin, "final.psom");
    pid_t psod =
        proc_psod("pm", ep, sizeof ep, (char *[]){"--workers", "1", "--model-out", fin, NULL});
    ck_assert_int_eq(proc_wait(s_mlp(ep, "a", "pm-a", NULL), 30), 0);
    /* A Fashion-MNIST worker of the same network: refused, both named. */
    ck_assert_int_eq(
        proc_wait(s_mlp(ep, "f", "pm-f", (char *[]){"--dataset", "fashion-mnist", NULL}), 20), 1);
    proc_read("pm-f", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "this swarm trains mlp on mnist; the worker's data is "
                              "fashion-mnist"),
                  "%.2000s", out);
    proc_bin(ctl, sizeof ctl, "psoctl");
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){ctl, "model", ep, got, NULL}, "pm-m"), 20), 0);
    proc_read("pm-m", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "the global model of mlp on mnist"), "%.1000s", out);
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){ctl, "stop", ep, NULL}, "pm-s"), 20), 0);
    ck_assert_int_eq(proc_wait(psod, 20), 0);
    /* The file psoctl wrote is psod's own model file, weight for weight. */
    proc_bin(w, sizeof w, "psoworker");
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){w, "--eval", got, "--data-dir", dir, NULL}, "pm-e1"), 20),
        0);
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){w, "--eval", fin, "--data-dir", dir, NULL}, "pm-e2"), 20),
        0);
    proc_read("pm-e1", "out", o1, sizeof o1);
    proc_read("pm-e2", "out", o2, sizeof o2);
    ck_assert_msg(strstr(o1, "test accuracy") &&
                      !strcmp(strstr(o1, "model mlp"), strstr(o2, "model mlp")),
                  "%s / %s", o1, o2);
}
END_TEST

START_TEST(waits_say_what_they_wait_for)
{
    /* Nothing listens: the worker says where it connects and gives up at
     * its join timeout, naming it. */
    double t0 = proc_now();
    ck_assert_int_eq(proc_wait(s_worker("tcp://127.0.0.1:9", "a", "5", "nobody",
                                        (char *[]){"--join-timeout-ms", "1500", NULL}),
                               20),
                     1);
    ck_assert_double_lt(proc_now() - t0, 10);
    proc_read("nobody", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "connecting to psod at tcp://127.0.0.1:9") &&
                      strstr(out, "no answer from psod at tcp://127.0.0.1:9 within 1500 ms"),
                  "%.2000s", out);

    /* psod stopped under a waiting worker: it says it rejoins and for how
     * long, and fails naming the --reconnect-ms the user gave. */
    char ep[256];
    pid_t psod = proc_psod(
        "gone", ep, sizeof ep,
        (char *[]){"--workers", "2", "--heartbeat-ms", "100", "--progress-interval", "0.1", NULL});
    pid_t a = s_worker(ep, "a", "100", "gone-a", (char *[]){"--reconnect-ms", "2000", NULL});
    ck_assert(
        proc_wait_for("gone", "err", "round 0 waits for: 'a' and workers not joined yet", 10) ||
        proc_wait_for("gone", "err", "waiting for 1 more workers", 1));
    usleep(1000000); /* idle: the progress line is not repeated */
    proc_read("gone", "err", out, sizeof out);
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "pso round 0:")); p++)
        lines++;
    ck_assert_msg(lines <= 3, "%d progress lines for an idle second: %.3000s", lines, out);
    kill(psod, SIGINT);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
    ck_assert_int_eq(proc_wait(a, 30), 1);
    proc_read("gone-a", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "lost psod at") && strstr(out, "(--reconnect-ms 2000)"), "%.3000s",
                  out);
}
END_TEST

START_TEST(options_are_read_as_written)
{
    ck_assert_int_eq(s_psod_alone("o1", (char *[]){"--workers", "010", "--max-rounds", "1",
                                                   "--bind", "5605", NULL}),
                     1);
    proc_read("o1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "    workers 10\n"), "%.3000s", out);
    ck_assert_msg(strstr(out, "expected tcp://ADDRESS:PORT"), "%.3000s", out);
    ck_assert_int_eq(s_psod_alone("o2", (char *[]){"--workers", "0x10", NULL}), 2);
    proc_read("o2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "not a decimal integer"), "%.3000s", out);
    char w[300], name[300];
    proc_bin(w, sizeof w, "psoworker");
    memset(name, 'n', 200);
    name[200] = '\0';
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){w, "--name", name, NULL}, "o3"), 10), 2);
    proc_read("o3", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "--name must be 1 to 127"), "%.3000s", out);
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){w, "--model", "--epochs", "1", NULL}, "o4"), 10), 2);
    proc_read("o4", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "'--model' needs a value"), "%.3000s", out);
}
END_TEST

START_TEST(presets_set_their_options_and_explicit_options_win)
{
    /* An unusable --bind ends psod right after it printed its configuration. */
    ck_assert_int_eq(s_psod_alone("p1", (char *[]){"--preset", "faulty", "--bind", "5605", NULL}),
                     1);
    proc_read("p1", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "    strategy avg\n") && strstr(out, "    aggregate cclip\n") &&
                      strstr(out, "    preset faulty\n"),
                  "%.3000s", out);
    ck_assert_int_eq(s_psod_alone("p2", (char *[]){"--preset", "faulty", "--aggregate", "median",
                                                   "--bind", "5605", NULL}),
                     1);
    proc_read("p2", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "    aggregate median\n"), "%.3000s", out);
    ck_assert_int_eq(s_psod_alone("p3", (char *[]){"--preset=healthy", "--bind", "5605", NULL}), 1);
    proc_read("p3", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "    strategy avg\n"), "%.3000s", out);
    ck_assert_int_eq(s_psod_alone("p4", (char *[]){"--preset", "bogus", NULL}), 2);
    proc_read("p4", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "unknown --preset 'bogus'"), "%.3000s", out);
    char conf[600];
    s_path(conf, sizeof conf, "preset.conf");
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fputs("preset faulty\n", f);
    fclose(f);
    ck_assert_int_eq(s_psod_alone("p5", (char *[]){"--config", conf, NULL}), 2);
    proc_read("p5", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "give --preset on the command line"), "%.3000s", out);
}
END_TEST

START_TEST(robust_rules_are_refused_where_their_assumptions_fail)
{
    /* --aggregate and the verification panel: refused at start, with why. */
    static const struct {
        const char *args[12];
        const char *why;
    } cases[] = {
        {{"--aggregate", "krum", "--workers", "4", NULL}, "2f + 3: Krum's guarantee"},
        {{"--aggregate", "trimmed", "--aggregate-f", "2", "--workers", "4", NULL}, "2f + 1"},
        {{"--aggregate", "cclip", "--shards", "tcp://127.0.0.1:5601,tcp://127.0.0.1:5602", NULL},
         "works on one daemon only: it needs norms of whole changes"},
        {{"--aggregate", "krum", "--aggregate-f", "0", "--shards",
          "tcp://127.0.0.1:5601,tcp://127.0.0.1:5602", NULL},
         "works on one daemon only"},
        {{"--aggregate", "median", "--attractor", "weighted", NULL},
         "weighs pushes by the losses workers claim"},
        {{"--aggregate", "median", "--strategy", "avg", "--mode", "async", NULL},
         "needs --mode sync"},
        {{"--verify-best", "yes", "--verify-quorum", "3", "--verify-panel", "2", NULL},
         "no candidate could ever be adopted"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char tag[32];
        snprintf(tag, sizeof tag, "agg%zu", k);
        ck_assert_int_ne(s_psod_alone(tag, (char *const *)cases[k].args), 0);
        proc_read(tag, "err", out, sizeof out);
        ck_assert_msg(strstr(out, cases[k].why), "case %zu: %.3000s", k, out);
    }
}
END_TEST

START_TEST(a_worker_that_beats_but_makes_no_progress_is_evicted)
{
    /* b's main thread stops after 20 syncs; its heartbeat thread goes on,
     * so heartbeats alone would keep it in forever. */
    char ep[256];
    pid_t psod =
        proc_psod("hang", ep, sizeof ep,
                  (char *[]){"--workers", "2", "--heartbeat-ms", "100", "--liveness", "5", NULL});
    pid_t a = s_worker(ep, "a", "200", "hang-a", (char *[]){"--delay-ms", "1", NULL});
    pid_t b = s_worker(ep, "b", "200", "hang-b", (char *[]){"--stall-after", "20", NULL});
    double t0 = proc_now();
    ck_assert_msg(proc_wait_for("hang", "err", "evicted worker 'b'", 20), "b never evicted");
    fprintf(stderr, "hung worker (heartbeats on, no pushes) evicted %.2f s after start\n",
            proc_now() - t0);
    proc_read("hang", "err", out, sizeof out);
    ck_assert_msg(strstr(out, "no push for") && strstr(out, "--progress-factor"), "%.3000s", out);
    ck_assert_int_eq(proc_wait(a, 30), 0); /* a finishes without b */
    kill(b, SIGTERM);
    ck_assert_int_eq(proc_wait(b, 10), 143);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
}
END_TEST

START_TEST(refused_traffic_is_not_counted_as_training_traffic)
{
    char ep[256], h[300], ctl[300];
    pid_t psod = proc_psod("bytes", ep, sizeof ep, (char *[]){"--workers", "1", NULL});
    proc_bin(h, sizeof h, "tests/hostile_client");
    proc_bin(ctl, sizeof ctl, "psoctl");
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){h, ep, "--rounds", "3", NULL}, "bytes-hostile"), 30), 0);
    ck_assert_int_eq(
        proc_wait(proc_spawn((char *[]){ctl, "status", ep, "--json", NULL}, "bytes-st"), 10), 0);
    proc_read("bytes-st", "out", out, sizeof out);
    /* Only refusals arrived (status requests are not counted): nothing
     * served, everything refused. */
    ck_assert_msg(proc_after(out, "\"bytes_in\":") < 1024, "%.2000s", out);
    ck_assert_msg(proc_after(out, "\"bytes_refused\":") > 1e5, "%.2000s", out);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
}
END_TEST

/* psoctl watch: frames one after another when stdout is not a terminal,
 * each the status with the round rate; a daemon that is gone is said so
 * and asked again, and --count ends it (exit 1 when the last frame had no
 * answer). */
START_TEST(psoctl_watch_shows_the_round_rate_and_outlives_the_daemon)
{
    char ep[256], ctl[300], wk[300];
    pid_t psod = proc_psod("watch", ep, sizeof ep, (char *[]){"--workers", "2", NULL});
    proc_bin(ctl, sizeof ctl, "psoctl");
    proc_bin(wk, sizeof wk, "psoworker");
    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = proc_spawn((char *[]){wk, "--connect", ep, "--name", i ? "wb" : "wa", "--objective",
                                     "sphere", "--dim", "100", "--rounds", "1000000", NULL},
                          i ? "watch-wb" : "watch-wa");
    ck_assert_msg(proc_wait_for("watch-wa", "err", "joined", 20), "training never started");
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){ctl, "watch", ep, "--interval", "0.2",
                                                     "--count", "3", NULL},
                                          "watch-ctl"),
                               20),
                     0);
    proc_read("watch-ctl", "out", out, sizeof out);
    int frames = 0;
    for (const char *p = out; (p = strstr(p, "psoctl watch ")); p++)
        frames++;
    ck_assert_msg(frames == 3, "%d frames: %.3000s", frames, out);
    ck_assert_msg(strstr(out, "rounds/s over the last 0.2 s"), "%.3000s", out);
    ck_assert_msg(!strstr(out, "\033["), "escape codes on a pipe: %.3000s", out);
    const char *last =
        strstr(strstr(strstr(out, "psoctl watch ") + 1, "psoctl watch ") + 1, "psoctl watch ");
    const char *q = strstr(last, " rounds/s over");
    ck_assert_ptr_nonnull(q);
    while (q > last && q[-1] != ' ')
        q--;
    double rate = atof(q);
    ck_assert_msg(rate > 1, "round rate %g: %.2000s", rate, last);
    ck_assert_msg(strstr(last, "wa") && strstr(last, "wb"), "%.2000s", last);
    for (int i = 0; i < 2; i++)
        kill(w[i], SIGTERM);
    kill(psod, SIGTERM);
    ck_assert_int_eq(proc_wait(psod, 10), 0);
    for (int i = 0; i < 2; i++)
        proc_wait(w[i], 10);
    ck_assert_int_eq(proc_wait(proc_spawn((char *[]){ctl, "watch", ep, "--interval", "0.1",
                                                     "--count", "2", "--timeout-ms", "200", NULL},
                                          "watch-gone"),
                               20),
                     1);
    proc_read("watch-gone", "out", out, sizeof out);
    ck_assert_msg(strstr(out, "psod not answering") && strstr(out, "asking again"), "%.2000s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("usage");
    TCase *tc = tcase_create("traps");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unusable_paths_are_refused_at_start_and_a_lost_model_fails_the_run);
    tcase_add_test(tc, a_second_worker_under_a_live_name_is_refused);
    tcase_add_test(tc, a_worker_restarted_after_kill_9_is_back_within_seconds);
    tcase_add_test(tc, psoctl_model_writes_the_swarms_model_and_another_dataset_is_refused);
    tcase_add_test(tc, resume_keeps_the_metrics_history_and_refuses_a_missing_directory);
    tcase_add_test(tc, sigterm_and_sigint_end_a_worker_with_a_bye);
    tcase_add_test(tc, a_rejoined_worker_resumes_its_schedule_and_eval_reads_the_model_file);
    tcase_add_test(tc, a_worker_of_another_model_is_told_by_name);
    tcase_add_test(tc, waits_say_what_they_wait_for);
    tcase_add_test(tc, options_are_read_as_written);
    tcase_add_test(tc, refused_traffic_is_not_counted_as_training_traffic);
    tcase_add_test(tc, presets_set_their_options_and_explicit_options_win);
    tcase_add_test(tc, robust_rules_are_refused_where_their_assumptions_fail);
    tcase_add_test(tc, a_worker_that_beats_but_makes_no_progress_is_evicted);
    tcase_add_test(tc, psoctl_watch_shows_the_round_rate_and_outlives_the_daemon);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
