/* Optimizer: see optim.h. */
#include "worker/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sgd_init(struct sgd *o, size_t n, double momentum, double weight_decay, int nesterov)
{
    memset(o, 0, sizeof *o);
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->n = n;
    if (momentum != 0) {
        o->buf = calloc(n ? n : 1, sizeof(float));
        if (!o->buf)
            return -1;
    }
    return 0;
}

void sgd_free(struct sgd *o)
{
    free(o->buf);
    o->buf = NULL;
}

void sgd_reset(struct sgd *o) { o->started = 0; }

void sgd_step(struct sgd *o, float *params, const float *grads, double lr)
{
    const float mu = (float)o->momentum, wd = (float)o->weight_decay, a = (float)lr;
    float *buf = o->buf;
    if (!buf) {
        for (size_t i = 0; i < o->n; i++)
            params[i] -= a * (grads[i] + wd * params[i]);
        return;
    }
    if (!o->started) {
        /* torch: the first step's buffer is the gradient itself */
        for (size_t i = 0; i < o->n; i++)
            buf[i] = grads[i] + wd * params[i];
        o->started = 1;
        for (size_t i = 0; i < o->n; i++) {
            float g = grads[i] + wd * params[i];
            params[i] -= a * (o->nesterov ? g + mu * buf[i] : buf[i]);
        }
        return;
    }
    if (o->nesterov) {
        for (size_t i = 0; i < o->n; i++) {
            float g = grads[i] + wd * params[i];
            buf[i] = mu * buf[i] + g;
            params[i] -= a * (g + mu * buf[i]);
        }
    } else {
        for (size_t i = 0; i < o->n; i++) {
            float g = grads[i] + wd * params[i];
            buf[i] = mu * buf[i] + g;
            params[i] -= a * buf[i];
        }
    }
}
