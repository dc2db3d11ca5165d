/* The client library's private header: the client's state and what its
 * rooms share. psoclient.c sets connections up (CURVE, monitor, reset) and
 * tears them down; psoclient_beat.c is the heartbeat thread;
 * psoclient_wait.c sends a request and waits for its reply, matching it to
 * its request and reading handshake failures; psoclient_link.c is one
 * daemon's hello, push and position; psoclient_sync.c joins and syncs
 * through it; psoclient_shard.c does both over a sharded swarm's daemons;
 * psoclient_ops.c holds the operator calls (status, admin, the model);
 * psoclient_status.c the Status message as a struct. Nothing outside the
 * library includes this. */
#ifndef PSOD_PSOCLIENT_INT_H
#define PSOD_PSOCLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "worker/client/psoclient.h"
#include "common/wire.h"

/* Heartbeat intervals of silence after which the daemon counts as lost. */
#define PSOC_LIVENESS 10

struct psoc {
    /* --- The connection ------------------------------------------------ */
    void *ctx, *sock;
    char endpoint[256];
    struct psoc_options opts;
    char admin_token[65];  /* sent with admin requests; "" = none */
    void *mon;             /* PAIR on the socket's monitor: handshake failures */
    int handshaken;        /* the current connection completed its handshake */
    int failed_handshakes; /* connections lost before a handshake, in a row */
    char refused[256];     /* why the last handshake was refused, until one succeeds */
    int last_server_error; /* the code of the daemon's last Error reply */

    /* --- This worker and the swarm it joined ---------------------------- */
    char name[PSOC_NAME_MAX + 1];
    char model[64], dataset[32]; /* psoc_set_model: what the vector is */
    uint32_t shape[3];
    size_t n; /* floats in the vector (this daemon's range when sharded) */
    uint64_t layout_hash;
    int joined;
    uint32_t particle;
    uint64_t round, seq;   /* the next push's round; the last request's number */
    int push_kind;         /* what pushes carry: weights or gradients */
    int positions_global;  /* every position is the strategy's global model */
    uint32_t heartbeat_ms; /* the daemon's interval (the Welcome's) */
    uint64_t incarnation;  /* the daemon process the Welcome came from */
    double final_accuracy; /* psoc_set_final: what the bye reports */
    uint64_t final_round;
    int zero_copy;           /* pushes go out from the caller's buffer */
    atomic_int released;     /* ZeroMQ is done with that buffer */
    int64_t said_waiting_at; /* when the log last heard the swarm is not full */

    /* --- The heartbeat thread ------------------------------------------- */
    /* Its own context and socket ("h:" + name), so that liveness does not
     * depend on what the caller is doing. What was heard from the daemon
     * (by the thread, or by the caller's socket while it waits) counts:
     * heartbeats work both ways. */
    pthread_t beat_thread;
    int beat_running;
    atomic_int beat_stop;
    atomic_llong heard_ms;           /* the last answer, time_now_ms() */
    atomic_ullong heard_incarnation; /* the last incarnation heard, 0 = none since the
                                      * last welcome */
    int beat_said_lost;              /* the thread's own: it told the log */
    /* The session the last Welcome carried, as two words (0, 0: none):
     * written by the caller's thread, read by the heartbeat thread. */
    atomic_ullong session[2];

    /* --- Compressed payloads (wire != fp32) ----------------------------- */
    /* The position both sides hold, and the rounding residual error
     * feedback carries into the next push. */
    int wire;
    float *ref, *resid;

    /* --- A sharded swarm (psoclient_shard.c) ---------------------------- */
    /* One client per daemon, each speaking about its range [shard_offset,
     * shard_offset + n) of shard_total; this one keeps its own socket for
     * status and admin. */
    int nsub;
    struct psoc **sub;
    uint64_t shard_offset, shard_total;

    /* --- --verify-best (psoclient_verify.c) ----------------------------- */
    /* The caller's verifier, the candidate the daemon sent with the
     * position being awaited, and the verdict the next push carries. */
    psoc_verify_fn *verify_fn;
    void *verify_ctx;
    float *cand;
    int cand_have, verdict_have;
    uint32_t cand_particle, cand_crc, verdict_particle, verdict_crc;
    uint64_t cand_round, verdict_round;
    double cand_claimed, verdict_loss;
    int verifying; /* inside verify_fn (psoc_verify_claimed) */
};

/* psoclient_verify.c: keep a VERIFY that came while waiting for the
 * position of push `seq`; measure it once the position is in; the verdict
 * for the next push (1, out filled) or none (0). */
void psoc__take_verify(struct psoc *c, const struct wire_msg *m, uint64_t seq);
void psoc__verify_run(struct psoc *c);
int psoc__verdict(struct psoc *c, Psod__Verdict *out);

/* Tell the caller's log (opts.log), printf-style. */
void psoc__say(const struct psoc *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int psoc__err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int psoc__apply_curve(void *sock, const struct psoc_options *o);
int psoc__setup(struct psoc *c, char *err, size_t errlen);
void psoc__teardown(struct psoc *c, int linger_ms);
void psoc__reset(struct psoc *c);
void psoc__beat_start(struct psoc *c);
/* The session the last Welcome carried, copied into buf: as a protobuf
 * bytes field, empty when there is none. */
ProtobufCBinaryData psoc__session(struct psoc *c, uint64_t buf[2]);
/* The heartbeat to send: seq, and this worker's name and session. */
void psoc__heartbeat(struct psoc *c, uint64_t seq, Psod__Heartbeat *hb, uint64_t session[2]);
void psoc__beat_stop(struct psoc *c);
/* psoclient_status.c: fill `out` from `pb` (arrays allocated; free with
 * psoc_status_free). 0, or -1 out of memory (out holds nothing to free). */
int psoc__status_from_pb(const Psod__Status *pb, struct psoc_status *out);
/* Send a request whose reply is `want` within timeout_ms, reading the
 * monitor meanwhile (a refused handshake); the payload stays the caller's
 * on failure. */
int psoc__send(struct psoc *c, int command, const ProtobufCMessage *meta, zmq_msg_t *payload,
               int want, int timeout_ms, char *err, size_t errlen);
/* Wait for the reply to request `seq` with command `want`. Returns 0 with
 * `m` filled, or a PSOC_E* code. */
int psoc__await(struct psoc *c, int want, uint64_t seq, int timeout_ms, struct wire_msg *m,
                char *err, size_t errlen);

/* psoclient_link.c: one daemon's hello (with retries), push and position,
 * for psoclient_sync.c (one daemon) and psoclient_shard.c (each shard). */
int psoc__hello_retry(struct psoc *c, float *weights, int budget_ms, int first_ms,
                      struct psoc_welcome *w, int *attempts, char *err, size_t errlen);
/* Send a push (`gradient` or `weights`); its seq in *seq. */
int psoc__push(struct psoc *c, float *weights, const float *gradient, const struct psoc_report *rep,
               uint64_t *seq, char *err, size_t errlen);
/* Wait for push `seq`'s position into `weights`. On return ZeroMQ has let
 * go of the pushed buffer. *resync: the push was not used (err says why);
 * the caller rejoins. */
int psoc__position(struct psoc *c, float *weights, uint64_t seq, struct psoc_position *out,
                   int *resync, char *err, size_t errlen);

/* psoclient_shard.c */
/* Ask the daemon for its shards: 0 when it is alone (or an older daemon),
 * else the count, with the sub-clients created. */
int psoc__discover(struct psoc *c, char *err, size_t errlen);
int psoc__join_shards(struct psoc *c, float *weights, struct psoc_welcome *out, char *err,
                      size_t errlen);
int psoc__sync_shards(struct psoc *c, float *weights, const float *gradient,
                      const struct psoc_report *rep, struct psoc_position *out, char *err,
                      size_t errlen);
void psoc__close_shards(struct psoc *c);

#endif
