/* What psod tells: error replies and their counters, the metrics file,
 * progress lines, status and admin requests. */
#include "common/token.h"
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "common/version.h"

int srv_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

int srv_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq,
                    const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char who[WIRE_NAME_MAX + 8];
    size_t k = 0;
    /* A worker by its name ("w:" + name, as the log always called it): the
     * connection's member, or the name a hello claims; else the routing id. */
    const struct member *mb = srv_by_id(s, in);
    const char *name = mb                                            ? mb->name
                       : in->command == PSOD__COMMAND__CMD_HELLO && in->meta
                           ? ((const Psod__Hello *)in->meta)->worker_name
                           : NULL;
    int named = name && wire_valid_name(name);
    if (named)
        k = (size_t)snprintf(who, sizeof who, "w:%s", name);
    for (size_t i = 0; !named && i < in->id_len && k + 4 < sizeof who; i++) {
        unsigned char ch = in->id[i];
        k += (size_t)snprintf(who + k, sizeof who - k, ch >= 32 && ch < 127 ? "%c" : "\\x%02x",
                              ch);
    }
    who[k] = '\0';
    log_ratelimited(LOG_WARN, wire_error_name(code), "refused peer '%s': %s: %s", who,
                    wire_error_name(code), msg);
    /* Codes are the daemon's own; one past the table would be a bug, counted
     * as internal rather than lost. */
    s->refused = 1;
    s->errors[code >= 0 && code < PSOD_ERROR_CODES ? code : PSOD__ERROR_CODE__ERR_INTERNAL]++;
    if (in->id_len)
        wire_send_error(s->sock, in->id, in->id_len, code, msg, seq, s->round);
    return code;
}

uint64_t srv_errors_sent(const struct server *s)
{
    uint64_t n = 0;
    for (int i = 0; i < PSOD_ERROR_CODES; i++)
        n += s->errors[i];
    return n;
}

static void s_json_double(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.9g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

/* One JSON line per closed round. */
void srv_metrics_line(struct server *s, double now, double update_s, double wait_s)
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

void srv_progress(struct server *s, int force)
{
    /* An idle daemon says nothing new: print only when something changed. */
    uint64_t acc_bits;
    memcpy(&acc_bits, &s->g_acc, sizeof acc_bits);
    uint64_t sig[] = {s->round, srv_active(s), srv_pushed(s), s->count, srv_errors_sent(s),
                      s->g_acc_round, acc_bits};
    if (!force && memcmp(sig, s->progress_sig, sizeof sig) == 0)
        return;
    memcpy(s->progress_sig, sig, sizeof sig);
    char acc[64] = "", loss[LOG_NUM_LEN], who[256] = "", waits[300] = "";
    if (!isnan(s->g_acc))
        snprintf(acc, sizeof acc, ", test accuracy %.2f%% (round %llu)", 100 * s->g_acc,
                 (unsigned long long)s->g_acc_round);
    else if (s->st)
        snprintf(acc, sizeof acc, ", test accuracy n/a (no worker reported one yet)");
    srv_waiting_for(s, who, sizeof who);
    if (who[0] && ((long)s->count < s->cfg.workers || srv_pushed(s) > 0))
        snprintf(waits, sizeof waits, "; round %llu waits for: %s%s", (unsigned long long)s->round,
                 who, (long)s->count < s->cfg.workers ? " and workers not joined yet" : "");
    else if ((long)s->count < s->cfg.workers)
        snprintf(waits, sizeof waits, "; waiting for %ld more workers to join",
                 s->cfg.workers - (long)s->count);
    log_info("%s round %llu: global loss %s%s, workers %zu/%ld active, %zu pushed, "
             "last round %.1f ms, %llu errors sent%s",
             s->ops->name, (unsigned long long)s->round,
             log_num(loss, "%.6g", s->st ? s->ops->global_loss(s->st) : NAN), acc,
             srv_active(s), s->cfg.workers, srv_pushed(s), s->last_round_seconds * 1e3,
             (unsigned long long)srv_errors_sent(s), waits);
}

int srv_status_fill(struct server *s, int with_particles, struct srv_status_buf *b)
{
    memset(b, 0, sizeof *b);
    Psod__Status *st = &b->st;
    psod__status__init(st);
    st->round = s->round;
    st->particles = (uint32_t)s->count;
    st->active = (uint32_t)srv_active(s);
    st->workers_expected = (uint32_t)s->cfg.workers;
    st->global_best_loss = s->st ? s->ops->global_loss(s->st) : INFINITY;
    st->global_best_particle = s->st ? s->ops->global_particle(s->st) : -1;
    st->param_count = s->n;
    st->strategy = (char *)s->ops->name;
    st->global_accuracy = s->g_acc;
    st->global_accuracy_round = s->g_acc_round;
    st->pushed_this_round = (uint32_t)srv_pushed(s);
    double now = time_now_s();
    st->uptime_seconds = now - s->started;
    st->errors_sent = srv_errors_sent(s);
    st->bytes_in = s->bytes_in;
    st->bytes_out = s->bytes_out;
    st->bytes_refused = s->bytes_refused;
    st->last_round_seconds = s->last_round_seconds;
    st->version = PSOD_VERSION;
    st->n_errors_by_code = PSOD_ERROR_CODES;
    st->errors_by_code = s->errors;
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    st->peers_connected = gs.connected;
    st->peers_refused = gs.refused;
    st->encrypted = gs.encrypted;
    st->max_peers = (uint32_t)s->cfg.max_peers;
    st->verify_adopted = s->vf.adopted;
    st->verify_refused = s->vf.refused;
    st->verify_ignored = s->vf.ignored;
    st->verify_undecided = s->vf.undecided;
    st->verify_struck = s->vf.struck;
    st->verify_excluded = s->vf.excluded;
    st->heartbeat_ms = (uint32_t)s->cfg.heartbeat_ms;
    if (with_particles && s->count) {
        b->ps = calloc(s->count, sizeof *b->ps);
        b->pp = calloc(s->count, sizeof *b->pp);
        if (!b->ps || !b->pp) {
            srv_status_buf_free(b);
            return -1;
        }
        for (size_t i = 0; i < s->count; i++) {
            struct member *mb = &s->m[i];
            Psod__ParticleStatus *p = &b->ps[i];
            psod__particle_status__init(p);
            p->id = (uint32_t)i;
            p->worker_name = mb->name;
            p->last_loss = mb->last_loss;
            p->best_loss = s->ops->personal_best_loss(s->st, (int)i);
            p->accuracy = mb->last_acc;
            p->evicted = mb->evicted;
            p->encoding = (Psod__Encoding)mb->wire;
            p->age_seconds = now - mb->last_seen;
            p->pushes = mb->pushes;
            p->pushed_this_round = mb->has_push;
            p->active = mb->active;
            p->last_round = mb->last_round;
            p->strikes = s->ops->strikes ? s->ops->strikes(s->st, (int)i) : 0;
            p->excluded = s->ops->excluded ? s->ops->excluded(s->st, (int)i) : 0;
            b->pp[i] = p;
        }
        st->n_particle = s->count;
        st->particle = b->pp;
    }
    srv_shard_status(s, st, b->rows, b->rowp, b->eps);
    return 0;
}

void srv_status_buf_free(struct srv_status_buf *b)
{
    free(b->ps);
    free(b->pp);
    b->ps = NULL;
    b->pp = NULL;
}

void srv_handle_status(struct server *s, struct wire_msg *in)
{
    Psod__StatusRequest *r = (Psod__StatusRequest *)in->meta;
    struct srv_status_buf b;
    /* Out of memory for the particles: the status without them. */
    if (srv_status_fill(s, r->include_particles, &b) != 0)
        srv_status_fill(s, 0, &b);
    if (wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_STATUS, &b.st.base, NULL,
                  ZMQ_DONTWAIT) != 0)
        log_warn("could not send status: %s", zmq_strerror(errno));
    srv_status_buf_free(&b);
}

/* Operator requests change state, so only admin keys may send them: the
 * connection's ZAP user id must be "admin:" + a key name from --admin,
 * which the gate gives only to CURVE-authenticated keys in that directory. */
void srv_handle_admin(struct server *s, struct wire_msg *in)
{
    Psod__Admin *a = (Psod__Admin *)in->meta;
    int by_token = s->admin_token[0] && a->token && token_equal(a->token, s->admin_token);
    if (strncmp(in->user, "admin:", 6) != 0 && !by_token) {
        struct gate_stats gs;
        gate_stats(s->gate, &gs);
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                   "admin requests need a CURVE key from psod's --admin directory%s%s",
                   gs.encrypted ? "" : " (this daemon runs without CURVE)",
                   !s->admin_token[0] ? ""
                   : a->token && a->token[0] ? ", or the token in its --admin-token-file (this "
                                               "one is not it)"
                                             : ", or the token in its --admin-token-file, "
                                               "readable by its user on its host");
        if (a->token && a->token[0])
            log_warn("refused an admin request with a wrong token");
        return;
    }
    char msg[CONF_STRLEN + 64];
    struct member *mb;
    switch (a->action) {
    case PSOD__ADMIN_ACTION__ADMIN_CHECKPOINT:
        if (!s->ckpt_dir[0] || !s->st) {
            srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0, "%s",
                     s->ckpt_dir[0] ? "no swarm yet" : "no --checkpoint-dir configured");
            return;
        }
        if (server_checkpoint(s) != 0) {
            srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, 0, "checkpoint failed (see log)");
            return;
        }
        snprintf(msg, sizeof msg, "checkpoint of round %llu written to %s",
                 (unsigned long long)s->round, s->ckpt_dir);
        break;
    case PSOD__ADMIN_ACTION__ADMIN_EVICT:
        if (!a->worker_name || !(mb = srv_by_name(s, a->worker_name)) || !mb->active) {
            srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_JOINED, 0, "no active worker '%s'",
                     a->worker_name ? a->worker_name : "");
            return;
        }
        mb->active = 0;
        mb->evicted = 1;
        snprintf(msg, sizeof msg, "worker '%s' evicted (it may rejoin)", mb->name);
        srv_maybe_close_round(s);
        break;
    case PSOD__ADMIN_ACTION__ADMIN_STOP:
        s->done = 1;
        snprintf(msg, sizeof msg, "stopping after round %llu", (unsigned long long)s->round);
        break;
    default:
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNSUPPORTED, 0, "unknown admin action %d",
                 (int)a->action);
        return;
    }
    if (strncmp(in->user, "admin:", 6) != 0)
        log_info("admin (the token on this host): %s", msg);
    else
        log_info("admin '%s': %s", in->user + 6, msg);
    Psod__AdminReply r = PSOD__ADMIN_REPLY__INIT;
    r.action = a->action;
    r.message = msg;
    wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_ADMIN_REPLY, &r.base, NULL,
              ZMQ_DONTWAIT);
}

void srv_handle_model_request(struct server *s, struct wire_msg *in)
{
    const Psod__ModelRequest *r = (const Psod__ModelRequest *)in->meta;
    const char *kind = "global model";
    const float *w = NULL;
    if (s->st)
        w = r->safe && s->ops->safe ? s->ops->safe(s->st, &kind) : s->ops->global(s->st);
    if (!w) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_ROUND, r->seq,
                   "no %s yet (no round has closed%s)", r->safe ? "safe model" : "global model",
                   srv_verifying(s) ? ", or no candidate was verified" : "");
        return;
    }
    size_t bytes = s->n * sizeof(float);
    zmq_msg_t q;
    if (zmq_msg_init_size(&q, bytes) != 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, r->seq, "out of memory for %zu bytes",
                   bytes);
        return;
    }
    Psod__Model m = PSOD__MODEL__INIT;
    m.seq = r->seq;
    m.round = s->round;
    m.loss = s->ops->global_loss(s->st);
    m.payload_crc32c = wire_copy_crc(zmq_msg_data(&q), w, bytes);
    m.param_count = s->n;
    m.shard_offset = s->sh.offset;
    m.kind = (char *)kind;
    m.model_name = s->model_name;
    m.dataset = s->dataset;
    m.layout_hash = s->layout_hash;
    m.n_input_shape = 3;
    m.input_shape = s->input_shape;
    m.strategy = (char *)s->ops->name;
    m.total_params = s->sh.count > 1 ? s->sh.total : s->n;
    if (wire_send(s->sock, in->id, in->id_len, PSOD__COMMAND__CMD_MODEL, &m.base, &q,
                  ZMQ_DONTWAIT) != 0)
        log_debug("could not send the model to a peer: %s", zmq_strerror(errno));
    zmq_msg_close(&q);
    s->bytes_out += bytes;
    log_debug("sent the %s (%zu parameters from %llu) at round %llu", kind, s->n,
              (unsigned long long)s->sh.offset, (unsigned long long)s->round);
}
