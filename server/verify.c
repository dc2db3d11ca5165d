/* Verified global best (pso --verify-best). Fitness is self-reported: a
 * worker that pushes a low loss would become the global best, the weights
 * every other particle is pulled toward and the model users take home.
 * With verification a new best is a candidate until another worker has
 * measured its loss:
 *
 *   close of round r   the candidate (swarm_candidate) goes to a verifier,
 *                      a worker that pushed in r, offered to verify at its
 *                      hello and is not the candidate's, as a VERIFY just
 *                      before that worker's POSITION;
 *   round r + 1        the verifier's push carries a Verdict: the loss it
 *                      measured on its shared fitness set; swarm_judge
 *                      adopts the candidate within --verify-tolerance of
 *                      its claim, else refuses it (and the particle's
 *                      personal best keeps the measured loss).
 *
 * A verdict that does not answer the Verify outstanding (another round,
 * particle or CRC, or another worker) is ignored with a log line; one
 * with a NaN or infinite loss refuses its push (ERR_NOT_FINITE). A
 * candidate whose verdict never comes is sent again at the next close.
 * The verifier rotates: among the eligible workers, the one whose name
 * hashes lowest with the round, so runs do not depend on join order. */
#include "server/server_int.h"

#include <math.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/rng.h"

int srv_verifying(const struct server *s)
{
    return s->cfg.sp.verify && s->ops->candidate && s->ops->judge;
}

static int s_choose_verifier(const struct server *s, int candidate, uint64_t round)
{
    int best = -1;
    uint64_t best_key = 0;
    for (size_t j = 0; j < s->count; j++) {
        const struct member *mb = &s->m[j];
        if ((int)j == candidate || !mb->active || !mb->has_push || !mb->verifier)
            continue;
        uint64_t key = rng_splitmix64(hash_fnv1a64(mb->name) ^ rng_splitmix64(round + 1));
        if (best < 0 || key < best_key) {
            best = (int)j;
            best_key = key;
        }
    }
    return best;
}

void srv_verify_send(struct server *s)
{
    if (!srv_verifying(s) || !s->st)
        return;
    struct srv_verify *v = &s->vf;
    if (v->pending)
        log_info("no verdict came for particle %u's candidate of round %llu; it is sent again "
                 "if it is still the best", v->particle, (unsigned long long)v->round);
    v->pending = 0;
    double claimed;
    const float *w;
    int i = s->ops->candidate(s->st, s->xs, s->losses, &claimed, &w);
    if (i < 0)
        return;
    int j = s_choose_verifier(s, i, s->round);
    if (j < 0) {
        log_ratelimited(LOG_WARN, "verify-none",
                        "particle %d (worker '%s') claims loss %.6g, the best yet, but no other "
                        "worker in this round offered to verify it (workers verify with "
                        "--fitness shared): not adopted",
                        i, s->m[i].name, claimed);
        return;
    }
    zmq_msg_t q;
    size_t bytes = s->n * sizeof(float);
    if (zmq_msg_init_size(&q, bytes) != 0) {
        log_warn("out of memory for a candidate of %zu bytes: not verified this round", bytes);
        return;
    }
    Psod__Verify m = PSOD__VERIFY__INIT;
    m.round = s->round;
    m.particle = (uint32_t)i;
    m.claimed_loss = claimed;
    m.payload_crc32c = wire_copy_crc(zmq_msg_data(&q), w, bytes);
    m.seq = s->m[j].push_seq;
    v->pending = 1;
    v->particle = (uint32_t)i;
    v->round = s->round;
    v->crc = m.payload_crc32c;
    v->claimed = claimed;
    v->verifier = j;
    log_debug("round %llu: candidate particle %d (loss %.6g) sent to worker '%s' to verify",
              (unsigned long long)s->round, i, claimed, s->m[j].name);
    srv_send_msg(s, &s->m[j], PSOD__COMMAND__CMD_VERIFY, &m.base, &q);
}

void srv_verify_verdict(struct server *s, struct member *mb, const Psod__Verdict *d)
{
    struct srv_verify *v = &s->vf;
    int j = (int)(mb - s->m);
    if (!srv_verifying(s) || !v->pending || j != v->verifier || d->round != v->round ||
        d->particle != v->particle || d->payload_crc32c != v->crc) {
        v->ignored++;
        log_ratelimited(LOG_WARN, "verify-stale",
                        "ignored a verdict from worker '%s' (round %llu, particle %u, CRC "
                        "%08x): %s",
                        mb->name, (unsigned long long)d->round, d->particle, d->payload_crc32c,
                        !srv_verifying(s) ? "this daemon runs without --verify-best"
                                          : "it answers no candidate this worker was sent");
        return;
    }
    v->pending = 0;
    int i = (int)v->particle;
    int r = s->ops->judge(s->st, i, d->loss);
    if (r == 1) {
        v->adopted++;
        s->g_acc = s->m[i].pbest_acc;
        s->g_acc_round = s->m[i].pbest_round;
        log_info("new global best: particle %d (worker '%s') claimed loss %.6g at round %llu, "
                 "worker '%s' measured %.6g: adopted",
                 i, s->m[i].name, v->claimed, (unsigned long long)v->round, mb->name, d->loss);
    } else if (r == 0) {
        v->refused++;
        log_ratelimited(LOG_WARN, "verify-refused",
                        "candidate refused: particle %d (worker '%s') claimed loss %.6g at "
                        "round %llu, worker '%s' measured %.6g (beyond --verify-tolerance %g); "
                        "the global best stays %.6g",
                        i, s->m[i].name, v->claimed, (unsigned long long)v->round, mb->name,
                        d->loss, s->cfg.sp.verify_tol, s->ops->global_loss(s->st));
    }
}

/* Particle i changed hands (swarm reset): a verdict on its old personal
 * best would judge the new one. */
void srv_verify_forget(struct server *s, int i)
{
    if (s->vf.pending && (int)s->vf.particle == i)
        s->vf.pending = 0;
}
