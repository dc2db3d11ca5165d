/* Verified global best, the worker's side (psod --verify-best): the
 * daemon sends a VERIFY, a candidate's weights, just before a position;
 * the caller's verifier measures its loss when the sync returns, and the
 * next push carries the verdict. The daemon decides; the worker only
 * measures. See PROTOCOL.md, "Verified best". */
#include "worker/client/psoclient_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/payload.h"

void psoc_set_verifier(struct psoc *c, psoc_verify_fn *fn, void *ctx)
{
    c->verify_fn = fn;
    c->verify_ctx = ctx;
}

double psoc_verify_claimed(const struct psoc *c) { return c->verifying ? c->cand_claimed : NAN; }

void psoc__take_verify(struct psoc *c, const struct wire_msg *m, uint64_t seq)
{
    const Psod__Verify *v = (const Psod__Verify *)m->meta;
    size_t bytes = zmq_msg_size(&m->payload);
    c->cand_have = 0;
    if (!c->verify_fn || v->seq != seq || c->nlink != 1) {
        psoc__say(c, 2, "ignored a candidate from psod at %s: %s", c->link[0]->endpoint,
                  !c->verify_fn ? "this worker did not offer to verify"
                                : "it answers another push");
        return;
    }
    if (bytes != c->n * sizeof(float)) {
        psoc__say(c, 2, "ignored a candidate of %zu bytes from psod at %s (expected %zu)", bytes,
                  c->link[0]->endpoint, c->n * sizeof(float));
        return;
    }
    if (!c->cand && !(c->cand = malloc(bytes))) {
        psoc__say(c, 2, "out of memory for a candidate of %zu bytes: not verified", bytes);
        return;
    }
    uint32_t crc = payload_copy_crc(c->cand, zmq_msg_data((zmq_msg_t *)&m->payload), bytes);
    if (crc != v->payload_crc32c) {
        psoc__say(c, 2,
                  "ignored a corrupted candidate from psod at %s (CRC-32C %08x, it says "
                  "%08x)",
                  c->link[0]->endpoint, crc, v->payload_crc32c);
        return;
    }
    c->cand_have = 1;
    c->cand_round = v->round;
    c->cand_particle = v->particle;
    c->cand_crc = crc;
    c->cand_claimed = v->claimed_loss;
}

void psoc__verify_run(struct psoc *c)
{
    if (!c->cand_have)
        return;
    c->cand_have = 0;
    double loss = NAN;
    c->verifying = 1;
    int rc = c->verify_fn(c->verify_ctx, c->cand, c->n, &loss);
    c->verifying = 0;
    if (rc != 0 || !isfinite(loss)) {
        psoc__say(c, 2, "could not measure particle %u's candidate of round %llu: no verdict",
                  c->cand_particle, (unsigned long long)c->cand_round);
        return;
    }
    c->verdict_have = 1;
    c->verdict_round = c->cand_round;
    c->verdict_particle = c->cand_particle;
    c->verdict_crc = c->cand_crc;
    c->verdict_loss = loss;
    psoc__say(c, 1,
              "verified particle %u's candidate of round %llu: it claims loss %.6g, "
              "measured %.6g",
              c->cand_particle, (unsigned long long)c->cand_round, c->cand_claimed, loss);
}

int psoc__verdict(struct psoc *c, Psod__Verdict *out)
{
    if (!c->verdict_have)
        return 0;
    c->verdict_have = 0;
    psod__verdict__init(out);
    out->round = c->verdict_round;
    out->particle = c->verdict_particle;
    out->payload_crc32c = c->verdict_crc;
    out->loss = c->verdict_loss;
    return 1;
}
