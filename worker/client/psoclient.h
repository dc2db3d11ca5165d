/* psoclient: the C client library of psod, the one place that speaks the
 * protocol on the worker side. psoworker uses it; bindings for other
 * languages wrap it. It needs nothing but this header and
 * libpsoclient.a (plus libzmq and libprotobuf-c).
 *
 *   struct psoc *c;
 *   psoc_open(&c, "tcp://head:5555", "node3-gpu0", NULL, err, sizeof err);
 *   psoc_join(c, n, layout_hash, weights, &welcome, err, sizeof err);
 *   for (;;) {
 *       ... train for a while, updating weights ...
 *       psoc_sync(c, weights, loss, samples, &pos, err, sizeof err);
 *   }
 *   psoc_close(&c);
 *
 * Every call is blocking with a timeout and returns PSOC_OK or a negative
 * PSOC_E* code, with a human-readable reason in `err`. When the daemon
 * refuses a request, the code is PSOC_EREFUSED and psoc_last_server_error()
 * gives the daemon's error code. Not thread-safe: one psoc per thread (its
 * heartbeat thread is internal and uses a socket of its own). */
#ifndef PSOD_PSOCLIENT_H
#define PSOD_PSOCLIENT_H

#include <stddef.h>
#include <stdint.h>

/* What libpsoclient.so exports: the psoc_ calls below and nothing else (it
 * is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define PSOC_API __attribute__((visibility("default")))
#else
#define PSOC_API
#endif

enum {
    PSOC_OK = 0,
    PSOC_EINVAL = -1,    /* bad argument */
    PSOC_ETIMEOUT = -2,  /* no answer in time; the connection was reset */
    PSOC_EPROTO = -3,    /* the daemon's reply made no sense */
    PSOC_EREFUSED = -4,  /* the daemon answered with an error */
    PSOC_ECHECKSUM = -5, /* a payload arrived corrupted */
    PSOC_ESYS = -6,      /* ZeroMQ or the OS failed; see errno text in err */
    PSOC_ESTATE = -7,    /* call out of order (push before join, ...) */
    PSOC_EINTR = -8,     /* *opts.stop became nonzero while waiting */
};

/* Worker names: 1 to PSOC_NAME_MAX printable characters, no spaces; the one
 * limit the library, psod and psoctl share. */
#define PSOC_NAME_MAX 127

/* What the library tells about its connection (connecting, lost, retrying,
 * back), for the caller's log. Called from the caller's thread or the
 * heartbeat thread; level: 1 info, 2 warning. */
typedef void psoc_log_fn(void *ctx, int level, const char *msg);

struct psoc;

struct psoc_options {
    int timeout_ms;         /* per request; sync waits for the whole round */
    int connect_timeout_ms; /* for the join */
    int reconnect_ms;       /* sync: how long to keep rejoining a daemon that went
                              * silent (back-off 0.5 s doubling to 8 s); 0 = fail */
    size_t max_payload;     /* largest payload accepted, bytes */
    int heartbeat_thread;   /* beat from a thread of its own after the join, at the
                              * daemon's interval, whatever the caller is doing (1) */
    psoc_log_fn *log;       /* NULL: say nothing */
    void *log_ctx;
    /* A flag the caller's signal handler sets: a wait in progress returns
     * PSOC_EINTR (the worker then says bye and exits). NULL: none. */
    const volatile int *stop;
    /* CURVE (all three or none, Z85 text): this peer's key pair and the
     * daemon's public key. psoc_options_curve() reads them from key files. */
    char curve_public[41], curve_secret[41], curve_server[41];
    /* Payload encoding asked for at the join (enum psoc_wire); the daemon
     * may impose another (psoc_welcome.wire says what was agreed). */
    int wire;
    /* Sparse payloads: the share of entries each push and position sends
     * (the top of the change by magnitude, the rest carried forward), 0 =
     * dense; psoc_wire_spec reads "topk:0.01:int2". */
    double density;
    /* Fragment payloads: the vector in this many parts, part (round mod
     * fragments) synced each round and the rest of the caller's weights
     * left as they are; 0 = the whole vector; psoc_wire_spec reads
     * "frag:4:int4". Not with density. */
    uint32_t fragments;
    /* How psoc_sync_end applies a position P to weights the caller trained
     * on since the push: below 0 (psoc_options_default's -1), the steps
     * taken kept on top, weights = P + (weights - pushed); A in [0, 1],
     * Streaming DiLoCo's merge, weights = A weights + (1 - A) P (their A =
     * 0.5; 0 drops the steps). With fragments, on the part synced only. */
    double overlap_mix;
};

/* Wire kinds: what pushes and positions carry. Compressed kinds send the
 * change against the last position both sides hold, with the rounding
 * residual carried into the next push (PROTOCOL.md). */
enum psoc_wire {
    PSOC_WIRE_FP32 = 0,
    PSOC_WIRE_FP16 = 1,
    PSOC_WIRE_BF16 = 2,
    PSOC_WIRE_INT8 = 3,
    PSOC_WIRE_INT4 = 4,
    PSOC_WIRE_INT2 = 5
};
/* The kind named "fp32", "fp16", "bf16" or "int8", or -1; and its name. */
PSOC_API int psoc_wire_parse(const char *name);
/* A wire spec, a kind, "topk:DENSITY[:KIND]" or "frag:F[:KIND]", into the
 * options' wire, density and fragments: PSOC_OK, or PSOC_EINVAL. */
PSOC_API int psoc_wire_spec(struct psoc_options *o, const char *spec);
PSOC_API const char *psoc_wire_name(int wire);

/* Fill the CURVE fields from this peer's key pair file (NAME.key, from
 * `psoctl keygen`) and the daemon's public key file (its .pub). Returns
 * PSOC_OK or PSOC_EINVAL with err filled. */
PSOC_API int psoc_options_curve(struct psoc_options *o, const char *key_file,
                                const char *server_key_file, char *err, size_t errlen);

struct psoc_welcome {
    uint32_t particle_id;
    uint64_t round;
    double global_best_loss;
    int rejoined;
    char strategy[32];
    int positions_global;        /* every position is the strategy's global model */
    int push_gradients;          /* the strategy takes gradients (psoc_sync_ex) */
    uint32_t heartbeat_ms;       /* the interval the client's heartbeat thread beats at */
    uint64_t pushes;             /* pushes this particle made before (a rejoin: resume
                               * the schedule from pushes x steps per sync) */
    char model[64], dataset[32]; /* the swarm's model, "" if unnamed */
    int wire;                    /* enum psoc_wire agreed with the daemon */
    /* psod --hyper: train with this learning rate and momentum until a
     * position says otherwise; NaN when the daemon sets none. */
    double lr, momentum;
    double density;     /* sparse payloads agreed: their density, 0 = dense */
    uint32_t fragments; /* fragment payloads agreed: the parts, 0 = whole */
};

/* What a worker reports with a push besides its vector. */
struct psoc_report {
    double loss;              /* fitness: lower is better (finite) */
    uint64_t samples;         /* samples seen since the last push */
    double accuracy;          /* test accuracy of the pushed weights, NaN if none */
    double position_accuracy; /* test accuracy of the position received for ... */
    uint64_t position_round;  /* ... this round (psoc_position.round), NaN if none */
};

struct psoc_position {
    uint64_t round; /* the round the next sync is for */
    double global_best_loss;
    double personal_best_loss;
    uint32_t global_best_particle;
    int evaluator; /* this worker evaluates the global model for reports */
    /* Nonzero when the push was not used: the round closed without it, the
     * worker had been evicted, or the daemon went away and came back; the
     * client rejoined (this many attempts) and `weights` holds the
     * particle's current position. */
    int resynced;
    /* psod --hyper: the learning rate and momentum to train with until the
     * next sync; NaN when the daemon sets none. */
    double lr, momentum;
};

struct psoc_particle_status {
    uint32_t id;
    char name[PSOC_NAME_MAX + 1];
    double last_loss, best_loss, age_seconds;
    uint64_t pushes, last_round;
    int pushed_this_round, active, evicted;
    int wire;         /* enum psoc_wire */
    uint32_t strikes; /* pso --verify-best: refuted claims and verdicts */
    int excluded;     /* struck --strike-limit times: no say in the swarm */
};

#define PSOC_ERROR_CODES 32

/* One daemon of a sharded swarm (PROTOCOL.md, "Shards"). The range and
 * round are known where the status came from the coordinator (shard 0). */
struct psoc_shard_status {
    uint32_t index;
    char endpoint[256];
    uint64_t offset, length, round;
    int connected; /* registered with the coordinator and heard from */
};

struct psoc_status {
    uint64_t round;
    uint32_t particles, active, workers_expected, pushed_this_round;
    double global_best_loss;
    int32_t global_best_particle;
    double global_accuracy; /* of the global model, NaN if unknown */
    uint64_t param_count;
    char strategy[32];
    char version[32];
    double uptime_seconds, last_round_seconds;
    uint64_t errors_sent, bytes_in, bytes_out, bytes_refused;
    uint64_t errors_by_code[PSOC_ERROR_CODES]; /* refusals by daemon error code */
    uint32_t peers_connected, max_peers;
    uint64_t peers_refused; /* connections refused: peer limit, keys, handshakes */
    int encrypted;          /* the daemon runs CURVE */
    size_t n_particles;
    struct psoc_particle_status *particle; /* n_particles entries, freed by psoc_status_free */
    /* A sharded swarm: every daemon (0 entries: one daemon), and which of
     * them answered. Freed by psoc_status_free. */
    size_t n_shards;
    uint32_t shard_index;
    struct psoc_shard_status *shard;
    /* pso --verify-best: candidate global bests adopted, refused, and
     * verdicts ignored. */
    uint64_t verify_adopted, verify_refused, verify_ignored;
    /* ... candidates no quorum decided, strikes given to verifiers against
     * a quorum, workers excluded at --strike-limit. */
    uint64_t verify_undecided, verify_struck, verify_excluded;
    uint32_t heartbeat_ms; /* the daemon's --heartbeat-ms */
    /* --checkpoint-dir: the last checkpoint's round and age (NaN: none
     * yet), checkpoints that failed, why the last failed ("" if it did
     * not). */
    uint64_t checkpoint_round;
    double checkpoint_age_seconds;
    uint64_t checkpoint_failures;
    char checkpoint_error[256];
};

PSOC_API void psoc_options_default(struct psoc_options *o);

/* Create a client for `endpoint` (e.g. tcp://10.0.0.1:5555). `name` is the
 * worker's stable identity in the swarm; NULL for a status-only client.
 * The endpoint may be any daemon of a sharded swarm: the join learns the
 * others from its status and then speaks to each about its range (pushes
 * split, positions assembled), so the caller sees one vector. */
PSOC_API int psoc_open(struct psoc **out, const char *endpoint, const char *name,
                       const struct psoc_options *opts, char *err, size_t errlen);

/* Name what the vector is before joining: the daemon refuses another model
 * by these names (not only by fingerprint) and records them in its model
 * file. `shape` is channels, height, width (NULL if none). */
PSOC_API void psoc_set_model(struct psoc *c, const char *model, const char *dataset,
                             const uint32_t shape[3]);

/* Join the swarm. `weights` (n floats) are this worker's initial weights,
 * sent for a new particle; on return they hold the starting position the
 * daemon assigned. */
PSOC_API int psoc_join(struct psoc *c, size_t n, uint64_t layout_hash, float *weights,
                       struct psoc_welcome *out, char *err, size_t errlen);

/* Verified global best (psod --verify-best): `fn` measures the loss of a
 * candidate's weights (n floats, read-only, valid during the call) on the
 * worker's shared fitness set, the one its own pushed losses come from,
 * into *loss; it returns 0, or nonzero when it cannot. Set before the
 * join: the hello then offers this worker as a verifier. psod sends a
 * candidate along with some positions; psoc_sync calls fn before it
 * returns and the next push carries the loss. Not with sharded swarms. */
typedef int psoc_verify_fn(void *ctx, const float *weights, size_t n, double *loss);
PSOC_API void psoc_set_verifier(struct psoc *c, psoc_verify_fn *fn, void *ctx);
/* Inside a verifier: the loss the candidate's worker claims for it (NaN
 * outside one). */
PSOC_API double psoc_verify_claimed(const struct psoc *c);

/* Push weights and loss for the current round; wait until the round closes
 * and overwrite `weights` with this particle's new position. A push the
 * daemon can no longer use (round closed, worker evicted) is followed by a
 * rejoin, as is a timeout when opts.reconnect_ms > 0 (see resynced). */
PSOC_API int psoc_sync(struct psoc *c, float *weights, double loss, uint64_t samples,
                       struct psoc_position *out, char *err, size_t errlen);

/* The general sync: push `gradient` (n floats) when the strategy takes
 * gradients (welcome.push_gradients), else `weights` (gradient NULL), with
 * the report; the new position is written into `weights` either way. */
/* A sync that overlaps training (the outer step of Streaming DiLoCo):
 * psoc_sync_begin pushes a copy of `weights` with the report and returns
 * at once, so the caller trains on; psoc_sync_end waits for the position
 * P and applies it with what the caller did meanwhile,
 *     weights = P + (weights - weights as pushed),
 * the steps taken since the push kept on top of the swarm's result (or
 * Streaming DiLoCo's merge, opts.overlap_mix). One
 * sync in flight at a time; weights strategies only (not ssgd). A push the
 * daemon could not use is followed by a rejoin in psoc_sync_end, as in
 * psoc_sync. */
PSOC_API int psoc_sync_begin(struct psoc *c, const float *weights, const struct psoc_report *rep,
                             char *err, size_t errlen);
PSOC_API int psoc_sync_end(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                           size_t errlen);
/* Whether a sync is in flight (begun, not ended). */
PSOC_API int psoc_sync_pending(const struct psoc *c);

PSOC_API int psoc_sync_ex(struct psoc *c, float *weights, const float *gradient,
                          const struct psoc_report *rep, struct psoc_position *out, char *err,
                          size_t errlen);

/* Test accuracy of the worker's final weights and the round they came
 * from, sent with the bye psoc_close says. */
PSOC_API void psoc_set_final(struct psoc *c, double accuracy, uint64_t round);

/* Read the daemon's state. Free with psoc_status_free. */
PSOC_API int psoc_status(struct psoc *c, int with_particles, struct psoc_status *out, char *err,
                         size_t errlen);
PSOC_API void psoc_status_free(struct psoc_status *s);
/* The same status as one line of JSON (the form of psod's /status.json),
 * malloc'd into *json (free with free()); NULL on failure. */
PSOC_API int psoc_status_json(struct psoc *c, int with_particles, char **json, char *err,
                              size_t errlen);
/* The swarm's model (after psoc_join; every shard's range of it on a
 * sharded swarm) into weights (n floats, as joined): safe = 0 the global
 * model, 1 the model a diverged worker should start again from (the
 * verified global best, or the robust attractor, else the global model).
 * *loss (may be NULL): the swarm's global loss; kind (may be NULL): what
 * the daemon sent. PSOC_EREFUSED while there is none yet. */
PSOC_API int psoc_fetch_model(struct psoc *c, int safe, float *weights, double *loss, char *kind,
                              size_t kindlen, char *err, size_t errlen);

struct psoc_model_info;
/* The swarm's whole model without joining (psoctl model): every shard's
 * range (the others found through the daemon's status) into *weights
 * (malloc'ed, info->param_count floats: free() it), its header into info
 * (what a .psom needs, for psoc_model_save). */
PSOC_API int psoc_download_model(struct psoc *c, int safe, float **weights,
                                 struct psoc_model_info *info, char *kind, size_t kindlen,
                                 char *err, size_t errlen);

/* Operator requests (they change the daemon's state, so the daemon takes
 * them only from a CURVE key in its --admin directory, or with the token
 * it wrote for its own host: psoc_admin_token_path, psoc_set_admin_token). */
enum psoc_admin_action { PSOC_ADMIN_CHECKPOINT = 1, PSOC_ADMIN_EVICT = 2, PSOC_ADMIN_STOP = 3 };
/* `worker` names the worker for PSOC_ADMIN_EVICT. On success `reply`
 * holds what the daemon did. */
PSOC_API int psoc_admin(struct psoc *c, int action, const char *worker, char *reply,
                        size_t replylen, char *err, size_t errlen);
/* Read the token file at path (NULL: where the daemon at this client's
 * endpoint writes it by default) and send it with admin requests. */
PSOC_API int psoc_set_admin_token(struct psoc *c, const char *path, char *err, size_t errlen);

/* Leave the swarm (sends bye when joined) and free everything. */
PSOC_API void psoc_close(struct psoc **c);

/* The daemon's error code (enum ErrorCode of the protocol) of the last
 * PSOC_EREFUSED, else 0. */
PSOC_API int psoc_last_server_error(const struct psoc *c);
PSOC_API const char *psoc_strerror(int code);

/* FNV-1a 64 of a layout description, for the model fingerprint. */
PSOC_API uint64_t psoc_layout_hash(const char *layout);

/* Which training samples each worker of a swarm holds (psoworker and
 * psoworker-torch both call this, so that C and PyTorch workers of one
 * swarm split a dataset the same way). Modes:
 *   PSOC_SHARD_IID        a seeded permutation cut in `count` contiguous
 *                         parts (indices in permutation order);
 *   PSOC_SHARD_DIRICHLET  label skew: each class's samples are dealt to the
 *                         workers in proportions drawn from Dirichlet(alpha),
 *                         drawn again (up to 100 times) until every worker
 *                         has at least min(10, n / count) samples;
 *   PSOC_SHARD_CLASSES    the samples sorted by label, cut into count *
 *                         `classes` equal runs, each worker dealt `classes`
 *                         of them at random: about that many classes each.
 * The shards are disjoint and cover all n samples. out (room for n) gets
 * worker `index`'s sample indices (ascending for the label-skew modes),
 * *out_n their number. 0, or -1 with err filled. */
enum psoc_shard_mode { PSOC_SHARD_IID = 0, PSOC_SHARD_DIRICHLET = 1, PSOC_SHARD_CLASSES = 2 };
PSOC_API int psoc_partition(const uint8_t *labels, size_t n, int index, int count, int mode,
                            double alpha, int classes, uint64_t seed, size_t *out, size_t *out_n,
                            char *err, size_t errlen);
/* "iid", "dirichlet", "classes" -> the mode, -1 for anything else. */
PSOC_API int psoc_shard_mode_parse(const char *name);

/* Model files (.psom, common/modelfile.h): what psod writes and psoworker
 * evaluates, for bindings. */
struct psoc_model_info {
    uint64_t layout_hash, param_count, round;
    double loss;
    char strategy[16], model[32], dataset[16];
    uint32_t input_shape[3]; /* channels, height, width; 0 if unknown */
};
/* Write atomically (info->param_count floats). PSOC_OK or PSOC_ESYS. */
PSOC_API int psoc_model_save(const char *path, const struct psoc_model_info *info,
                             const float *params, char *err, size_t errlen);
/* Read and check a file: its header into info and, when params is not
 * NULL, its n weights (n must be the file's count). PSOC_OK or PSOC_EINVAL. */
PSOC_API int psoc_model_load(const char *path, struct psoc_model_info *info, float *params,
                             size_t n, char *err, size_t errlen);

/* For bindings that mirror this header's structs (Python's ctypes): the
 * size of struct NAME ("psoc_options", "psoc_welcome", "psoc_report",
 * "psoc_position", "psoc_particle_status", "psoc_status",
 * "psoc_shard_status", "psoc_model_info"), 0 for another
 * name, so a binding can refuse a library its mirror does not fit. */
PSOC_API size_t psoc_struct_size(const char *name);

#endif
