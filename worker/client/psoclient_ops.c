/* Operator calls: status and admin requests to the daemon psoc_open
 * named, and the model from every daemon of the swarm. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/payload.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "common/token.h"

/* Send an operator request on a link and wait for its reply (`want`)
 * into m. */
static int s_request(struct psoc_link *l, int command, const ProtobufCMessage *meta, int want,
                     struct wire_msg *m, char *err, size_t errlen)
{
    int timeout = l->api->opts.connect_timeout_ms;
    int rc = psoc__send(l, command, meta, NULL, want, timeout, err, errlen);
    if (rc)
        return rc;
    return psoc__await(l, want, 0, timeout, m, err, errlen);
}

/* Ask the named daemon for its Status message into m. */
static int s_ask_status(struct psoc *c, int with_particles, struct wire_msg *m, char *err,
                        size_t errlen)
{
    Psod__StatusRequest r = PSOD__STATUS_REQUEST__INIT;
    r.include_particles = with_particles != 0;
    return s_request(c->link[c->ctl], PSOD__COMMAND__CMD_STATUS_REQUEST, &r.base,
                     PSOD__COMMAND__CMD_STATUS, m, err, errlen);
}

int psoc_status(struct psoc *c, int with_particles, struct psoc_status *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct wire_msg m;
    int rc = s_ask_status(c, with_particles, &m, err, errlen);
    if (rc)
        return rc;
    int bad = psoc__status_from_pb((const Psod__Status *)m.meta, out);
    wire_msg_clear(&m);
    if (bad)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    return PSOC_OK;
}

int psoc_status_json(struct psoc *c, int with_particles, char **json, char *err, size_t errlen)
{
    *json = NULL;
    struct wire_msg m;
    int rc = s_ask_status(c, with_particles, &m, err, errlen);
    if (rc)
        return rc;
    *json = status_json((const Psod__Status *)m.meta);
    wire_msg_clear(&m);
    if (!*json)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    return PSOC_OK;
}

int psoc_admin(struct psoc *c, int action, const char *worker, char *reply, size_t replylen,
               char *err, size_t errlen)
{
    Psod__Admin a = PSOD__ADMIN__INIT;
    a.action = (Psod__AdminAction)action;
    a.worker_name = (char *)(worker ? worker : "");
    a.token = c->admin_token;
    struct wire_msg m;
    int rc = s_request(c->link[c->ctl], PSOD__COMMAND__CMD_ADMIN, &a.base,
                       PSOD__COMMAND__CMD_ADMIN_REPLY, &m, err, errlen);
    if (rc)
        return rc;
    Psod__AdminReply *r = (Psod__AdminReply *)m.meta;
    if (reply && replylen)
        snprintf(reply, replylen, "%s", r->message ? r->message : "");
    wire_msg_clear(&m);
    return PSOC_OK;
}

/* Ask one daemon for its range of the model (MODEL_REQUEST); m holds the
 * reply on success. */
static int s_ask_model(struct psoc_link *l, int safe, struct wire_msg *m, char *err, size_t errlen)
{
    Psod__ModelRequest r = PSOD__MODEL_REQUEST__INIT;
    r.safe = safe != 0;
    return s_request(l, PSOD__COMMAND__CMD_MODEL_REQUEST, &r.base, PSOD__COMMAND__CMD_MODEL, m, err,
                     errlen);
}

/* A MODEL reply's range, checked against a vector of `total` floats (and,
 * for a joined worker, its link's range), copied into vec[offset, ...) with
 * its CRC checked. */
static int s_take_range(struct psoc_link *l, struct wire_msg *m, float *vec, uint64_t total,
                        char *err, size_t errlen)
{
    const Psod__Model *md = (const Psod__Model *)m->meta;
    size_t bytes = zmq_msg_size(&m->payload);
    if (md->param_count > total || md->shard_offset > total - md->param_count ||
        bytes != md->param_count * sizeof(float) ||
        (l->joined && (md->param_count != l->n || md->shard_offset != l->offset)))
        return psoc__err(err, errlen, PSOC_EPROTO,
                         "psod at %s sent a model of %zu bytes for %llu parameters at %llu; "
                         "the vector holds %llu",
                         l->endpoint, bytes, (unsigned long long)md->param_count,
                         (unsigned long long)md->shard_offset, (unsigned long long)total);
    uint32_t crc = payload_copy_crc(vec + md->shard_offset, zmq_msg_data(&m->payload), bytes);
    if (crc != md->payload_crc32c)
        return psoc__err(err, errlen, PSOC_EPROTO,
                         "the model from psod at %s is corrupted (CRC-32C %08x, it says %08x)",
                         l->endpoint, crc, md->payload_crc32c);
    return PSOC_OK;
}

/* One daemon's range of the model into weights (n floats, as joined). */
static int s_fetch_range(struct psoc_link *l, int safe, float *weights, size_t total, double *loss,
                         char *kind, size_t kindlen, char *err, size_t errlen)
{
    struct wire_msg m;
    int rc = s_ask_model(l, safe, &m, err, errlen);
    if (rc)
        return rc;
    const Psod__Model *md = (const Psod__Model *)m.meta;
    rc = s_take_range(l, &m, weights, total, err, errlen);
    if (rc == PSOC_OK && loss)
        *loss = md->loss;
    if (rc == PSOC_OK && kind && kindlen)
        snprintf(kind, kindlen, "%s", md->kind ? md->kind : "");
    wire_msg_clear(&m);
    return rc;
}

int psoc_fetch_model(struct psoc *c, int safe, float *weights, double *loss, char *kind,
                     size_t kindlen, char *err, size_t errlen)
{
    if (!c->joined)
        return psoc__err(err, errlen, PSOC_ESTATE, "psoc_fetch_model before psoc_join");
    for (int k = 0; k < c->nlink; k++) {
        int rc = s_fetch_range(c->link[k], safe, weights, c->n, loss, kind, kindlen, err, errlen);
        if (rc)
            return rc;
    }
    return PSOC_OK;
}

int psoc_set_admin_token(struct psoc *c, const char *path, char *err, size_t errlen)
{
    char def[4096];
    if (!path) {
        if (token_default_path(c->link[c->ctl]->endpoint, def, sizeof def, err, errlen) != 0)
            return PSOC_EINVAL;
        path = def;
    }
    char hex[TOKEN_HEX + 1];
    if (token_read(path, hex, err, errlen) != 0)
        return PSOC_EINVAL;
    memcpy(c->admin_token, hex, sizeof hex);
    return PSOC_OK;
}

/* One daemon's range for psoc_download_model: into (*w)[offset, ...),
 * *w allocated at the first reply (the whole vector, total_params). */
static int s_download_range(struct psoc_link *l, int safe, float **w, struct psoc_model_info *info,
                            uint64_t *have, uint64_t *offset, char *kind, size_t kindlen, char *err,
                            size_t errlen)
{
    struct wire_msg m;
    int rc = s_ask_model(l, safe, &m, err, errlen);
    if (rc)
        return rc;
    const Psod__Model *md = (const Psod__Model *)m.meta;
    uint64_t total = md->total_params ? md->total_params : md->param_count;
    if (!*w) {
        memset(info, 0, sizeof *info);
        info->param_count = total;
        info->layout_hash = md->layout_hash;
        info->round = md->round;
        info->loss = md->loss;
        snprintf(info->strategy, sizeof info->strategy, "%s", md->strategy ? md->strategy : "");
        snprintf(info->model, sizeof info->model, "%s", md->model_name ? md->model_name : "");
        snprintf(info->dataset, sizeof info->dataset, "%s", md->dataset ? md->dataset : "");
        for (size_t k = 0; k < 3 && k < md->n_input_shape; k++)
            info->input_shape[k] = md->input_shape[k];
        if (kind && kindlen)
            snprintf(kind, kindlen, "%s", md->kind ? md->kind : "");
        if (total == 0 || total > (uint64_t)1 << 32 || !(*w = calloc(total, sizeof(float)))) {
            wire_msg_clear(&m);
            return psoc__err(err, errlen, PSOC_ESYS, "no room for a model of %llu parameters",
                             (unsigned long long)total);
        }
    }
    if (total != info->param_count)
        rc = psoc__err(err, errlen, PSOC_EPROTO,
                       "psod at %s has a model of %llu parameters, "
                       "another daemon of the swarm %llu",
                       l->endpoint, (unsigned long long)total,
                       (unsigned long long)info->param_count);
    else
        rc = s_take_range(l, &m, *w, total, err, errlen);
    if (rc == PSOC_OK) {
        *have += md->param_count;
        *offset = md->shard_offset;
    }
    wire_msg_clear(&m);
    return rc;
}

int psoc_download_model(struct psoc *c, int safe, float **weights, struct psoc_model_info *info,
                        char *kind, size_t kindlen, char *err, size_t errlen)
{
    float *w = NULL;
    uint64_t have = 0, first = 0, off;
    int rc = s_download_range(c->link[c->ctl], safe, &w, info, &have, &first, kind, kindlen, err,
                              errlen);
    if (rc == PSOC_OK && have < info->param_count) {
        /* A shard's range: the others' from the daemons the status lists. */
        struct psoc_status st;
        rc = psoc_status(c, 0, &st, err, errlen);
        if (rc == PSOC_OK) {
            for (size_t k = 0; rc == PSOC_OK && k < st.n_shards; k++) {
                if (st.shard[k].length == 0 || st.shard[k].offset == first)
                    continue;
                struct psoc_link *o;
                rc = psoc__link_new(c, st.shard[k].endpoint, 0, 0, 0, &o, err, errlen);
                if (rc == PSOC_OK) {
                    rc = s_download_range(o, safe, &w, info, &have, &off, NULL, 0, err, errlen);
                    psoc__link_free(&o, 0);
                }
            }
            psoc_status_free(&st);
        }
        if (rc == PSOC_OK && have != info->param_count)
            rc = psoc__err(err, errlen, PSOC_EPROTO,
                           "the shards sent %llu of %llu parameters (is every shard up?)",
                           (unsigned long long)have, (unsigned long long)info->param_count);
    }
    if (rc) {
        free(w);
        return rc;
    }
    *weights = w;
    return PSOC_OK;
}
