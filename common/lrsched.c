/* Learning-rate schedules: see lrsched.h. */
#include "common/lrsched.h"

#include <math.h>
#include <stddef.h>

const char *const lr_schedule_names[] = {"constant", "step", "cosine", NULL};

double lr_at(const struct lr_plan *p, long step)
{
    if (p->warmup > 0 && step < p->warmup)
        return p->base * (double)(step + 1) / (double)p->warmup;
    switch (p->kind) {
    case LR_STEP:
        return p->step_size > 0
                   ? p->base * pow(p->gamma, (double)((step - p->warmup) / p->step_size))
                   : p->base;
    case LR_COSINE: {
        long span = p->total - p->warmup;
        if (span <= 0)
            return p->base;
        double t = (double)(step - p->warmup) / (double)span;
        if (t > 1)
            t = 1;
        return 0.5 * p->base * (1 + cos(M_PI * t));
    }
    case LR_CONSTANT: break;
    }
    return p->base;
}
