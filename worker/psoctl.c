/* psoctl: ask a running psod for its state, send it operator requests,
 * make CURVE keys.
 *
 *   psoctl status ENDPOINT [--json]          read-only; any allowed peer
 *   psoctl watch ENDPOINT [--interval S] [--count N]   status, live, with the round rate
 *   psoctl model ENDPOINT FILE [--safe]      the swarm's model into a .psom file
 *   psoctl checkpoint ENDPOINT               write a checkpoint now     } admin key,
 *   psoctl evict ENDPOINT WORKER             evict a worker (it may rejoin) } or the
 *   psoctl stop ENDPOINT                     final model + checkpoint, exit } token file
 *   psoctl keygen BASE                       BASE.key (secret) + BASE.pub
 *   psoctl checkpoints DIR                   check every checkpoint there (offline)
 *
 *   options: --curve-secret FILE --curve-server FILE   (CURVE daemons)
 *            --timeout-ms N  --json
 *
 * A plain client of the library. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ckpt.h"
#include "common/config.h"
#include "common/keys.h"
#include "worker/client/psoclient.h"
#include "common/sig.h"
#include "common/timeutil.h"
#include "common/wire.h"

static void s_print_text(FILE *f, const struct psoc_status *st)
{
    fprintf(f, "psod %s  strategy %s  round %llu  uptime %.0f s\n", st->version, st->strategy,
            (unsigned long long)st->round, st->uptime_seconds);
    fprintf(f, "particles %u (active %u, expected %u), pushed this round %u, parameters %llu\n",
            st->particles, st->active, st->workers_expected, st->pushed_this_round,
            (unsigned long long)st->param_count);
    char acc[32] = "n/a"; /* NaN until a worker reported one */
    if (!isnan(st->global_accuracy))
        snprintf(acc, sizeof acc, "%.2f%%", 100 * st->global_accuracy);
    fprintf(f, "global loss %.6g (particle %d), test accuracy %s, last round %.2f ms\n",
            st->global_best_loss, st->global_best_particle, acc, st->last_round_seconds * 1e3);
    fprintf(f, "bytes in %llu, out %llu, refused %llu, errors sent %llu\n",
            (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
            (unsigned long long)st->bytes_refused, (unsigned long long)st->errors_sent);
    for (int i = 1; i < PSOC_ERROR_CODES; i++)
        if (st->errors_by_code[i])
            fprintf(f, "  %-22s %llu\n", wire_error_name(i),
                    (unsigned long long)st->errors_by_code[i]);
    fprintf(f, "connections %u open (max %u, 0 = no limit), %llu refused; traffic %s\n",
            st->peers_connected, st->max_peers, (unsigned long long)st->peers_refused,
            st->encrypted ? "encrypted (CURVE)" : "NOT encrypted");
    if (st->checkpoint_error[0])
        fprintf(f, "CHECKPOINTS FAILING: %llu failed so far, the last: %s; the last written: %s\n",
                (unsigned long long)st->checkpoint_failures, st->checkpoint_error,
                isnan(st->checkpoint_age_seconds) ? "none" : "see below");
    if (!isnan(st->checkpoint_age_seconds))
        fprintf(f, "checkpoint: round %llu, %.0f s ago; %llu failed in all\n",
                (unsigned long long)st->checkpoint_round, st->checkpoint_age_seconds,
                (unsigned long long)st->checkpoint_failures);
    if (st->verify_adopted || st->verify_refused || st->verify_ignored || st->verify_undecided)
        fprintf(f,
                "verified global best: %llu candidates adopted, %llu refused, %llu without a "
                "quorum, %llu verdicts ignored; %llu verifiers struck against a quorum, %llu "
                "workers excluded\n",
                (unsigned long long)st->verify_adopted, (unsigned long long)st->verify_refused,
                (unsigned long long)st->verify_undecided, (unsigned long long)st->verify_ignored,
                (unsigned long long)st->verify_struck, (unsigned long long)st->verify_excluded);
    if (st->n_shards) {
        fprintf(f, "sharded over %zu daemons; this is shard %u%s\n", st->n_shards, st->shard_index,
                st->shard_index ? " (ranges and rounds: ask shard 0, the coordinator)" : "");
        fprintf(f, "%5s %-40s %12s %12s %10s %s\n", "shard", "endpoint", "offset", "length",
                "round", "state");
        for (size_t k = 0; k < st->n_shards; k++) {
            const struct psoc_shard_status *q = &st->shard[k];
            fprintf(f, "%5u %-40s %12llu %12llu %10llu %s\n", q->index, q->endpoint,
                    (unsigned long long)q->offset, (unsigned long long)q->length,
                    (unsigned long long)q->round,
                    st->shard_index ? "-"
                    : q->connected  ? "in the swarm"
                                    : "LOST: rounds wait");
        }
    }
    if (st->n_particles)
        fprintf(f, "%4s %-24s %7s %5s %12s %12s %8s %8s %7s %s\n", "id", "worker", "active", "wire",
                "last loss", "best loss", "age s", "pushes", "strikes", "round");
    for (size_t i = 0; i < st->n_particles; i++) {
        const struct psoc_particle_status *p = &st->particle[i];
        char strikes[24];
        snprintf(strikes, sizeof strikes, "%u%s", p->strikes, p->excluded ? "!" : "");
        fprintf(f, "%4u %-24s %7s %5s %12.6g %12.6g %8.1f %8llu %7s %s%s\n", p->id, p->name,
                p->active    ? "yes"
                : p->evicted ? "evicted"
                             : "no",
                psoc_wire_name(p->wire), p->last_loss, p->best_loss, p->age_seconds,
                (unsigned long long)p->pushes, strikes,
                p->pushed_this_round ? "pushed"
                : p->active          ? "round waits for it"
                                     : "-",
                p->excluded ? " (excluded: --strike-limit)" : "");
    }
}

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* psoctl watch: status every interval, redrawn in place on a terminal (a
 * cursor-home and clear, no curses) and as frames one after another
 * otherwise, with the round rate over the last interval. A daemon that
 * does not answer is said so on the frame, and asked again: watch outlives
 * a psod restart. Ends on SIGINT or SIGTERM (exit 0), or after --count
 * frames (exit 1 when the last one had no answer). */
static int s_watch(const char *endpoint, const struct psoc_options *o, double interval, long count)
{
    sig_on_stop(s_on_signal);
    int tty = isatty(STDOUT_FILENO);
    struct psoc *c = NULL;
    char err[512];
    double t_prev = 0;
    unsigned long long r_prev = 0;
    int have_prev = 0, answered = 0;
    for (long frame = 0; !s_stop && (count <= 0 || frame < count); frame++) {
        if (frame > 0) {
            struct timespec ts = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !s_stop)
                ;
            if (s_stop)
                break;
        }
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f) {
            fprintf(stderr, "psoctl: out of memory\n");
            psoc_close(&c);
            return 1;
        }
        time_t now = time(NULL);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
        struct psoc_status st;
        int rc = c ? PSOC_OK : psoc_open(&c, endpoint, NULL, o, err, sizeof err);
        if (rc == PSOC_OK)
            rc = psoc_status(c, 1, &st, err, sizeof err);
        if (rc != PSOC_OK) {
            psoc_close(&c); /* a fresh connection next time */
            have_prev = answered = 0;
            fprintf(f,
                    "psoctl watch %s  %s\npsod not answering: %s\n(asking again every %.3g s; "
                    "Ctrl-C ends)\n",
                    endpoint, stamp, err, interval);
        } else {
            double t = time_now_s();
            fprintf(f, "psoctl watch %s  %s  ", endpoint, stamp);
            if (have_prev && t > t_prev && st.round >= r_prev)
                fprintf(f, "%.2f rounds/s over the last %.1f s\n",
                        (double)(st.round - r_prev) / (t - t_prev), t - t_prev);
            else if (st.uptime_seconds > 0)
                fprintf(f, "%.2f rounds/s since psod started\n", st.round / st.uptime_seconds);
            else
                fprintf(f, "rounds/s n/a\n");
            s_print_text(f, &st);
            t_prev = t;
            r_prev = st.round;
            have_prev = answered = 1;
            psoc_status_free(&st);
        }
        if (fclose(f) != 0) {
            free(text);
            psoc_close(&c);
            return 1;
        }
        if (tty)
            fputs("\033[H\033[J", stdout); /* home, clear to the end */
        else if (frame > 0)
            fputc('\n', stdout);
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        free(text);
    }
    psoc_close(&c);
    return s_stop || answered ? 0 : 1;
}

/* The commands and options: --help and the man page (--help-man) both
 * come from these tables. */
struct usage_item {
    const char *synopsis, *help;
};
static const struct usage_item s_commands[] = {
    {"status ENDPOINT [--json]",
     "print the daemon's state: round, particles and their losses, bytes, errors, shards; "
     "--json prints what psod's /status.json serves. Any allowed peer may ask."},
    {"watch ENDPOINT [--interval S] [--count N]",
     "the same, live: redrawn in place on a terminal (frames one after another on a pipe), "
     "with the round rate over the last interval. A daemon that does not answer is said so, "
     "and asked again. Ends on Ctrl-C, or after --count frames."},
    {"model ENDPOINT FILE [--safe]",
     "write the swarm's model (under pso the global best; every shard's range of a sharded "
     "swarm) to FILE as a .psom, which psoworker --eval, psoworker-torch --eval and "
     "psod.torch.load_model read; --safe: the model a diverged worker restarts from (the "
     "verified best or the robust attractor). Any allowed peer may ask."},
    {"checkpoint ENDPOINT", "write a checkpoint now (an admin request)."},
    {"evict ENDPOINT WORKER", "evict a worker by name; it may rejoin (an admin request)."},
    {"stop ENDPOINT", "write the final model and a checkpoint, then exit (an admin request). "
                      "Admin requests need a CURVE key from psod's --admin directory, or, on "
                      "psod's own host as its user, the token it wrote (--admin-token-file)."},
    {"checkpoints DIR",
     "read every checkpoint in DIR (psod's --checkpoint-dir) through its CRC, offline, and say "
     "which are intact; exits 1 if one is not, or there are none."},
    {"keygen BASE", "write a CURVE key pair: BASE.key (secret, mode 0600) and BASE.pub, "
                    "which goes into psod's --allow or --admin directory."},
    {NULL, NULL}};
static const struct usage_item s_opts[] = {
    {"--curve-secret FILE", "this client's secret key (for a CURVE daemon)"},
    {"--curve-server FILE", "the daemon's public key (for a CURVE daemon)"},
    {"--timeout-ms N", "how long to wait for the daemon's answer (default 5000)"},
    {"--admin-token FILE", "admin requests: the token psod wrote (default: where psod at "
                           "ENDPOINT writes it on this host; see psod --admin-token-file)"},
    {"--json", "status: JSON instead of text"},
    {"--interval S", "watch: seconds between frames, 0.05 to 3600 (default 1)"},
    {"--count N", "watch: stop after N frames (default: until Ctrl-C); exit 1 when the last had "
                  "no answer"},
    {NULL, NULL}};

static void s_man(FILE *f)
{
    fputs(".SH COMMANDS\n", f);
    for (const struct usage_item *u = s_commands; u->synopsis; u++) {
        fputs(".TP\n.B psoctl ", f);
        config_roff(f, u->synopsis);
        fputc('\n', f);
        config_roff(f, u->help);
        fputc('\n', f);
    }
    fputs(".SH OPTIONS\n", f);
    for (const struct usage_item *u = s_opts; u->synopsis; u++) {
        fputs(".TP\n.B ", f);
        config_roff(f, u->synopsis);
        fputc('\n', f);
        config_roff(f, u->help);
        fputs(".\n", f);
    }
}

static int s_usage(FILE *f)
{
    for (const struct usage_item *u = s_commands; u->synopsis; u++)
        fprintf(f, "%s psoctl %s\n", u == s_commands ? "usage:" : "      ", u->synopsis);
    fputs("options:\n", f);
    for (const struct usage_item *u = s_opts; u->synopsis; u++)
        fprintf(f, "  %-22s %s\n", u->synopsis, u->help);
    fputs("(man psoctl says what each command does)\n", f);
    return f == stdout ? 0 : 2;
}

/* Say what went wrong, then close: the message is out even if closing the
 * connection were to stall inside libzmq (a context that will not end). */
static int s_fail(struct psoc **c, const char *err)
{
    fprintf(stderr, "psoctl: %s\n", err);
    fflush(stderr);
    psoc_close(c);
    return 1;
}

/* psoctl model: the swarm's model into a .psom. */
static int s_model(struct psoc *c, const char *file, int safe)
{
    char err[512], kind[64];
    float *w = NULL;
    struct psoc_model_info info;
    int rc = psoc_download_model(c, safe, &w, &info, kind, sizeof kind, err, sizeof err);
    if (rc != PSOC_OK)
        return s_fail(&c, err);
    psoc_close(&c);
    rc = psoc_model_save(file, &info, w, err, sizeof err);
    free(w);
    if (rc != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    printf("wrote %s: the %s of %s%s%s, %llu parameters, round %llu, loss %.6g (%s)\n", file, kind,
           info.model[0] ? info.model : "an unnamed model", info.dataset[0] ? " on " : "",
           info.dataset, (unsigned long long)info.param_count, (unsigned long long)info.round,
           info.loss, info.strategy);
    return 0;
}

/* psoctl checkpoints DIR: every checkpoint there read through its CRC,
 * newest first. */
static int s_checkpoints(const char *dir)
{
    struct stat st;
    errno = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "psoctl: cannot read '%s': %s\n", dir,
                errno ? strerror(errno) : "not a directory");
        return 1;
    }
    char **names;
    size_t n = ckpt_list(dir, &names), bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint32_t version;
        if (ckpt_verify(path, &version, err, sizeof err) == 0) {
            printf("%s: intact (container version %u)\n", path, version);
        } else {
            printf("%s: UNUSABLE: %s\n", path, err);
            bad++;
        }
    }
    ckpt_list_free(names, n);
    if (n == 0)
        fprintf(stderr, "psoctl: no checkpoint (" CKPT_PREFIX "*" CKPT_SUFFIX ") in '%s'\n", dir);
    return n == 0 || bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return s_usage(stdout);
    if (argc > 1 && !strcmp(argv[1], "--help-man"))
        return s_man(stdout), 0;
    if (argc < 3)
        return s_usage(stderr);
    const char *cmd = argv[1];
    char err[512];
    if (!strcmp(cmd, "checkpoints"))
        return argc == 3 ? s_checkpoints(argv[2]) : s_usage(stderr);
    if (!strcmp(cmd, "keygen")) {
        if (argc != 3)
            return s_usage(stderr);
        if (keys_generate(argv[2], err, sizeof err) != 0) {
            fprintf(stderr, "psoctl: %s\n", err);
            return 1;
        }
        printf("wrote %s.key (secret, mode 0600) and %s.pub (copy it to psod's --allow or "
               "--admin directory)\n",
               argv[2], argv[2]);
        return 0;
    }
    int action = !strcmp(cmd, "checkpoint") ? PSOC_ADMIN_CHECKPOINT
                 : !strcmp(cmd, "evict")    ? PSOC_ADMIN_EVICT
                 : !strcmp(cmd, "stop")     ? PSOC_ADMIN_STOP
                                            : 0;
    int watch = !strcmp(cmd, "watch");
    int model = !strcmp(cmd, "model");
    if (!action && !watch && !model && strcmp(cmd, "status") != 0) {
        fprintf(stderr, "psoctl: unknown command '%s'\n", cmd);
        return s_usage(stderr);
    }
    const char *worker = NULL, *secret = NULL, *server = NULL, *token = NULL, *file = NULL;
    int json = 0, first = 3, safe = 0;
    double interval = 1;
    long count = 0;
    if (action == PSOC_ADMIN_EVICT) {
        if (argc < 4)
            return s_usage(stderr);
        worker = argv[3];
        first = 4;
    }
    if (model) {
        if (argc < 4)
            return s_usage(stderr);
        file = argv[3];
        first = 4;
    }
    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 5000;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && !action && !watch && !model)
            json = 1;
        else if (!strcmp(argv[i], "--safe") && model)
            safe = 1;
        else if (!strcmp(argv[i], "--admin-token") && action && i + 1 < argc)
            token = argv[++i];
        else if (!strcmp(argv[i], "--interval") && watch && i + 1 < argc) {
            char *end;
            interval = strtod(argv[++i], &end);
            if (*end || !(interval >= 0.05 && interval <= 3600)) {
                fprintf(stderr, "psoctl: --interval '%s': seconds from 0.05 to 3600\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--count") && watch && i + 1 < argc) {
            char *end;
            count = strtol(argv[++i], &end, 10);
            if (*end || count < 1) {
                fprintf(stderr, "psoctl: --count '%s': a number of frames, 1 or more\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            o.connect_timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--curve-secret") && i + 1 < argc)
            secret = argv[++i];
        else if (!strcmp(argv[i], "--curve-server") && i + 1 < argc)
            server = argv[++i];
        else {
            fprintf(stderr, "psoctl: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if ((secret != NULL) != (server != NULL)) {
        fprintf(stderr, "psoctl: CURVE needs both --curve-secret and --curve-server\n");
        return 2;
    }
    if (secret && psoc_options_curve(&o, secret, server, err, sizeof err) != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    if (watch)
        return s_watch(argv[2], &o, interval, count);
    struct psoc *c;
    if (psoc_open(&c, argv[2], NULL, &o, err, sizeof err) != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    if (model)
        return s_model(c, file, safe);
    if (action) {
        char reply[512];
        /* The token file, when this host has it (a given one must be there). */
        if (psoc_set_admin_token(c, token, err, sizeof err) != PSOC_OK && token)
            return s_fail(&c, err);
        if (psoc_admin(c, action, worker, reply, sizeof reply, err, sizeof err) != PSOC_OK)
            return s_fail(&c, err);
        psoc_close(&c);
        printf("%s\n", reply);
        return 0;
    }
    if (json) {
        char *text;
        if (psoc_status_json(c, 1, &text, err, sizeof err) != PSOC_OK)
            return s_fail(&c, err);
        psoc_close(&c);
        printf("%s\n", text);
        free(text);
        return 0;
    }
    struct psoc_status st;
    if (psoc_status(c, 1, &st, err, sizeof err) != PSOC_OK)
        return s_fail(&c, err);
    psoc_close(&c);
    s_print_text(stdout, &st);
    psoc_status_free(&st);
    return 0;
}
