/* Test functions: see objective.h. Sums run in double so that the loss a
 * worker reports is accurate near the optimum even for large d. */
#include "worker/objective.h"

#include <math.h>
#include <string.h>

static double s_sphere(const float *x, float *grad, size_t d)
{
    double f = 0;
    for (size_t i = 0; i < d; i++) {
        f += (double)x[i] * x[i];
        if (grad)
            grad[i] = 2.0f * x[i];
    }
    return f;
}

static double s_rosenbrock(const float *x, float *grad, size_t d)
{
    double f = 0;
    if (grad)
        memset(grad, 0, d * sizeof *grad);
    for (size_t i = 0; i + 1 < d; i++) {
        double a = x[i], b = x[i + 1];
        double t = b - a * a, u = 1.0 - a;
        f += 100.0 * t * t + u * u;
        if (grad) {
            grad[i] += (float)(-400.0 * a * t - 2.0 * u);
            grad[i + 1] += (float)(200.0 * t);
        }
    }
    return f;
}

static double s_rastrigin(const float *x, float *grad, size_t d)
{
    const double two_pi = 2.0 * M_PI;
    double f = 10.0 * (double)d;
    for (size_t i = 0; i < d; i++) {
        double a = x[i];
        f += a * a - 10.0 * cos(two_pi * a);
        if (grad)
            grad[i] = (float)(2.0 * a + 10.0 * two_pi * sin(two_pi * a));
    }
    return f;
}

static const struct objective s_objectives[] = {
    {"sphere", s_sphere, -5.0, 5.0},
    {"rosenbrock", s_rosenbrock, -2.0, 2.0},
    {"rastrigin", s_rastrigin, -5.12, 5.12},
};

const struct objective *objective_find(const char *name)
{
    for (size_t i = 0; i < sizeof s_objectives / sizeof s_objectives[0]; i++)
        if (strcmp(s_objectives[i].name, name) == 0)
            return &s_objectives[i];
    return NULL;
}

const char *objective_names(void) { return "sphere, rosenbrock, rastrigin"; }
