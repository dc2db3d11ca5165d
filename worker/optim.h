/* SGD with momentum (optionally Nesterov) and weight decay, exactly as
 * torch.optim.SGD computes it, over the flat parameter block. Its
 * learning-rate schedules are common/lrsched.h's. */
#ifndef PSOD_OPTIM_H
#define PSOD_OPTIM_H

#include <stddef.h>

#include "common/lrsched.h"

struct sgd {
    double momentum, weight_decay;
    int nesterov;
    size_t n;
    float *buf; /* momentum buffer (n); empty until the first step */
    int started;
};

int sgd_init(struct sgd *o, size_t n, double momentum, double weight_decay, int nesterov);
void sgd_free(struct sgd *o);
/* Forget the momentum (e.g. after the daemon moved the weights). */
void sgd_reset(struct sgd *o);
/* params (n) -= lr * update(grads (n)) */
void sgd_step(struct sgd *o, float *params, const float *grads, double lr);

#endif
