/* psod: the PSO-PS parameter synchronization daemon.
 *
 *   psod [--config FILE] [--key value ...]
 *
 * Options come from the table in server.c: defaults, then the config file
 * (`key value` lines), then the command line. The effective configuration
 * is printed at start. SIGINT and SIGTERM only set a flag; the loop sees it,
 * and psod exits cleanly. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/wire.h"
#include "server/server.h"

#include "common/version.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(const struct config_table *opts)
{
    printf("psod %s: parameter synchronization daemon (PSO-PS)\n\n"
           "usage: psod [--config FILE] [--log-level LEVEL] [--key value ...]\n\n"
           "Options, also `key value` lines in the config file; man psod has the whole\n"
           "text of each. LEVEL: debug, info, warn or error.\n",
           PSOD_VERSION);
    config_usage(opts, stdout);
    printf("\nExample: psod --bind tcp://10.0.0.1:5555 --workers 4\n"
           "Protocol: proto/PROTOCOL.md\n");
}

int main(int argc, char **argv)
{
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg); /* the fields no option sets (rollback) start at 0 */
    struct config_table tabs[SERVER_OPTION_TABLES];
    const struct config_table *opts = server_options(&cfg, tabs);
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_usage(opts);
            return 0;
        }
        if (!strcmp(argv[i], "--help-man")) { /* the man page's OPTIONS (make man) */
            config_man(opts, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("psod %s (protocol %d)\n", PSOD_VERSION, PSOD_PROTOCOL_VERSION);
            return 0;
        }
    }
    const char *level = config_find_arg(argc, argv, "--log-level");
    int lvl = level ? log_level_parse(level) : LOG_INFO;
    if (lvl < 0) {
        fprintf(stderr, "psod: unknown log level '%s'\n", level);
        return 2;
    }
    log_init("psod", (enum log_level)lvl, stderr);

    int pargc = 0;
    char **pargv = server_preset_argv(argc, argv, &pargc, err, sizeof err);
    if (!pargv || config_from_argv(opts, pargc, pargv, err, sizeof err) != 0) {
        fprintf(stderr, "psod: %s\n", err);
        free(pargv);
        return 2;
    }
    free(pargv);
    if (cfg.preset && !config_find_arg(argc, argv, "--preset")) {
        fprintf(stderr, "psod: give --preset on the command line, not in a config file (its "
                        "options go before the command line's)\n");
        return 2;
    }
    log_info("psod %s starting; effective configuration:", PSOD_VERSION);
    if (log_get_level() <= LOG_INFO)
        config_print(opts, stderr, "    ");

    /* Every round frees and allocates buffers of the same large size (one
     * payload per worker). Keep them in the heap instead of mapping and
     * unmapping them each round: otherwise each round page-faults its
     * payloads in again, which cost 15-20% of the round time at 1M
     * parameters (docs/BENCHMARKS.md). Memory stays bounded by the swarm. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);

    sig_on_stop(s_on_signal);

    /* A shard of a sharded swarm may have to start again from an older
     * checkpoint to stay with the others (a rollback): in place, from its
     * own checkpoint directory, as a --resume would. */
    struct server_config run = cfg;
    /* Under a stop too, a rollback is carried out first (bounded: each goes
     * to an older generation or to none), so that the model written at the
     * end is one every shard holds. */
    int stopping_restarts = 0;
    for (;;) {
        struct server *srv;
        if (server_new(&srv, &run, err, sizeof err) != 0) {
            log_error("%s", err);
            return 1;
        }
        int rc = server_run(srv, &s_stop);
        long gen;
        int again = server_restart_wanted(srv, &gen) && (!s_stop || stopping_restarts++ < 4);
        if (!again)
            log_info("shutting down after %llu rounds%s", (unsigned long long)server_round(srv),
                     s_stop ? " (signal)" : "");
        server_destroy(&srv);
        if (!again)
            return rc == 0 ? 0 : 1;
        run = cfg;
        if (!run.checkpoint_dir[0])
            snprintf(run.checkpoint_dir, sizeof run.checkpoint_dir, "%s", cfg.resume);
        snprintf(run.resume, sizeof run.resume, "%s", run.checkpoint_dir);
        run.resume_or_start = 1;
        run.rollback = gen >= 0 ? gen + 1 : -1;
        if (gen >= 0)
            log_info("restarting from the checkpoint of round %ld in %s", gen, run.resume);
        else
            log_info("restarting as a new swarm");
    }
}
