/* psoworker: a particle of the swarm.
 *
 *   psoworker --connect tcp://head:5555 --name node1 --objective rastrigin --dim 10
 *   psoworker --standalone --objective rastrigin --dim 10
 *
 * Between synchronizations it takes --sync-every local gradient steps; at a
 * sync it pushes its position with its loss through the client library and
 * continues from the position the daemon sends back. With --standalone it
 * runs the same local steps without a daemon (the baseline a swarm must
 * beat). The neural-network engine arrives with the training issue; the
 * objectives are the system's self-check. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/psoclient.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "common/version.h"
#include "worker/objective.h"

struct worker_config {
    char connect[CONF_STRLEN];
    char name[CONF_STRLEN];
    char objective[CONF_STRLEN];
    long dim;
    long sync_every;
    long rounds;
    double lr;
    double grad_clip;
    long seed;
    long timeout_ms;
    long progress_every;
    int standalone;
};

static const struct config_option *s_options(struct worker_config *c)
{
    static struct config_option t[16];
    struct config_option opts[] = {
        {"connect", CONF_STRING, c->connect, "tcp://127.0.0.1:5555", 1, 0, "psod endpoint", NULL},
        {"name", CONF_STRING, c->name, "", 1, 0,
         "this worker's stable name in the swarm [hostname-pid]", NULL},
        {"objective", CONF_STRING, c->objective, "rastrigin", 1, 0,
         "test function: sphere, rosenbrock, rastrigin", NULL},
        {"dim", CONF_INT, &c->dim, "10", 1, 1 << 28, "dimensions of the objective", NULL},
        {"sync-every", CONF_INT, &c->sync_every, "4", 1, 1 << 30,
         "local gradient steps between synchronizations", NULL},
        {"rounds", CONF_INT, &c->rounds, "100", 1, 1e12, "synchronizations to run", NULL},
        {"lr", CONF_DOUBLE, &c->lr, "0.001", 0, 1e6, "gradient step size", NULL},
        {"grad-clip", CONF_DOUBLE, &c->grad_clip, "0", 0, 1e30,
         "clip the gradient to this L2 norm, 0 = no clipping", NULL},
        {"seed", CONF_INT, &c->seed, "1", 0, 9.2e18,
         "seed of the initial position (mixed with the name)", NULL},
        {"timeout-ms", CONF_INT, &c->timeout_ms, "120000", 100, 1e9,
         "how long to wait for the daemon's answer", NULL},
        {"progress-every", CONF_INT, &c->progress_every, "0", 0, 1e12,
         "log a progress line every N rounds, 0 = only at the end", NULL},
        {"standalone", CONF_BOOL, &c->standalone, "no", 1, 0,
         "train without a daemon", NULL},
        {0},
    };
    memcpy(t, opts, sizeof opts);
    return t;
}

/* Local training: `steps` gradient steps from x. Returns f at the end. */
static double s_train(const struct objective *obj, const struct worker_config *cfg, float *x,
                      float *grad, long steps)
{
    size_t d = (size_t)cfg->dim;
    for (long s = 0; s < steps; s++) {
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

static void s_usage(const struct config_option *opts)
{
    printf("psoworker %s: a particle of a psod swarm\n\n"
           "usage: psoworker [--config FILE] [--log-level LEVEL] [--key value ...]\n\noptions:\n",
           PSOD_VERSION);
    config_usage(opts, stdout);
}

int main(int argc, char **argv)
{
    struct worker_config cfg;
    const struct config_option *opts = s_options(&cfg);
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return s_usage(opts), 0;
        if (!strcmp(argv[i], "--version"))
            return printf("psoworker %s (protocol 1)\n", PSOD_VERSION), 0;
    }
    const char *level = config_find_arg(argc, argv, "--log-level");
    int lvl = level ? log_level_parse(level) : LOG_INFO;
    if (lvl < 0) {
        fprintf(stderr, "psoworker: unknown log level '%s'\n", level);
        return 2;
    }
    log_init("psoworker", (enum log_level)lvl, stderr);
    if (config_from_argv(opts, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "psoworker: %s\n", err);
        return 2;
    }
    if (!cfg.name[0]) {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(cfg.name, sizeof cfg.name, "%s-%d", host, (int)getpid());
    }
    const struct objective *obj = objective_find(cfg.objective);
    if (!obj) {
        fprintf(stderr, "psoworker: unknown objective '%s' (choose %s)\n", cfg.objective,
                objective_names());
        return 2;
    }
    size_t d = (size_t)cfg.dim;
    float *x = malloc(d * sizeof *x), *grad = malloc(d * sizeof *grad);
    if (!x || !grad) {
        fprintf(stderr, "psoworker: out of memory for %zu dimensions\n", d);
        return 1;
    }
    /* The start depends on the seed and the name, so particles differ. */
    struct rng rng;
    rng_seed(&rng, (uint64_t)cfg.seed ^ psoc_layout_hash(cfg.name));
    for (size_t i = 0; i < d; i++)
        x[i] = (float)(obj->lo + (obj->hi - obj->lo) * rng_double(&rng));

    char layout[128];
    snprintf(layout, sizeof layout, "objective:%s:%zu", obj->name, d);
    double t0 = time_now_s(), loss = obj->eval(x, NULL, d), best = INFINITY;
    int rc = 0;
    long r;
    if (cfg.standalone) {
        for (r = 0; r < cfg.rounds; r++) {
            loss = s_train(obj, &cfg, x, grad, cfg.sync_every);
            if (loss < best)
                best = loss;
            if (cfg.progress_every && (r + 1) % cfg.progress_every == 0)
                log_info("step %ld: loss %.6g", (r + 1) * cfg.sync_every, loss);
        }
    } else {
        struct psoc_options po;
        psoc_options_default(&po);
        po.timeout_ms = (int)cfg.timeout_ms;
        po.connect_timeout_ms = (int)cfg.timeout_ms;
        struct psoc *c;
        if (psoc_open(&c, cfg.connect, cfg.name, &po, err, sizeof err) != PSOC_OK) {
            log_error("%s", err);
            free(x);
            free(grad);
            return 1;
        }
        struct psoc_welcome wel;
        if (psoc_join(c, d, psoc_layout_hash(layout), x, &wel, err, sizeof err) != PSOC_OK) {
            log_error("join %s as '%s': %s", cfg.connect, cfg.name, err);
            psoc_close(&c);
            free(x);
            free(grad);
            return 1;
        }
        log_info("joined %s as particle %u at round %llu%s", cfg.connect, wel.particle_id,
                 (unsigned long long)wel.round, wel.rejoined ? " (rejoined)" : "");
        struct psoc_position pos = {0};
        for (r = 0; r < cfg.rounds; r++) {
            loss = s_train(obj, &cfg, x, grad, cfg.sync_every);
            if (psoc_sync(c, x, loss, (uint64_t)cfg.sync_every, &pos, err, sizeof err) !=
                PSOC_OK) {
                log_error("sync at round %ld: %s", r, err);
                rc = 1;
                break;
            }
            best = pos.global_best_loss;
            if (cfg.progress_every && (r + 1) % cfg.progress_every == 0)
                log_info("round %llu: loss %.6g, personal best %.6g, global best %.6g",
                         (unsigned long long)pos.round, loss, pos.personal_best_loss,
                         pos.global_best_loss);
        }
        psoc_close(&c);
    }
    double secs = time_now_s() - t0;
    printf("psoworker %s: objective %s dim %zu rounds %ld loss %.9g best %.9g time %.3f s\n",
           cfg.name, obj->name, d, r, loss, best, secs);
    fflush(stdout);
    free(x);
    free(grad);
    return rc;
}
