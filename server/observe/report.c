/* What psod tells: the metrics file's line per round, progress lines, and
 * the Status message (for status requests, /status.json and the page). */
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

void srv_progress(struct server *s, int force)
{
    /* An idle daemon says nothing new: print only when something changed. */
    uint64_t acc_bits;
    memcpy(&acc_bits, &s->g_acc, sizeof acc_bits);
    uint64_t sig[] = {s->round,           srv_active(s),  srv_pushed(s), s->count,
                      srv_errors_sent(s), s->g_acc_round, acc_bits};
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
             log_num(loss, "%.6g", s->st ? s->ops->global_loss(s->st) : NAN), acc, srv_active(s),
             s->cfg.workers, srv_pushed(s), s->last_round_seconds * 1e3,
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
    st->verify_adopted = s->verify.adopted;
    st->verify_refused = s->verify.refused;
    st->verify_ignored = s->verify.ignored;
    st->verify_undecided = s->verify.undecided;
    st->verify_struck = s->verify.struck;
    st->verify_excluded = s->verify.excluded;
    st->heartbeat_ms = (uint32_t)s->cfg.heartbeat_ms;
    st->checkpoint_round = s->ckpt_round;
    st->checkpoint_age_seconds = s->ckpt_have ? time_now_s() - s->ckpt_time : NAN;
    st->checkpoint_failures = s->ckpt_failures;
    st->checkpoint_error = s->ckpt_error;
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
            p->density = (float)mb->density;
            p->fragments = mb->fragments;
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
