/* What a closed round leaves behind: its line in the --metrics file and
 * its times and losses in the histograms and the history ring that
 * /metrics and the status page show (observe/). A low file: it reads the
 * daemon's state and the strategy's answers, and calls nothing above it. */
#include "server/server_int.h"

#include <math.h>
#include <stdio.h>

/* Upper bounds of the time histograms, seconds: a loopback round of a
 * small model takes about a millisecond, a round on a slow link minutes. */
const double srv_hist_bounds[SRV_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};

static void s_hist_add(struct srv_hist *h, double v)
{
    if (!isfinite(v) || v < 0)
        return;
    int b = 0;
    while (b < SRV_HIST_BUCKETS && v > srv_hist_bounds[b])
        b++;
    h->count[b]++;
    h->sum += v;
}

void srv_observe_round(struct server *s, double now, double update_s, double wait_s)
{
    struct srv_obs *o = &s->obs;
    s_hist_add(&o->round_h, s->last_round_seconds);
    s_hist_add(&o->wait_h, wait_s);
    s_hist_add(&o->update_h, update_s);
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < s->count; i++)
        if (s->round_x[i] && isfinite(s->round_loss[i])) {
            sum += s->round_loss[i];
            n++;
        }
    struct srv_point *p = &o->hist[o->hist_next];
    p->round = s->round;
    p->time = now - s->started;
    p->round_s = s->last_round_seconds;
    p->loss = s->ops->global_loss(s->st);
    p->acc = s->g_acc;
    p->mean_loss = n ? sum / n : NAN;
    o->hist_next = (o->hist_next + 1) % SRV_HISTORY;
    if (o->hist_n < SRV_HISTORY)
        o->hist_n++;
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
    fprintf(f, "{\"round\":%llu,\"time\":%.4f", (unsigned long long)s->round, now - s->started);
    s_json_double(f, "round_s", s->last_round_seconds);
    s_json_double(f, "wait_s", wait_s);
    s_json_double(f, "update_s", update_s);
    s_json_double(f, "global_loss", s->ops->global_loss(s->st));
    s_json_double(f, "global_acc", s->g_acc);
    fprintf(f,
            ",\"global_acc_round\":%llu,\"global_particle\":%d,\"bytes_in\":%llu,"
            "\"bytes_out\":%llu,\"particles\":[",
            (unsigned long long)s->g_acc_round, s->ops->global_particle(s->st),
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out);
    for (size_t i = 0; i < s->count; i++) {
        struct member *mb = &s->m[i];
        fprintf(f, "%s{\"id\":%zu,\"pushed\":%d", i ? "," : "", i, s->round_x[i] != NULL);
        s_json_double(f, "loss", s->round_x[i] ? s->round_loss[i] : NAN);
        s_json_double(f, "acc", s->round_x[i] ? mb->push_acc : NAN);
        s_json_double(f, "best_loss", s->ops->personal_best_loss(s->st, (int)i));
        fputc('}', f);
    }
    fputs("]}\n", f);
    fflush(f);
}
