/* Learning-rate schedules: constant, step and cosine, each with linear
 * warm-up. The workers' optimizer (worker/optim.c) and the daemon's ssgd
 * optimizer follow the same schedule from the same options. */
#ifndef PSOD_LRSCHED_H
#define PSOD_LRSCHED_H

enum lr_schedule { LR_CONSTANT = 0, LR_STEP, LR_COSINE };
struct lr_plan {
    enum lr_schedule kind;
    double base;    /* peak learning rate */
    long warmup;    /* steps of linear warm-up from base/warmup */
    long total;     /* steps in the whole run (cosine decays to 0 at total) */
    long step_size; /* LR_STEP: multiply by gamma every step_size steps */
    double gamma;
};
double lr_at(const struct lr_plan *p, long step);
extern const char *const lr_schedule_names[]; /* "constant", "step", "cosine", NULL */

#endif
