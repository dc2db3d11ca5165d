/* What survives the process: checkpoints of the whole swarm (atomic,
 * checksummed generations) and --resume. The model file is outputs.c's. */
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
#include "common/range.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include <dirent.h>
#include <sys/stat.h>

#include "common/ckpt.h"
#include "common/modelfile.h"
#include "common/hash.h"
#include "server/strategy/swarm_hyper.h"

/* Checkpoints ---------------------------------------------------------- */

/* The server's record: 1 (container 1), 2 (container 2: each particle's
 * CURVE key), 3 (its own version field; the model's name, dataset and
 * input shape). */
#define SRV_RECORD_VERSION 4 /* 4: the shard's place (count, index, total, offset) */

/* A checkpoint that could not be written (a full disk, a directory gone):
 * counted, kept for status and /metrics, and logged at once, then at most
 * once a minute while it goes on. The round goes on: the next one tries
 * again. Returns -1. */
#define S_SAY_EVERY_S 60
static int s_checkpoint_failed(struct server *s, const char *err)
{
    double now = time_now_s();
    s->ckpt_failures++;
    int first = !s->ckpt_error[0];
    snprintf(s->ckpt_error, sizeof s->ckpt_error, "%s", err);
    if (first || now - s->ckpt_said_at >= S_SAY_EVERY_S) {
        char last[64] = "none yet";
        if (s->ckpt_have)
            snprintf(last, sizeof last, "round %llu, %.0f s ago", (unsigned long long)s->ckpt_round,
                     now - s->ckpt_time);
        log_error("checkpoint of round %llu failed (%llu so far): %s; the last one written: %s",
                  (unsigned long long)s->round, (unsigned long long)s->ckpt_failures, err, last);
        s->ckpt_said_at = now;
    }
    return -1;
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
    if (ckpt_begin(&w, path, err, sizeof err) != 0)
        return s_checkpoint_failed(s, err);
    /* The server record, version SRV_RECORD_VERSION; s_load_reader reads
     * every version, field by field in the same order. */
    ckpt_put_u64(&w, SRV_RECORD_VERSION);
    ckpt_put_str(&w, s->ops->name);
    ckpt_put_u64(&w, s->n);
    ckpt_put_u64(&w, s->layout_hash);
    ckpt_put_u64(&w, s->round);
    ckpt_put_u64(&w, s->swarm_id);
    ckpt_put_u64(&w, (uint64_t)s->cfg.seed);
    ckpt_put_f64(&w, s->g_acc);
    ckpt_put_u64(&w, s->g_acc_round);
    ckpt_put_u64(&w, s->count);
    ckpt_put_str(&w, s->model_name); /* record version 3 */
    ckpt_put_str(&w, s->dataset);
    for (int k = 0; k < 3; k++)
        ckpt_put_u64(&w, s->input_shape[k]);
    ckpt_put_u64(&w, (uint64_t)(s->sh.count > 1 ? s->sh.count : 1)); /* record version 4 */
    ckpt_put_u64(&w, (uint64_t)s->sh.index);
    ckpt_put_u64(&w, s->sh.count > 1 ? s->sh.total : s->n);
    ckpt_put_u64(&w, s->sh.offset);
    for (size_t i = 0; i < s->count; i++) {
        const struct member *mb = &s->m[i];
        ckpt_put_str(&w, mb->name);
        ckpt_put_f64(&w, mb->last_loss);
        ckpt_put_f64(&w, mb->last_acc);
        ckpt_put_f64(&w, mb->pbest_acc);
        ckpt_put_u64(&w, mb->pbest_round);
        ckpt_put_u64(&w, mb->pushes);
        ckpt_put_u64(&w, mb->last_round);
        ckpt_put(&w, zmq_msg_data((zmq_msg_t *)srv_position_of(s, mb)), s->n * sizeof(float));
        ckpt_put_str(&w, mb->key); /* record version 2: the CURVE key that holds it */
    }
    s->ops->save(s->st, &w);
    if (s->hyper)
        hyper_save(s->hyper, &w);
    if (ckpt_commit(&w, err, sizeof err) != 0)
        return s_checkpoint_failed(s, err);
    if (s->ckpt_error[0])
        log_info("checkpoints are written again (round %llu), after %llu that failed",
                 (unsigned long long)s->round, (unsigned long long)s->ckpt_failures);
    s->ckpt_error[0] = '\0';
    s->ckpt_round = s->round;
    s->ckpt_time = time_now_s();
    s->ckpt_have = 1;
    /* Keep the newest --keep generations. */
    char **names;
    size_t n = ckpt_list(s->ckpt_dir, &names);
    for (size_t i = (size_t)s->cfg.keep; i < n; i++) {
        char old[CONF_STRLEN + 300];
        snprintf(old, sizeof old, "%s/%s", s->ckpt_dir, names[i]);
        unlink(old);
    }
    ckpt_list_free(names, n);
    log_info("checkpoint of round %llu written to %s (%.0f ms)", (unsigned long long)s->round, path,
             (time_now_s() - t0) * 1e3);
    return 0;
}

/* Drop every member and the strategy state (a failed resume attempt). */
static void s_forget_swarm(struct server *s)
{
    for (size_t i = 0; i < s->count; i++) {
        zmq_msg_close(&s->m[i].position);
        srv_forget_intended(&s->m[i]);
    }
    s->count = 0;
    if (s->st)
        s->ops->destroy(s->st);
    s->st = NULL;
    hyper_free(&s->hyper);
    s->n = 0;
    s->round = 0;
}

/* Restore from an opened checkpoint (closed here); on any fault the server
 * is left empty. */
static int s_load_reader(struct server *s, struct ckpt_reader *rp, char *err, size_t errlen)
{
    struct ckpt_reader r = *rp;
    char strategy[64], name[WIRE_NAME_MAX + 1];
    uint64_t n, layout, round, swarm_id, seed, g_round, count, shape[3] = {0, 0, 0};
    uint64_t rv = r.version; /* containers 1 and 2: the record's version is theirs */
    double g_acc;
    if (!r.err[0] && r.version >= 3 && ckpt_get_u64(&r, &rv) == 0 &&
        (rv < 3 || rv > SRV_RECORD_VERSION))
        snprintf(r.err, sizeof r.err, "server record version %llu, this build reads 1 to %d",
                 (unsigned long long)rv, SRV_RECORD_VERSION);
    if (r.err[0] || ckpt_get_str(&r, strategy, sizeof strategy) || ckpt_get_u64(&r, &n) ||
        ckpt_get_u64(&r, &layout) || ckpt_get_u64(&r, &round) || ckpt_get_u64(&r, &swarm_id) ||
        ckpt_get_u64(&r, &seed) || ckpt_get_f64(&r, &g_acc) || ckpt_get_u64(&r, &g_round) ||
        ckpt_get_u64(&r, &count))
        goto fail;
    if (rv >= 3 &&
        (ckpt_get_str(&r, s->model_name, sizeof s->model_name) ||
         ckpt_get_str(&r, s->dataset, sizeof s->dataset) || ckpt_get_u64(&r, &shape[0]) ||
         ckpt_get_u64(&r, &shape[1]) || ckpt_get_u64(&r, &shape[2])))
        goto fail;
    for (int k = 0; k < 3; k++)
        s->input_shape[k] = shape[k] > UINT32_MAX ? 0 : (uint32_t)shape[k];
    uint64_t scount = 1, sindex = 0, stotal = 0, soff = 0;
    if (rv >= 4 && (ckpt_get_u64(&r, &scount) || ckpt_get_u64(&r, &sindex) ||
                    ckpt_get_u64(&r, &stotal) || ckpt_get_u64(&r, &soff)))
        goto fail;
    uint64_t want_count = s->sh.count > 1 ? (uint64_t)s->sh.count : 1;
    if (scount != want_count || sindex != (uint64_t)s->sh.index) {
        snprintf(r.err, sizeof r.err,
                 "written by shard %llu of %llu; this daemon is shard %d of "
                 "%llu",
                 (unsigned long long)sindex, (unsigned long long)scount, s->sh.index,
                 (unsigned long long)want_count);
        goto fail;
    }
    if (scount > 1) {
        uint64_t off, len;
        range_of(stotal, (int)scount, (int)sindex, &off, &len);
        if (off != soff || len != n) {
            snprintf(r.err, sizeof r.err, "the range in the file does not fit its shard");
            goto fail;
        }
        s->sh.total = stotal;
        s->sh.offset = soff;
    }
    if (strcmp(strategy, s->ops->name) != 0) {
        snprintf(r.err, sizeof r.err, "written by strategy %s, this daemon runs %s", strategy,
                 s->ops->name);
        goto fail;
    }
    if (n == 0 || n > s->lim.max_payload / sizeof(float) || count > 65536 ||
        n * sizeof(float) * (count + 1) > r.left) {
        snprintf(r.err, sizeof r.err,
                 "truncated or corrupt: %llu particles of %llu parameters do "
                 "not fit the file",
                 (unsigned long long)count, (unsigned long long)n);
        goto fail;
    }
    if (!(s->st = s->ops->create(n, s->sh.offset, &s->cfg.sp)) || srv_hyper_create(s) != 0) {
        snprintf(r.err, sizeof r.err, "out of memory");
        goto fail;
    }
    s->n = n;
    for (uint64_t i = 0; i < count; i++) {
        if (srv_reserve(s) != 0) {
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
        if (!wire_valid_name(name)) {
            snprintf(r.err, sizeof r.err, "invalid worker name");
            goto fail;
        }
        if (zmq_msg_init_size(&mb->position, n * sizeof(float)) != 0) {
            snprintf(r.err, sizeof r.err, "out of memory");
            goto fail;
        }
        s->count++;
        if (ckpt_get(&r, zmq_msg_data(&mb->position), n * sizeof(float)) ||
            (rv >= 2 && ckpt_get_str(&r, mb->key, sizeof mb->key)))
            goto fail;
        snprintf(mb->name, sizeof mb->name, "%s", name);
        /* No connection (id_len 0) and no session until its worker's hello. */
        if (srv_hyper_reserve(s) != 0 ||
            s->ops->add(s->st, zmq_msg_data(&mb->position), hash_fnv1a64(name)) < 0) {
            snprintf(r.err, sizeof r.err, "out of memory");
            goto fail;
        }
        srv_hyper_add(s, hash_fnv1a64(name));
    }
    if (s->ops->load(s->st, &r) != 0 || (s->hyper && hyper_load(s->hyper, &r) != 0) ||
        ckpt_finish(&r) != 0)
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
    s->ckpt_have = 1;
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

size_t srv_generations(const struct server *s, uint64_t *out, size_t max)
{
    char **names;
    size_t n = s->ckpt_dir[0] ? ckpt_list(s->ckpt_dir, &names) : 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned long long r;
        if (k < max && sscanf(names[i], CKPT_PREFIX "%llu", &r) == 1)
            out[k++] = r;
    }
    if (n)
        ckpt_list_free(names, n);
    return k;
}

/* A rollback (PROTOCOL.md, "Shards"): generations newer than `round`
 * (every one, for -2) are ones the other shards lack; they go, so that no
 * later resume picks them. */
static void s_discard_newer(const char *dir, long round)
{
    char **names;
    size_t n = ckpt_list(dir, &names);
    for (size_t i = 0; i < n; i++) {
        unsigned long long r;
        if (sscanf(names[i], CKPT_PREFIX "%llu", &r) != 1 ||
            (round >= 0 && r <= (unsigned long long)round))
            continue;
        char path[CONF_STRLEN + 300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) == 0)
            log_warn("discarded checkpoint %s (round %llu): the other shards do not hold that "
                     "generation",
                     path, r);
    }
    if (n)
        ckpt_list_free(names, n);
}

/* --resume DIR: the newest checkpoint that loads; older ones in turn. */
int srv_resume(struct server *s, const char *dir, char *err, size_t errlen)
{
    if (s->cfg.rollback)
        s_discard_newer(dir, s->cfg.rollback > 0 ? s->cfg.rollback - 1 : -1);
    char **names;
    size_t n = ckpt_list(dir, &names);
    if (n == 0 && s->cfg.rollback < 0) {
        log_warn("starting a new swarm: the shards hold no common checkpoint");
        return 0;
    }
    if (n == 0) {
        if (!s->cfg.resume_or_start) {
            snprintf(err, errlen,
                     "--resume '%s' holds no checkpoint (ckpt-*.psck); give "
                     "--resume-or-start to start a new swarm there",
                     dir);
            return -1;
        }
        log_warn("--resume %s: no checkpoint there; starting a new swarm (--resume-or-start)", dir);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char path[CONF_STRLEN + 300], why[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (s_load_checkpoint(s, path, why, sizeof why) == 0) {
            log_info("resumed from %s: round %llu, %zu particles of %zu parameters, strategy %s",
                     path, (unsigned long long)s->round, s->count, s->n, s->ops->name);
            ckpt_list_free(names, n);
            return 0;
        }
        log_error("checkpoint %s is unusable (%s)%s", path, why,
                  i + 1 < n ? "; trying the previous generation" : "");
    }
    snprintf(err, errlen, "no usable checkpoint in '%s' (%zu tried; see the log)", dir, n);
    ckpt_list_free(names, n);
    return -1;
}

/* Every --checkpoint-every rounds or --checkpoint-seconds. */
int srv_maybe_checkpoint(struct server *s, double now)
{
    if (!s->ckpt_dir[0] || !s->st || s->round == s->ckpt_round)
        return 0;
    if ((s->cfg.checkpoint_every > 0 &&
         s->round - s->ckpt_round >= (uint64_t)s->cfg.checkpoint_every) ||
        (s->cfg.checkpoint_seconds > 0 && now - s->ckpt_time >= s->cfg.checkpoint_seconds))
        return server_checkpoint(s) == 0;
    return 0;
}
