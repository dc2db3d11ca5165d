/* A daemon's Status message as the client library's struct psoc_status
 * (psoc_status). Its JSON form (psoc_status_json, psod's /status.json)
 * comes from the message itself: common/statusjson.c. */
#include "worker/client/psoclient_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int psoc__status_from_pb(const Psod__Status *s, struct psoc_status *out)
{
    memset(out, 0, sizeof *out);
    out->round = s->round;
    out->particles = s->particles;
    out->active = s->active;
    out->workers_expected = s->workers_expected;
    out->pushed_this_round = s->pushed_this_round;
    out->global_best_loss = s->global_best_loss;
    out->global_best_particle = s->global_best_particle;
    out->global_accuracy = s->global_accuracy;
    out->param_count = s->param_count;
    snprintf(out->strategy, sizeof out->strategy, "%s", s->strategy ? s->strategy : "");
    snprintf(out->version, sizeof out->version, "%s", s->version ? s->version : "");
    out->uptime_seconds = s->uptime_seconds;
    out->last_round_seconds = s->last_round_seconds;
    out->errors_sent = s->errors_sent;
    out->bytes_in = s->bytes_in;
    out->bytes_out = s->bytes_out;
    out->bytes_refused = s->bytes_refused;
    for (size_t i = 0; i < s->n_errors_by_code && i < PSOC_ERROR_CODES; i++)
        out->errors_by_code[i] = s->errors_by_code[i];
    out->peers_connected = s->peers_connected;
    out->peers_refused = s->peers_refused;
    out->encrypted = s->encrypted;
    out->verify_adopted = s->verify_adopted;
    out->verify_refused = s->verify_refused;
    out->verify_ignored = s->verify_ignored;
    out->verify_undecided = s->verify_undecided;
    out->verify_struck = s->verify_struck;
    out->verify_excluded = s->verify_excluded;
    out->heartbeat_ms = s->heartbeat_ms;
    out->checkpoint_round = s->checkpoint_round;
    out->checkpoint_age_seconds = s->checkpoint_age_seconds;
    out->checkpoint_failures = s->checkpoint_failures;
    snprintf(out->checkpoint_error, sizeof out->checkpoint_error, "%s",
             s->checkpoint_error ? s->checkpoint_error : "");
    out->max_peers = s->max_peers;
    if (s->n_particle) {
        out->particle = calloc(s->n_particle, sizeof *out->particle);
        if (!out->particle)
            return -1;
        out->n_particles = s->n_particle;
        for (size_t i = 0; i < s->n_particle; i++) {
            const Psod__ParticleStatus *p = s->particle[i];
            struct psoc_particle_status *q = &out->particle[i];
            q->id = p->id;
            snprintf(q->name, sizeof q->name, "%s", p->worker_name ? p->worker_name : "");
            q->last_loss = p->last_loss;
            q->best_loss = p->best_loss;
            q->age_seconds = p->age_seconds;
            q->pushes = p->pushes;
            q->last_round = p->last_round;
            q->pushed_this_round = p->pushed_this_round;
            q->active = p->active;
            q->evicted = p->evicted;
            q->wire = (int)p->encoding;
            q->strikes = p->strikes;
            q->excluded = p->excluded;
        }
    }
    if (s->n_shard_endpoint > 0) {
        out->shard = calloc(s->n_shard_endpoint, sizeof *out->shard);
        if (!out->shard) {
            psoc_status_free(out);
            return -1;
        }
        out->n_shards = s->n_shard_endpoint;
        out->shard_index = s->shard_index;
        for (size_t k = 0; k < s->n_shard_endpoint; k++) {
            struct psoc_shard_status *q = &out->shard[k];
            q->index = (uint32_t)k;
            snprintf(q->endpoint, sizeof q->endpoint, "%s",
                     s->shard_endpoint[k] ? s->shard_endpoint[k] : "");
        }
        for (size_t k = 0; k < s->n_shard; k++) {
            const Psod__ShardStatus *row = s->shard[k];
            if (row->index >= out->n_shards)
                continue;
            struct psoc_shard_status *q = &out->shard[row->index];
            q->offset = row->offset;
            q->length = row->length;
            q->round = row->round;
            q->connected = row->connected;
        }
    }
    return 0;
}

void psoc_status_free(struct psoc_status *s)
{
    free(s->particle);
    s->particle = NULL;
    s->n_particles = 0;
    free(s->shard);
    s->shard = NULL;
    s->n_shards = 0;
}
