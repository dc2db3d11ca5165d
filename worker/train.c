/* Training loop: see train.h. */
#include "worker/train.h"

#include "common/rng.h"
#include "common/payload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rng.h"
#include "common/wire.h"
#include "common/timeutil.h"
#include "worker/optim.h"

void train_evaluate(struct model *m, const struct dataset *d, double *loss, double *acc)
{
    size_t per = (size_t)d->c * d->h * d->w;
    double total = 0;
    long right = 0;
    for (size_t i = 0; i < d->n; i += (size_t)m->max_batch) {
        int B = d->n - i < (size_t)m->max_batch ? (int)(d->n - i) : m->max_batch;
        int correct;
        total += model_eval(m, d->x + i * per, d->y + i, B, &correct) * B;
        right += correct;
    }
    *loss = d->n ? total / (double)d->n : NAN;
    *acc = d->n ? (double)right / (double)d->n : NAN;
}

static void s_metrics(FILE *f, const char *kind, int epoch, long step, double train_loss,
                      double train_acc, double test_loss, double test_acc, double sps, double t)
{
    if (!f)
        return;
    fprintf(f, "{\"kind\":\"%s\",\"epoch\":%d,\"step\":%ld,\"train_loss\":%.6g,\"train_acc\":%.6g",
            kind, epoch, step, train_loss, train_acc);
    if (!isnan(test_acc))
        fprintf(f, ",\"test_loss\":%.6g,\"test_acc\":%.6g", test_loss, test_acc);
    fprintf(f, ",\"samples_per_s\":%.1f,\"time\":%.3f}\n", sps, t);
    fflush(f);
}

/* What a sync reports besides the vector, and what it learned. */
struct sync_state {
    long syncs;
    double pos_acc; /* accuracy of the last position received, NaN if none */
    uint64_t pos_round;
    uint64_t round;        /* the round the next push is for */
    double eval_s, sync_s; /* evaluating (reports and epoch ends); inside psoc_sync */
    int resynced;          /* the last sync's push was dropped: we rejoined */
    long resyncs;
    int evaluator;           /* psod named us to evaluate the global model */
    double lr, momentum;     /* psod --hyper: what to train with until the next sync; NaN: none */
    int eval_every;          /* resolved from cfg->eval_every */
    float *own;              /* this worker's weights while it evaluates the global model */
    struct dataset eval_set; /* a view of the first eval_samples test samples */
};

/* One synchronization: fitness, optional evaluations (on the report
 * subset), the push and pull. Returns the client library's code. */
static int s_sync(struct model *m, const struct train_config *cfg, struct psoc *c,
                  const struct psoc_welcome *wel, struct sync_state *ss, double interval_loss,
                  uint64_t samples, char *err, size_t errlen)
{
    int eval = ss->eval_every > 0 && (ss->syncs + 1) % ss->eval_every == 0;
    const struct dataset *test = &ss->eval_set;
    double t0 = time_now_s(), tl;
    struct psoc_report r = {interval_loss, samples, NAN, ss->pos_acc, ss->pos_round};
    if (cfg->holdout && !wel->push_gradients) {
        double acc;
        train_evaluate(m, cfg->holdout, &r.loss, &acc);
    }
    if (cfg->lie_loss >= 0)
        r.loss = cfg->lie_loss;
    /* Strategies whose positions are the global model: the evaluation that
     * matters is of what we receive (below); else of what we push. */
    if (eval && !wel->positions_global)
        train_evaluate(m, test, &tl, &r.accuracy);
    ss->eval_s += time_now_s() - t0;
    struct psoc_position pos;
    t0 = time_now_s();
    int rc;
    const int overlap = cfg->overlap && !wel->push_gradients;
    if (overlap) {
        /* The position of the sync begun at the last sync point, with the
         * steps taken since on top; this push goes once it is taken in
         * (below), in flight while the next interval trains. */
        int had = psoc_sync_pending(c);
        rc = had ? psoc_sync_end(c, m->params, &pos, err, errlen) : PSOC_OK;
        ss->sync_s += time_now_s() - t0;
        if (rc == PSOC_OK && !had) { /* the first: nothing has arrived yet */
            rc = psoc_sync_begin(c, m->params, &r, err, errlen);
            ss->syncs++;
            return rc;
        }
    } else {
        rc = psoc_sync_ex(c, m->params, wel->push_gradients ? m->grads : NULL, &r, &pos, err,
                          errlen);
        ss->sync_s += time_now_s() - t0;
    }
    if (rc != PSOC_OK)
        return rc;
    ss->syncs++;
    ss->round = pos.round;
    ss->resynced = pos.resynced;
    if (pos.resynced) {
        ss->resyncs++;
        log_warn("psod did not use this push (round closed without it, eviction, or a "
                 "daemon restart): rejoined after %d attempt%s, continuing from the particle's "
                 "position at round %llu",
                 pos.resynced, pos.resynced == 1 ? "" : "s", (unsigned long long)pos.round);
    }
    ss->pos_acc = NAN;
    ss->evaluator = pos.evaluator;
    ss->lr = pos.lr;
    ss->momentum = pos.momentum;
    /* Strategies whose positions are the global model: one worker (psod's
     * choice) evaluates it for the report; the others would repeat it. */
    if (eval && wel->positions_global && pos.evaluator) {
        t0 = time_now_s();
        train_evaluate(m, test, &tl, &ss->pos_acc);
        ss->pos_round = pos.round;
        ss->eval_s += time_now_s() - t0;
    } else if (eval && pos.evaluator && !wel->push_gradients && wel->wire == PSOC_WIRE_FP32) {
        /* Positions are particles (pso): the evaluator of the report fetches
         * the global model, evaluates it, and goes back to its own weights,
         * so the global model's accuracy is known all through the run. Not
         * under a compressed wire: the float32 model would cost more bytes
         * than the compression saves. */
        t0 = time_now_s();
        size_t bytes = m->n_params * sizeof(float);
        if (!ss->own)
            ss->own = malloc(bytes);
        char why[256];
        if (ss->own) {
            memcpy(ss->own, m->params, bytes);
            if (psoc_fetch_model(c, 0, m->params, NULL, NULL, 0, why, sizeof why) == PSOC_OK) {
                train_evaluate(m, test, &tl, &ss->pos_acc);
                ss->pos_round = pos.round;
            } else {
                log_debug("no global model to evaluate: %s", why);
            }
            memcpy(m->params, ss->own, bytes);
        }
        ss->eval_s += time_now_s() - t0;
    }
    if (overlap) {
        t0 = time_now_s();
        rc = psoc_sync_begin(c, m->params, &r, err, errlen);
        ss->sync_s += time_now_s() - t0;
        return rc;
    }
    return 0;
}

/* A non-finite loss or weights. In a swarm, the worker starts the interval
 * again, momentum cleared, from psod's safe model: the verified global
 * best or the robust aggregate (psoc_fetch_model), never from the position
 * that may have led here (a bad worker's pull can poison it); when psod has
 * none yet, from that last position (the daemon would refuse non-finite
 * weights anyway). An attacker goes back to its own honest weights. Alone,
 * under ssgd (the weights are the daemon's), or too often, it stops. */
static int s_recover(struct model *m, struct psoc *c, const struct train_config *cfg, float *anchor,
                     int grads_only, struct sgd *opt, int *recoveries, double loss, long step,
                     char *err, size_t errlen)
{
    /* An attacker's crafted position diverges by design: it never gives up. */
    if (!anchor || grads_only || (!cfg->attack && ++*recoveries > TRAIN_MAX_RECOVERIES)) {
        snprintf(err, errlen, "training diverged at step %ld: loss %g (learning rate too high?)",
                 step, loss);
        return -1;
    }
    sgd_reset(opt);
    if (cfg->attack && attack_recover(cfg->attack, m->params)) {
        log_debug("training diverged at step %ld (loss %g): back to this attacker's own honest "
                  "weights",
                  step, loss);
        memcpy(anchor, m->params, m->n_params * sizeof(float)); /* its change starts there */
        return 0;
    }
    char kind[64], why[256];
    double gl = NAN;
    if (c &&
        psoc_fetch_model(c, 1, m->params, &gl, kind, sizeof kind, why, sizeof why) == PSOC_OK &&
        !payload_count_nonfinite(m->params, m->n_params)) {
        log_warn("training diverged at step %ld (loss %g): back to psod's %s (global loss %.4g), "
                 "not to the position that led here; momentum cleared (recovery %d of at most %d)",
                 step, loss, kind, gl, *recoveries, TRAIN_MAX_RECOVERIES);
        return 0;
    }
    log_warn("training diverged at step %ld (loss %g): back to the last position from psod (%s), "
             "momentum cleared (recovery %d of at most %d)",
             step, loss, c ? why : "no daemon", *recoveries, TRAIN_MAX_RECOVERIES);
    memcpy(m->params, anchor, m->n_params * sizeof(float));
    return 0;
}

int train_verify(void *ctx, const float *weights, size_t n, double *loss)
{
    struct train_verify *v = ctx;
    struct model *m = v->m;
    if (n != m->n_params)
        return -1;
    float *own = malloc(n * sizeof(float));
    if (!own)
        return -1;
    memcpy(own, m->params, n * sizeof(float));
    memcpy(m->params, weights, n * sizeof(float));
    double acc;
    train_evaluate(m, v->set, loss, &acc);
    memcpy(m->params, own, n * sizeof(float));
    free(own);
    if (v->lie) {
        double claimed = v->c ? psoc_verify_claimed(v->c) : NAN;
        *loss = v->vouch_loss >= 0 && claimed == v->vouch_loss ? claimed : 10 * *loss + 1;
    }
    return 0;
}

/* A faulty worker's weights (--weight-noise): x += N(0, sigma^2), seeded. */
static void s_add_noise(float *x, size_t n, double sigma, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sigma * rng_normal(&r));
}

int train_run(struct model *m, const struct dataset *train, const struct dataset *test,
              const struct train_config *cfg, struct psoc *c, const struct psoc_welcome *wel,
              struct train_result *out, char *err, size_t errlen)
{
    const int grads_only = c && wel && wel->push_gradients;
    const int sync_every = grads_only ? 1 : cfg->sync_every;
    struct sync_state ss = {.pos_acc = NAN,
                            .round = wel ? wel->round : 0,
                            .eval_set = *test,
                            .lr = NAN,
                            .momentum = NAN};
    ss.eval_every =
        cfg->eval_every >= 0 ? cfg->eval_every : (TRAIN_EVAL_STEPS + sync_every - 1) / sync_every;
    if (cfg->eval_samples > 0 && (size_t)cfg->eval_samples < test->n)
        ss.eval_set.n = (size_t)cfg->eval_samples;
    const int B = cfg->batch;
    const long per_epoch = (long)(train->n / (size_t)B); /* drop the last partial batch */
    if (per_epoch < 1) {
        snprintf(err, errlen, "%zu training samples is less than one batch of %d", train->n, B);
        return -1;
    }
    memset(out, 0, sizeof *out);
    size_t per = (size_t)train->c * train->h * train->w;
    size_t *order = malloc(train->n * sizeof *order);
    float *x = malloc((size_t)B * per * sizeof(float));
    uint8_t *y = malloc((size_t)B);
    struct sgd opt;
    float *anchor = NULL;
    FILE *mf = NULL;
    int rc = -1;
    if (!order || !x || !y ||
        sgd_init(&opt, m->n_params, cfg->momentum, cfg->weight_decay, cfg->nesterov) != 0) {
        snprintf(err, errlen, "out of memory");
        free(order), free(x), free(y);
        return -1;
    }
    if (cfg->metrics && cfg->metrics[0] && !(mf = fopen(cfg->metrics, "w"))) {
        snprintf(err, errlen, "cannot write metrics file '%s'", cfg->metrics);
        goto done;
    }
    struct lr_plan plan = {
        (enum lr_schedule)cfg->schedule,    cfg->lr,        cfg->warmup, per_epoch * cfg->epochs,
        (long)cfg->step_epochs * per_epoch, cfg->step_gamma};
    double t0 = time_now_s(), next_progress = t0 + cfg->progress_s;
    long step = 0, total_steps = per_epoch * cfg->epochs;
    /* A worker that rejoins its particle picks its schedule up where its
     * pushes left it, instead of starting the epochs over. */
    if (wel && wel->rejoined && wel->pushes > 0) {
        long resume = (long)wel->pushes * sync_every;
        step = resume < total_steps ? resume : total_steps;
        log_info("rejoined after %llu pushes: resuming at step %ld of %ld (epoch %ld)",
                 (unsigned long long)wel->pushes, step, total_steps, step / per_epoch + 1);
    }
    out->start_step = step;
    if (wel && isfinite(wel->lr)) {
        plan.base = wel->lr;
        opt.momentum = wel->momentum;
        log_info("psod --hyper: training with learning rate %.4g, momentum %.3f until it moves "
                 "them",
                 wel->lr, wel->momentum);
    }
    double interval_loss = 0;
    int interval_n = 0, recoveries = 0;
    /* The last position from the daemon, to come back to after divergence. */
    if (c && !grads_only) {
        if (!(anchor = malloc(m->n_params * sizeof(float)))) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        memcpy(anchor, m->params, m->n_params * sizeof(float));
    }
    if (cfg->attack)
        attack_start(cfg->attack, m->params);
    double epoch_loss = 0, test_loss = NAN, test_acc = NAN;
    int interrupted = 0;
    for (int epoch = (int)(step / per_epoch); epoch < cfg->epochs && !interrupted; epoch++) {
        dataset_permutation(order, train->n, cfg->seed * 1000003u + (uint64_t)epoch);
        epoch_loss = 0;
        long epoch_right = 0, first = step - (long)epoch * per_epoch;
        for (long s = first; s < per_epoch; s++, step++) {
            if (cfg->stop && *cfg->stop) {
                interrupted = 1;
                break;
            }
            dataset_batch(train, order, (size_t)s * B, B, x, y);
            int correct;
            double loss = model_step(m, x, y, B, &correct);
            if (!isfinite(loss) && s_recover(m, c, cfg, anchor, grads_only, &opt, &recoveries, loss,
                                             step, err, errlen) != 0)
                goto done;
            if (!isfinite(loss)) {
                interval_loss = 0;
                interval_n = 0;
                continue;
            }
            if (!grads_only) {
                sgd_step(&opt, m->params, m->grads, lr_at(&plan, step));
                if (cfg->attack)
                    attack_step(cfg->attack, m->params);
            }
            if (cfg->delay_ms)
                usleep((useconds_t)cfg->delay_ms * 1000);
            epoch_loss += loss;
            epoch_right += correct;
            interval_loss += loss;
            interval_n++;
            /* Sync every sync_every steps, and after the last step so the
             * run ends on the daemon's position. */
            if (c && (interval_n == sync_every || step == total_steps - 1)) {
                /* The step can overflow the weights even when its loss was
                 * finite; the daemon would refuse them. */
                if (!grads_only && payload_count_nonfinite(m->params, m->n_params)) {
                    if (s_recover(m, c, cfg, anchor, grads_only, &opt, &recoveries, NAN, step, err,
                                  errlen) != 0)
                        goto done;
                    interval_loss = 0;
                    interval_n = 0;
                    continue;
                }
                if (cfg->weight_noise > 0 && !grads_only)
                    s_add_noise(m->params, m->n_params, cfg->weight_noise,
                                cfg->seed * 1000003u + (uint64_t)step);
                if (cfg->attack && anchor)
                    attack_apply(cfg->attack, m->params, anchor, ss.round);
                int src = s_sync(m, cfg, c, wel, &ss, interval_loss / interval_n,
                                 (uint64_t)interval_n * (uint64_t)B, err, errlen);
                if (src == PSOC_EINTR) {
                    interrupted = 1;
                    break;
                }
                if (src != PSOC_OK)
                    goto done;
                if (cfg->reset_momentum)
                    sgd_reset(&opt);
                if (isfinite(ss.lr) && isfinite(ss.momentum)) {
                    if (ss.lr != plan.base || ss.momentum != opt.momentum)
                        log_debug("psod --hyper: learning rate %.4g, momentum %.3f from round "
                                  "%llu",
                                  ss.lr, ss.momentum, (unsigned long long)ss.round);
                    plan.base = ss.lr;
                    opt.momentum = ss.momentum;
                }
                if (anchor)
                    memcpy(anchor, m->params, m->n_params * sizeof(float));
                if (cfg->attack)
                    attack_start(cfg->attack, m->params);
                interval_loss = 0;
                interval_n = 0;
            }
            double now = time_now_s();
            if (cfg->progress_s > 0 && now >= next_progress) {
                double sps = (double)(step + 1) * B / (now - t0);
                double left = (double)(total_steps - step - 1) * B / sps;
                log_info(
                    "epoch %d/%d step %ld/%ld loss %.4f acc %.2f%% %.0f samples/s, %.0f s left",
                    epoch + 1, cfg->epochs, s + 1, per_epoch, epoch_loss / (double)(s + 1),
                    100.0 * (double)epoch_right / ((double)(s + 1) * B), sps, left);
                next_progress = now + cfg->progress_s;
            }
        }
        if (interrupted)
            break;
        /* In a swarm, epochs before the last are evaluated on the report
         * subset; the last on the whole test set. */
        int last = epoch == cfg->epochs - 1;
        if (last && c && psoc_sync_pending(c)) { /* the last sync's position, before the end */
            struct psoc_position pos;
            double t1 = time_now_s();
            int erc = psoc_sync_end(c, m->params, &pos, err, errlen);
            ss.sync_s += time_now_s() - t1;
            if (erc == PSOC_OK)
                ss.round = pos.round;
            else
                log_warn("the last sync in flight: %s", err);
        }
        double now = time_now_s();
        train_evaluate(m, c && !last ? &ss.eval_set : test, &test_loss, &test_acc);
        ss.eval_s += time_now_s() - now;
        double sps = (double)step * B / (now - t0);
        log_info("epoch %d/%d done: train loss %.4f acc %.2f%%, test loss %.4f acc %.2f%%, "
                 "%.0f samples/s",
                 epoch + 1, cfg->epochs, epoch_loss / per_epoch,
                 100.0 * (double)epoch_right / ((double)per_epoch * B), test_loss, 100 * test_acc,
                 sps);
        s_metrics(mf, "epoch", epoch + 1, step, epoch_loss / per_epoch,
                  (double)epoch_right / ((double)per_epoch * B), test_loss, test_acc, sps,
                  now - t0);
    }
    out->seconds = time_now_s() - t0;
    out->steps = step;
    out->syncs = ss.syncs;
    out->eval_seconds = ss.eval_s;
    out->sync_seconds = ss.sync_s;
    out->recoveries = recoveries;
    out->resyncs = ss.resyncs;
    if (c)
        psoc_set_final(c, test_acc, ss.round);
    if (wel && isfinite(wel->lr))
        log_info("psod --hyper: the run ended with learning rate %.4g, momentum %.3f", plan.base,
                 opt.momentum);
    out->final_loss = epoch_loss / per_epoch;
    out->test_loss = test_loss;
    out->test_acc = test_acc;
    out->samples_per_s = (double)(step - out->start_step) * B / out->seconds;
    out->interrupted = interrupted;
    rc = 0;
done:
    free(anchor);
    free(ss.own);
    if (mf)
        fclose(mf);
    sgd_free(&opt);
    free(order), free(x), free(y);
    return rc;
}
