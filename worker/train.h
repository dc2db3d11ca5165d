/* The training loop of psoworker: epochs over this worker's shard of a
 * dataset, mini-batch SGD on a model, evaluation on the test set, a
 * progress line and a JSON-lines metrics file; and, when a client is given,
 * a synchronization with psod every sync_every mini-batches. */
#ifndef PSOD_TRAIN_H
#define PSOD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "worker/client/psoclient.h"
#include "worker/attack.h"
#include "worker/data.h"
#include "worker/model.h"

struct train_config {
    int epochs, batch;
    double lr, momentum, weight_decay;
    int nesterov;
    int schedule; /* enum lr_schedule */
    long warmup;
    double step_gamma;
    int step_epochs;
    uint64_t seed;
    int sync_every;                /* mini-batches between syncs (with a client) */
    int reset_momentum;            /* forget momentum after the daemon moves us */
    const char *metrics;           /* JSON-lines file or NULL */
    double progress_s;             /* seconds between progress lines */
    int eval_every;                /* syncs between test evaluations reported to psod, 0 = none,
                            * -1 = about every TRAIN_EVAL_STEPS local steps */
    long eval_samples;             /* test samples per report (the full set at the end), 0 = all */
    const struct dataset *holdout; /* fitness: loss on this set, else the interval's mean
                                    * training loss */
    int delay_ms;                  /* sleep after every step: a slow node, for tests */
    const volatile int *stop;      /* nonzero: abandon the run (a signal), NULL = never */
    double weight_noise;   /* Gaussian noise added to the weights before each push, 0 = none */
    double lie_loss;       /* >= 0: push this as the fitness, whatever was measured (a
                            * lying worker, for experiments); < 0: off */
    struct attack *attack; /* a malicious worker's pushes (attack.h), NULL = honest */
    int overlap;           /* a sync overlaps the next interval's steps (psoc_sync_begin):
                            * its position is applied at the next sync point */
};

/* A verifier for psoc_set_verifier: the loss of `weights` on `set` with
 * model m, whose own parameters are put back afterwards. */
struct train_verify {
    struct model *m;
    const struct dataset *set;
    /* A dishonest verifier, for experiments (psoworker --lie-verdict): it
     * reports 10x + 1 the loss it measured, except for a candidate that
     * claims exactly vouch_loss (a fellow liar's --lie-loss), whose claim
     * it confirms. c: the client, for the claim. */
    int lie;
    double vouch_loss;
    const struct psoc *c;
};
int train_verify(void *ctx, const float *weights, size_t n, double *loss);

/* --eval-every -1: a report about every this many local steps. */
#define TRAIN_EVAL_STEPS 100

struct train_result {
    double final_loss, test_loss, test_acc, seconds, samples_per_s;
    long steps, syncs;
    double eval_seconds; /* spent evaluating: reports to psod and epoch ends */
    double sync_seconds; /* in psoc_sync: transfer and waiting for the round */
    int recoveries;      /* divergences undone by going back to the last position */
    long resyncs;        /* pushes psod could not use (see psoc_position.resynced) */
    long start_step;     /* a rejoined worker resumes its schedule here */
    int interrupted;     /* *cfg->stop ended the run early */
};

/* Divergences (non-finite loss) a worker in a swarm recovers from before it
 * gives up. */
#define TRAIN_MAX_RECOVERIES 10

/* Train m on `train`, evaluate on `test` after every epoch. With `c`
 * (joined already, `wel` its welcome), push and pull every sync_every
 * steps and once more after the last step; when the strategy takes
 * gradients (ssgd), push each step's gradient instead and take the
 * daemon's weights, with no local optimizer step. */
int train_run(struct model *m, const struct dataset *train, const struct dataset *test,
              const struct train_config *cfg, struct psoc *c, const struct psoc_welcome *wel,
              struct train_result *out, char *err, size_t errlen);

/* Loss and accuracy of m on d, in batches of up to m->max_batch. */
void train_evaluate(struct model *m, const struct dataset *d, double *loss, double *acc);

#endif
