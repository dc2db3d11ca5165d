/* psod --hyper: the daemon's side of hyperparameter particles
 * (swarm_hyper.h). The points live beside the strategy's state, are moved
 * before each round's update (so the positions carry the new ones), go out
 * in every Welcome and Position, and are checkpointed with the swarm. */
#include "server/server_int.h"

#include "common/log.h"
#include "server/strategy/swarm_hyper.h"

int srv_hyper_create(struct server *s)
{
    if (!s->cfg.hyper)
        return 0;
    struct hyper_params p = {s->cfg.hyper_w,       s->cfg.hyper_c1,      s->cfg.hyper_c2,
                             s->cfg.hyper_lr_min,  s->cfg.hyper_lr_max,  s->cfg.hyper_mom_min,
                             s->cfg.hyper_mom_max, (uint64_t)s->cfg.seed};
    hyper_free(&s->hyper);
    return (s->hyper = hyper_new(&p)) ? 0 : -1;
}

int srv_hyper_reserve(struct server *s)
{
    return s->hyper ? hyper_reserve(s->hyper, s->count + 1) : 0;
}

void srv_hyper_add(struct server *s, uint64_t stream)
{
    if (s->hyper)
        hyper_add(s->hyper, stream);
}

void srv_hyper_reset(struct server *s, int i, uint64_t stream)
{
    if (s->hyper)
        hyper_reset(s->hyper, i, stream);
}

void srv_hyper_round(struct server *s)
{
    if (!s->hyper)
        return;
    hyper_round(s->hyper, s->round, s->round_x, s->round_loss);
    double lr, mom, loss;
    int g = hyper_best(s->hyper, &lr, &mom, &loss);
    if (g >= 0)
        log_debug("round %llu: best hyperparameters lr %.4g momentum %.3f (particle %d, loss "
                  "%.6g)",
                  (unsigned long long)s->round, lr, mom, g, loss);
}

void srv_hyper_fill(const struct server *s, int i, protobuf_c_boolean *has, double *lr,
                    double *momentum)
{
    if (!s->hyper || i < 0 || (size_t)i >= hyper_count(s->hyper))
        return;
    *has = 1;
    hyper_get(s->hyper, i, lr, momentum);
}
