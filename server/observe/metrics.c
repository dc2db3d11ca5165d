/* What psod's HTTP endpoint shows beyond the status (http.c serves it):
 * histograms of round, wait and update times, bytes by message kind, a
 * ring of the last SRV_HISTORY rounds for the status page's plot, and the
 * Prometheus text exposition of all of it (/metrics).
 *
 * Names follow the Prometheus conventions: a psod_ prefix, base units
 * (seconds, bytes, ratio), _total on counters. Labels are bounded: one
 * series per message kind and error code the protocol defines, per
 * particle state, and per particle only for the first
 * --http-max-particles particles (the rest are counted, not named). */
#include "server/server_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/version.h"

/* A label value: backslash, double quote and newline escaped. */
static void s_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* The Prometheus form of a float: NaN, +Inf, -Inf or %.17g. */
static void s_val(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else
        fprintf(f, "%.17g", v);
}

static void s_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_one(FILE *f, const char *name, const char *type, const char *help, double v)
{
    s_head(f, name, type, help);
    fprintf(f, "%s ", name);
    s_val(f, v);
    fputc('\n', f);
}

static void s_hist(FILE *f, const char *name, const char *help, const struct srv_hist *h)
{
    s_head(f, name, "histogram", help);
    uint64_t cum = 0;
    for (int b = 0; b < SRV_HIST_BUCKETS; b++) {
        cum += h->count[b];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, srv_hist_bounds[b],
                (unsigned long long)cum);
    }
    cum += h->count[SRV_HIST_BUCKETS];
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum ", name, (unsigned long long)cum, name);
    s_val(f, h->sum);
    fprintf(f, "\n%s_count %llu\n", name, (unsigned long long)cum);
}

/* Bytes by message kind (the wire's command names). */
static void s_bytes(FILE *f, const char *name, const char *help, const uint64_t *by_cmd)
{
    s_head(f, name, "counter", help);
    for (int c = 1; c < SRV_COMMANDS; c++) {
        const char *kind = wire_command_name(c);
        if (strcmp(kind, "unknown") != 0)
            fprintf(f, "%s{kind=\"%s\"} %llu\n", name, kind, (unsigned long long)by_cmd[c]);
    }
}

static void s_particles(FILE *f, struct server *s)
{
    size_t state[4] = {0}; /* active, evicted, retired, left */
    for (size_t i = 0; i < s->count; i++) {
        const struct member *mb = &s->m[i];
        state[mb->active ? 0 : mb->evicted ? 1 : mb->retired ? 2 : 3]++;
    }
    static const char *const names[] = {"active", "evicted", "retired", "left"};
    s_head(f, "psod_particles", "gauge",
           "Particles by state: active, evicted (silent or stalled; may rejoin), retired "
           "(slot free for a newcomer), left (said bye).");
    for (int k = 0; k < 4; k++)
        fprintf(f, "psod_particles{state=\"%s\"} %zu\n", names[k], state[k]);
    s_one(f, "psod_particles_pushed", "gauge", "Particles that pushed for the open round.",
          (double)srv_pushed(s));
    size_t shown =
        s->count < (size_t)s->cfg.http_max_particles ? s->count : (size_t)s->cfg.http_max_particles;
    s_one(f, "psod_particle_series_omitted", "gauge",
          "Particles beyond --http-max-particles, which have no per-particle series.",
          (double)(s->count - shown));
    double now = time_now_s();
    static const char *const per[][2] = {
        {"psod_particle_loss", "Training loss the particle last reported."},
        {"psod_particle_best_loss", "The particle's personal best loss."},
        {"psod_particle_age_seconds", "Seconds since the particle's worker was last heard."},
        {"psod_particle_pushes_total", "Pushes the particle's worker made."},
        {"psod_particle_strikes_total",
         "Strikes against the particle (--verify-best: claims refused, verdicts against a "
         "quorum)."},
        {"psod_particle_excluded", "1 when the particle reached --strike-limit (no say)."},
    };
    int kinds = s->ops->strikes ? 6 : 4;
    for (int k = 0; k < kinds; k++) {
        s_head(f, per[k][0], k == 3 || k == 4 ? "counter" : "gauge", per[k][1]);
        for (size_t i = 0; i < shown; i++) {
            const struct member *mb = &s->m[i];
            double v = k == 0   ? mb->last_loss
                       : k == 1 ? s->ops->personal_best_loss(s->st, (int)i)
                       : k == 2 ? now - mb->last_seen
                       : k == 3 ? (double)mb->pushes
                       : k == 4 ? (double)s->ops->strikes(s->st, (int)i)
                                : (double)(s->ops->excluded && s->ops->excluded(s->st, (int)i));
            fprintf(f, "%s{particle=\"%zu\",worker=\"", per[k][0], i);
            s_label(f, mb->name);
            fputs("\"} ", f);
            s_val(f, v);
            fputc('\n', f);
        }
    }
}

char *srv_metrics_text(struct server *s, const uint64_t answers[HTTP_ANSWER_KINDS], size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    struct srv_obs *o = &s->obs;
    s_head(f, "psod_build_info", "gauge", "The daemon's version and strategy (always 1).");
    fprintf(f, "psod_build_info{version=\"%s\",strategy=\"%s\",mode=\"%s\"} 1\n", PSOD_VERSION,
            s->ops->name, s->cfg.mode == SERVER_ASYNC ? "async" : "sync");
    s_one(f, "psod_start_time_seconds", "gauge", "When the daemon started, Unix time.",
          time_wall_s() - (time_now_s() - s->started));
    s_one(f, "psod_rounds_total", "counter",
          "Rounds closed (updates, in async mode); a resumed swarm goes on from its checkpoint.",
          (double)s->round);
    s_one(f, "psod_workers_expected", "gauge", "Particles a round waits for (--workers).",
          (double)s->cfg.workers);
    s_one(f, "psod_parameters", "gauge", "Length of the flat parameter vector.",
          (double)(s->sh.total ? s->sh.total : s->n));
    if (s->ckpt_dir[0]) {
        s_one(f, "psod_checkpoint_round", "gauge",
              "Round of the last checkpoint written or resumed from (0: none yet).",
              s->ckpt_have ? (double)s->ckpt_round : 0);
        s_one(f, "psod_checkpoint_age_seconds", "gauge",
              "Seconds since the last checkpoint was written (NaN: none yet).",
              s->ckpt_have ? time_now_s() - s->ckpt_time : NAN);
        s_one(f, "psod_checkpoint_failures_total", "counter",
              "Checkpoints that could not be written (a full disk, a directory gone).",
              (double)s->ckpt_failures);
        s_one(f, "psod_checkpoint_failing", "gauge",
              "1 while the last checkpoint attempt failed, else 0.", s->ckpt_error[0] ? 1 : 0);
    }
    s_hist(f, "psod_round_duration_seconds", "Time from one round's close to the next.",
           &o->round_h);
    s_hist(f, "psod_round_wait_seconds",
           "Time a round waited from its first push to its last (the slowest worker's lag).",
           &o->wait_h);
    s_hist(f, "psod_update_duration_seconds", "Time the strategy's update of a round took.",
           &o->update_h);
    s_bytes(f, "psod_received_bytes_total", "Bytes of accepted messages, by kind.",
            o->bytes_in_cmd);
    s_bytes(f, "psod_sent_bytes_total", "Payload bytes sent, by kind.", o->bytes_out_cmd);
    s_one(f, "psod_refused_bytes_total", "counter", "Bytes of messages refused with an error.",
          (double)s->bytes_refused);
    s_head(f, "psod_errors_sent_total", "counter", "Error replies sent, by code.");
    for (int c = 1; c < PSOD_ERROR_CODES; c++)
        if (protobuf_c_enum_descriptor_get_value(&psod__error_code__descriptor, c))
            fprintf(f, "psod_errors_sent_total{code=\"%s\"} %llu\n", wire_error_name(c),
                    (unsigned long long)s->errors[c]);
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    s_one(f, "psod_connections", "gauge", "Open connections (workers hold two each).",
          (double)gs.connected);
    if (srv_verifying(s)) {
        s_head(f, "psod_verify_total", "counter",
               "Candidate global bests judged (--verify-best): adopted, refused (the verifier's "
               "loss beyond the tolerance), verdicts ignored.");
        fprintf(f,
                "psod_verify_total{outcome=\"adopted\"} %llu\n"
                "psod_verify_total{outcome=\"refused\"} %llu\n"
                "psod_verify_total{outcome=\"ignored\"} %llu\n"
                "psod_verify_total{outcome=\"undecided\"} %llu\n",
                (unsigned long long)s->verify.adopted, (unsigned long long)s->verify.refused,
                (unsigned long long)s->verify.ignored, (unsigned long long)s->verify.undecided);
        s_one(f, "psod_verify_struck_total", "counter",
              "Strikes given to verifiers whose verdict went against a quorum.",
              (double)s->verify.struck);
        s_one(f, "psod_excluded_workers_total", "counter",
              "Workers that reached --strike-limit (excluded or evicted).",
              (double)s->verify.excluded);
    }
    s_one(f, "psod_connections_refused_total", "counter",
          "Connections refused: peer limit, unknown keys, failed handshakes.", (double)gs.refused);
    s_particles(f, s);
    s_one(f, "psod_global_loss", "gauge",
          "Loss of the global model (pso: the best particle's; the others: the mean reported).",
          s->st ? s->ops->global_loss(s->st) : NAN);
    s_one(f, "psod_global_accuracy_ratio", "gauge",
          "Test accuracy of the global model as the workers reported it, 0 to 1.", s->g_acc);
    s_one(f, "psod_last_round_duration_seconds", "gauge", "Duration of the last closed round.",
          s->last_round_seconds);
    s_head(f, "psod_http_responses_total", "counter", "HTTP answers of this endpoint, by status.");
    static const char *const codes[HTTP_ANSWER_KINDS] = {"200", "404", "405", "503", "other"};
    for (int k = 0; k < HTTP_ANSWER_KINDS; k++)
        fprintf(f, "psod_http_responses_total{code=\"%s\"} %llu\n", codes[k],
                (unsigned long long)answers[k]);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* JSON has no NaN: null. */
static void s_num(cJSON *a, double v)
{
    cJSON_AddItemToArray(a, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

char *srv_history_json(const struct server *s, size_t *len)
{
    /* Columns, oldest round first: what the page's plot takes as is. */
    static const char *const cols[] = {"round",       "time",       "round_s",
                                       "global_loss", "global_acc", "mean_loss"};
    cJSON *o = cJSON_CreateObject(), *a[6];
    if (!o)
        return NULL;
    for (int k = 0; k < 6; k++)
        a[k] = cJSON_AddArrayToObject(o, cols[k]);
    const struct srv_obs *ob = &s->obs;
    size_t first = (ob->hist_next + SRV_HISTORY - ob->hist_n) % SRV_HISTORY;
    for (size_t j = 0; j < ob->hist_n && a[5]; j++) {
        const struct srv_point *p = &ob->hist[(first + j) % SRV_HISTORY];
        s_num(a[0], (double)p->round);
        s_num(a[1], p->time);
        s_num(a[2], p->round_s);
        s_num(a[3], p->loss);
        s_num(a[4], p->acc);
        s_num(a[5], p->mean_loss);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text)
        *len = strlen(text);
    return text;
}
