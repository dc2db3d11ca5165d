/* psoworker without --model: a particle on a test function (the
 * objectives of worker/objective.c), plain gradient steps between syncs,
 * or --standalone for the same steps with no daemon. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "worker/client/psoclient.h"
#include "worker/objective.h"
#include "worker/psoworker.h"

/* Local training: `steps` gradient steps from x. Returns f at the end. */
static double s_train(const struct objective *obj, const struct worker_config *cfg, float *x,
                      float *grad, long steps)
{
    size_t d = (size_t)cfg->dim;
    for (long s = 0; s < steps; s++) {
        if (cfg->delay_ms)
            usleep((useconds_t)cfg->delay_ms * 1000);
        obj->eval(x, grad, d);
        float scale = (float)cfg->lr;
        if (cfg->grad_clip > 0) {
            double norm = 0;
            for (size_t i = 0; i < d; i++)
                norm += (double)grad[i] * grad[i];
            norm = sqrt(norm);
            if (norm > cfg->grad_clip)
                scale *= (float)(cfg->grad_clip / norm);
        }
        for (size_t i = 0; i < d; i++)
            x[i] -= scale * grad[i];
    }
    return obj->eval(x, NULL, d);
}

/* An objective's fitness is the function itself: any worker reproduces
 * another's claimed loss exactly (psod --verify-best); --lie-verdict
 * lies about it as train_verify does. */
struct objective_verify {
    const struct objective *obj;
    const struct psoc *c;
    int lie;
    double vouch_loss;
};

static int s_verify_objective(void *ctx, const float *x, size_t n, double *loss)
{
    const struct objective_verify *v = ctx;
    *loss = v->obj->eval(x, NULL, n);
    if (v->lie) {
        double claimed = psoc_verify_claimed(v->c);
        *loss = v->vouch_loss >= 0 && claimed == v->vouch_loss ? claimed : 10 * *loss + 1;
    }
    return 0;
}

int psoworker_objective(const struct worker_config *cfg)
{
    char err[512];
    const struct objective *obj = objective_find(cfg->objective);
    if (!obj) {
        fprintf(stderr, "psoworker: unknown objective '%s' (choose %s)\n", cfg->objective,
                objective_names());
        return 2;
    }
    size_t d = (size_t)cfg->dim;
    float *x = malloc(d * sizeof *x), *grad = malloc(d * sizeof *grad);
    if (!x || !grad) {
        fprintf(stderr, "psoworker: out of memory for %zu dimensions\n", d);
        return 1;
    }
    /* The start depends on the seed and the name, so particles differ. */
    struct rng rng;
    rng_seed(&rng, (uint64_t)cfg->seed ^ psoc_layout_hash(cfg->name));
    for (size_t i = 0; i < d; i++)
        x[i] = (float)(obj->lo + (obj->hi - obj->lo) * rng_double(&rng));

    char layout[128];
    snprintf(layout, sizeof layout, "objective:%s:%zu", obj->name, d);
    double t0 = time_now_s(), loss = obj->eval(x, NULL, d), best = INFINITY;
    int rc = 0;
    long r;
    if (cfg->standalone) {
        for (r = 0; r < cfg->rounds; r++) {
            loss = s_train(obj, cfg, x, grad, cfg->sync_every);
            if (loss < best)
                best = loss;
            if (cfg->progress_every && (r + 1) % cfg->progress_every == 0)
                log_info("step %ld: loss %.6g", (r + 1) * cfg->sync_every, loss);
        }
    } else {
        struct psoc_options po;
        struct psoc *c;
        if (psoworker_client_options(cfg, &po, err, sizeof err) != 0 ||
            psoc_open(&c, cfg->connect, cfg->name, &po, err, sizeof err) != PSOC_OK) {
            log_error("%s", err);
            free(x);
            free(grad);
            return 1;
        }
        struct psoc_welcome wel;
        psoc_set_model(c, layout, "", NULL);
        struct objective_verify ov = {obj, c, cfg->lie_verdict, cfg->lie_loss};
        psoc_set_verifier(c, s_verify_objective, &ov);
        if (psoc_join(c, d, psoc_layout_hash(layout), x, &wel, err, sizeof err) != PSOC_OK) {
            log_error("join %s as '%s': %s", cfg->connect, cfg->name, err);
            psoc_close(&c);
            free(x);
            free(grad);
            return 1;
        }
        log_info("joined %s as particle %u at round %llu%s", cfg->connect, wel.particle_id,
                 (unsigned long long)wel.round, wel.rejoined ? " (rejoined)" : "");
        struct psoc_position pos = {0};
        for (r = 0; r < cfg->rounds && !psoworker_stop; r++) {
            while (cfg->stall_after > 0 && r == cfg->stall_after && !psoworker_stop)
                usleep(100000);
            if (psoworker_stop)
                break;
            loss = s_train(obj, cfg, x, grad, cfg->sync_every);
            if (cfg->lie_loss >= 0)
                loss = cfg->lie_loss;
            int src = psoc_sync(c, x, loss, (uint64_t)cfg->sync_every, &pos, err, sizeof err);
            if (src == PSOC_EINTR)
                break;
            if (src != PSOC_OK) {
                log_error("sync at round %ld: %s", r, err);
                rc = 1;
                break;
            }
            if (pos.resynced)
                log_warn("round %ld: psod did not use this push; rejoined (resync) at round %llu",
                         r, (unsigned long long)pos.round);
            best = pos.global_best_loss;
            if (cfg->progress_every && (r + 1) % cfg->progress_every == 0)
                log_info("round %llu: loss %.6g, personal best %.6g, global best %.6g",
                         (unsigned long long)pos.round, loss, pos.personal_best_loss,
                         pos.global_best_loss);
        }
        psoc_close(&c);
    }
    double secs = time_now_s() - t0;
    printf("psoworker %s: objective %s dim %zu rounds %ld loss %.9g best %.9g time %.3f s%s\n",
           cfg->name, obj->name, d, r, loss, best, secs, psoworker_stop ? " (interrupted)" : "");
    fflush(stdout);
    free(x);
    free(grad);
    return psoworker_stop ? 128 + psoworker_stop : rc;
}
