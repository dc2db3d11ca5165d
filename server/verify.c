/* Verified global best (pso --verify-best). Fitness is self-reported: a
 * worker that pushes a low loss would become the global best, the weights
 * every other particle is pulled toward and the model users take home.
 * With verification a new best is a candidate until a quorum of other
 * workers has measured its loss:
 *
 *   close of round r   the candidate (swarm_candidate) goes to a panel of
 *                      up to --verify-panel verifiers, workers that pushed
 *                      in r, offered to verify at their hello, are not the
 *                      candidate's and are not excluded, as a VERIFY just
 *                      before each one's POSITION;
 *   round r + 1        each verifier's push carries a Verdict: the loss it
 *                      measured on its shared fitness set. A verdict
 *                      confirms within --verify-tolerance of the claim and
 *                      refuses beyond it. --verify-quorum confirmations
 *                      adopt the candidate (swarm_judge, with the largest
 *                      confirmed loss); as many refusals refuse it (the
 *                      claimant is struck).
 *
 * No single worker decides: neither the claimant (never on its own panel)
 * nor one verifier, when the quorum is 2 or more. A verifier whose verdict
 * goes against a decision that a quorum made is struck as a lying claimant
 * is; a worker struck --strike-limit times in all is excluded (no weight in
 * any attractor, no candidate, never on a panel) or evicted
 * (--strike-action). Colluders: k workers that vouch for each other can
 * adopt a false claim only when k - 1 >= the quorum; they are struck
 * whenever a quorum of honest verifiers outvotes them.
 *
 * A verdict that answers no VERIFY outstanding (another round, particle or
 * CRC, a worker not on the panel, a second verdict) is ignored with a log
 * line; one with a NaN or infinite loss refuses its push (ERR_NOT_FINITE).
 * A panel still undecided at the next close is dropped (logged); the
 * candidate may come again. Panels rotate: the eligible workers whose
 * names hash lowest with the round, so runs do not depend on join order. */
#include "server/server_int.h"

#include <math.h>
#include <string.h>

#include "common/hash.h"
#include "common/payload.h"
#include "common/log.h"
#include "common/rng.h"

static int s_excluded(const struct server *s, int i)
{
    return s->st && s->ops->excluded && s->ops->excluded(s->st, i);
}

static uint64_t s_key(const struct member *mb, uint64_t round)
{
    return rng_splitmix64(hash_fnv1a64(mb->name) ^ rng_splitmix64(round + 1));
}

/* Up to `want` eligible verifiers, lowest keys first; how many. */
static int s_choose_panel(const struct server *s, int candidate, uint64_t round, int want,
                          int *panel)
{
    int k = 0;
    for (size_t j = 0; j < s->count; j++) {
        const struct member *mb = &s->m[j];
        if ((int)j == candidate || !mb->active || !mb->has_push || !mb->verifier ||
            s_excluded(s, (int)j))
            continue;
        uint64_t key = s_key(mb, round);
        int at = k < want ? k++ : want; /* insertion into the sorted panel */
        while (at > 0 && s_key(&s->m[panel[at - 1]], round) > key) {
            if (at < want)
                panel[at] = panel[at - 1];
            at--;
        }
        if (at < want)
            panel[at] = (int)j;
    }
    return k;
}

static int s_confirms(const struct server *s, double measured)
{
    double c = s->verify.claimed;
    return measured <= c + s->cfg.sp.verify_tol * fabs(c) + 1e-6;
}

/* A worker reached --strike-limit: say so once, and evict it if asked. */
static void s_after_strike(struct server *s, int i, const char *why)
{
    if (!s_excluded(s, i))
        return;
    struct member *mb = &s->m[i];
    if (mb->struck_out)
        return;
    mb->struck_out = 1;
    s->verify.excluded++;
    uint32_t n = s->ops->strikes ? s->ops->strikes(s->st, i) : 0;
    if (s->cfg.sp.strike_action == 1 && mb->active) {
        log_warn("worker '%s' evicted: %u strikes (--strike-limit %ld), the last for %s; it may "
                 "not rejoin",
                 mb->name, n, s->cfg.sp.strike_limit, why);
        /* Told now, on its push if it has one pending (a dropped push would
         * only make it rejoin, to be refused then). */
        char why2[WIRE_NAME_MAX + 192];
        snprintf(why2, sizeof why2,
                 "worker '%s' was evicted for its strikes (claims or verdicts "
                 "a quorum of other workers refuted; --strike-limit %ld) and may not rejoin "
                 "this swarm",
                 mb->name, s->cfg.sp.strike_limit);
        /* seq 0 when no push is pending: the client takes it as the
         * answer to whatever it waits for next. */
        uint64_t seq = mb->has_push ? mb->push_seq : 0;
        srv_release_push(s, mb);
        wire_send_error(s->sock, mb->id, mb->id_len, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, why2, seq,
                        s->round);
        s->errors[PSOD__ERROR_CODE__ERR_UNAUTHORIZED]++;
        mb->active = 0;
        mb->evicted = 1;
    } else {
        log_warn("worker '%s' excluded: %u strikes (--strike-limit %ld), the last for %s; it "
                 "trains on with no weight in the swarm",
                 mb->name, n, s->cfg.sp.strike_limit, why);
    }
}

/* The verifiers whose verdicts are in and went against the decision. */
static void s_strike_dissent(struct server *s)
{
    struct srv_verify *v = &s->verify;
    for (int k = 0; k < v->npanel; k++) {
        if (isnan(v->verdict[k]) || s_confirms(s, v->verdict[k]) == v->decided)
            continue;
        int j = v->panel[k];
        double said = v->verdict[k];
        v->verdict[k] = NAN; /* struck once */
        v->panel[k] = -1;
        v->struck++;
        if (s->ops->strike)
            s->ops->strike(s->st, j);
        log_warn("worker '%s' struck: it measured %.6g for particle %u's candidate of round "
                 "%llu (claimed %.6g), against the panel's %s",
                 s->m[j].name, said, v->particle, (unsigned long long)v->round, v->claimed,
                 v->decided ? "adoption" : "refusal");
        s_after_strike(s, j, "a verdict against the panel");
    }
}

static void s_decide(struct server *s, int adopt, double measured)
{
    struct srv_verify *v = &s->verify;
    int i = (int)v->particle;
    v->decided = adopt;
    int r = s->ops->judge(s->st, i, measured);
    if (r == 1) {
        v->adopted++;
        s->g_acc = s->m[i].pbest_acc;
        s->g_acc_round = s->m[i].pbest_round;
        log_info("new global best: particle %d (worker '%s') claimed loss %.6g at round %llu, a "
                 "quorum of %ld measured at most %.6g: adopted",
                 i, s->m[i].name, v->claimed, (unsigned long long)v->round, s->cfg.sp.verify_quorum,
                 measured);
    } else if (r == 0) {
        v->refused++;
        log_ratelimited(LOG_WARN, "verify-refused",
                        "candidate refused: particle %d (worker '%s') claimed loss %.6g at "
                        "round %llu, a quorum of %ld measured at least %.6g (beyond "
                        "--verify-tolerance %g); the global best stays %.6g",
                        i, s->m[i].name, v->claimed, (unsigned long long)v->round,
                        s->cfg.sp.verify_quorum, measured, s->cfg.sp.verify_tol,
                        s->ops->global_loss(s->st));
        s_after_strike(s, i, "a claim the panel refused");
    }
    s_strike_dissent(s);
}

void srv_verify_send(struct server *s)
{
    if (!srv_verifying(s) || !s->st)
        return;
    struct srv_verify *v = &s->verify;
    if (v->pending && v->decided < 0) {
        v->undecided++;
        log_info("no quorum for particle %u's candidate of round %llu (verdicts missing or "
                 "split): dropped, it may come again",
                 v->particle, (unsigned long long)v->round);
    }
    v->pending = 0;
    double claimed;
    const float *w;
    int i = s->ops->candidate(s->st, s->round_x, s->round_loss, &claimed, &w);
    if (i < 0)
        return;
    long want =
        s->cfg.sp.verify_panel < VERIFY_PANEL_MAX ? s->cfg.sp.verify_panel : VERIFY_PANEL_MAX;
    int panel[VERIFY_PANEL_MAX];
    int k = s_choose_panel(s, i, s->round, (int)want, panel);
    if (k < s->cfg.sp.verify_quorum) {
        log_ratelimited(LOG_WARN, "verify-none",
                        "particle %d (worker '%s') claims loss %.6g, the best yet, but only %d "
                        "other worker%s of this round can verify it and --verify-quorum is %ld "
                        "(workers verify with --fitness shared): not adopted",
                        i, s->m[i].name, claimed, k, k == 1 ? "" : "s", s->cfg.sp.verify_quorum);
        return;
    }
    size_t bytes = s->n * sizeof(float);
    zmq_msg_t q0;
    if (zmq_msg_init_size(&q0, bytes) != 0) {
        log_warn("out of memory for a candidate of %zu bytes: not verified this round", bytes);
        return;
    }
    Psod__Verify m = PSOD__VERIFY__INIT;
    m.round = s->round;
    m.particle = (uint32_t)i;
    m.claimed_loss = claimed;
    m.payload_crc32c = payload_copy_crc(zmq_msg_data(&q0), w, bytes);
    v->pending = 1;
    v->decided = -1;
    v->particle = (uint32_t)i;
    v->round = s->round;
    v->crc = m.payload_crc32c;
    v->claimed = claimed;
    v->npanel = k;
    for (int j = 0; j < k; j++) {
        v->panel[j] = panel[j];
        v->verdict[j] = NAN;
        zmq_msg_t q;
        zmq_msg_init(&q);
        if (j + 1 < k)
            zmq_msg_copy(&q, &q0); /* shares the buffer: one copy of the weights */
        else
            zmq_msg_move(&q, &q0);
        m.seq = s->m[panel[j]].push_seq;
        log_debug("round %llu: candidate particle %d (loss %.6g) sent to worker '%s' to verify",
                  (unsigned long long)s->round, i, claimed, s->m[panel[j]].name);
        srv_send_msg(s, &s->m[panel[j]], PSOD__COMMAND__CMD_VERIFY, &m.base, &q);
    }
    zmq_msg_close(&q0);
}

void srv_verify_verdict(struct server *s, struct member *mb, const Psod__Verdict *d)
{
    struct srv_verify *v = &s->verify;
    int j = (int)(mb - s->m), at = -1;
    for (int k = 0; v->pending && k < v->npanel; k++)
        if (v->panel[k] == j && isnan(v->verdict[k]))
            at = k;
    if (!srv_verifying(s) || at < 0 || d->round != v->round || d->particle != v->particle ||
        d->payload_crc32c != v->crc) {
        v->ignored++;
        log_ratelimited(LOG_WARN, "verify-stale",
                        "ignored a verdict from worker '%s' (round %llu, particle %u, CRC "
                        "%08x): %s",
                        mb->name, (unsigned long long)d->round, d->particle, d->payload_crc32c,
                        !srv_verifying(s) ? "this daemon runs without --verify-best"
                                          : "it answers no candidate this worker was sent");
        return;
    }
    v->verdict[at] = d->loss;
    log_debug("worker '%s' measured %.6g for particle %u's candidate of round %llu (claimed "
              "%.6g)",
              mb->name, d->loss, v->particle, (unsigned long long)v->round, v->claimed);
    if (v->decided >= 0) { /* a late verdict is judged against the decision */
        s_strike_dissent(s);
        return;
    }
    int yes = 0, no = 0;
    double hi_yes = -INFINITY, lo_no = INFINITY;
    for (int k = 0; k < v->npanel; k++) {
        double l = v->verdict[k];
        if (isnan(l))
            continue;
        if (s_confirms(s, l)) {
            yes++;
            hi_yes = l > hi_yes ? l : hi_yes;
        } else {
            no++;
            lo_no = l < lo_no ? l : lo_no;
        }
    }
    if (yes >= s->cfg.sp.verify_quorum)
        s_decide(s, 1, hi_yes);
    else if (no >= s->cfg.sp.verify_quorum)
        s_decide(s, 0, lo_no);
}

/* Particle i changed hands (swarm reset): verdicts on its old personal
 * best would judge the new one. */
void srv_verify_forget(struct server *s, int i)
{
    if (s->verify.pending && (int)s->verify.particle == i)
        s->verify.pending = 0;
    s->m[i].struck_out = 0;
}

int srv_verify_banned(const struct server *s, int i)
{
    return s->cfg.sp.strike_action == 1 && s_excluded(s, i);
}
