/* psoworker: a particle of the swarm.
 *
 *   psoworker --connect tcp://head:5555 --name node1 --objective rastrigin --dim 10
 *   psoworker --standalone --objective rastrigin --dim 10
 *
 * Between synchronizations it takes --sync-every local gradient steps; at a
 * sync it pushes its position with its loss through the client library and
 * continues from the position the daemon sends back. With --standalone it
 * runs the same local steps without a daemon (the baseline a swarm must
 * beat). Networks train through worker/train.c; the objectives are the
 * system's self-check.
 *
 * SIGINT and SIGTERM end a run cleanly: the step or the wait in progress is
 * abandoned, the worker says bye (so the round does not wait for it),
 * prints its summary and exits 130 (SIGINT) or 143 (SIGTERM). */
#include <malloc.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/payload.h"
#include "common/log.h"
#include "worker/client/psoclient.h"
#include "common/sig.h"
#include "common/version.h"
#include "common/modelfile.h"
#include "common/wire.h"
#include "worker/optim.h"
#include "common/pool.h"
#include "worker/prepare.h"
#include "worker/psoworker.h"
#include "worker/train.h"

volatile int psoworker_stop;

static void s_on_signal(int sig) { psoworker_stop = sig; }

/* The client library's connection news, in our log. */
static void s_client_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    log_msg(level >= 2 ? LOG_WARN : LOG_INFO, "%s", msg);
}

#undef W

/* --fitness shared: this worker's losses come from the set every worker
 * holds, so it can check another's claimed best (psod --verify-best). */
static void s_offer_verify(struct psoc *c, const struct worker_config *cfg, struct model *m,
                           const struct dataset *holdout, struct train_verify *v)
{
    if (cfg->fitness != 2 || !holdout->n)
        return;
    v->m = m;
    v->set = holdout;
    v->lie = cfg->lie_verdict;
    v->vouch_loss = cfg->lie_loss;
    v->c = c;
    psoc_set_verifier(c, train_verify, v);
}

/* The wire agreed, as --wire reads it. */
static const char *s_spec(const struct psoc_welcome *w, char *buf, size_t len)
{
    if (w->fragments > 1)
        snprintf(buf, len, "frag:%u:%s", w->fragments, psoc_wire_name(w->wire));
    else if (w->density > 0)
        snprintf(buf, len, "topk:%g:%s", w->density, psoc_wire_name(w->wire));
    else
        snprintf(buf, len, "%s", psoc_wire_name(w->wire));
    return buf;
}

int psoworker_client_options(const struct worker_config *cfg, struct psoc_options *po, char *err,
                             size_t errlen)
{
    psoc_options_default(po);
    po->timeout_ms = (int)cfg->timeout_ms;
    po->connect_timeout_ms = (int)cfg->join_timeout_ms;
    po->reconnect_ms = (int)cfg->reconnect_ms;
    po->overlap_mix = cfg->overlap_mix;
    if (psoc_wire_spec(po, cfg->wire_spec) != PSOC_OK) {
        snprintf(err, errlen,
                 "--wire %s: fp32, fp16, bf16, int8, int4, int2, topk:DENSITY[:KIND] with "
                 "0 < DENSITY <= 1 or frag:F[:KIND] with 2 <= F <= 4096",
                 cfg->wire_spec);
        return -1;
    }
    po->log = s_client_log;
    po->stop = &psoworker_stop;
    if (!cfg->curve_secret[0] && !cfg->curve_server[0])
        return 0;
    if (!cfg->curve_secret[0] || !cfg->curve_server[0]) {
        snprintf(err, errlen, "CURVE needs both --curve-secret and --curve-server");
        return -1;
    }
    return psoc_options_curve(po, cfg->curve_secret, cfg->curve_server, err, errlen) == PSOC_OK
               ? 0
               : -1;
}

/* Load a model file into m, checking that it fits. */
static int s_load_weights(struct model *m, const char *path, struct modelfile_info *info, char *err,
                          size_t errlen)
{
    float *w;
    if (modelfile_read(path, info, &w, err, errlen) != 0)
        return -1;
    if (info->param_count != m->n_params || info->layout_hash != model_layout_hash(m)) {
        snprintf(err, errlen,
                 "model file '%s' holds %llu parameters of layout %016llx; model %s has %zu "
                 "of layout %016llx",
                 path, (unsigned long long)info->param_count, (unsigned long long)info->layout_hash,
                 m->name, m->n_params, (unsigned long long)model_layout_hash(m));
        free(w);
        return -1;
    }
    if (payload_count_nonfinite(w, m->n_params)) {
        snprintf(err, errlen, "model file '%s' holds NaN or infinite weights", path);
        free(w);
        return -1;
    }
    memcpy(m->params, w, m->n_params * sizeof(float));
    free(w);
    return 0;
}

/* --eval FILE: the model file says which model and dataset it holds
 * (version 2): take the model from it, and refuse a dataset other than its
 * own. Returns 0 or -1 with err. */
static int s_eval_target(struct worker_config *cfg, int dataset_given, char *err, size_t errlen)
{
    struct modelfile_info info;
    if (modelfile_read_info(cfg->eval, &info, err, errlen) != 0)
        return -1;
    if (!info.model[0] && !cfg->model[0]) {
        snprintf(err, errlen,
                 "model file '%s' (an older version) does not say which model it "
                 "holds: give --model",
                 cfg->eval);
        return -1;
    }
    if (info.model[0] && strncmp(info.model, "objective:", 10) == 0) {
        snprintf(err, errlen, "model file '%.200s' holds a test function (%s), not a network",
                 cfg->eval, info.model);
        return -1;
    }
    if (info.model[0] && cfg->model[0] && strcmp(info.model, cfg->model) != 0) {
        snprintf(err, errlen, "model file '%.200s' holds model %s, not --model %.64s", cfg->eval,
                 info.model, cfg->model);
        return -1;
    }
    if (info.dataset[0] && dataset_given && strcmp(info.dataset, cfg->dataset) != 0) {
        snprintf(err, errlen,
                 "model file '%.200s' was trained on %s, not --dataset %.64s: its "
                 "accuracy there would mean nothing",
                 cfg->eval, info.dataset, cfg->dataset);
        return -1;
    }
    if (info.model[0])
        snprintf(cfg->model, sizeof cfg->model, "%s", info.model);
    if (info.dataset[0])
        snprintf(cfg->dataset, sizeof cfg->dataset, "%s", info.dataset);
    return 0;
}

/* --threads: a count, or auto (the CPUs of our affinity mask); -1 if neither. */
static int s_threads(const char *text)
{
    if (strcmp(text, "auto") == 0)
        return pool_cpus() < MODEL_MAX_THREADS ? pool_cpus() : MODEL_MAX_THREADS;
    char *end;
    long n = strtol(text, &end, 10);
    return end != text && !*end && n >= 1 && n <= MODEL_MAX_THREADS ? (int)n : -1;
}

/* Train a network, alone or as a particle of a swarm. */
static int s_run_model(const struct worker_config *cfg)
{
    char err[512];
    struct model *m = model_new(cfg->model, (int)cfg->batch, err, sizeof err);
    if (!m) {
        log_error("%s", err);
        return 2;
    }
    if (model_set_threads(m, s_threads(cfg->threads), err, sizeof err) != 0) {
        log_error("--threads %s: %s", cfg->threads, err);
        model_destroy(&m);
        return 2;
    }
    struct dataset train, test, holdout;
    struct data_plan plan = {
        .dataset = cfg->dataset,
        .dir = cfg->data_dir,
        .shared_holdout = cfg->fitness == 2 ? (size_t)cfg->holdout : 0,
        .holdout_auto = cfg->fitness_auto,
        .shard_index = (int)cfg->shard_index,
        .shard_count = (int)cfg->shard_count,
        .shard_mode = cfg->shard_mode,
        .shard_classes = (int)cfg->shard_classes,
        .shard_alpha = cfg->shard_alpha,
        .shard_seed = (uint64_t)cfg->shard_seed,
        .shuffle_labels = cfg->shuffle_labels,
        .flip_labels = cfg->flip_labels,
        .label_seed = (uint64_t)cfg->seed * 7919u + (uint64_t)cfg->shard_index,
    };
    if (data_prepare(&plan, &train, &test, &holdout, err, sizeof err) != 0) {
        log_error("%s", err);
        model_destroy(&m);
        return 1;
    }
    if (train.c != m->in_c || train.h != m->in_h || train.w != m->in_w) {
        log_error("model %s takes %dx%dx%d inputs, dataset %s has %dx%dx%d", m->name, m->in_c,
                  m->in_h, m->in_w, cfg->dataset, train.c, train.h, train.w);
        dataset_free(&train), dataset_free(&test), dataset_free(&holdout), model_destroy(&m);
        return 1;
    }
    model_init(m, (uint64_t)cfg->seed ^ (cfg->diverse_init ? psoc_layout_hash(cfg->name) : 0));
    struct modelfile_info info;
    const char *from = cfg->eval[0] ? cfg->eval : cfg->init;
    if (from[0] && s_load_weights(m, from, &info, err, sizeof err) != 0) {
        log_error("%s", err);
        dataset_free(&train), dataset_free(&test), dataset_free(&holdout), model_destroy(&m);
        return 1;
    }
    if (cfg->eval[0]) {
        double loss, acc;
        train_evaluate(m, &test, &loss, &acc);
        printf("psoworker eval %s: model %s dataset %s strategy %s round %llu test loss %.6f "
               "test accuracy %.6f\n",
               cfg->eval, m->name, cfg->dataset, info.strategy, (unsigned long long)info.round,
               loss, acc);
        dataset_free(&train), dataset_free(&test), dataset_free(&holdout), model_destroy(&m);
        return 0;
    }
    if (cfg->fitness == 1 &&
        dataset_split_tail(&train, (size_t)cfg->holdout, &holdout, err, sizeof err) != 0) {
        log_error("%s", err);
        dataset_free(&train), dataset_free(&test), dataset_free(&holdout), model_destroy(&m);
        return 1;
    }
    if (holdout.n)
        log_info("fitness: the loss on %zu held-out samples (%s)", holdout.n,
                 cfg->fitness == 2 ? "the same set on every worker" : "from this worker's shard");
    log_info("model %s (%zu parameters, %d engine thread%s), %s: %zu training samples (shard %ld "
             "of %ld), %zu test",
             m->name, m->n_params, model_threads(m), model_threads(m) > 1 ? "s" : "", cfg->dataset,
             train.n, cfg->shard_index, cfg->shard_count, test.n);
    struct psoc *c = NULL;
    struct psoc_welcome wel = {0};
    struct train_verify vctx;
    int rc = 0;
    if (!cfg->standalone) {
        struct psoc_options po;
        if (psoworker_client_options(cfg, &po, err, sizeof err) != 0 ||
            psoc_open(&c, cfg->connect, cfg->name, &po, err, sizeof err) != PSOC_OK ||
            (s_offer_verify(c, cfg, m, &holdout, &vctx),
             psoc_set_model(
                 c, m->name, cfg->dataset,
                 (const uint32_t[3]){(uint32_t)m->in_c, (uint32_t)m->in_h, (uint32_t)m->in_w}),
             psoc_join(c, m->n_params, model_layout_hash(m), m->params, &wel, err, sizeof err)) !=
                PSOC_OK) {
            log_error("join %s as '%s': %s", cfg->connect, cfg->name, err);
            rc = 1;
        } else {
            char spec[64];
            log_info("joined %s as particle %u at round %llu%s, strategy %s, %s payloads",
                     cfg->connect, wel.particle_id, (unsigned long long)wel.round,
                     wel.rejoined ? " (rejoined)" : "", wel.strategy,
                     s_spec(&wel, spec, sizeof spec));
        }
    }
    struct train_config tc = {(int)cfg->epochs,
                              (int)cfg->batch,
                              cfg->lr,
                              cfg->momentum,
                              cfg->weight_decay,
                              cfg->nesterov,
                              cfg->schedule,
                              cfg->warmup,
                              cfg->step_gamma,
                              (int)cfg->step_epochs,
                              (uint64_t)cfg->seed,
                              (int)cfg->sync_every,
                              cfg->reset_momentum,
                              cfg->metrics[0] ? cfg->metrics : NULL,
                              cfg->progress_interval,
                              (int)cfg->eval_every,
                              cfg->eval_samples,
                              holdout.n ? &holdout : NULL,
                              (int)cfg->delay_ms,
                              &psoworker_stop,
                              cfg->weight_noise,
                              cfg->lie_loss,
                              NULL,
                              cfg->overlap};
    struct attack atk = {0};
    if (rc == 0 && cfg->attack != ATTACK_NONE) {
        if (c && wel.push_gradients) {
            log_error("--attack %s crafts weights; under %s the workers push gradients",
                      attack_names[cfg->attack], wel.strategy);
            rc = 2;
        } else if (attack_init(&atk, cfg->attack,
                               cfg->attack_scale > 0 ? cfg->attack_scale
                                                     : attack_default_scale(cfg->attack),
                               (uint64_t)cfg->seed * 31u + (uint64_t)cfg->shard_index,
                               m->n_params) != 0) {
            log_error("out of memory for --attack");
            rc = 1;
        } else {
            tc.attack = &atk;
            log_warn("--attack %s (strength %g): this worker pushes crafted weights",
                     attack_names[cfg->attack], atk.s);
        }
    }
    struct train_result res;
    if (rc == 0 &&
        train_run(m, &train, &test, &tc, c, c ? &wel : NULL, &res, err, sizeof err) != 0) {
        log_error("%s", err);
        rc = 1;
    }
    if (rc == 0) {
        char tl[LOG_NUM_LEN], ta[LOG_NUM_LEN];
        printf("psoworker %s: model %s dataset %s epochs %ld steps %ld syncs %ld train loss %.6f "
               "test loss %s test accuracy %s time %.1f s samples/s %.0f recoveries %d "
               "resyncs %ld train_s %.2f sync_s %.2f eval_s %.2f%s\n",
               cfg->name, m->name, cfg->dataset, cfg->epochs, res.steps, res.syncs, res.final_loss,
               log_num(tl, "%.6f", res.test_loss), log_num(ta, "%.4f", res.test_acc), res.seconds,
               res.samples_per_s, res.recoveries, res.resyncs,
               res.seconds - res.sync_seconds - res.eval_seconds, res.sync_seconds,
               res.eval_seconds, res.interrupted ? " (interrupted)" : "");
        fflush(stdout);
    }
    if (c && psoworker_stop)
        log_info("stopping on signal %d: saying bye to psod", psoworker_stop);
    psoc_close(&c);
    attack_free(&atk);
    dataset_free(&train), dataset_free(&test), dataset_free(&holdout), model_destroy(&m);
    return rc;
}

static void s_usage(const struct config_table *opts)
{
    printf("psoworker %s: a particle of a psod swarm\n\n"
           "usage: psoworker [--config FILE] [--log-level LEVEL] [--key value ...]\n\noptions:\n",
           PSOD_VERSION);
    config_usage(opts, stdout);
}

int main(int argc, char **argv)
{
    struct worker_config cfg;
    const struct config_table opts[] = {{worker_options, &cfg}, {0}};
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return s_usage(opts), 0;
        if (!strcmp(argv[i], "--help-man")) /* the man page's OPTIONS (make man) */
            return config_man(opts, stdout), 0;
        if (!strcmp(argv[i], "--version"))
            return printf("psoworker %s (protocol %d)\n", PSOD_VERSION, PSOD_PROTOCOL_VERSION), 0;
    }
    const char *level = config_find_arg(argc, argv, "--log-level");
    int lvl = level ? log_level_parse(level) : LOG_INFO;
    if (lvl < 0) {
        fprintf(stderr, "psoworker: unknown log level '%s'\n", level);
        return 2;
    }
    log_init("psoworker", (enum log_level)lvl, stderr);
    /* Positions arrive as one large buffer per sync: keep such buffers in
     * the heap rather than mapping them anew each time (see psod.c). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    if (config_from_argv(opts, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "psoworker: %s\n", err);
        return 2;
    }
    if (!cfg.name[0]) {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(cfg.name, sizeof cfg.name, "%s-%d", host, (int)getpid());
    }
    if (s_threads(cfg.threads) < 0) {
        fprintf(stderr, "psoworker: --threads must be 1 to %d or auto, not '%s'\n",
                MODEL_MAX_THREADS, cfg.threads);
        return 2;
    }
    if (!wire_valid_name(cfg.name)) {
        fprintf(stderr,
                "psoworker: --name must be 1 to %d printable characters without "
                "spaces\n",
                PSOC_NAME_MAX);
        return 2;
    }
    sig_on_stop(s_on_signal);
    if (cfg.eval[0] && s_eval_target(&cfg, config_find_arg(argc, argv, "--dataset") != NULL, err,
                                     sizeof err) != 0) {
        fprintf(stderr, "psoworker: %s\n", err);
        return 1;
    }
    if (cfg.fitness == 3) { /* auto */
        cfg.fitness = cfg.shard_count > 1 && cfg.shard_mode != PSOC_SHARD_IID ? 2 : 0;
        cfg.fitness_auto = 1;
    }
    if (cfg.model[0]) {
        int rc = s_run_model(&cfg);
        return psoworker_stop ? 128 + psoworker_stop : rc;
    }
    int rc = psoworker_objective(&cfg);
    return psoworker_stop ? 128 + psoworker_stop : rc;
}
