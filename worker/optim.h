/* SGD with momentum (optionally Nesterov) and weight decay, exactly as
 * torch.optim.SGD computes it, over the flat parameter block; and the
 * learning-rate schedules (constant, step, cosine) with linear warm-up. */
#ifndef PSOD_OPTIM_H
#define PSOD_OPTIM_H

#include <stddef.h>

struct sgd {
    double momentum, weight_decay;
    int nesterov;
    size_t n;
    float *buf;     /* momentum buffer (n); empty until the first step */
    int started;
};

int sgd_init(struct sgd *o, size_t n, double momentum, double weight_decay, int nesterov);
void sgd_free(struct sgd *o);
/* Forget the momentum (e.g. after the daemon moved the weights). */
void sgd_reset(struct sgd *o);
/* params (n) -= lr * update(grads (n)) */
void sgd_step(struct sgd *o, float *params, const float *grads, double lr);

enum lr_schedule { LR_CONSTANT = 0, LR_STEP, LR_COSINE };
struct lr_plan {
    enum lr_schedule kind;
    double base;          /* peak learning rate */
    long warmup;          /* steps of linear warm-up from base/warmup */
    long total;           /* steps in the whole run (cosine decays to 0 at total) */
    long step_size;       /* LR_STEP: multiply by gamma every step_size steps */
    double gamma;
};
double lr_at(const struct lr_plan *p, long step);
extern const char *const lr_schedule_names[]; /* "constant", "step", "cosine", NULL */

#endif
