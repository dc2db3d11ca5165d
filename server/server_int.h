/* psod's private header: the server's state and the functions its rooms
 * share. server.c holds the poll loop and dispatch; options.c the option
 * table; table.c the member table and the low helpers (lookups, counts,
 * sends); reply.c every refusal; members.c hello, heartbeat and bye;
 * push.c taking a push; rounds.c rounds and timers; persist.c checkpoints
 * and resume; outputs.c the model and metrics files and the path checks;
 * admin.c status, model and operator requests; observe/ what psod tells
 * (metrics, progress lines, the status message, HTTP); shard/ sharded
 * swarms; strategy/ the math, which never includes this. Nothing outside
 * server/ includes this. */
#ifndef PSOD_SERVER_INT_H
#define PSOD_SERVER_INT_H

#include <stdio.h>
#include <stdlib.h>

#include "common/range.h"
#include "common/wire.h"
#include "server/gate.h"
#include "server/server.h"

struct member {
    /* Who: the worker's name, its connection and proof of it */
    char name[WIRE_NAME_MAX + 1];
    unsigned char id[WIRE_MAX_ID]; /* the connection's, assigned by the ROUTER */
    size_t id_len;
    unsigned char session[PSOD_SESSION_LEN]; /* told in the Welcome; all zero: none yet */
    char key[72];                            /* with CURVE: the key that holds this particle */
    char host[64];                           /* where the holding process runs, and its pid */
    uint32_t pid;
    int wire;           /* enum codec_kind agreed at its hello */
    double density;     /* sparse payloads agreed (common/sparse.h): their density; 0 = dense */
    unsigned fragments; /* fragment payloads agreed: the parts, one a round; 0 = whole */
    /* Compressed: the exact position the daemon last computed for it, of
     * which the worker holds what the wire delivered (mb->position). Its
     * pushes are changes it made and decode against this, so what one
     * position's rounding or sparsity left out is still in the next
     * target (error feedback on the way down). NULL: it holds
     * mb->position exactly. */
    float *intended;
    /* The CRC-32C of mb->position while pos_crc_ok (set where it is known
     * for free: a welcome, a float32 position stored): a hello by checksum
     * looks for its weights among these instead of reading every vector. */
    uint32_t pos_crc;
    int pos_crc_ok;
    int verifier; /* its hello offered to verify candidates (--verify-best) */

    /* Liveness */
    int active;
    int evicted;    /* silent for too long; a hello brings it back */
    int retired;    /* gone longer than --retire-after: the slot is free */
    int struck_out; /* reached --strike-limit (logged once) */
    double last_seen;
    /* Progress: when it last pushed (or joined) and its slowest interval
     * between pushes since, so a worker whose heartbeats go on while it
     * makes no progress is caught (--progress-factor). */
    double last_push_at, slowest_interval;
    int intervals;

    /* Its place in the open round */
    zmq_msg_t position; /* current position; never written after it is stored */
    int has_push;       /* pushed for the current round */
    zmq_msg_t push;     /* the pushed weights, updated in place at the close */
    double push_loss;
    uint64_t push_seq;
    double push_acc, push_pos_acc; /* accuracies reported with the push */
    uint64_t push_pos_round;
    uint64_t votes; /* coordinator: shards that hold its push of seq vote_seq */
    uint64_t vote_seq;

    /* History */
    double last_loss, last_acc;
    double pbest_acc; /* pso: accuracy of the weights that are its personal best */
    uint64_t pbest_round;
    uint64_t pushes, last_round;
};

/* What a compressed member's push is a change against (the exact
 * position it was sent), else its stored position. */
static inline const float *srv_base_of(const struct member *mb)
{
    return mb->intended ? mb->intended : (const float *)zmq_msg_data((zmq_msg_t *)&mb->position);
}

/* It holds mb->position exactly again (a float32 position or welcome). */
static inline void srv_forget_intended(struct member *mb)
{
    free(mb->intended);
    mb->intended = NULL;
}

/* Whether a member's payloads are changes against its stored position. */
static inline int srv_compressed(const struct member *mb)
{
    return mb->wire != 0 || mb->density > 0 || mb->fragments > 1;
}

/* A member's part of round `round`: [*off, *off + *len) of n
 * (range_fragment: all of n unless it is on fragment payloads). */
static inline void srv_fragment_range(const struct member *mb, size_t n, uint64_t round,
                                      size_t *off, size_t *len)
{
    range_fragment(n, mb->fragments, round, off, len);
}

/* pso --verify-best (verify.c): the candidate sent out for a verdict. */
#define VERIFY_PANEL_MAX 64
struct srv_verify {
    int pending; /* VERIFYs went out for this candidate */
    int decided; /* -1 not yet, 1 adopted, 0 refused */
    uint32_t particle, crc;
    uint64_t round;
    double claimed;
    int npanel; /* the members asked ... */
    int panel[VERIFY_PANEL_MAX];
    double verdict[VERIFY_PANEL_MAX]; /* ... and what each measured (NaN: nothing yet) */
    uint64_t adopted, refused, ignored, undecided;
    uint64_t struck;   /* strikes given to verifiers against the panel */
    uint64_t excluded; /* workers that reached --strike-limit */
};

/* A sharded swarm (shard.c). Every daemon owns [offset, offset + n) of the
 * flat vector of `total`; the coordinator (index 0) decides rounds, the
 * others apply them. */
#define SHARD_MAX 64
struct shard_peer { /* the coordinator's view of shard k */
    int registered;
    unsigned char id[WIRE_MAX_ID];
    size_t id_len;
    uint64_t incarnation, round;
    uint64_t steady_incarnation; /* its incarnation when the swarm last agreed */
    int fresh;
    uint64_t *gen; /* rounds of its checkpoints */
    size_t ngen;
    double last_seen;
};
struct shard_state {
    int count; /* daemons in the swarm; 0 = not sharded */
    int index;
    char (*ep)[CONF_STRLEN]; /* count endpoints */
    uint64_t total, offset;  /* set by the first hello (or the checkpoint) */
    int fresh;               /* started or resumed, no round applied since */
    int restart;             /* server_run ends: start again from restart_round */
    long restart_round;
    /* coordinator */
    struct shard_peer peer[SHARD_MAX];
    int ready;          /* every shard registered and at our round */
    uint64_t all_votes; /* bits 1..count-1 */
    float *model;       /* the global model being assembled */
    uint64_t model_round, model_have;
    double model_loss;
    int model_pending;
    /* the others */
    void *link; /* DEALER to the coordinator */
    int registered;
    uint64_t coord_incarnation;
    double link_heard, link_sent;
    double stop_at; /* the coordinator ended the run: exit once the workers
                              * said bye here, or at this time */
};

/* What /metrics and the status page show beyond the status (metrics.c). */
#define SRV_HIST_BUCKETS 16
struct srv_hist {
    uint64_t count[SRV_HIST_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    double sum;
};
struct srv_point { /* one closed round */
    uint64_t round;
    double time, round_s, loss, acc, mean_loss;
};
#define SRV_HISTORY 2048 /* rounds the status page can plot */
#define SRV_COMMANDS 16  /* bytes are counted by command below this */
struct srv_obs {
    struct srv_hist round_h, wait_h, update_h;
    struct srv_point hist[SRV_HISTORY];
    size_t hist_n, hist_next;
    uint64_t bytes_in_cmd[SRV_COMMANDS], bytes_out_cmd[SRV_COMMANDS];
};

struct server {
    /* --- Configuration, sockets, identity --------------------------------- */
    struct server_config cfg;
    struct wire_limits lim; /* sizes a message may have (--max-payload-mb, ...) */
    void *ctx, *sock;       /* ZeroMQ: the ROUTER workers talk to (NULL: detached) */
    char endpoint[256];     /* where it listens, after any port was picked */
    struct gate *gate;      /* who may connect: ZAP, allow-lists, --max-peers */
    uint64_t swarm_id;      /* changes when a new swarm starts */
    uint64_t incarnation;   /* this process: workers notice a restarted daemon */
    char admin_token[65];   /* the operator's token (common/token.h); "" when off */
    char admin_token_path[CONF_STRLEN];

    /* --- The model and its strategy --------------------------------------- */
    const struct strategy_ops *ops;
    void *st;                         /* the strategy's state, created by the first hello */
    size_t n;                         /* parameters (this daemon's range under --shards) */
    uint64_t layout_hash;             /* the model's fingerprint */
    char model_name[64], dataset[32]; /* from the hello that set the model */
    uint32_t input_shape[3];

    /* --- The member table (table.c) ---------------------------------------- */
    struct member *m;
    size_t count, cap;

    /* --- The open round (rounds.c) ----------------------------------------- */
    uint64_t round;                   /* rounds closed so far: the one open is this */
    double round_started, first_push; /* when it opened; its first push (--round-timeout) */
    int evaluator;                    /* the member told to evaluate this update's global model */
    /* Per member, filled at the close for the strategy's update: the pushed
     * vectors, the positions they started from, the pushed losses and the
     * personal-best losses before the update. */
    float **round_x;
    const float **round_prev;
    double *round_loss, *round_pbest_loss;
    double g_acc;         /* accuracy of the global model, NaN if unknown */
    uint64_t g_acc_round; /* ... the round it was measured for */
    struct pool *team;    /* --threads: element ranges of checks, updates, means */
    /* Strategies whose positions are all the global model (positions_global):
     * one buffer every member's stored position shares (ZeroMQ counts the
     * references), the round it is for and its CRC. */
    zmq_msg_t shared_position;
    int have_shared;
    uint64_t shared_round;
    uint32_t shared_crc;

    /* --- Counters (reply.c, the loop) -------------------------------------- */
    uint64_t bytes_in, bytes_out, bytes_refused;
    int refused;                       /* the message being served got an Error reply */
    uint64_t errors[PSOD_ERROR_CODES]; /* refusals by code; their sum is errors_sent */

    /* --- Time and lifecycle ------------------------------------------------ */
    double started, last_round_seconds, next_progress;
    int done; /* stop: --exit-when-done, psoctl stop, a shard's order */

    /* --- Persistence (persist.c) ------------------------------------------- */
    char ckpt_dir[CONF_STRLEN];
    uint64_t ckpt_round; /* round of the last checkpoint */
    double ckpt_time;    /* when it was written (or psod started) */
    int ckpt_have;       /* one was written, or resumed from */
    /* Checkpoints that could not be written: in all, the last one's
     * reason ("" once one is written again), when the log last said so. */
    uint64_t ckpt_failures;
    char ckpt_error[256];
    double ckpt_said_at;
    FILE *metrics; /* --metrics: one JSON line per round */

    /* --- What psod tells (observe/) ---------------------------------------- */
    uint64_t progress_sig[7]; /* what the last progress line showed */
    struct srv_obs obs;       /* histograms and history for /metrics and the page */
    struct srv_http *http;    /* --http; NULL when off */

    /* --- Subsystems --------------------------------------------------------- */
    struct shard_state sh;     /* --shards (shard/) */
    struct srv_verify verify;  /* --verify-best's panel (verify.c) */
    struct swarm_hyper *hyper; /* --hyper: the particles' lr and momentum; NULL when off */
};

/* Sharded and not the coordinator: rounds are the coordinator's to decide. */
static inline int srv_follower(const struct server *s)
{
    return s->sh.count > 1 && s->sh.index > 0;
}
static inline int srv_coordinator(const struct server *s)
{
    return s->sh.count > 1 && s->sh.index == 0;
}
/* This daemon decides rounds: not a follower, and a coordinator only once
 * every shard is with it. */
static inline int srv_decides(const struct server *s)
{
    return !srv_follower(s) && (!srv_coordinator(s) || s->sh.ready);
}
/* Whether this daemon verifies global bests (--verify-best and a strategy
 * that can). */
static inline int srv_verifying(const struct server *s)
{
    return s->cfg.sp.verify && s->ops->candidate && s->ops->judge;
}
/* Pushed for this round, and (coordinator) every shard holds the rest of it. */
static inline int srv_complete(const struct server *s, const struct member *mb)
{
    return mb->has_push &&
           (!srv_coordinator(s) ||
            (mb->vote_seq == mb->push_seq && (mb->votes & s->sh.all_votes) == s->sh.all_votes));
}

/* hyper.c: --hyper beside the strategy's state (created with it: 0, or -1
 * out of memory); room for one more particle (0 or -1, before the
 * strategy's add), then its point (cannot fail); a particle reset; before
 * a round's update; a Welcome's or Position's fields for member i. */
int srv_hyper_create(struct server *s);
int srv_hyper_reserve(struct server *s);
void srv_hyper_add(struct server *s, uint64_t stream);
void srv_hyper_reset(struct server *s, int i, uint64_t stream);
void srv_hyper_round(struct server *s);
void srv_hyper_fill(const struct server *s, int i, protobuf_c_boolean *has, double *lr,
                    double *momentum);

/* verify.c: before a round's update, send its candidate to a verifier; a
 * push's verdict; particle i given to a new worker. */
void srv_verify_send(struct server *s);
void srv_verify_verdict(struct server *s, struct member *mb, const Psod__Verdict *d);
void srv_verify_forget(struct server *s, int i);
/* Particle i was evicted for its strikes (--strike-action evict): its
 * worker may not rejoin. */
int srv_verify_banned(const struct server *s, int i);

/* reply.c: an Error reply, its log line and counters; returns -1 (for
 * `return srv_reject(...)`). The errors sent in all. */
int srv_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
uint64_t srv_errors_sent(const struct server *s);
/* A message from a worker's particle on a connection whose CURVE key is
 * not the particle's: refused (1), else 0. */
int srv_foreign_key(struct server *s, const struct member *mb, const struct wire_msg *in,
                    uint64_t seq);

/* admin.c: status, the swarm's model (CMD_MODEL_REQUEST), and the
 * operator's checkpoint, evict and stop. */
void srv_handle_status(struct server *s, struct wire_msg *in);
void srv_handle_model_request(struct server *s, struct wire_msg *in);
/* The operator's token for psoctl on this host (no CURVE): written at the
 * start, the path kept for the unlink at the end. */
void srv_admin_token(struct server *s);
void srv_handle_admin(struct server *s, struct wire_msg *in);

/* record.c: what a closed round leaves (a low file: it calls nothing
 * above it): its --metrics line; its times and losses in the histograms and
 * the history ring (observe/metrics.c shows them). update_s: the update's
 * time, wait_s: from the first push to the last. */
void srv_metrics_line(struct server *s, double now, double update_s, double wait_s);
void srv_observe_round(struct server *s, double now, double update_s, double wait_s);
/* The time histograms' bucket bounds, seconds. */
extern const double srv_hist_bounds[SRV_HIST_BUCKETS];

/* observe/report.c: progress lines, the Status message */
/* A progress line; unless `force`, only when something changed since the
 * last one. */
void srv_progress(struct server *s, int force);
/* The Status message of this daemon (as a status request gets it), in `b`;
 * free with srv_status_buf_free. 0, or -1 out of memory. */
struct srv_status_buf {
    Psod__Status st;
    Psod__ParticleStatus *ps, **pp;
    Psod__ShardStatus rows[SHARD_MAX], *rowp[SHARD_MAX];
    char *eps[SHARD_MAX];
};
int srv_status_fill(struct server *s, int with_particles, struct srv_status_buf *b);
void srv_status_buf_free(struct srv_status_buf *b);

/* observe/metrics.c: /metrics in the Prometheus text format (with the
 * HTTP endpoint's answers so far, by kind: 2xx, 404, 405, 503, other),
 * /history.json: malloc'd text (its length in *len), or NULL out of
 * memory. */
#define HTTP_ANSWER_KINDS 5
char *srv_metrics_text(struct server *s, const uint64_t answers[HTTP_ANSWER_KINDS], size_t *len);
char *srv_history_json(const struct server *s, size_t *len);

/* observe/http.c: --http, served by libmicrohttpd's own thread. Start (0,
 * or -1 with err); the loop's poll item (the HTTP thread asking for a
 * page); render what was asked (never blocks); stop. */
int srv_http_start(struct server *s, char *err, size_t errlen);
int srv_http_poll_item(struct server *s, zmq_pollitem_t *item);
void srv_http_process(struct server *s);
void srv_http_stop(struct server *s);

/* table.c: the member table and the low helpers (no handler, no round) */
/* Seconds without a word after which a worker counts as gone
 * (--heartbeat-ms x --liveness). */
double srv_silent_limit(const struct server *s);
struct member *srv_by_id(struct server *s, const struct wire_msg *in);
struct member *srv_by_name(struct server *s, const char *name);
/* The member a message is from: its connection's, or (from another
 * connection of the same worker) the one `name` and `session` prove; a
 * restored particle no hello has claimed yet, by its name alone. */
struct member *srv_member_of(struct server *s, const struct wire_msg *in, const char *name,
                             ProtobufCBinaryData session);
size_t srv_active(const struct server *s);
size_t srv_pushed(const struct server *s);
void srv_send_payload(struct server *s, struct member *mb, int command,
                      const ProtobufCMessage *meta);
void srv_send_msg(struct server *s, struct member *mb, int command, const ProtobufCMessage *meta,
                  zmq_msg_t *payload);
/* The push's buffer freed before its round closes: first taken out of the
 * strategy's running sum (strategy_ops.withdraw). srv_drop_push does this,
 * then tells the worker. */
void srv_release_push(struct server *s, struct member *mb);
/* Once a float32 push is in and the strategy's round reads no prev (sync
 * mode), nothing reads the member's stored position until the close: it
 * goes, so that a pso particle holds its personal best and one vector, not
 * two. srv_release_push puts the push in its place; srv_position_of is
 * what stands for it meanwhile (a checkpoint stores the push). */
void srv_spare_position(struct server *s, struct member *mb);
int srv_position_spared(const struct server *s, const struct member *mb);
const zmq_msg_t *srv_position_of(const struct server *s, const struct member *mb);
int srv_reserve(struct server *s);
/* The session a message shows is the member's own. */
int srv_same_session(const struct member *mb, ProtobufCBinaryData sess);
/* Names of the live workers the round still waits for, for log lines. */
void srv_waiting_for(const struct server *s, char *out, size_t len);

/* hello.c: a hello's checks, each a code and a reason (0: it passes):
 * first what the message itself must be (malformed), then whether it fits
 * this swarm (misfit); the handler refuses once, with srv_reject. Then the
 * wire kind, density and fragments the worker gets: psod's --wire when it
 * imposes one, else what the hello asks for. */
int srv_hello_malformed(const struct server *s, const Psod__Hello *h, char *why, size_t len);
int srv_hello_misfit(const struct server *s, const Psod__Hello *h, char *why, size_t len);
void srv_agree_wire(const struct server *s, const Psod__Hello *h, struct member *mb);

/* members.c: hello, heartbeat, bye */
void srv_handle_hello(struct server *s, struct wire_msg *in);
void srv_handle_heartbeat(struct server *s, struct wire_msg *in);
void srv_handle_bye(struct server *s, struct wire_msg *in);

/* rounds.c */
void srv_position_ready(void *ctx, int i, uint32_t crc);
void srv_close_round(struct server *s);
void srv_maybe_close_round(struct server *s);
void srv_timers(struct server *s, double now);
double srv_accuracy(double a);
void srv_global_report(struct server *s, double acc, uint64_t round);

/* push.c */
void srv_handle_push(struct server *s, struct wire_msg *in);

/* shard.c (and shard_follower.c, shard_coord.c) */
int srv_shard_init(struct server *s, char *err, size_t errlen);
void srv_shard_destroy(struct server *s);
/* Hello: check the range it carries. 0, or -1 refused. */
int srv_shard_check_hello(struct server *s, struct wire_msg *in, const Psod__Hello *h);
/* The hello that sets the swarm's model sets the whole vector's size. */
void srv_shard_adopt(struct server *s, const Psod__Hello *h);
/* Poll item for the link (followers); returns how many were added (0 or 1). */
int srv_shard_poll_item(struct server *s, zmq_pollitem_t *item);
void srv_shard_process_link(struct server *s);
void srv_shard_timers(struct server *s, double now);
/* shard_follower.c and shard_coord.c: their halves of the timers. */
void srv_shard_follower_timers(struct server *s, double now);
void srv_shard_coord_timers(struct server *s, double now);
void srv_handle_shard_hello(struct server *s, struct wire_msg *in);
void srv_handle_shard_report(struct server *s, struct wire_msg *in);
/* Follower: a push was accepted (tell the coordinator). */
void srv_shard_vote(struct server *s, struct member *mb);
/* Coordinator: the round (or async step) is decided: tell every shard. */
void srv_shard_commit(struct server *s, const struct member *async_mb);
/* Coordinator: after a checkpoint of the current round. */
void srv_shard_order(struct server *s, int action, uint64_t round);
/* Coordinator: assemble the global model from the shards into the model
 * file; `wait_s` > 0 blocks that long for the ranges. 1 written, 0 not
 * (yet), -1 failed. */
int srv_shard_save_model(struct server *s, double wait_s);
void srv_shard_status(struct server *s, Psod__Status *st, Psod__ShardStatus *rows,
                      Psod__ShardStatus **ptrs, char **eps);

/* rounds.c (for shard.c) */
void srv_async_step(struct server *s, struct member *mb);
void srv_drop_push(struct server *s, struct member *mb, const char *why);

/* persist.c: checkpoints and --resume */
/* Rounds of the checkpoints in the checkpoint directory, newest first;
 * returns the count (at most max). */
size_t srv_generations(const struct server *s, uint64_t *out, size_t max);
int srv_resume(struct server *s, const char *dir, char *err, size_t errlen);
/* 1 when a checkpoint was written. */
int srv_maybe_checkpoint(struct server *s, double now);

/* outputs.c: the model file, the metrics file, the path checks */
/* 0 when there is nothing to save, 1 when saved, -1 when saving failed
 * (logged). */
int srv_save_model(struct server *s);
/* At start: every path option names a place psod can write. */
int srv_open_metrics(struct server *s, char *err, size_t errlen);
int srv_check_paths(const struct server_config *cfg, char *err, size_t errlen);
/* --wire's spec into cfg->wire (0 any, else kind + 1) and wire_density
 * (options.c). 0, or -1 with err filled. */
int srv_parse_wire(struct server_config *cfg, char *err, size_t errlen);

#endif
