/* The daemon: one ROUTER socket, one thread, a zmq_poll loop with timers.
 * It owns the membership (which worker holds which particle), the round
 * barrier and the positions, and hands the numbers to the swarm (swarm.h).
 * psod.c parses options and signals; everything else lives here. */
#ifndef PSOD_SERVER_H
#define PSOD_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "common/config.h"
#include "server/strategy/strategy.h"

/* --mode: rounds with a barrier, or every push answered at once. The order
 * is --mode's choices. */
enum server_mode { SERVER_SYNC = 0, SERVER_ASYNC = 1 };

struct server_config {
    char bind[CONF_STRLEN];
    char endpoint_file[CONF_STRLEN];
    long workers;
    int strategy;              /* index into strategy_all */
    int preset;                /* index into --preset's choices, 0 = none */
    struct strategy_params sp; /* every strategy's options */
    long seed;
    long max_payload_mb;
    long max_meta_kb;
    long max_rounds;
    double progress_interval;
    char metrics[CONF_STRLEN];   /* JSON-lines file, one line per round */
    char model_out[CONF_STRLEN]; /* the global model, at the end and every save_every */
    long save_every;
    int exit_when_done;     /* exit once every worker has said bye */
    long heartbeat_ms;      /* interval workers are told to beat at */
    long liveness;          /* missed beats before a worker is evicted */
    double round_timeout;   /* seconds after the first push, 0 = none */
    long quorum;            /* pushes that close a round early, 0 = all */
    long max_workers;       /* particles allowed in all, 0 = workers */
    double retire_after;    /* seconds a gone worker keeps its particle, 0 = forever */
    double progress_factor; /* evict a worker without a push for this many of its
                                  * slowest intervals (at least liveness), 0 = never */
    char checkpoint_dir[CONF_STRLEN];
    long checkpoint_every; /* rounds */
    double checkpoint_seconds;
    long keep;                          /* generations */
    char resume[CONF_STRLEN];           /* directory to resume from */
    int resume_or_start;                /* --resume may find nothing: start a new swarm */
    int mode;                           /* enum server_mode (CONF_ENUM stores an int) */
    char wire_spec[CONF_STRLEN];        /* --wire: any, a kind, topk:, frag: */
    int wire;                           /* from it: 0 each worker's choice; else kind + 1 */
    double wire_density;                /* ... and the density imposed (0: dense) */
    unsigned wire_fragments;            /* ... and the fragments imposed (0: whole) */
    long max_peers;                     /* open connections allowed, 0 = no limit */
    long threads;                       /* --threads: the element-range team, 0 = the cores */
    char curve_secret[CONF_STRLEN];     /* the daemon's CURVE key pair file, "" = no CURVE */
    char allow[CONF_STRLEN];            /* directory of allowed worker public keys */
    char admin[CONF_STRLEN];            /* directory of operator public keys */
    char admin_token_file[CONF_STRLEN]; /* the operator's token (common/token.h): auto, none */
    char shards[CONF_STRLEN];           /* every daemon of a sharded swarm, comma-separated */
    long shard_index;                   /* which of them this one is (0 coordinates) */
    char http[CONF_STRLEN];             /* ADDRESS:PORT of the metrics endpoint and status page */
    long http_max_connections;
    long http_max_particles; /* particles given their own series in /metrics */
    int hyper;               /* particles carry lr and momentum (swarm_hyper.h) */
    double hyper_w, hyper_c1, hyper_c2;
    double hyper_lr_min, hyper_lr_max, hyper_mom_min, hyper_mom_max;
    /* Not an option: a restart of a shard rollback. 0 none; r + 1: resume
     * from generation r (newer ones are discarded); -1: a new swarm. */
    long rollback;
};

/* psod's option tables bound to cfg in t: its own, then each strategy's
 * (on cfg->sp), then {0}. Returns t. */
#define SERVER_OPTION_TABLES (STRATEGY_COUNT + 3)
const struct config_table *server_options(struct server_config *cfg,
                                          struct config_table t[SERVER_OPTION_TABLES]);
/* argv with --preset's options (if any) inserted after argv[0], so that the
 * command line's own come after them and win; *argc_out its length. A new
 * array (free it; its strings are argv's or static), or NULL with err
 * filled (an unknown preset). */
char **server_preset_argv(int argc, char **argv, int *argc_out, char *err, size_t errlen);

struct server;

int server_new(struct server **out, const struct server_config *cfg, char *err, size_t errlen);
/* A daemon without a socket or a ZeroMQ context, fed by
 * server_handle_frames (the fuzzers and make_corpus); its replies go
 * nowhere. Checkpoints, model files and metrics work as usual. */
int server_new_detached(struct server **out, const struct server_config *cfg, char *err,
                        size_t errlen);
/* Serve until *stop becomes nonzero or max_rounds rounds have closed, then
 * write the final model file and checkpoint. Returns 0, or -1 if polling
 * failed for a reason other than a signal or the final model or
 * checkpoint could not be written. */
int server_run(struct server *s, volatile sig_atomic_t *stop);
void server_destroy(struct server **s);
/* After server_run returned: whether the daemon must start again from a
 * checkpoint generation because the other shards of its swarm are there
 * (a rollback, PROTOCOL.md "Shards"). Then *round is the generation, or
 * -2 for none (a new swarm). psod restarts itself in place. */
int server_restart_wanted(const struct server *s, long *round);

/* The endpoint actually bound (a wildcard port resolved). */
const char *server_endpoint(const struct server *s);
uint64_t server_round(const struct server *s);
/* With --http: "http://ADDRESS:PORT" (the port resolved); else NULL. */
const char *server_http_url(const struct server *s);
/* Write a checkpoint now (psod calls it on SIGTERM/SIGINT). Returns 0, or
 * -1 when none is configured or writing failed (logged). */
int server_checkpoint(struct server *s);

/* Decode and serve one message given as frames (without the routing id),
 * exactly as the loop serves one received from the socket; `user` is the
 * connection's ZAP user id ("" or NULL for none). For the fuzzers and tests:
 * replies go to the socket, to whatever peer holds `id`. */
void server_handle_frames(struct server *s, const void *id, size_t id_len, const char *user,
                          zmq_msg_t *frames, int nframes);
/* A shard's counterpart: one message as if it came from its coordinator
 * (the link), for the fuzzers; a daemon that is not a follower ignores it. */
void server_handle_link_frames(struct server *s, zmq_msg_t *frames, int nframes);
/* Restore swarm state from a checkpoint image in memory (the reader
 * --resume uses). Returns 0, or -1 with err filled and the server as it was
 * before a failed load is not guaranteed: use a fresh server. */
int server_restore(struct server *s, const void *data, size_t len, char *err, size_t errlen);
/* Error codes psod counts refusals by (Psod__ErrorCode). */
#define PSOD_ERROR_CODES 19

/* Loss and test accuracy of the global model (accuracy NaN when no worker
 * reported one for it). */
void server_global(const struct server *s, double *loss, double *accuracy);

#endif
