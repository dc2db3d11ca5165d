/* Classic test functions for the swarm, with analytic gradients: the model
 * psoworker trains when it is asked for `--objective NAME` instead of a
 * neural network. Minimum 0 for all three: sphere and rastrigin at the
 * origin, rosenbrock at (1, ..., 1). */
#ifndef PSOD_OBJECTIVE_H
#define PSOD_OBJECTIVE_H

#include <stddef.h>

struct objective {
    const char *name;
    /* f(x); when grad is not NULL, also its gradient (d floats). */
    double (*eval)(const float *x, float *grad, size_t d);
    double lo, hi; /* the usual initialization box */
};

/* NULL when unknown. */
const struct objective *objective_find(const char *name);
/* "sphere, rosenbrock, rastrigin" */
const char *objective_names(void);

#endif
