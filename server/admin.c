/* Requests that are not training: status (any allowed peer), the swarm's
 * model (any allowed peer; a shard sends its range), and the operator's
 * checkpoint, evict and stop (an --admin CURVE key, or without CURVE the
 * token psod wrote on its host, which is written here too). */
#include "server/server_int.h"

#include "common/token.h"
#include "common/payload.h"

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

/* The operator's token (common/token.h), for a daemon without CURVE (with
 * CURVE only --admin keys make admin requests): written where psoctl on
 * this host looks; a daemon that cannot write it runs on and says so. */
void srv_admin_token(struct server *s)
{
    const char *opt = s->cfg.admin_token_file;
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    if (!strcmp(opt, "none") || gs.encrypted) /* with CURVE, admin keys decide */
        return;
    char path[CONF_STRLEN], err[512];
    if (strcmp(opt, "auto") != 0)
        snprintf(path, sizeof path, "%s", opt);
    else if (token_default_path(s->endpoint, path, sizeof path, err, sizeof err) != 0) {
        log_warn("no admin token: %s", err);
        return;
    }
    if (token_create(path, s->admin_token, err, sizeof err) != 0) {
        s->admin_token[0] = '\0';
        log_warn("no admin token (psoctl stop, checkpoint, evict need CURVE admin keys): %s", err);
        return;
    }
    snprintf(s->admin_token_path, sizeof s->admin_token_path, "%s", path);
    log_info("admin token for psoctl on this host in %s (readable by this user only)", path);
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
                   !s->admin_token[0]        ? ""
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
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_ROUND, r->seq, "no %s yet (no round has closed%s)",
                   r->safe ? "safe model" : "global model",
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
    m.payload_crc32c = payload_copy_crc(zmq_msg_data(&q), w, bytes);
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
