/* A daemon in the test's own process: server_run in a thread, on a free
 * loopback port, for the daemon suites (tests/daemon/) that drive it with
 * the real client library. One at a time per suite process. */
#ifndef PSOD_TESTS_INPROC_H
#define PSOD_TESTS_INPROC_H

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server/server.h"
#include "worker/client/psoclient.h"

static struct server *inproc_srv;
static pthread_t inproc_thr;
static volatile sig_atomic_t inproc_halt;
static char inproc_ep[256]; /* where it listens */

static void *inproc_serve(void *arg)
{
    (void)arg;
    server_run(inproc_srv, &inproc_halt);
    return NULL;
}

/* psod's defaults with `workers`, no progress lines and no operator token
 * file, then `set` (may be NULL) for the test's own options. */
static inline void inproc_start(const char *suite, long workers,
                                void (*set)(struct server_config *))
{
    char err[512];
    log_init(suite, LOG_ERROR, stderr);
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct config_table tabs[SERVER_OPTION_TABLES];
    ck_assert_int_eq(config_defaults(server_options(&cfg, tabs), err, sizeof err), 0);
    strcpy(cfg.bind, "tcp://127.0.0.1:*");
    strcpy(cfg.admin_token_file, "none");
    cfg.workers = workers;
    cfg.progress_interval = 0;
    if (set)
        set(&cfg);
    ck_assert_msg(server_new(&inproc_srv, &cfg, err, sizeof err) == 0, "%s", err);
    snprintf(inproc_ep, sizeof inproc_ep, "%s", server_endpoint(inproc_srv));
    inproc_halt = 0;
    pthread_create(&inproc_thr, NULL, inproc_serve, NULL);
}

static inline void inproc_stop(void)
{
    inproc_halt = 1;
    pthread_join(inproc_thr, NULL);
    server_destroy(&inproc_srv);
}

/* The daemon's status (with its particles or not), asked on a connection
 * of its own; free with psoc_status_free. */
static inline struct psoc_status inproc_status_of(int with_particles)
{
    char err[512];
    struct psoc_options o;
    psoc_options_default(&o);
    struct psoc *c;
    struct psoc_status st;
    ck_assert_msg(psoc_open(&c, inproc_ep, NULL, &o, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert_msg(psoc_status(c, with_particles, &st, err, sizeof err) == PSOC_OK, "%s", err);
    psoc_close(&c);
    return st;
}

static inline struct psoc_status inproc_status(void) { return inproc_status_of(0); }

/* Wait until the daemon counts `k` pushes in the open round (pushes from
 * other connections are read in no set order with the status request). */
static inline void inproc_wait_pushed(uint32_t k)
{
    for (int tries = 0;; tries++) {
        struct psoc_status st = inproc_status();
        uint32_t in = st.pushed_this_round;
        psoc_status_free(&st);
        if (in == k)
            return;
        ck_assert_msg(tries < 500, "the daemon counts %u pushes, not %u, after 5 s", in, k);
        usleep(10000);
    }
}

#endif
