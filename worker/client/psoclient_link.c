/* One daemon's side of a sync, on its link: the hello and its welcome
 * (with retries), the zero-copy push of the link's range, the position it
 * answers (a full range or a change against the reference both sides
 * hold), the wire state behind them, and the bye. psoclient_sync.c drives
 * it over every link; it calls no file above it. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/payload.h"
#include "common/crc32c.h"
#include "common/range.h"
#include "common/sparse.h"
#include "common/timeutil.h"

/* Check the payload's size and CRC and copy it into `dst`. */
static int s_take_payload(struct psoc_link *l, struct wire_msg *m, uint32_t crc, float *dst,
                          char *err, size_t errlen)
{
    size_t bytes = zmq_msg_size(&m->payload);
    if (bytes != l->n * sizeof(float))
        return psoc__err(err, errlen, PSOC_EPROTO, "daemon sent %zu bytes of weights, expected %zu",
                         bytes, l->n * sizeof(float));
    /* Copy and check in one pass; on a mismatch the caller's weights are
     * already overwritten, so they are restored from nothing: report it and
     * let the worker decide (it must not train on them). */
    uint32_t got = payload_copy_crc(dst, zmq_msg_data(&m->payload), bytes);
    if (got != crc)
        return psoc__err(err, errlen, PSOC_ECHECKSUM,
                         "position checksum mismatch (got %08x, header says %08x); "
                         "the weights buffer holds the corrupt position",
                         got, crc);
    return PSOC_OK;
}

void psoc__part(const struct psoc_link *l, uint64_t round, size_t *off, size_t *len)
{
    range_fragment(l->n, l->fragments, round, off, len);
}

/* A compressed position: the change against l->ref, which becomes the new
 * position (and is copied into `weights`: with fragment payloads, the
 * part this round synced; the caller's other weights stay). *diverged is
 * set when the result is not the daemon's, bit for bit (its CRC says so):
 * the caller rejoins for a float32 position. */
static int s_take_change(struct psoc_link *l, struct wire_msg *m, const Psod__Position *pos,
                         float *weights, int *diverged, char *err, size_t errlen)
{
    const void *q = zmq_msg_data(&m->payload);
    size_t bytes = zmq_msg_size(&m->payload), off, len;
    psoc__part(l, l->round, &off, &len); /* l->round: the push's, still */
    if ((int)pos->encoding != l->wire || (pos->sparse && !(l->density > 0)))
        return psoc__err(err, errlen, PSOC_EPROTO, "daemon sent a %s%s position; we agreed on %s",
                         pos->sparse ? "sparse " : "", codec_name((int)pos->encoding),
                         codec_name(l->wire));
    if (l->fragments > 1 && pos->fragment != l->round % l->fragments)
        return psoc__err(err, errlen, PSOC_EPROTO,
                         "daemon sent fragment %u of %u for round %llu, whose part is %llu",
                         pos->fragment, l->fragments, (unsigned long long)l->round,
                         (unsigned long long)(l->round % l->fragments));
    char msg[200];
    if ((pos->sparse ? sparse_check : codec_check)(l->wire, pos->sparse ? l->n : len,
                                                   pos->block_size, q, bytes, msg, sizeof msg) != 0)
        return psoc__err(err, errlen, PSOC_EPROTO, "daemon's position: %s", msg);
    uint32_t got = crc32c(0, q, bytes);
    if (got != pos->payload_crc32c)
        return psoc__err(err, errlen, PSOC_ECHECKSUM,
                         "position checksum mismatch (got %08x, header says %08x)", got,
                         pos->payload_crc32c);
    size_t bad = pos->sparse
                     ? sparse_decode(l->wire, l->n, pos->block_size, q, bytes, l->ref, l->ref)
                     : codec_decode(l->wire, len, pos->block_size, q, l->ref + off, l->ref + off);
    uint32_t mine = crc32c(0, l->ref, l->n * sizeof(float));
    if (bad || mine != pos->position_crc32c) {
        *diverged = 1;
        return psoc__err(err, errlen, PSOC_ECHECKSUM,
                         "the %s position decodes to other floats than the daemon's (CRC %08x, "
                         "daemon %08x, %zu not finite)",
                         codec_name(l->wire), mine, pos->position_crc32c, bad);
    }
    memcpy(weights + off, l->ref + off, len * sizeof(float));
    return PSOC_OK;
}

/* After a welcome: the agreed wire kind, and for a compressed one the
 * shared position (the welcome's) with no residual yet. */
static int s_start_wire(struct psoc_link *l, int wire, double density, unsigned fragments,
                        const float *weights, char *err, size_t errlen)
{
    fragments = fragments > 1 ? fragments : 0;
    if (wire < 0 || wire >= CODEC_KINDS || !(density >= 0 && density <= 1) ||
        fragments > CODEC_MAX_FRAGMENTS || fragments > l->n || (fragments && density > 0))
        return psoc__err(err, errlen, PSOC_EPROTO,
                         "daemon agreed on wire encoding %d, density %g, %u fragments (of %zu "
                         "values)",
                         wire, density, fragments, l->n);
    l->wire = wire;
    l->density = density;
    l->fragments = fragments;
    if (!psoc__compressed(l))
        return PSOC_OK;
    if (!l->ref)
        l->ref = malloc(l->n * sizeof(float));
    if (!l->resid)
        l->resid = malloc(l->n * sizeof(float));
    if (!l->ref || !l->resid)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory for %s state", codec_name(wire));
    memcpy(l->ref, weights, l->n * sizeof(float));
    memset(l->resid, 0, l->n * sizeof(float));
    return PSOC_OK;
}

/* psod --hyper's values from a Welcome or Position, into out_lr and
 * out_momentum when they are there and usable (a learning rate in (0, 1e6),
 * a momentum in [0, 1)); else NaN (unusable ones are logged and ignored). */
static void s_hyper(const struct psoc_link *l, int has, double lr, double momentum, double *out_lr,
                    double *out_momentum)
{
    *out_lr = *out_momentum = NAN;
    if (!has)
        return;
    if (!(lr > 0 && lr < 1e6 && momentum >= 0 && momentum < 1)) {
        psoc__say(l->api, 2,
                  "psod at %s sent learning rate %g and momentum %g: not usable, ignored",
                  l->endpoint, lr, momentum);
        return;
    }
    *out_lr = lr;
    *out_momentum = momentum;
}

/* HELLO with `weights` (used when the particle is new), WELCOME back into
 * `weights`. By checksum: the weights named by their CRC-32C only, for a
 * daemon that may hold them already (the swarm's workers usually start
 * from one initialization); it answers ERR_NEED_WEIGHTS if not. */
static int s_hello(struct psoc_link *l, float *weights, int timeout_ms, int by_checksum,
                   struct psoc_welcome *out, char *err, size_t errlen)
{
    const struct psoc *c = l->api;
    size_t n = l->n;
    weights += l->offset;
    Psod__Hello h = PSOD__HELLO__INIT;
    h.worker_name = (char *)c->name;
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    h.param_count = n;
    h.layout_hash = c->layout_hash;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    h.host = host;
    h.pid = (uint32_t)getpid();
    h.model_name = (char *)c->model;
    h.dataset = (char *)c->dataset;
    h.encoding = (Psod__Encoding)c->opts.wire;
    h.density = (float)c->opts.density;
    h.fragments = c->opts.fragments;
    h.shard_offset = l->offset;
    h.shard_total = l->total;
    /* The same process on a new connection (or after psod restarted: then
     * the daemon does not know the session and the usual rules apply). */
    uint64_t sw[2];
    h.session = psoc__session(l, sw);
    h.verifier = c->verify_fn != NULL && c->nlink == 1;
    if (c->shape[0]) {
        h.n_input_shape = 3;
        h.input_shape = (uint32_t *)c->shape;
    }
    zmq_msg_t payload;
    h.by_checksum = by_checksum != 0;
    if (by_checksum) {
        zmq_msg_init(&payload);
        h.payload_crc32c = crc32c(0, weights, n * sizeof(float));
    } else {
        if (zmq_msg_init_size(&payload, n * sizeof(float)) != 0)
            return psoc__err(err, errlen, PSOC_ESYS, "out of memory for %zu weights", n);
        h.payload_crc32c = payload_copy_crc(zmq_msg_data(&payload), weights, n * sizeof(float));
    }
    const uint32_t named = h.payload_crc32c;
    int rc = psoc__send(l, PSOD__COMMAND__CMD_HELLO, &h.base, by_checksum ? NULL : &payload,
                        PSOD__COMMAND__CMD_WELCOME, timeout_ms, err, errlen);
    zmq_msg_close(&payload);
    if (rc)
        return rc;
    struct wire_msg m;
    rc = psoc__await(l, PSOD__COMMAND__CMD_WELCOME, 0, timeout_ms, &m, err, errlen);
    if (rc)
        return rc;
    Psod__Welcome *w = (Psod__Welcome *)m.meta;
    if (w->param_count != n) {
        rc = psoc__err(err, errlen, PSOC_EPROTO, "daemon welcomed %llu parameters, we have %zu",
                       (unsigned long long)w->param_count, n);
    } else if (w->same_weights) { /* the position is what we named */
        if (w->payload_crc32c != named || (m.has_payload && zmq_msg_size(&m.payload) != 0))
            rc = psoc__err(err, errlen, PSOC_EPROTO,
                           "daemon welcomed us to our own weights (CRC %08x) but ours are %08x",
                           w->payload_crc32c, named);
    } else {
        rc = s_take_payload(l, &m, w->payload_crc32c, weights, err, errlen);
    }
    if (rc == PSOC_OK)
        rc = s_start_wire(l, (int)w->encoding, w->density, w->fragments, weights, err, errlen);
    if (rc == PSOC_OK) {
        l->joined = 1;
        l->particle = w->particle_id;
        l->round = w->round;
        l->push_kind = (int)w->push_kind;
        l->heartbeat_ms = w->heartbeat_ms;
        l->incarnation = w->incarnation;
        uint64_t ws[2] = {0, 0};
        if (w->session.len == PSOD_SESSION_LEN)
            memcpy(ws, w->session.data, PSOD_SESSION_LEN);
        atomic_store(&l->session[0], (unsigned long long)ws[0]);
        atomic_store(&l->session[1], (unsigned long long)ws[1]);
        atomic_store(&l->heard_incarnation, 0);
        psoc__beat_start(l);
        l->positions_global = w->positions_global;
        if (out) {
            out->particle_id = w->particle_id;
            out->round = w->round;
            out->global_best_loss = w->global_best_loss;
            out->rejoined = w->rejoined;
            snprintf(out->strategy, sizeof out->strategy, "%s", w->strategy ? w->strategy : "");
            out->positions_global = w->positions_global;
            out->push_gradients = w->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT;
            out->heartbeat_ms = w->heartbeat_ms;
            out->pushes = w->pushes;
            snprintf(out->model, sizeof out->model, "%s", w->model_name ? w->model_name : "");
            snprintf(out->dataset, sizeof out->dataset, "%s", w->dataset ? w->dataset : "");
            out->wire = l->wire;
            out->density = l->density;
            out->fragments = l->fragments;
            s_hyper(l, w->hyper, w->lr, w->momentum, &out->lr, &out->momentum);
        }
    }
    wire_msg_clear(&m);
    return rc;
}

/* What an attempt adds for the hello's size: the weights go out with the
 * hello and come back with the welcome, and an attempt given up while they
 * are still on the wire is sent again whole (on a slow link, forever).
 * Allowed for: both ways at 100 Mbit/s. */
static int s_transfer_ms(size_t n)
{
    double ms = 2.0 * (double)n * sizeof(float) / 12.5e6 * 1e3;
    return ms > 3.6e6 ? 3600000 : (int)ms;
}

/* HELLO until a WELCOME comes, for up to budget_ms: each attempt waits
 * first_ms plus the hello's transfer time (s_transfer_ms), doubling up to
 * 8 s plus it (a daemon that died holding our hello, or is not up yet,
 * never answers it). *attempts counts them. Returns PSOC_OK, PSOC_ETIMEOUT
 * when the budget ran out, or the error that ended it. */
int psoc__hello_retry(struct psoc_link *l, float *weights, int budget_ms, int first_ms,
                      struct psoc_welcome *w, int *attempts, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + budget_ms;
    const int transfer_ms = s_transfer_ms(l->n);
    int wait_ms = first_ms + transfer_ms;
    for (*attempts = 1;; ++*attempts) {
        int64_t left = deadline - time_now_ms();
        int timeout = left < wait_ms ? (int)(left > 100 ? left : 100) : wait_ms;
        /* Named by checksum first; the weights themselves where the daemon
         * asks for them (at once: that answer is quick). */
        int rc = s_hello(l, weights, timeout, 1, w, err, errlen);
        if (rc == PSOC_EREFUSED && l->last_server_error == PSOD__ERROR_CODE__ERR_NEED_WEIGHTS)
            rc = s_hello(l, weights, timeout, 0, w, err, errlen);
        /* Our name held by a process psod still hears from: a predecessor
         * killed a moment ago (psod lets us in once it has missed its
         * beats), or a twin (the log says so now; the join fails at the
         * end of the budget). */
        int taken = rc == PSOC_EREFUSED && l->last_server_error == PSOD__ERROR_CODE__ERR_NAME_TAKEN;
        if ((rc != PSOC_ETIMEOUT && !taken) || time_now_ms() >= deadline)
            return rc;
        if (taken) {
            if (*attempts == 1)
                psoc__say(l->api, 2, "%s; trying again for up to %.0f s", err,
                          (deadline - time_now_ms()) / 1e3);
            for (int64_t until = time_now_ms() + 500;
                 time_now_ms() < until && time_now_ms() < deadline;)
                if (l->api->opts.stop && *l->api->opts.stop)
                    return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
                else
                    usleep(20000);
            continue;
        }
        if (*attempts == 1 || *attempts % 4 == 0)
            psoc__say(l->api, 2, "psod at %s not answering yet (attempt %d, %.0f s left)",
                      l->endpoint, *attempts, (deadline - time_now_ms()) / 1e3);
        if (l->api->opts.stop && *l->api->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
        if (wait_ms < 8000 + transfer_ms)
            wait_ms = wait_ms * 2 < 8000 + transfer_ms ? wait_ms * 2 : 8000 + transfer_ms;
    }
}

static void s_release(void *data, void *hint)
{
    (void)data;
    atomic_store(&((struct psoc_link *)hint)->released, 1);
}

/* A sparse push: the top of x - ref + resid (sparse.h) in a frame of its
 * own size. 0, or -1 when out of memory. */
static int s_sparse_payload(struct psoc_link *l, const float *x, const float *ref,
                            zmq_msg_t *payload)
{
    size_t k = sparse_k(l->n, l->density);
    void *buf = malloc(sparse_max_bytes(l->wire, l->n, k, CODEC_BLOCK));
    size_t bytes = buf ? sparse_encode(l->wire, l->n, k, x, ref, l->resid, buf) : 0;
    return wire_msg_adopt(payload, buf, bytes);
}

int psoc__push(struct psoc_link *l, float *weights, const float *gradient,
               const struct psoc_report *rep, uint64_t seq, char *err, size_t errlen)
{
    /* What travels: the weights, or the gradient (the reply still lands in
     * `weights`). Either buffer is sent zero-copy and released before we
     * return. */
    float *send = (gradient ? (float *)gradient : weights) + l->offset;
    size_t bytes = l->n * sizeof(float);
    Psod__Push p = PSOD__PUSH__INIT;
    p.round = l->round;
    p.loss = rep->loss;
    p.samples = rep->samples;
    if (!psoc__compressed(l))
        p.payload_crc32c = crc32c(0, send, bytes);
    p.seq = l->seq = seq;
    p.accuracy = rep->accuracy;
    p.position_accuracy = rep->position_accuracy;
    p.position_round = rep->position_round;
    p.payload_kind =
        gradient ? PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT : PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS;
    Psod__Verdict verdict;
    if (l->api->nlink == 1 && psoc__verdict(l->api, &verdict))
        p.verdict = &verdict;
    zmq_msg_t payload;
    if (psoc__compressed(l)) {
        /* The change since the position, plus what earlier pushes lost. */
        size_t bad = payload_count_nonfinite(send, l->n);
        if (bad)
            return psoc__err(err, errlen, PSOC_EINVAL, "%s hold %zu NaN or infinite values",
                             gradient ? "gradients" : "weights", bad);
        const float *ref = gradient ? NULL : l->ref;
        if (l->density > 0) {
            if (s_sparse_payload(l, send, ref, &payload) != 0)
                return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
            p.sparse = 1;
        } else {
            /* Fragment payloads: this round's part; the other parts' changes
             * wait in the weights for their own rounds. */
            size_t off, len;
            psoc__part(l, l->round, &off, &len);
            if (zmq_msg_init_size(&payload, codec_bytes(l->wire, len, CODEC_BLOCK)) != 0)
                return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
            codec_encode(l->wire, len, send + off, ref ? ref + off : NULL, l->resid + off,
                         zmq_msg_data(&payload));
            p.fragment = l->fragments > 1 ? (uint32_t)(l->round % l->fragments) : 0;
        }
        p.encoding = (Psod__Encoding)l->wire;
        p.block_size = codec_blocked(l->wire) ? CODEC_BLOCK : 0;
        p.payload_crc32c = crc32c(0, zmq_msg_data(&payload), zmq_msg_size(&payload));
    } else if (l->zero_copy) {
        atomic_store(&l->released, 0);
        zmq_msg_init_data(&payload, send, bytes, s_release, l);
    } else if (zmq_msg_init_size(&payload, bytes) == 0) {
        memcpy(zmq_msg_data(&payload), send, bytes);
    } else {
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    }
    int rc = psoc__send(l, PSOD__COMMAND__CMD_PUSH, &p.base, &payload, PSOD__COMMAND__CMD_POSITION,
                        l->api->opts.timeout_ms, err, errlen);
    if (rc) {
        zmq_msg_close(&payload);
        psoc__reset(l);
        return rc;
    }
    zmq_msg_close(&payload);
    return PSOC_OK;
}

int psoc__position(struct psoc_link *l, float *weights, uint64_t seq, struct psoc_position *out,
                   int *resync, char *err, size_t errlen)
{
    *resync = 0;
    l->api->cand_have = 0;
    weights += l->offset;
    struct wire_msg m;
    int rc =
        psoc__await(l, PSOD__COMMAND__CMD_POSITION, seq, l->api->opts.timeout_ms, &m, err, errlen);
    if (rc == PSOC_EREFUSED && (l->last_server_error == PSOD__ERROR_CODE__ERR_ROUND ||
                                l->last_server_error == PSOD__ERROR_CODE__ERR_NOT_JOINED)) {
        /* The round closed without us, or we were evicted: the daemon has
         * read the push, so ZeroMQ is done with the buffer; take it back,
         * then rejoin and continue from the particle's current position. */
        psoc__reset(l);
        *resync = 1;
        return rc;
    }
    if (rc == PSOC_ETIMEOUT && l->api->opts.reconnect_ms > 0) {
        *resync = 1; /* psoc__await reset: buffer released */
        return rc;
    }
    if (rc)
        return rc; /* psoc__await reset the connection: the buffer is released */
    /* The reply came after the daemon read the whole push, so ZeroMQ is done
     * with our buffer or about to be; wait for it before overwriting. */
    for (int spins = 0; !atomic_load(&l->released); spins++) {
        if (spins > 40000) { /* 2 s: something holds it; force the release */
            wire_msg_clear(&m);
            psoc__reset(l);
            return psoc__err(err, errlen, PSOC_ESYS, "push buffer not released by ZeroMQ");
        }
        usleep(50); /* the I/O thread lets go within microseconds, usually */
    }
    Psod__Position *pos = (Psod__Position *)m.meta;
    int diverged = 0;
    /* A float32 fragment is a change too: shorter than the whole vector,
     * which the daemon sends when it cannot encode one. */
    if (pos->encoding != PSOD__ENCODING__ENC_F32 || pos->sparse ||
        (l->fragments > 1 && m.has_payload && zmq_msg_size(&m.payload) != l->n * sizeof(float))) {
        rc = !psoc__compressed(l) ? psoc__err(err, errlen, PSOC_EPROTO,
                                              "daemon sent a compressed position "
                                              "to a float32 worker")
                                  : s_take_change(l, &m, pos, weights, &diverged, err, errlen);
    } else {
        rc = s_take_payload(l, &m, pos->payload_crc32c, weights, err, errlen);
        if (rc == PSOC_OK && psoc__compressed(l)) /* the daemon sent it whole */
            memcpy(l->ref, weights, l->n * sizeof(float));
    }
    if (diverged) {
        wire_msg_clear(&m);
        *resync = 1;
        return rc;
    }
    if (rc == PSOC_OK) {
        l->round = pos->round;
        if (out) {
            out->round = pos->round;
            out->global_best_loss = pos->global_best_loss;
            out->personal_best_loss = pos->personal_best_loss;
            out->global_best_particle = pos->global_best_particle;
            out->evaluator = pos->evaluator;
            out->resynced = 0;
            s_hyper(l, pos->hyper, pos->lr, pos->momentum, &out->lr, &out->momentum);
        }
    }
    wire_msg_clear(&m);
    return rc;
}

void psoc__link_close(struct psoc_link **lp)
{
    struct psoc_link *l = *lp;
    if (!l)
        return;
    psoc__beat_stop(l);
    if (l->joined && l->sock) {
        const struct psoc *c = l->api;
        Psod__Bye bye = PSOD__BYE__INIT;
        bye.reason = "worker closed";
        bye.accuracy = c->final_accuracy;
        bye.round = c->final_round;
        /* The socket may be a new connection (after a reset): say whose. */
        uint64_t sw[2];
        bye.worker_name = (char *)c->name;
        bye.session = psoc__session(l, sw);
        Psod__Verdict verdict; /* measured after the last sync */
        if (c->nlink == 1 && psoc__verdict(l->api, &verdict))
            bye.verdict = &verdict;
        wire_send(l->sock, NULL, 0, PSOD__COMMAND__CMD_BYE, &bye.base, NULL, ZMQ_DONTWAIT);
    }
    psoc__link_free(lp, 1000); /* give the bye a second to leave */
}
