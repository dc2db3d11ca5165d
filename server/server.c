/* psod's serving loop: see server.h and proto/PROTOCOL.md.
 *
 * Membership. A worker is known by its name. Its routing id ("w:" + name) is
 * stable, so a restarted worker is recognised and gets its particle back
 * (ZMQ_ROUTER_HANDOVER lets the new connection take the id over).
 *
 * Rounds. Round r closes once at least --workers particles exist and every
 * active one has pushed for r. A particle whose worker said bye no longer
 * holds the round up. At the close the strategy (strategy.h) computes each
 * pushed particle's new position in place, in the buffer the push arrived in, and
 * that buffer is both the stored position and (shared by reference count)
 * the Position reply.
 *
 * Peers are never trusted: wire_recv validates framing, each handler checks
 * its fields, and every refusal is an Error reply plus a rate-limited log
 * line. Nothing a peer sends ends the loop. */
#include "server/server.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/psoclient.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "common/ckpt.h"
#include "common/modelfile.h"
#include "server/gate.h"

#include "common/version.h"
#define NAME_MAX_LEN 127

static const char *const s_strategy_names[] = {"pso", "avg", "easgd", "diloco", "ssgd", NULL};
static const char *const s_modes[] = {"sync", "async", NULL};

const struct config_option *server_options(struct server_config *c)
{
    /* Rebuilt per call so the table points at the caller's struct: the
     * daemon's own options, then each strategy's. */
    static struct config_option t[96];
    struct config_option opts[] = {
        {"bind", CONF_STRING, c->bind, "tcp://127.0.0.1:5555", 1, 0,
         "ZeroMQ endpoint to listen on: an explicit interface address and port (port * = any free)", NULL},
        {"endpoint-file", CONF_STRING, c->endpoint_file, "", 1, 0,
         "write the bound endpoint to this file once listening", NULL},
        {"workers", CONF_INT, &c->workers, "4", 1, 65536,
         "particles a round waits for (the swarm size)", NULL},
        {"strategy", CONF_ENUM, &c->strategy, "pso", 1, 0,
         "synchronization: pso (PSO-PS), avg, easgd, diloco, ssgd (docs/STRATEGIES.md)",
         s_strategy_names},
        {"mode", CONF_ENUM, &c->mode, "sync", 1, 0,
         "sync: rounds with a barrier; async: each push is answered at once from the current "
         "state, so a slow worker slows only itself (pso and avg)", s_modes},
        {"seed", CONF_INT, &c->seed, "1", 0, 9.2e18, "seed of the swarm's random factors", NULL},
        {"max-payload-mb", CONF_INT, &c->max_payload_mb, "1024", 1, 1 << 20,
         "largest payload frame accepted, MiB (bounds memory a peer can make us allocate)", NULL},
        {"max-meta-kb", CONF_INT, &c->max_meta_kb, "64", 1, 65536,
         "largest metadata frame accepted, KiB", NULL},
        {"max-rounds", CONF_INT, &c->max_rounds, "0", 0, 9.2e18,
         "exit cleanly after this many rounds, 0 = run until signalled", NULL},
        {"progress-interval", CONF_DOUBLE, &c->progress_interval, "10", 0, 86400,
         "seconds between progress lines, 0 = none", NULL},
        {"metrics", CONF_STRING, c->metrics, "", 1, 0,
         "JSON-lines file: one line per round (losses, accuracies, bytes, times)", NULL},
        {"model-out", CONF_STRING, c->model_out, "", 1, 0,
         "write the global model here at the end and every --save-every rounds", NULL},
        {"save-every", CONF_INT, &c->save_every, "0", 0, 9.2e18,
         "rounds between model files, 0 = only at the end", NULL},
        {"exit-when-done", CONF_BOOL, &c->exit_when_done, "no", 1, 0,
         "exit once every worker has said bye (one training run per daemon)", NULL},
        {"heartbeat-ms", CONF_INT, &c->heartbeat_ms, "1000", 10, 3.6e6,
         "interval workers send heartbeats at (told to them at join)", NULL},
        {"liveness", CONF_INT, &c->liveness, "10", 1, 1000000,
         "heartbeat intervals without a word before a worker is evicted", NULL},
        {"round-timeout", CONF_DOUBLE, &c->round_timeout, "0", 0, 1e9,
         "close a round this many seconds after its first push, with whoever pushed; 0 = wait "
         "for every live worker", NULL},
        {"max-workers", CONF_INT, &c->max_workers, "0", 0, 65536,
         "particles allowed in all: more workers than --workers may join a running swarm "
         "(they start from the global model); 0 = --workers", NULL},
        {"retire-after", CONF_DOUBLE, &c->retire_after, "0", 0, 1e9,
         "seconds a departed or evicted worker keeps its particle; then a new worker may take "
         "the slot over (from the global model); 0 = forever", NULL},
        {"quorum", CONF_INT, &c->quorum, "0", 0, 65536,
         "close a round as soon as this many workers pushed, 0 = all live workers", NULL},
        {"checkpoint-dir", CONF_STRING, c->checkpoint_dir, "", 1, 0,
         "write the whole swarm state here (atomically, with a checksum); empty = never", NULL},
        {"checkpoint-every", CONF_INT, &c->checkpoint_every, "100", 0, 9.2e18,
         "rounds between checkpoints, 0 = by time only", NULL},
        {"checkpoint-seconds", CONF_DOUBLE, &c->checkpoint_seconds, "60", 0, 1e9,
         "seconds between checkpoints, 0 = by rounds only", NULL},
        {"keep", CONF_INT, &c->keep, "3", 1, 1000, "checkpoint generations kept", NULL},
        {"resume", CONF_STRING, c->resume, "", 1, 0,
         "restore the newest intact checkpoint in this directory (a corrupt one is skipped "
         "for the one before); checkpoints then go on there unless --checkpoint-dir says "
         "otherwise", NULL},
        {"max-peers", CONF_INT, &c->max_peers, "1024", 0, 1000000,
         "open connections allowed (each worker holds two, psoctl one); more are refused "
         "and logged; 0 = no limit", NULL},
        {"curve-secret", CONF_STRING, c->curve_secret, "", 1, 0,
         "the daemon's CURVE key pair (psoctl keygen): authenticate and encrypt every "
         "connection; needs --allow", NULL},
        {"allow", CONF_STRING, c->allow, "", 1, 0,
         "directory of NAME.pub public keys of the workers that may connect (CURVE)", NULL},
        {"admin", CONF_STRING, c->admin, "", 1, 0,
         "directory of NAME.pub public keys that may send admin requests (psoctl checkpoint, "
         "evict, stop); none without it", NULL},
    };
    size_t k = 0;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        t[k++] = opts[i];
    for (int j = 0; strategy_all[j]; j++)
        for (const struct config_option *o = strategy_all[j]->options(&c->sp); o->name; o++) {
            if (k + 1 >= sizeof t / sizeof t[0])
                abort(); /* a programming error: grow t */
            t[k++] = *o;
        }
    memset(&t[k], 0, sizeof t[k]);
    return t;
}

struct member {
    char name[NAME_MAX_LEN + 1];
    unsigned char id[WIRE_MAX_ID];
    size_t id_len;
    int active;
    char key[72];            /* with CURVE: the key that holds this particle */
    double last_seen;
    zmq_msg_t position;      /* current position; never written after it is stored */
    int evicted;             /* silent for too long; a hello brings it back */
    int retired;             /* gone longer than --retire-after: the slot is free */
    int has_push;            /* pushed for the current round */
    zmq_msg_t push;          /* the pushed weights, updated in place at the close */
    double push_loss;
    uint64_t push_seq;
    double push_acc, push_pos_acc;  /* accuracies reported with the push */
    uint64_t push_pos_round;
    double last_loss, last_acc;
    double pbest_acc;        /* pso: accuracy of the weights that are its personal best */
    uint64_t pbest_round;
    uint64_t pushes, last_round;
};

struct server {
    struct server_config cfg;
    struct wire_limits lim;
    void *ctx, *sock;
    char endpoint[256];
    const struct strategy_ops *ops;
    void *st;                /* the strategy's state, created by the first hello */
    size_t n;
    uint64_t layout_hash;
    struct member *m;
    size_t count, cap;
    float **xs;
    const float **prevs;
    double *losses, *pbl;
    uint64_t round;
    double started, round_started, last_round_seconds, next_progress, first_push;
    uint64_t bytes_in, bytes_out;
    uint64_t errors[PSOD_ERROR_CODES];  /* refusals by code; their sum is errors_sent */
    struct gate *gate;
    uint64_t swarm_id;
    uint64_t incarnation;    /* this process: workers notice a restarted daemon */
    double g_acc;            /* accuracy of the global model, NaN if unknown */
    uint64_t g_acc_round;
    int done;                /* --exit-when-done: every worker left */
    FILE *metrics;
    char ckpt_dir[CONF_STRLEN];
    uint64_t ckpt_round;     /* round of the last checkpoint */
    double ckpt_time;
};

static int s_resume(struct server *s, const char *dir, char *err, size_t errlen);

/* The ROUTER socket, its gate and its bind. Returns 0 or -1 with err. */
static int s_listen(struct server *s, const struct server_config *cfg, char *err, size_t errlen)
{
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        snprintf(err, errlen, "cannot create ZeroMQ socket: %s", zmq_strerror(errno));
        return -1;
    }
    struct gate_config gc = {cfg->curve_secret, cfg->allow, cfg->admin, cfg->max_peers};
    if (gate_new(&s->gate, s->ctx, s->sock, &gc, err, errlen) != 0)
        return -1;
    long need = 2 * (cfg->max_workers > cfg->workers ? cfg->max_workers : cfg->workers);
    if (cfg->max_peers > 0 && cfg->max_peers < need)
        log_warn("--max-peers %ld is below the %ld connections %ld workers need (two each)",
                 cfg->max_peers, need, need / 2);
    int one = 1, linger = 0, hwm = 100;
    int64_t maxmsg = (int64_t)(s->lim.max_payload + s->lim.max_meta + 64);
    zmq_setsockopt(s->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(s->sock, cfg->bind) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on '%s': %s%s", cfg->bind, zmq_strerror(e),
                 e == EADDRINUSE ? " (another process holds the port; pick another --bind)"
                 : e == EADDRNOTAVAIL ? " (no interface of this host has that address)"
                                      : "");
        return -1;
    }
    size_t len = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len);
    return 0;
}

static int s_new(struct server **out, const struct server_config *cfg, int detached, char *err,
                 size_t errlen)
{
    *out = NULL;
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->cfg.sp.seed = (uint64_t)cfg->seed;
    s->cfg.sp.workers = cfg->workers;
    s->ops = strategy_all[cfg->strategy];
    if (cfg->mode == 1 && !s->ops->push) {
        snprintf(err, errlen, "--mode async works with strategies pso and avg, not %s",
                 s->ops->name);
        free(s);
        return -1;
    }
    s->g_acc = NAN;
    s->lim.max_meta = (size_t)cfg->max_meta_kb * 1024;
    s->lim.max_payload = (size_t)cfg->max_payload_mb << 20;
    s->ctx = detached ? NULL : zmq_ctx_new();
    if (!detached && (!s->ctx || s_listen(s, cfg, err, errlen) != 0)) {
        if (!s->ctx)
            snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        server_destroy(&s);
        return -1;
    }
    if (cfg->endpoint_file[0]) {
        char tmp[CONF_STRLEN + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", cfg->endpoint_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", s->endpoint) < 0 || fclose(f) != 0 ||
            rename(tmp, cfg->endpoint_file) != 0) {
            snprintf(err, errlen, "cannot write endpoint file '%s': %s", cfg->endpoint_file,
                     strerror(errno));
            server_destroy(&s);
            return -1;
        }
    }
    if (cfg->metrics[0] && !(s->metrics = fopen(cfg->metrics, "w"))) {
        snprintf(err, errlen, "cannot write metrics file '%s': %s", cfg->metrics,
                 strerror(errno));
        server_destroy(&s);
        return -1;
    }
    s->started = time_now_s();
    s->round_started = s->started;
    s->ckpt_time = s->started;
    snprintf(s->ckpt_dir, sizeof s->ckpt_dir, "%s",
             cfg->checkpoint_dir[0] ? cfg->checkpoint_dir : cfg->resume);
    if (s->ckpt_dir[0] && mkdir(s->ckpt_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create checkpoint directory '%s': %s", s->ckpt_dir,
                 strerror(errno));
        server_destroy(&s);
        return -1;
    }
    s->next_progress = s->started + cfg->progress_interval;
    s->swarm_id = (uint64_t)(time_wall_s() * 1e6);
    s->incarnation = s->swarm_id ^ ((uint64_t)getpid() << 40);
    if (cfg->resume[0] && s_resume(s, cfg->resume, err, errlen) != 0) {
        server_destroy(&s);
        return -1;
    }
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    if (gs.encrypted)
        log_info("listening on %s, strategy %s, waiting for %ld workers; CURVE on: traffic is "
                 "encrypted, %zu worker keys allowed, %zu admin keys, at most %ld connections",
                 s->endpoint, s->ops->name, cfg->workers, gs.allowed_keys, gs.admin_keys,
                 cfg->max_peers);
    else
        log_info("listening on %s, strategy %s, waiting for %ld workers; traffic is NOT "
                 "encrypted and peers are not authenticated (use --curve-secret and --allow on "
                 "untrusted networks)", s->endpoint, s->ops->name, cfg->workers);
    *out = s;
    return 0;
}

int server_new(struct server **out, const struct server_config *cfg, char *err, size_t errlen)
{
    return s_new(out, cfg, 0, err, errlen);
}

int server_new_detached(struct server **out, const struct server_config *cfg, char *err,
                        size_t errlen)
{
    return s_new(out, cfg, 1, err, errlen);
}

void server_destroy(struct server **sp)
{
    struct server *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        zmq_msg_close(&s->m[i].position);
        if (s->m[i].has_push)
            zmq_msg_close(&s->m[i].push);
    }
    free(s->m);
    free(s->xs);
    free(s->prevs);
    free(s->losses);
    free(s->pbl);
    if (s->st)
        s->ops->destroy(s->st);
    if (s->metrics)
        fclose(s->metrics);
    gate_destroy(&s->gate);
    if (s->sock)
        zmq_close(s->sock);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    free(s);
    *sp = NULL;
}

const char *server_endpoint(const struct server *s) { return s->endpoint; }
uint64_t server_round(const struct server *s) { return s->round; }

void server_global(const struct server *s, double *loss, double *accuracy)
{
    *loss = s->st ? s->ops->global_loss(s->st) : INFINITY;
    *accuracy = s->g_acc;
}

static int s_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int s_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq,
                    const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char who[64];
    size_t k = 0;
    for (size_t i = 0; i < in->id_len && k + 4 < sizeof who; i++) {
        unsigned char ch = in->id[i];
        k += (size_t)snprintf(who + k, sizeof who - k, ch >= 32 && ch < 127 ? "%c" : "\\x%02x",
                              ch);
    }
    who[k] = '\0';
    log_ratelimited(LOG_WARN, wire_error_name(code), "refused peer '%s': %s: %s", who,
                    wire_error_name(code), msg);
    /* Codes are the daemon's own; one past the table would be a bug, counted
     * as internal rather than lost. */
    s->errors[code >= 0 && code < PSOD_ERROR_CODES ? code : PSOD__ERROR_CODE__ERR_INTERNAL]++;
    if (in->id_len)
        wire_send_error(s->sock, in->id, in->id_len, code, msg, seq, s->round);
    return code;
}

static uint64_t s_errors_sent(const struct server *s)
{
    uint64_t n = 0;
    for (int i = 0; i < PSOD_ERROR_CODES; i++)
        n += s->errors[i];
    return n;
}

static struct member *s_by_id(struct server *s, const struct wire_msg *in)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->m[i].id_len == in->id_len && memcmp(s->m[i].id, in->id, in->id_len) == 0)
            return &s->m[i];
    return NULL;
}

static struct member *s_by_name(struct server *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->m[i].name, name) == 0)
            return &s->m[i];
    return NULL;
}

/* With CURVE a particle belongs to the key that created it: whether this
 * message comes from another key (ERR_UNAUTHORIZED, refused here). */
static int s_foreign_key(struct server *s, const struct member *mb, const struct wire_msg *in,
                         uint64_t seq)
{
    if (!mb->key[0] || strcmp(mb->key, in->user) == 0)
        return 0;
    s_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, seq,
             "particle of worker '%s' belongs to key '%s'; this connection's key is '%s'",
             mb->name, mb->key, in->user);
    return 1;
}

static size_t s_active(const struct server *s)
{
    size_t a = 0;
    for (size_t i = 0; i < s->count; i++)
        a += s->m[i].active;
    return a;
}

static size_t s_pushed(const struct server *s)
{
    size_t p = 0;
    for (size_t i = 0; i < s->count; i++)
        p += s->m[i].has_push;
    return p;
}

/* Send `pos` (shared, not moved) to member `mb` with the given metadata. */
static void s_send_payload(struct server *s, struct member *mb, int command,
                           const ProtobufCMessage *meta)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, &mb->position);
    size_t bytes = zmq_msg_size(&copy);
    if (wire_send(s->sock, mb->id, mb->id_len, command, meta, &copy, ZMQ_DONTWAIT) != 0)
        log_warn("could not send %s to worker '%s': %s", wire_command_name(command), mb->name,
                 zmq_strerror(errno));
    else
        s->bytes_out += bytes;
    zmq_msg_close(&copy);
}

static int s_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN)
        return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 33 || (unsigned char)*p > 126)
            return 0;
    return 1;
}

/* Room for one more member in every per-member array. */
static int s_reserve(struct server *s)
{
    if (s->count < s->cap)
        return 0;
    size_t cap = s->cap ? 2 * s->cap : 8;
    struct member *m = realloc(s->m, cap * sizeof *m);
    if (!m)
        return -1;
    s->m = m;
    float **xs = realloc(s->xs, cap * sizeof *xs);
    if (!xs)
        return -1;
    s->xs = xs;
    const float **prevs = realloc(s->prevs, cap * sizeof *prevs);
    if (!prevs)
        return -1;
    s->prevs = prevs;
    double *losses = realloc(s->losses, cap * sizeof *losses);
    if (!losses)
        return -1;
    s->losses = losses;
    double *pbl = realloc(s->pbl, cap * sizeof *pbl);
    if (!pbl)
        return -1;
    s->pbl = pbl;
    s->cap = cap;
    return 0;
}

/* A fresh member for worker `name`, whose position is the hello's payload
 * (moved out of `in`). */
static void s_member_init(struct member *mb, const char *name, struct wire_msg *in)
{
    memset(mb, 0, sizeof *mb);
    snprintf(mb->name, sizeof mb->name, "%s", name);
    memcpy(mb->id, in->id, in->id_len);
    mb->id_len = in->id_len;
    snprintf(mb->key, sizeof mb->key, "%s", in->user);
    mb->active = 1;
    mb->last_seen = time_now_s();
    mb->last_loss = NAN;
    mb->last_acc = NAN;
    mb->pbest_acc = NAN;
    zmq_msg_init(&mb->position);
    zmq_msg_move(&mb->position, &in->payload);
}

static void s_welcome(struct server *s, struct member *mb, int rejoined)
{
    Psod__Welcome w = PSOD__WELCOME__INIT;
    w.particle_id = (uint32_t)(mb - s->m);
    w.round = s->round;
    w.param_count = s->n;
    w.payload_crc32c = crc32c(0, zmq_msg_data(&mb->position), zmq_msg_size(&mb->position));
    w.global_best_loss = s->ops->global_loss(s->st);
    w.rejoined = rejoined;
    w.strategy = (char *)s->ops->name;
    w.swarm_id = s->swarm_id;
    w.positions_global = s->ops->positions_global;
    w.heartbeat_ms = (uint32_t)s->cfg.heartbeat_ms;
    w.incarnation = s->incarnation;
    w.push_kind = (Psod__PayloadKind)s->ops->push_kind;
    s_send_payload(s, mb, PSOD__COMMAND__CMD_WELCOME, &w.base);
}

static void s_handle_hello(struct server *s, struct wire_msg *in)
{
    Psod__Hello *h = (Psod__Hello *)in->meta;
    if (h->protocol_version != PSOD_PROTOCOL_VERSION) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_VERSION, 0, "hello says protocol %u, daemon speaks %u",
                 h->protocol_version, PSOD_PROTOCOL_VERSION);
        return;
    }
    if (!h->worker_name || !s_valid_name(h->worker_name)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_MALFORMED, 0,
                 "worker name must be 1 to %d printable characters without spaces", NAME_MAX_LEN);
        return;
    }
    char want_id[WIRE_MAX_ID + 1];
    int id_len = snprintf(want_id, sizeof want_id, "w:%s", h->worker_name);
    if ((size_t)id_len != in->id_len || memcmp(want_id, in->id, in->id_len) != 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_MALFORMED, 0,
                 "a worker's routing id must be \"w:\" + its name");
        return;
    }
    if (h->encoding != PSOD__ENCODING__ENC_F32 ||
        h->payload_kind != PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS || h->shard_offset != 0 ||
        h->auth_token.len != 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0,
                 "hello takes float32 initial weights for the whole vector, without tokens");
        return;
    }
    if (h->param_count == 0 || h->param_count > s->lim.max_payload / sizeof(float)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_TOO_LARGE, 0,
                 "param_count %llu outside 1..%zu (see --max-payload-mb)",
                 (unsigned long long)h->param_count, s->lim.max_payload / sizeof(float));
        return;
    }
    if (s->st && (h->param_count != s->n || h->layout_hash != s->layout_hash)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_FINGERPRINT, 0,
                 "model fingerprint %llu/%016llx does not match the swarm's %zu/%016llx",
                 (unsigned long long)h->param_count, (unsigned long long)h->layout_hash, s->n,
                 (unsigned long long)s->layout_hash);
        return;
    }
    struct member *mb = s_by_name(s, h->worker_name);
    if (mb && s_foreign_key(s, mb, in, 0))
        return;
    if (mb) {
        /* A restarted worker: give its particle back; a push it made before
         * the restart is dropped, since it will push this round again. */
        memcpy(mb->id, in->id, in->id_len);
        mb->id_len = in->id_len;
        if (mb->has_push) {
            zmq_msg_close(&mb->push);
            mb->has_push = 0;
        }
        mb->active = 1;
        mb->evicted = 0;
        mb->retired = 0;
        mb->last_seen = time_now_s();
        log_info("worker '%s' (%s pid %u) rejoined particle %d at round %llu", mb->name,
                 h->host ? h->host : "?", h->pid, (int)(mb - s->m), (unsigned long long)s->round);
        s_welcome(s, mb, 1);
        return;
    }
    long cap = s->cfg.max_workers > s->cfg.workers ? s->cfg.max_workers : s->cfg.workers;
    long slot_i = -1; /* an index: s_reserve below may move the array */
    if ((long)s->count >= cap && s->st) {
        int gp = s->ops->global_particle(s->st);
        for (size_t i = 0; i < s->count && slot_i < 0; i++)
            if (s->m[i].retired && !s->m[i].active && (int)i != gp)
                slot_i = (long)i;
    }
    if ((long)s->count >= cap && slot_i < 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_SWARM_FULL, 0,
                 "all %zu particles are taken (--workers %ld, --max-workers %ld)", s->count,
                 s->cfg.workers, s->cfg.max_workers);
        return;
    }
    if (!in->has_payload) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_NEED_WEIGHTS,
                 0, "a new particle needs its initial weights as payload");
        return;
    }
    size_t bytes = zmq_msg_size(&in->payload);
    if (bytes != h->param_count * sizeof(float)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, 0, "payload is %zu bytes, param_count says %llu",
                 bytes, (unsigned long long)h->param_count);
        return;
    }
    const float *x0 = zmq_msg_data(&in->payload);
    uint32_t crc;
    size_t bad = wire_check_payload(x0, h->param_count, &crc);
    if (crc != h->payload_crc32c) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_CHECKSUM, 0, "initial weights fail their CRC-32C");
        return;
    }
    if (bad) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, 0,
                 "initial weights hold %zu NaN or infinite values", bad);
        return;
    }
    if (!s->st) {
        s->st = s->ops->create(h->param_count, 0, &s->cfg.sp);
        if (!s->st) {
            s_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for the swarm");
            return;
        }
        s->n = h->param_count;
        s->layout_hash = h->layout_hash;
        log_info("swarm model set by '%s': %zu parameters, layout %016llx", h->worker_name, s->n,
                 (unsigned long long)s->layout_hash);
    }
    if (s_reserve(s) != 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for a particle");
        return;
    }
    /* A worker joining a swarm that has trained already starts from the
     * global model rather than from scratch. */
    const float *g = s->round > 0 ? s->ops->global(s->st) : NULL;
    if (g) {
        memcpy(zmq_msg_data(&in->payload), g, s->n * sizeof(float));
        log_info("worker '%s' joins a running swarm at round %llu: starting from the global "
                 "model", h->worker_name, (unsigned long long)s->round);
    }
    if (slot_i >= 0) {
        struct member *slot = &s->m[slot_i];
        int i = (int)slot_i;
        log_info("worker '%s' (%s pid %u) takes over particle %d of retired worker '%s'",
                 h->worker_name, h->host ? h->host : "?", h->pid, i, slot->name);
        s->ops->reset(s->st, i, x0, psoc_layout_hash(h->worker_name));
        zmq_msg_close(&slot->position);
        s_member_init(slot, h->worker_name, in);
        s_welcome(s, slot, 0);
        return;
    }
    if (s->ops->add(s->st, x0, psoc_layout_hash(h->worker_name)) < 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "out of memory for a particle");
        return;
    }
    mb = &s->m[s->count++];
    s_member_init(mb, h->worker_name, in);
    log_info("worker '%s' (%s pid %u) joined as particle %zu (%zu of %ld)", mb->name,
             h->host ? h->host : "?", h->pid, s->count - 1, s->count, s->cfg.workers);
    s_welcome(s, mb, 0);
}

/* A particle's new position is ready: it becomes the stored position and
 * goes out at once, so the I/O thread sends it while the daemon computes
 * the next particle. */
static void s_position_ready(void *ctx, int i, uint32_t crc)
{
    struct server *s = ctx;
    struct member *mb = &s->m[i];
    zmq_msg_close(&mb->position);
    zmq_msg_init(&mb->position);
    zmq_msg_move(&mb->position, &mb->push);
    zmq_msg_close(&mb->push);
    mb->has_push = 0;
    if (!mb->active)
        return;
    Psod__Position p = PSOD__POSITION__INIT;
    p.round = s->round + 1;
    p.global_best_loss = s->ops->global_loss(s->st);
    p.payload_crc32c = crc;
    p.particle_id = (uint32_t)i;
    p.personal_best_loss = s->ops->personal_best_loss(s->st, i);
    p.seq = mb->push_seq;
    p.global_best_particle = (uint32_t)s->ops->global_particle(s->st);
    s_send_payload(s, mb, PSOD__COMMAND__CMD_POSITION, &p.base);
}

/* Checkpoints ---------------------------------------------------------- */

#define CKPT_PREFIX "ckpt-"
#define CKPT_SUFFIX ".psck"

static int s_ckpt_name_cmp(const void *a, const void *b)
{
    return -strcmp(*(char *const *)a, *(char *const *)b); /* newest first */
}

/* Checkpoint files in dir, newest first (names carry the zero-padded
 * round). Returns the count; *names is malloc'ed (free with s_free_names). */
static size_t s_ckpt_list(const char *dir, char ***names)
{
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) != 0 || len < 11 ||
            strcmp(e->d_name + len - strlen(CKPT_SUFFIX), CKPT_SUFFIX) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **more = realloc(*names, cap * sizeof *more);
            if (!more)
                break;
            *names = more;
        }
        if (((*names)[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n)
        qsort(*names, n, sizeof **names, s_ckpt_name_cmp);
    return n;
}

static void s_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int server_checkpoint(struct server *s)
{
    if (!s->ckpt_dir[0] || !s->st)
        return -1;
    double t0 = time_now_s();
    char path[CONF_STRLEN + 64], err[512];
    snprintf(path, sizeof path, "%s/" CKPT_PREFIX "%012llu" CKPT_SUFFIX, s->ckpt_dir,
             (unsigned long long)s->round);
    struct ckpt_writer w;
    if (ckpt_begin(&w, path, err, sizeof err) != 0) {
        log_error("checkpoint: %s", err);
        return -1;
    }
    ckpt_put_str(&w, s->ops->name);
    ckpt_put_u64(&w, s->n);
    ckpt_put_u64(&w, s->layout_hash);
    ckpt_put_u64(&w, s->round);
    ckpt_put_u64(&w, s->swarm_id);
    ckpt_put_u64(&w, (uint64_t)s->cfg.seed);
    ckpt_put_f64(&w, s->g_acc);
    ckpt_put_u64(&w, s->g_acc_round);
    ckpt_put_u64(&w, s->count);
    for (size_t i = 0; i < s->count; i++) {
        const struct member *mb = &s->m[i];
        ckpt_put_str(&w, mb->name);
        ckpt_put_f64(&w, mb->last_loss);
        ckpt_put_f64(&w, mb->last_acc);
        ckpt_put_f64(&w, mb->pbest_acc);
        ckpt_put_u64(&w, mb->pbest_round);
        ckpt_put_u64(&w, mb->pushes);
        ckpt_put_u64(&w, mb->last_round);
        ckpt_put(&w, zmq_msg_data((zmq_msg_t *)&mb->position), s->n * sizeof(float));
        ckpt_put_str(&w, mb->key); /* version 2: the CURVE key that holds the particle */
    }
    s->ops->save(s->st, &w);
    if (ckpt_commit(&w, err, sizeof err) != 0) {
        log_error("checkpoint: %s", err);
        return -1;
    }
    s->ckpt_round = s->round;
    s->ckpt_time = time_now_s();
    /* Keep the newest --keep generations. */
    char **names;
    size_t n = s_ckpt_list(s->ckpt_dir, &names);
    for (size_t i = (size_t)s->cfg.keep; i < n; i++) {
        char old[CONF_STRLEN + 300];
        snprintf(old, sizeof old, "%s/%s", s->ckpt_dir, names[i]);
        unlink(old);
    }
    s_free_names(names, n);
    log_info("checkpoint of round %llu written to %s (%.0f ms)", (unsigned long long)s->round,
             path, (time_now_s() - t0) * 1e3);
    return 0;
}

/* Drop every member and the strategy state (a failed resume attempt). */
static void s_forget_swarm(struct server *s)
{
    for (size_t i = 0; i < s->count; i++)
        zmq_msg_close(&s->m[i].position);
    s->count = 0;
    if (s->st)
        s->ops->destroy(s->st);
    s->st = NULL;
    s->n = 0;
    s->round = 0;
}

/* Restore from an opened checkpoint (closed here); on any fault the server
 * is left empty. */
static int s_load_reader(struct server *s, struct ckpt_reader *rp, char *err, size_t errlen)
{
    struct ckpt_reader r = *rp;
    char strategy[64], name[NAME_MAX_LEN + 1];
    uint64_t n, layout, round, swarm_id, seed, g_round, count;
    double g_acc;
    if (r.err[0] || ckpt_get_str(&r, strategy, sizeof strategy) ||
        ckpt_get_u64(&r, &n) || ckpt_get_u64(&r, &layout) || ckpt_get_u64(&r, &round) ||
        ckpt_get_u64(&r, &swarm_id) || ckpt_get_u64(&r, &seed) || ckpt_get_f64(&r, &g_acc) ||
        ckpt_get_u64(&r, &g_round) || ckpt_get_u64(&r, &count))
        goto fail;
    if (strcmp(strategy, s->ops->name) != 0) {
        snprintf(r.err, sizeof r.err, "written by strategy %s, this daemon runs %s", strategy,
                 s->ops->name);
        goto fail;
    }
    if (n == 0 || n > s->lim.max_payload / sizeof(float) || count > 65536 ||
        n * sizeof(float) * (count + 1) > r.left) {
        snprintf(r.err, sizeof r.err, "%llu particles of %llu parameters do not fit the file",
                 (unsigned long long)count, (unsigned long long)n);
        goto fail;
    }
    if (!(s->st = s->ops->create(n, 0, &s->cfg.sp))) {
        snprintf(r.err, sizeof r.err, "out of memory");
        goto fail;
    }
    s->n = n;
    for (uint64_t i = 0; i < count; i++) {
        if (s_reserve(s) != 0) {
            snprintf(r.err, sizeof r.err, "out of memory");
            goto fail;
        }
        struct member *mb = &s->m[s->count];
        memset(mb, 0, sizeof *mb);
        if (ckpt_get_str(&r, name, sizeof name) || ckpt_get_f64(&r, &mb->last_loss) ||
            ckpt_get_f64(&r, &mb->last_acc) || ckpt_get_f64(&r, &mb->pbest_acc) ||
            ckpt_get_u64(&r, &mb->pbest_round) || ckpt_get_u64(&r, &mb->pushes) ||
            ckpt_get_u64(&r, &mb->last_round))
            goto fail;
        if (!s_valid_name(name)) {
            snprintf(r.err, sizeof r.err, "invalid worker name");
            goto fail;
        }
        if (zmq_msg_init_size(&mb->position, n * sizeof(float)) != 0) {
            snprintf(r.err, sizeof r.err, "out of memory");
            goto fail;
        }
        s->count++;
        if (ckpt_get(&r, zmq_msg_data(&mb->position), n * sizeof(float)) ||
            (r.version >= 2 && ckpt_get_str(&r, mb->key, sizeof mb->key)))
            goto fail;
        snprintf(mb->name, sizeof mb->name, "%s", name);
        mb->id_len = (size_t)snprintf((char *)mb->id, sizeof mb->id, "w:%s", name);
        if (s->ops->add(s->st, zmq_msg_data(&mb->position), psoc_layout_hash(name)) < 0) {
            snprintf(r.err, sizeof r.err, "out of memory");
            goto fail;
        }
    }
    if (s->ops->load(s->st, &r) != 0 || ckpt_finish(&r) != 0)
        goto fail;
    ckpt_close(&r);
    /* Every particle is expected back: the round waits for each until it
     * rejoins or is evicted for silence like any other worker. */
    double now = time_now_s();
    for (size_t i = 0; i < s->count; i++) {
        s->m[i].active = 1;
        s->m[i].last_seen = now;
    }
    s->layout_hash = layout;
    s->round = round;
    s->swarm_id = swarm_id;
    s->g_acc = g_acc;
    s->g_acc_round = g_round;
    s->ckpt_round = round;
    if ((long)seed != s->cfg.seed)
        log_warn("checkpoint was written with --seed %llu; continuing with --seed %ld",
                 (unsigned long long)seed, s->cfg.seed);
    return 0;
fail:
    snprintf(err, errlen, "%s", r.err[0] ? r.err : "unreadable");
    ckpt_close(&r);
    s_forget_swarm(s);
    return -1;
}

static int s_load_checkpoint(struct server *s, const char *path, char *err, size_t errlen)
{
    struct ckpt_reader r;
    ckpt_open(&r, path);
    return s_load_reader(s, &r, err, errlen);
}

int server_restore(struct server *s, const void *data, size_t len, char *err, size_t errlen)
{
    struct ckpt_reader r;
    if (s->st) {
        snprintf(err, errlen, "the server has a swarm already");
        return -1;
    }
    ckpt_open_mem(&r, data, len);
    return s_load_reader(s, &r, err, errlen);
}

/* --resume DIR: the newest checkpoint that loads; older ones in turn. */
static int s_resume(struct server *s, const char *dir, char *err, size_t errlen)
{
    char **names;
    size_t n = s_ckpt_list(dir, &names);
    if (n == 0) {
        log_warn("--resume %s: no checkpoint there; starting a new swarm", dir);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char path[CONF_STRLEN + 300], why[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (s_load_checkpoint(s, path, why, sizeof why) == 0) {
            log_info("resumed from %s: round %llu, %zu particles of %zu parameters, strategy %s",
                     path, (unsigned long long)s->round, s->count, s->n, s->ops->name);
            s_free_names(names, n);
            return 0;
        }
        log_error("checkpoint %s is unusable (%s)%s", path, why,
                  i + 1 < n ? "; trying the previous generation" : "");
    }
    snprintf(err, errlen, "no usable checkpoint in '%s' (%zu tried; see the log)", dir, n);
    s_free_names(names, n);
    return -1;
}

/* Every --checkpoint-every rounds or --checkpoint-seconds. */
static void s_maybe_checkpoint(struct server *s, double now)
{
    if (!s->ckpt_dir[0] || !s->st || s->round == s->ckpt_round)
        return;
    if ((s->cfg.checkpoint_every > 0 && s->round - s->ckpt_round >= (uint64_t)s->cfg.checkpoint_every) ||
        (s->cfg.checkpoint_seconds > 0 && now - s->ckpt_time >= s->cfg.checkpoint_seconds))
        server_checkpoint(s);
}

/* Write the global model (atomically) to --model-out. */
static void s_save_model(struct server *s)
{
    if (!s->cfg.model_out[0] || !s->st)
        return;
    const float *g = s->ops->global(s->st);
    if (!g)
        return;
    struct modelfile_info info = {s->layout_hash, s->n, s->round, s->ops->global_loss(s->st), ""};
    snprintf(info.strategy, sizeof info.strategy, "%s", s->ops->name);
    char err[512];
    if (modelfile_write(s->cfg.model_out, &info, g, err, sizeof err) != 0)
        log_error("could not save the global model: %s", err);
    else
        log_debug("global model of round %llu written to %s", (unsigned long long)s->round,
                  s->cfg.model_out);
}

static void s_json_double(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.9g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

/* One JSON line per closed round. */
static void s_metrics_line(struct server *s, double now, double update_s, double wait_s)
{
    FILE *f = s->metrics;
    if (!f)
        return;
    fprintf(f, "{\"round\":%llu,\"time\":%.4f", (unsigned long long)s->round,
            now - s->started);
    s_json_double(f, "round_s", s->last_round_seconds);
    s_json_double(f, "wait_s", wait_s);
    s_json_double(f, "update_s", update_s);
    s_json_double(f, "global_loss", s->ops->global_loss(s->st));
    s_json_double(f, "global_acc", s->g_acc);
    fprintf(f, ",\"global_acc_round\":%llu,\"global_particle\":%d,\"bytes_in\":%llu,"
               "\"bytes_out\":%llu,\"particles\":[",
            (unsigned long long)s->g_acc_round, s->ops->global_particle(s->st),
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out);
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        fprintf(f, "%s{\"id\":%zu,\"pushed\":%d", i ? "," : "", i, s->xs[i] != NULL);
        s_json_double(f, "loss", s->xs[i] ? s->losses[i] : NAN);
        s_json_double(f, "acc", s->xs[i] ? mb->push_acc : NAN);
        s_json_double(f, "best_loss", s->ops->personal_best_loss(s->st, (int)i));
        fputc('}', f);
    }
    fputs("]}\n", f);
    fflush(f);
}

/* After an update (a closed round, or one push in async mode): accuracy
 * bookkeeping, the round counter, metrics, model file and checkpoint.
 * xs[i] marks who pushed, pbl[i] their personal best loss before. */
static void s_finish_round(struct server *s, double t0, double wait_s)
{
    /* pso: a particle whose personal best just became the weights it pushed
     * carries that push's accuracy; the global best's is its particle's. */
    for (size_t i = 0; i < s->count; i++) {
        double now_pb = s->ops->personal_best_loss(s->st, (int)i);
        if (s->xs[i] && now_pb != s->pbl[i] && !isnan(now_pb)) {
            s->m[i].pbest_acc = s->m[i].push_acc;
            s->m[i].pbest_round = s->round;
        }
    }
    int gp = s->ops->global_particle(s->st);
    if (gp >= 0) {
        s->g_acc = s->m[gp].pbest_acc;
        s->g_acc_round = s->m[gp].pbest_round;
    }
    s->round++;
    double now = time_now_s();
    s->last_round_seconds = now - s->round_started;
    s->round_started = now;
    s_metrics_line(s, now, now - t0, wait_s);
    log_debug("round %llu closed: global loss %.6g, update %.2f ms, round %.2f ms",
              (unsigned long long)s->round, s->ops->global_loss(s->st), (now - t0) * 1e3,
              s->last_round_seconds * 1e3);
    if (s->cfg.save_every > 0 && s->round % (uint64_t)s->cfg.save_every == 0)
        s_save_model(s);
    s_maybe_checkpoint(s, now);
}

static void s_close_round(struct server *s)
{
    double t0 = time_now_s();
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        s->xs[i] = mb->has_push ? zmq_msg_data(&mb->push) : NULL;
        s->prevs[i] = zmq_msg_data(&mb->position);
        s->losses[i] = mb->has_push ? mb->push_loss : INFINITY;
        s->pbl[i] = s->ops->personal_best_loss(s->st, (int)i);
    }
    double wait_s = t0 - s->first_push;
    s->ops->round(s->st, s->round, s->xs, s->prevs, s->losses, s_position_ready, s);
    s_finish_round(s, t0, wait_s);
}

static void s_maybe_close_round(struct server *s)
{
    if ((long)s->count < s->cfg.workers)
        return;
    size_t pushed = s_pushed(s);
    if (pushed == 0)
        return;
    if (s->cfg.quorum > 0 && (long)pushed >= s->cfg.quorum) {
        s_close_round(s);
        return;
    }
    for (size_t i = 0; i < s->count; i++)
        if (s->m[i].active && !s->m[i].has_push)
            return;
    s_close_round(s);
}

/* Asynchronous mode: the push is a round of its own, answered at once. The
 * round counter counts pushes. */
static void s_async_step(struct server *s, struct member *mb)
{
    double t0 = time_now_s();
    int i = (int)(mb - s->m);
    for (size_t j = 0; j < s->count; j++) {
        s->xs[j] = NULL;
        s->losses[j] = INFINITY;
    }
    float *x = zmq_msg_data(&mb->push);
    s->xs[i] = x;
    s->losses[i] = mb->push_loss;
    s->pbl[i] = s->ops->personal_best_loss(s->st, i);
    s->ops->push(s->st, s->round, i, x, zmq_msg_data(&mb->position), mb->push_loss,
                 s_position_ready, s);
    s_finish_round(s, t0, 0);
}

/* Names of the live workers the round still waits for, for log lines. */
static void s_waiting_for(const struct server *s, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->count && k + 1 < len; i++)
        if (s->m[i].active && !s->m[i].has_push)
            k += (size_t)snprintf(out + k, len - k, "%s'%s'", k ? ", " : "", s->m[i].name);
    if (k >= len)
        snprintf(out + len - 5, 5, "...");
}

/* Timers: evict workers that have been silent for liveness intervals, and
 * close a round that has passed its deadline. */
static void s_timers(struct server *s, double now)
{
    double silent_limit = (double)s->cfg.heartbeat_ms * (double)s->cfg.liveness / 1000.0;
    int changed = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        if (!mb->active || now - mb->last_seen <= silent_limit)
            continue;
        mb->active = 0;
        mb->evicted = 1;
        changed = 1;
        log_warn("evicted worker '%s' (particle %zu): silent for %.1f s (--heartbeat-ms %ld x "
                 "--liveness %ld); the round no longer waits for it",
                 mb->name, i, now - mb->last_seen, s->cfg.heartbeat_ms, s->cfg.liveness);
    }
    if (changed)
        s_maybe_close_round(s);
    if (s->cfg.retire_after > 0 && s->st) {
        int gp = s->ops->global_particle(s->st);
        for (size_t i = 0; i < s->count; i++) {
            struct member *mb = &s->m[i];
            if (mb->active || mb->retired || (int)i == gp ||
                now - mb->last_seen <= s->cfg.retire_after)
                continue;
            mb->retired = 1;
            log_info("retired particle %zu of worker '%s' (gone %.1f s, --retire-after %g): a "
                     "new worker may take it over",
                     i, mb->name, now - mb->last_seen, s->cfg.retire_after);
        }
    }
    if (s->cfg.round_timeout > 0 && s_pushed(s) > 0 &&
        now - s->first_push >= s->cfg.round_timeout && (long)s->count >= s->cfg.workers) {
        char who[256];
        s_waiting_for(s, who, sizeof who);
        log_warn("round %llu closed at its deadline (--round-timeout %g s) with %zu pushes, "
                 "without %s",
                 (unsigned long long)s->round, s->cfg.round_timeout, s_pushed(s), who);
        s_close_round(s);
    }
}

/* An accuracy from a peer: a fraction in [0, 1], else "not evaluated". */
static double s_accuracy(double a) { return a >= 0 && a <= 1 ? a : NAN; }

/* A worker evaluated a position that was the global model (strategies with
 * positions_global): keep the newest report. */
static void s_global_report(struct server *s, double acc, uint64_t round)
{
    if (!isnan(acc) && (isnan(s->g_acc) || round >= s->g_acc_round)) {
        s->g_acc = acc;
        s->g_acc_round = round;
    }
}

static void s_handle_push(struct server *s, struct wire_msg *in)
{
    Psod__Push *p = (Psod__Push *)in->meta;
    struct member *mb = s_by_id(s, in);
    if (!mb || !mb->active) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_JOINED, p->seq, "%s",
                 mb && mb->evicted ? "this worker was evicted for silence; send hello to rejoin"
                                   : "push before hello");
        return;
    }
    if (s_foreign_key(s, mb, in, p->seq))
        return;
    mb->last_seen = time_now_s();
    if (p->round != s->round && s->cfg.mode == 0) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_ROUND, p->seq, "push for round %llu, current is %llu",
                 (unsigned long long)p->round, (unsigned long long)s->round);
        return;
    }
    if (mb->has_push) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_DUPLICATE, p->seq, "already pushed for round %llu",
                 (unsigned long long)s->round);
        return;
    }
    if (p->encoding != PSOD__ENCODING__ENC_F32) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, p->seq,
                 "this daemon takes float32 payloads only");
        return;
    }
    if ((int)p->payload_kind != s->ops->push_kind) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, p->seq,
                 "strategy %s takes %s, the push carries %s", s->ops->name,
                 s->ops->push_kind ? "gradients" : "weights",
                 p->payload_kind ? "gradients" : "weights");
        return;
    }
    size_t bytes = zmq_msg_size(&in->payload);
    if (bytes != s->n * sizeof(float)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, p->seq, "payload is %zu bytes, expected %zu",
                 bytes, s->n * sizeof(float));
        return;
    }
    if (!isfinite(p->loss)) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, p->seq, "loss is %g", p->loss);
        return;
    }
    uint32_t crc;
    size_t bad = wire_check_payload(zmq_msg_data(&in->payload), s->n, &crc);
    if (crc != p->payload_crc32c) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_CHECKSUM, p->seq,
                 "payload CRC-32C is %08x, push says %08x", crc, p->payload_crc32c);
        return;
    }
    if (bad) {
        s_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, p->seq,
                 "weights hold %zu NaN or infinite values", bad);
        return;
    }
    zmq_msg_init(&mb->push);
    zmq_msg_move(&mb->push, &in->payload);
    mb->has_push = 1;
    mb->push_loss = p->loss;
    mb->push_seq = p->seq;
    mb->push_acc = s_accuracy(p->accuracy);
    mb->push_pos_acc = s_accuracy(p->position_accuracy);
    mb->push_pos_round = p->position_round;
    if (!isnan(mb->push_acc))
        mb->last_acc = mb->push_acc;
    if (s->ops->positions_global)
        s_global_report(s, mb->push_pos_acc, p->position_round);
    if (s_pushed(s) == 1)
        s->first_push = time_now_s();
    mb->last_loss = p->loss;
    mb->pushes++;
    mb->last_round = s->round;
    if (s->cfg.mode == 1)
        s_async_step(s, mb);
    else
        s_maybe_close_round(s);
}

static void s_handle_status(struct server *s, struct wire_msg *in)
{
    Psod__StatusRequest *r = (Psod__StatusRequest *)in->meta;
    Psod__Status st = PSOD__STATUS__INIT;
    st.round = s->round;
    st.particles = (uint32_t)s->count;
    st.active = (uint32_t)s_active(s);
    st.workers_expected = (uint32_t)s->cfg.workers;
    st.global_best_loss = s->st ? s->ops->global_loss(s->st) : INFINITY;
    st.global_best_particle = s->st ? s->ops->global_particle(s->st) : -1;
    st.param_count = s->n;
    st.strategy = (char *)s->ops->name;
    st.global_accuracy = s->g_acc;
    st.global_accuracy_round = s->g_acc_round;
    st.pushed_this_round = (uint32_t)s_pushed(s);
    double now = time_now_s();
    st.uptime_seconds = now - s->started;
    st.errors_sent = s_errors_sent(s);
    st.bytes_in = s->bytes_in;
    st.bytes_out = s->bytes_out;
    st.last_round_seconds = s->last_round_seconds;
    st.version = PSOD_VERSION;
    st.n_errors_by_code = PSOD_ERROR_CODES;
    st.errors_by_code = s->errors;
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    st.peers_connected = gs.connected;
    st.peers_refused = gs.refused;
    st.encrypted = gs.encrypted;
    st.max_peers = (uint32_t)s->cfg.max_peers;
    Psod__ParticleStatus *ps = NULL, **pp = NULL;
    if (r->include_particles && s->count) {
        ps = calloc(s->count, sizeof *ps);
        pp = calloc(s->count, sizeof *pp);
        if (ps && pp) {
            for (size_t i = 0; i < s->count; i++) {
                struct member *mb = &s->m[i];
                psod__particle_status__init(&ps[i]);
                ps[i].id = (uint32_t)i;
                ps[i].worker_name = mb->name;
                ps[i].last_loss = mb->last_loss;
                ps[i].best_loss = s->ops->personal_best_loss(s->st, (int)i);
                ps[i].accuracy = mb->last_acc;
                ps[i].evicted = mb->evicted;
                ps[i].age_seconds = now - mb->last_seen;
                ps[i].pushes = mb->pushes;
                ps[i].pushed_this_round = mb->has_push;
                ps[i].active = mb->active;
                ps[i].last_round = mb->last_round;
                pp[i] = &ps[i];
            }
            st.n_particle = s->count;
            st.particle = pp;
        }
    }
    if (wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_STATUS, &st.base, NULL,
                  ZMQ_DONTWAIT) != 0)
        log_warn("could not send status: %s", zmq_strerror(errno));
    free(ps);
    free(pp);
}

/* Operator requests change state, so only admin keys may send them: the
 * connection's ZAP user id must be "admin:" + a key name from --admin,
 * which the gate gives only to CURVE-authenticated keys in that directory. */
static void s_handle_admin(struct server *s, struct wire_msg *in)
{
    Psod__Admin *a = (Psod__Admin *)in->meta;
    if (strncmp(in->user, "admin:", 6) != 0) {
        struct gate_stats gs;
        gate_stats(s->gate, &gs);
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                 "admin requests need a CURVE key from psod's --admin directory%s",
                 gs.encrypted ? "" : " (this daemon runs without CURVE)");
        return;
    }
    char msg[CONF_STRLEN + 64];
    struct member *mb;
    switch (a->action) {
    case PSOD__ADMIN_ACTION__ADMIN_CHECKPOINT:
        if (!s->ckpt_dir[0] || !s->st) {
            s_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0, "%s",
                     s->ckpt_dir[0] ? "no swarm yet" : "no --checkpoint-dir configured");
            return;
        }
        if (server_checkpoint(s) != 0) {
            s_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "checkpoint failed (see log)");
            return;
        }
        snprintf(msg, sizeof msg, "checkpoint of round %llu written to %s",
                 (unsigned long long)s->round, s->ckpt_dir);
        break;
    case PSOD__ADMIN_ACTION__ADMIN_EVICT:
        if (!a->worker_name || !(mb = s_by_name(s, a->worker_name)) || !mb->active) {
            s_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_JOINED, 0, "no active worker '%s'",
                     a->worker_name ? a->worker_name : "");
            return;
        }
        mb->active = 0;
        mb->evicted = 1;
        snprintf(msg, sizeof msg, "worker '%s' evicted (it may rejoin)", mb->name);
        s_maybe_close_round(s);
        break;
    case PSOD__ADMIN_ACTION__ADMIN_STOP:
        s->done = 1;
        snprintf(msg, sizeof msg, "stopping after round %llu", (unsigned long long)s->round);
        break;
    default:
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0, "unknown admin action %d",
                 (int)a->action);
        return;
    }
    log_info("admin '%s': %s", in->user + 6, msg);
    Psod__AdminReply r = PSOD__ADMIN_REPLY__INIT;
    r.action = a->action;
    r.message = msg;
    wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_ADMIN_REPLY, &r.base, NULL,
              ZMQ_DONTWAIT);
}

static void s_dispatch(struct server *s, struct wire_msg *in)
{
    struct member *mb;
    switch (in->command) {
    case PSOD__COMMAND__CMD_HELLO:
        s_handle_hello(s, in);
        break;
    case PSOD__COMMAND__CMD_PUSH:
        s_handle_push(s, in);
        break;
    case PSOD__COMMAND__CMD_HEARTBEAT: {
        /* From the worker's own socket ("w:" + name) or its heartbeat
         * thread's ("h:" + name). */
        if ((mb = s_by_id(s, in)) == NULL && in->id_len > 2 && in->id_len <= NAME_MAX_LEN + 2 &&
            memcmp(in->id, "h:", 2) == 0) {
            char name[NAME_MAX_LEN + 1];
            memcpy(name, in->id + 2, in->id_len - 2);
            name[in->id_len - 2] = '\0';
            mb = s_by_name(s, name);
        }
        /* With CURVE only the particle's own key keeps it alive. */
        if (mb && (!mb->key[0] || strcmp(mb->key, in->user) == 0))
            mb->last_seen = time_now_s();
        Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
        hb.seq = ((Psod__Heartbeat *)in->meta)->seq;
        hb.incarnation = s->incarnation;
        wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
                  ZMQ_DONTWAIT);
        break;
    }
    case PSOD__COMMAND__CMD_BYE:
        if ((mb = s_by_id(s, in)) != NULL && !s_foreign_key(s, mb, in, 0) && mb->active) {
            Psod__Bye *b = (Psod__Bye *)in->meta;
            mb->active = 0;
            double acc = s_accuracy(b->accuracy);
            if (!isnan(acc)) {
                mb->last_acc = acc;
                if (s->ops->positions_global)
                    s_global_report(s, acc, b->round);
            }
            log_info("worker '%s' left: %s (final test accuracy %.2f%%)", mb->name,
                     b->reason && b->reason[0] ? b->reason : "bye", 100 * acc);
            s_maybe_close_round(s);
            if (s->cfg.exit_when_done && s_active(s) == 0 && (long)s->count >= s->cfg.workers)
                s->done = 1;
        }
        break;
    case PSOD__COMMAND__CMD_STATUS_REQUEST:
        s_handle_status(s, in);
        break;
    case PSOD__COMMAND__CMD_ADMIN:
        s_handle_admin(s, in);
        break;
    default:
        s_reject(s, in, PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, 0,
                 "'%s' is not a request the daemon serves", wire_command_name(in->command));
        break;
    }
}

/* One received message, valid (r == 0) or not (r > 0, werr says why). */
static void s_serve(struct server *s, struct wire_msg *in, int r, const struct wire_error *werr)
{
    s->bytes_in += in->bytes;
    if (r > 0)
        s_reject(s, in, werr->code, 0, "%s", werr->message);
    else
        s_dispatch(s, in);
    wire_msg_clear(in);
}

void server_handle_frames(struct server *s, const void *id, size_t id_len, const char *user,
                          zmq_msg_t *frames, int nframes)
{
    struct wire_msg in;
    struct wire_error werr;
    memset(&in, 0, sizeof in);
    in.id_len = id_len < WIRE_MAX_ID ? id_len : WIRE_MAX_ID;
    memcpy(in.id, id, in.id_len);
    snprintf(in.user, sizeof in.user, "%s", user ? user : "");
    for (int i = 0; i < nframes; i++)
        in.bytes += zmq_msg_size(&frames[i]);
    int extra = nframes > WIRE_MAX_FRAMES;
    int r = wire_decode(frames, extra ? WIRE_MAX_FRAMES : nframes, extra, &s->lim, &in, &werr);
    s_serve(s, &in, r, &werr);
}

const uint64_t *server_errors(const struct server *s) { return s->errors; }


static void s_progress(struct server *s)
{
    char acc[48] = "";
    if (!isnan(s->g_acc))
        snprintf(acc, sizeof acc, ", test accuracy %.2f%% (round %llu)", 100 * s->g_acc,
                 (unsigned long long)s->g_acc_round);
    log_info("%s round %llu: global loss %.6g%s, workers %zu/%ld active, %zu pushed, "
             "last round %.1f ms, %llu errors sent",
             s->ops->name, (unsigned long long)s->round,
             s->st ? s->ops->global_loss(s->st) : INFINITY, acc, s_active(s), s->cfg.workers,
             s_pushed(s), s->last_round_seconds * 1e3, (unsigned long long)s_errors_sent(s));
}

int server_run(struct server *s, volatile sig_atomic_t *stop)
{
    while (!*stop && !s->done) {
        if (s->cfg.max_rounds && s->round >= (uint64_t)s->cfg.max_rounds) {
            log_info("reached --max-rounds %ld", s->cfg.max_rounds);
            break;
        }
        double now = time_now_s();
        s_timers(s, now);
        long timeout = s->cfg.heartbeat_ms < 1000 ? s->cfg.heartbeat_ms : 1000;
        if (s->cfg.round_timeout > 0 && s_pushed(s) > 0) {
            /* Wake up for the round's deadline. */
            double left = (s->first_push + s->cfg.round_timeout - now) * 1e3;
            if (left < timeout)
                timeout = left < 1 ? 1 : (long)left;
        }
        if (s->cfg.progress_interval > 0) {
            if (now >= s->next_progress) {
                s_progress(s);
                s->next_progress = now + s->cfg.progress_interval;
            }
            double left = (s->next_progress - now) * 1e3;
            if (left < timeout)
                timeout = left < 1 ? 1 : (long)left;
        }
        zmq_pollitem_t items[3] = {{s->sock, 0, ZMQ_POLLIN, 0}};
        int nitems = 1 + gate_poll_items(s->gate, items + 1);
        int rc = zmq_poll(items, nitems, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("zmq_poll: %s", zmq_strerror(errno));
            return -1;
        }
        gate_process(s->gate); /* before messages: connections wait on it */
        /* Drain what is queued, bounded so timers still run under load. */
        for (int k = 0; (items[0].revents & ZMQ_POLLIN) && k < 256 && !*stop && !s->done; k++) {
            struct wire_msg in;
            struct wire_error werr;
            int r = wire_recv(s->sock, 1, ZMQ_DONTWAIT, &s->lim, &in, &werr);
            if (r < 0)
                break; /* EAGAIN: nothing more queued */
            s_serve(s, &in, r, &werr);
        }
    }
    s_progress(s);
    s_save_model(s);
    if (s->ckpt_dir[0] && s->st)
        server_checkpoint(s); /* SIGTERM, SIGINT, --max-rounds, --exit-when-done */
    if (s->st && s->ops->global(s->st))
        log_info("final: %s global model after %llu rounds: loss %.6g, test accuracy %.6f "
                 "(reported for round %llu)%s%s",
                 s->ops->name, (unsigned long long)s->round, s->ops->global_loss(s->st),
                 s->g_acc, (unsigned long long)s->g_acc_round,
                 s->cfg.model_out[0] ? ", written to " : "", s->cfg.model_out);
    return 0;
}
