/* psoworker's configuration: the struct its options fill, and the option
 * table (psoworker_opts.c; --help, --help-man and the man page come from
 * it), and what psoworker.c and psoworker_objective.c share. */
#ifndef PSOD_WORKER_PSOWORKER_H
#define PSOD_WORKER_PSOWORKER_H

#include <stddef.h>

#include "common/config.h"

struct worker_config {
    char model[CONF_STRLEN];
    char wire_spec[CONF_STRLEN]; /* --wire: a kind, topk:, frag: */
    char dataset[CONF_STRLEN];
    char data_dir[CONF_STRLEN];
    char metrics[CONF_STRLEN];
    long epochs, batch, shard_index, shard_count, warmup, step_epochs;
    double momentum, weight_decay, step_gamma, progress_interval, overlap_mix;
    int nesterov, schedule, reset_momentum, overlap;
    char threads[CONF_STRLEN];
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
    long eval_every, eval_samples, holdout, reconnect_ms, delay_ms, join_timeout_ms, stall_after;
    int fitness, diverse_init, shard_mode, shuffle_labels, flip_labels, attack, lie_verdict;
    int fitness_auto; /* --fitness auto chose it (no option sets this) */
    double shard_alpha, weight_noise, lie_loss, attack_scale;
    long shard_classes, shard_seed;
    char init[CONF_STRLEN];
    char eval[CONF_STRLEN];
    char curve_secret[CONF_STRLEN];
    char curve_server[CONF_STRLEN];
};

/* {0}-terminated; offsets into struct worker_config. */
extern const struct config_option worker_options[];

struct psoc_options;

/* psoworker.c: the signal that asks the worker to stop (0 = none), and the
 * client library's options from the worker's (0, or -1 with err filled). */
extern volatile int psoworker_stop;
int psoworker_client_options(const struct worker_config *cfg, struct psoc_options *po, char *err,
                             size_t errlen);

/* psoworker_objective.c: the run without --model; its exit status. */
int psoworker_objective(const struct worker_config *cfg);

#endif
