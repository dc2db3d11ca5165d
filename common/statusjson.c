/* A daemon's Status message as JSON, with cJSON: the form `psoctl status
 * --json` prints (through psoc_status_json) and psod serves at
 * /status.json, from the same message, so the two never differ. Keys keep
 * the order below. */
#include "common/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "common/codec.h"
#include "common/wire.h"

/* JSON has no inf or nan: null. */
static void s_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *s_particle(const Psod__ParticleStatus *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "id", p->id);
    cJSON_AddStringToObject(o, "worker", p->worker_name ? p->worker_name : "");
    char spec[64]; /* the whole spec: kind, sparse density or fragments */
    codec_spec_name((int)p->encoding, p->density, p->fragments, spec, sizeof spec);
    cJSON_AddStringToObject(o, "wire", spec);
    cJSON_AddBoolToObject(o, "active", p->active);
    cJSON_AddBoolToObject(o, "evicted", p->evicted);
    cJSON_AddNumberToObject(o, "strikes", p->strikes);
    cJSON_AddBoolToObject(o, "excluded", p->excluded);
    cJSON_AddNumberToObject(o, "pushes", (double)p->pushes);
    cJSON_AddNumberToObject(o, "last_round", (double)p->last_round);
    cJSON_AddBoolToObject(o, "pushed", p->pushed_this_round);
    s_num(o, "last_loss", p->last_loss);
    s_num(o, "best_loss", p->best_loss);
    s_num(o, "age_seconds", p->age_seconds);
    return o;
}

/* Shard k: its endpoint, and its range and progress from the row that
 * names it (zeros before the coordinator has heard from it). */
static cJSON *s_shard(const Psod__Status *st, size_t k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const Psod__ShardStatus *row = NULL;
    for (size_t i = 0; i < st->n_shard; i++)
        if (st->shard[i]->index == k)
            row = st->shard[i];
    cJSON_AddNumberToObject(o, "index", (double)k);
    cJSON_AddStringToObject(o, "endpoint", st->shard_endpoint[k] ? st->shard_endpoint[k] : "");
    cJSON_AddNumberToObject(o, "offset", row ? (double)row->offset : 0);
    cJSON_AddNumberToObject(o, "length", row ? (double)row->length : 0);
    cJSON_AddNumberToObject(o, "round", row ? (double)row->round : 0);
    cJSON_AddBoolToObject(o, "connected", row ? row->connected : 0);
    return o;
}

char *status_json(const Psod__Status *st)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "version", st->version ? st->version : "");
    cJSON_AddStringToObject(o, "strategy", st->strategy ? st->strategy : "");
    cJSON_AddNumberToObject(o, "round", (double)st->round);
    cJSON_AddNumberToObject(o, "particles", st->particles);
    cJSON_AddNumberToObject(o, "active", st->active);
    cJSON_AddNumberToObject(o, "workers_expected", st->workers_expected);
    cJSON_AddNumberToObject(o, "pushed_this_round", st->pushed_this_round);
    cJSON_AddNumberToObject(o, "param_count", (double)st->param_count);
    cJSON_AddNumberToObject(o, "global_best_particle", st->global_best_particle);
    cJSON_AddNumberToObject(o, "errors_sent", (double)st->errors_sent);
    cJSON_AddNumberToObject(o, "bytes_in", (double)st->bytes_in);
    cJSON_AddNumberToObject(o, "bytes_out", (double)st->bytes_out);
    cJSON_AddNumberToObject(o, "bytes_refused", (double)st->bytes_refused);
    cJSON *codes = cJSON_AddObjectToObject(o, "errors_by_code");
    for (size_t i = 1; codes && i < st->n_errors_by_code; i++)
        if (st->errors_by_code[i])
            cJSON_AddNumberToObject(codes, wire_error_name((int)i), (double)st->errors_by_code[i]);
    cJSON_AddNumberToObject(o, "peers_connected", st->peers_connected);
    cJSON_AddNumberToObject(o, "max_peers", st->max_peers);
    cJSON_AddNumberToObject(o, "heartbeat_ms", st->heartbeat_ms);
    cJSON *ck = cJSON_AddObjectToObject(o, "checkpoint");
    cJSON_AddNumberToObject(ck, "round", (double)st->checkpoint_round);
    s_num(ck, "age_seconds", st->checkpoint_age_seconds);
    cJSON_AddNumberToObject(ck, "failures", (double)st->checkpoint_failures);
    cJSON_AddStringToObject(ck, "error", st->checkpoint_error ? st->checkpoint_error : "");
    cJSON_AddNumberToObject(o, "peers_refused", (double)st->peers_refused);
    cJSON_AddBoolToObject(o, "encrypted", st->encrypted);
    cJSON *vf = cJSON_AddObjectToObject(o, "verify");
    cJSON_AddNumberToObject(vf, "adopted", (double)st->verify_adopted);
    cJSON_AddNumberToObject(vf, "refused", (double)st->verify_refused);
    cJSON_AddNumberToObject(vf, "ignored", (double)st->verify_ignored);
    cJSON_AddNumberToObject(vf, "undecided", (double)st->verify_undecided);
    cJSON_AddNumberToObject(vf, "struck", (double)st->verify_struck);
    cJSON_AddNumberToObject(vf, "excluded", (double)st->verify_excluded);
    s_num(o, "global_best_loss", st->global_best_loss);
    s_num(o, "global_accuracy", st->global_accuracy);
    s_num(o, "uptime_seconds", st->uptime_seconds);
    s_num(o, "last_round_seconds", st->last_round_seconds);
    cJSON_AddNumberToObject(o, "shard_index", st->shard_index);
    cJSON *shards = cJSON_AddArrayToObject(o, "shards");
    for (size_t k = 0; shards && k < st->n_shard_endpoint; k++)
        cJSON_AddItemToArray(shards, s_shard(st, k));
    cJSON *parts = cJSON_AddArrayToObject(o, "particle");
    for (size_t i = 0; parts && i < st->n_particle; i++)
        cJSON_AddItemToArray(parts, s_particle(st->particle[i]));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}
