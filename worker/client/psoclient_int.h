/* The client library's private header: the client's state and what its
 * rooms share. The API object (struct psoc) holds one link per daemon
 * (struct psoc_link); one daemon is one link.
 *
 * From the bottom up: psoclient_conn.c makes a link's connection (CURVE,
 * monitor, reset) and holds the reporting helpers; psoclient_beat.c is a
 * link's heartbeat thread; psoclient_wait.c sends a request on a link and
 * waits for its reply, matching it to its request and reading handshake
 * failures; psoclient_link.c is one daemon's hello, push and position;
 * psoclient_shard.c finds the daemons and makes the links at the join;
 * psoclient_sync.c joins and syncs over the links; psoclient_ops.c holds
 * the operator calls (status, admin, the model); psoclient_status.c the
 * Status message as a struct; psoclient.c opens and closes the API
 * object. Nothing outside the library includes this. */
#ifndef PSOD_PSOCLIENT_INT_H
#define PSOD_PSOCLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "worker/client/psoclient.h"
#include "common/wire.h"

/* Heartbeat intervals of silence after which the daemon counts as lost. */
#define PSOC_LIVENESS 10

struct psoc;

/* One daemon: the connection to it, the heartbeat thread beside it, what
 * its welcome said, and the wire state both sides hold for its range
 * [offset, offset + n) of the worker's vector. One daemon is one link over
 * the whole vector; a sharded swarm's client has a link per daemon. */
struct psoc_link {
    struct psoc *api; /* the options, the worker's name, the log */

    /* --- The connection (psoclient_conn.c, psoclient_wait.c) ------------ */
    void *ctx, *sock;
    char endpoint[256];
    void *mon;             /* PAIR on the socket's monitor: handshake failures */
    int handshaken;        /* the current connection completed its handshake */
    int failed_handshakes; /* connections lost before a handshake, in a row */
    char refused[256];     /* why the last handshake was refused, until one succeeds */
    int last_server_error; /* the code of this daemon's last Error reply */

    /* --- The range and this daemon's welcome (psoclient_link.c) --------- */
    uint64_t offset, total; /* total 0: the daemon is not sharded */
    size_t n;               /* floats in the range */
    int joined;
    uint32_t particle;
    uint64_t round, seq;     /* the next push's round; the last request's number */
    int push_kind;           /* what pushes carry: weights or gradients */
    int positions_global;    /* every position is the strategy's global model */
    uint32_t heartbeat_ms;   /* the daemon's interval (the Welcome's) */
    uint64_t incarnation;    /* the daemon process the Welcome came from */
    int zero_copy;           /* pushes go out from the caller's buffer */
    atomic_int released;     /* ZeroMQ is done with that buffer */
    int64_t said_waiting_at; /* when the log last heard the swarm is not full */

    /* --- The heartbeat thread (psoclient_beat.c) ------------------------ */
    /* Its own context and socket, so that liveness does not depend on what
     * the caller is doing. What was heard from the daemon (by the thread,
     * or by the caller's socket while it waits) counts: heartbeats work
     * both ways. */
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

    /* --- Compressed payloads (wire != fp32, or sparse) ------------------ */
    /* The position both sides hold, and the rounding residual error
     * feedback carries into the next push (sparse: all that was not
     * sent). */
    int wire;
    double density;     /* sparse payloads: the share of entries sent; 0 = dense */
    unsigned fragments; /* fragment payloads: the parts, one a round; 0 = whole */
    float *ref, *resid;
};

/* Whether a link's payloads are changes against ref (psoclient_link.c). */
static inline int psoc__compressed(const struct psoc_link *l)
{
    return l->wire != 0 || l->density > 0 || l->fragments > 1;
}

/* The API object: the worker, its vector, the swarm it joined, over one
 * link per daemon (psoclient_shard.c finds the daemons at the join). */
struct psoc {
    /* --- What the caller gave ------------------------------------------- */
    struct psoc_options opts;
    char name[PSOC_NAME_MAX + 1];
    char model[64], dataset[32]; /* psoc_set_model: what the vector is */
    uint32_t shape[3];
    char admin_token[65]; /* sent with admin requests; "" = none */
    size_t n;             /* floats in the vector */
    uint64_t layout_hash;
    double final_accuracy; /* psoc_set_final: what the bye reports */
    uint64_t final_round;

    /* --- The daemons ------------------------------------------------------ */
    /* link[ctl] is the daemon psoc_open named: status, admin and model
     * requests go there. Before a sharded join it is the only one. */
    int nlink, ctl;
    struct psoc_link **link;
    int last_server_error; /* the last Error reply from any of them */

    /* --- The swarm joined (the links agree on it) ------------------------ */
    int joined;
    uint32_t particle;
    uint64_t round;
    int push_kind;
    int positions_global;
    int wire;

    /* --- --verify-best (psoclient_verify.c): one daemon only ------------ */
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

    /* --- A sync in flight (psoc_sync_begin .. psoc_sync_end) ------------ */
    int inflight;
    uint64_t inflight_seq;
    float *at_push;                    /* the weights pushed, as they were */
    float *arrived;                    /* the position, once it is in */
    int sent[64];                      /* which links took the push */
    size_t part_off[64], part_len[64]; /* what of the vector each link's push syncs */
    int inflight_rc, inflight_resync;
    char inflight_err[1024];
};

/* psoclient_verify.c: keep a VERIFY that came while waiting for the
 * position of push `seq`; measure it once the position is in; the verdict
 * for the next push (1, out filled) or none (0). */
void psoc__take_verify(struct psoc *c, const struct wire_msg *m, uint64_t seq);
void psoc__verify_run(struct psoc *c);
int psoc__verdict(struct psoc *c, Psod__Verdict *out);

/* psoclient_conn.c: tell the caller's log (opts.log), printf-style; an
 * error into the caller's buffer; a link's connection. */
void psoc__say(const struct psoc *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int psoc__err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int psoc__apply_curve(void *sock, const struct psoc_options *o);
/* A link to `endpoint` for the range [offset, offset + n) of `total`
 * (0: not sharded), connected. */
int psoc__link_new(struct psoc *c, const char *endpoint, uint64_t offset, size_t n, uint64_t total,
                   struct psoc_link **out, char *err, size_t errlen);
/* Close it (its heartbeat thread already stopped: psoc__link_close),
 * giving what it sent linger_ms to leave. */
void psoc__link_free(struct psoc_link **lp, int linger_ms);
void psoc__reset(struct psoc_link *l);

/* psoclient_beat.c */
void psoc__beat_start(struct psoc_link *l);
void psoc__beat_stop(struct psoc_link *l);
/* The session the last Welcome carried, copied into buf: as a protobuf
 * bytes field, empty when there is none. */
ProtobufCBinaryData psoc__session(struct psoc_link *l, uint64_t buf[2]);
/* The heartbeat to send: seq, and this worker's name and session. */
void psoc__heartbeat(struct psoc_link *l, uint64_t seq, Psod__Heartbeat *hb, uint64_t session[2]);

/* psoclient_status.c: fill `out` from `pb` (arrays allocated; free with
 * psoc_status_free). 0, or -1 out of memory (out holds nothing to free). */
int psoc__status_from_pb(const Psod__Status *pb, struct psoc_status *out);

/* psoclient_wait.c: send a request whose reply is `want` within
 * timeout_ms, reading the monitor meanwhile (a refused handshake); the
 * payload stays the caller's on failure. */
int psoc__send(struct psoc_link *l, int command, const ProtobufCMessage *meta, zmq_msg_t *payload,
               int want, int timeout_ms, char *err, size_t errlen);
/* Wait for the reply to request `seq` with command `want`. Returns 0 with
 * `m` filled, or a PSOC_E* code. */
int psoc__await(struct psoc_link *l, int want, uint64_t seq, int timeout_ms, struct wire_msg *m,
                char *err, size_t errlen);

/* psoclient_link.c: one daemon's hello (with retries), push and position.
 * The hello's welcome fills the link (and `w`). */
int psoc__hello_retry(struct psoc_link *l, float *weights, int budget_ms, int first_ms,
                      struct psoc_welcome *w, int *attempts, char *err, size_t errlen);
/* Send a push of the range (`gradient` or `weights`, whole vectors) with
 * request number `seq`. */
int psoc__push(struct psoc_link *l, float *weights, const float *gradient,
               const struct psoc_report *rep, uint64_t seq, char *err, size_t errlen);
/* Wait for push `seq`'s position into the range of `weights`. On return
 * ZeroMQ has let go of the pushed buffer. *resync: the push was not used
 * (err says why); the caller rejoins. */
int psoc__position(struct psoc_link *l, float *weights, uint64_t seq, struct psoc_position *out,
                   int *resync, char *err, size_t errlen);

/* The part of the link's range round `round` syncs, [*off, *off + *len)
 * of the range: all of it, or with fragment payloads part round mod
 * fragments (common/range.h). */
void psoc__part(const struct psoc_link *l, uint64_t round, size_t *off, size_t *len);

/* Stop its heartbeat, say bye when it joined (the worker's final accuracy
 * and round), and free it. */
void psoc__link_close(struct psoc_link **lp);

/* psoclient_shard.c: ask the named daemon for the swarm's daemons and
 * make one link per daemon with its range (one daemon: the one link, over
 * the whole vector). Returns the count, or a PSOC_E* code. */
int psoc__discover(struct psoc *c, char *err, size_t errlen);

#endif
