/* Strategy "pso": PSO-PS (Ye et al. 2020). Each worker is a particle; its
 * position is the weights it pushed, its fitness the loss it reported. The
 * update itself (inertia, pull toward the personal best, pull toward the
 * global best) is in swarm.c; this file binds it to the strategy interface
 * and declares its options. The model users take home is the global best:
 * the personal best with the lowest loss. The defaults (w 0, c1 1, c2 0.2,
 * first pull toward the swarm mean) won the MNIST sweep in docs/RESULTS.md;
 * `--w 0.5 --c1 0.5 --c2 0.5 --attractor best` is the paper's form. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/strategy/strategy.h"
#include "server/strategy/swarm.h"

static const char *const s_random_modes[] = {"particle", "element", NULL};
static const char *const s_inertia_modes[] = {"velocity", "displacement", NULL};
static const char *const s_strike_actions[] = {"exclude", "evict", NULL};
static const char *const s_attractors[] = {"best", "mean", "weighted", "mix", NULL};
static const char *const s_precisions[] = {"fp32", "bf16", NULL};

static void *s_create(size_t n, uint64_t offset, const struct strategy_params *p)
{
    struct pso_params prm = {
        p->w,           p->c1,         p->c2,      p->vmax,
        p->random_mode, p->seed,       p->inertia, p->attractor,
        p->temperature, p->mix_w,      p->mix_c1,  p->mix_c2,
        p->verify,      p->verify_tol, p->agg,     p->verify ? p->strike_limit : 0,
        p->best_bf16};
    return swarm_new(n, offset, &prm);
}

/* bfloat16 personal bests go through the fused update only. */
static int s_check(const struct strategy_params *p, char *err, size_t errlen)
{
    if (p->best_bf16 &&
        (p->attractor == PSO_ATTRACT_MIX || p->inertia == PSO_INERTIA_DISPLACEMENT || p->verify)) {
        snprintf(err, errlen,
                 "--best-precision bf16 works with --attractor best, mean or weighted, "
                 "--inertia velocity and without --verify-best (not%s%s%s)",
                 p->attractor == PSO_ATTRACT_MIX ? " --attractor mix" : "",
                 p->inertia == PSO_INERTIA_DISPLACEMENT ? " --inertia displacement" : "",
                 p->verify ? " --verify-best" : "");
        return -1;
    }
    return 0;
}

static void s_destroy(void *st)
{
    struct swarm *s = st;
    swarm_destroy(&s);
}

static int s_add(void *st, const float *x0, uint64_t stream) { return swarm_add(st, x0, stream); }

static void s_round(void *st, uint64_t round, float *const *x, const float *const *prev,
                    const double *loss, strategy_done_fn *done, void *ctx)
{
    swarm_round(st, round, x, prev, loss, done, ctx);
}

static void s_push(void *st, uint64_t step, int i, float *x, const float *prev, double loss,
                   strategy_done_fn *done, void *ctx)
{
    swarm_push(st, step, i, x, prev, loss, done, ctx);
}

static int s_arrive(void *st, uint64_t round, int i, const float *x, struct payload_check *chk)
{
    return swarm_arrive(st, round, i, x, chk);
}

static void s_reset(void *st, int i, const float *x0, uint64_t stream)
{
    swarm_reset(st, i, x0, stream);
}

static void s_save(const void *st, struct ckpt_writer *w) { swarm_save(st, w); }
static int s_load(void *st, struct ckpt_reader *r) { return swarm_load(st, r); }
static const float *s_global(const void *st) { return swarm_best(st); }
static double s_global_loss(const void *st) { return swarm_best_loss(st); }
static int s_global_particle(const void *st) { return swarm_best_particle(st); }
static double s_pbest(const void *st, int i) { return swarm_personal_best_loss(st, i); }
static int s_candidate(const void *st, float *const *x, const double *loss, double *claimed,
                       const float **weights)
{
    return swarm_candidate(st, x, loss, claimed, weights);
}
static int s_judge(void *st, int i, double measured) { return swarm_judge(st, i, measured); }
static int s_strike(void *st, int i) { return swarm_strike(st, i); }
static int s_excluded(const void *st, int i) { return swarm_excluded(st, i); }
static uint32_t s_strikes(const void *st, int i) { return swarm_strikes(st, i); }
static const float *s_safe(const void *st, const char **kind) { return swarm_safe(st, kind); }
static void s_withdraw(void *st, int i) { swarm_withdraw(st, i); }
static int s_reads_prev(const void *st) { return swarm_reads_prev(st); }

#define P(f) offsetof(struct strategy_params, f)
/* One row per option, as the table reads. */
/* clang-format off */
static const struct config_option s_options[] = {
    OPT_GROUP("pso (--strategy pso)"),
    OPT_DOUBLE("w", P(w), "0", 0, 10,
        "pso: inertia weight"),
    OPT_DOUBLE("c1", P(c1), "1", 0, 10,
        "pso: pull toward the particle's personal best (or the swarm mean)"),
    OPT_DOUBLE("c2", P(c2), "0.2", 0, 10,
        "pso: pull toward the global best"),
    OPT_DOUBLE("vmax", P(vmax), "0", 0, 1e30,
        "pso: velocity clamp per element, 0 = none"),
    OPT_ENUM("random", P(random_mode), "element", s_random_modes,
        "pso: random factors r1, r2 drawn once per particle per round, or per element"),
    OPT_ENUM("inertia", P(inertia), "velocity", s_inertia_modes,
        "pso: inertia from the previous PSO velocity, or from the displacement local "
        "training made since the last sync"),
    OPT_ENUM("attractor", P(attractor), "mean", s_attractors,
        "pso: first pull toward the personal best (the paper), the swarm's mean, or the mean "
        "weighted by fitness, softmax(-loss / --temperature) over this round's pushes; mix: "
        "the PSO-weighted mean, each particle moves to a mixture of the pushes whose weights "
        "a second swarm searches (--mix-w, --mix-c1, --mix-c2; --w, --c1, --c2 unused) (async "
        "mode: weighted and mix are the plain mean)"),
    OPT_DOUBLE("temperature", P(temperature), "0.1", 1e-6, 1e6,
        "pso: --attractor weighted: the softmax temperature, in loss units (small = the best "
        "particle takes all, large = the plain mean)"),
    OPT_DOUBLE("mix-w", P(mix_w), "0.729", 0, 10,
        "pso: --attractor mix: inertia of the mixing weights"),
    OPT_DOUBLE("mix-c1", P(mix_c1), "1.49", 0, 10,
        "pso: --attractor mix: pull of a particle's mixing weights toward its best ones"),
    OPT_DOUBLE("mix-c2", P(mix_c2), "1.49", 0, 10,
        "pso: --attractor mix: pull toward the swarm's best mixing weights"),
    OPT_ENUM("best-precision", P(best_bf16), "fp32", s_precisions,
        "pso: how personal bests are held: bf16 halves their memory (about 1.5 vectors per "
        "particle instead of 2, see docs/OPERATIONS.md) and rounds each to bfloat16 where it is "
        "stored; the update reads them widened, the global model is written in float32"),
    OPT_BOOL("verify-best", P(verify), "no",
        "pso: adopt a new global best only once another worker, chosen by the daemon, "
        "measured its loss on its shared fitness set (workers with --fitness shared) and "
        "found it within --verify-tolerance of the loss claimed; synchronous mode, one "
        "daemon"),
    OPT_DOUBLE("verify-tolerance", P(verify_tol), "0.05", 0, 1e6,
        "pso: --verify-best: a candidate is adopted if the measured loss is at most the "
        "claimed one times 1 + this (plus 1e-6)"),
    OPT_INT("verify-panel", P(verify_panel), "3", 1, 64,
        "pso: --verify-best: workers (never the claimant) asked to measure each candidate; "
        "fewer when fewer others pushed that round"),
    OPT_INT("verify-quorum", P(verify_quorum), "2", 1, 64,
        "pso: --verify-best: verdicts that must agree to adopt a candidate (or to refuse it); "
        "a verifier whose verdict goes against the decision gets a strike. Must exceed the "
        "number of workers that may collude"),
    OPT_INT("strike-limit", P(strike_limit), "3", 0, 1e9,
        "pso: --verify-best: strikes (claims refused, verdicts against the panel) after which "
        "a worker has no weight in any attractor, its claims are not candidates and it is not "
        "asked to verify; 0 = never"),
    OPT_ENUM("strike-action", P(strike_action), "exclude", s_strike_actions,
        "pso: --verify-best: what happens at --strike-limit: exclude (it trains on, with no "
        "say) or evict (it is told and removed)"),
    {0},
};
/* clang-format on */
#undef P

const struct strategy_ops strategy_pso = {
    .name = "pso",
    .push_kind = 0,
    .positions_global = 0,
    .options = s_options,
    .check = s_check,
    .create = s_create,
    .destroy = s_destroy,
    .add = s_add,
    .round = s_round,
    .global = s_global,
    .global_loss = s_global_loss,
    .global_particle = s_global_particle,
    .personal_best_loss = s_pbest,
    .save = s_save,
    .load = s_load,
    .push = s_push,
    .reset = s_reset,
    .arrive = s_arrive,
    .candidate = s_candidate,
    .judge = s_judge,
    .strike = s_strike,
    .excluded = s_excluded,
    .strikes = s_strikes,
    .safe = s_safe,
    .withdraw = s_withdraw,
    .reads_prev = s_reads_prev,
};
