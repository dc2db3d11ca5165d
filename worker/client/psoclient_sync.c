/* Joining and synchronizing, the API over one daemon or the daemons of a
 * sharded swarm (psoclient_shard.c): psoc_join, psoc_sync(_ex), and the
 * resync after a push the daemon could not use. Each daemon's side of it
 * (hello, push, position) is psoclient_link.c. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/timeutil.h"

int psoc_join(struct psoc *c, size_t n, uint64_t layout_hash, float *weights,
              struct psoc_welcome *out, char *err, size_t errlen)
{
    if (!c->name[0])
        return psoc__err(err, errlen, PSOC_ESTATE, "a status-only client cannot join");
    if (n == 0 || !weights || n * sizeof(float) > c->opts.max_payload)
        return psoc__err(err, errlen, PSOC_EINVAL, "need 1 to %zu weights",
                         c->opts.max_payload / 4);
    c->n = n;
    c->layout_hash = layout_hash;
    psoc__say(c, 1, "connecting to psod at %s as '%s' (waiting up to %.0f s for its welcome)",
              c->endpoint, c->name, c->opts.connect_timeout_ms / 1e3);
    int shards = psoc__discover(c, err, errlen);
    if (shards < 0)
        return shards;
    if (shards > 1)
        return psoc__join_shards(c, weights, out, err, errlen);
    /* 4 s first: long enough for the monitor to see a failing handshake. */
    struct psoc_welcome w;
    int attempts;
    int rc =
        psoc__hello_retry(c, weights, c->opts.connect_timeout_ms, 4000, &w, &attempts, err, errlen);
    if (rc == PSOC_ETIMEOUT)
        psoc__err(err, errlen, PSOC_ETIMEOUT,
                  "no answer from psod at %s within %d ms: is psod running there, and is that "
                  "the address it listens on (its 'listening on' line)?",
                  c->endpoint, c->opts.connect_timeout_ms);
    if (rc == PSOC_OK && out)
        *out = w;
    return rc;
}

/* Get back in step with the daemon after a refused push (evicted, or the
 * round closed without us) or a lost daemon: HELLO again, with back-off
 * from 0.5 s, for up to opts.reconnect_ms. The particle's current position
 * lands in `weights`. */
static int s_resync(struct psoc *c, float *weights, struct psoc_position *out, char *err,
                    size_t errlen)
{
    int64_t start = time_now_ms();
    psoc__say(c, 2, "psod at %s did not take the push (%s); rejoining, for up to %.0f s",
              c->endpoint, err && err[0] ? err : "no answer", c->opts.reconnect_ms / 1e3);
    struct psoc_welcome w;
    int attempts;
    int rc = psoc__hello_retry(c, weights, c->opts.reconnect_ms, 500, &w, &attempts, err, errlen);
    if (rc == PSOC_ETIMEOUT)
        return psoc__err(err, errlen, PSOC_ETIMEOUT,
                         "lost psod at %s: no welcome in %d attempts over %.1f s "
                         "(--reconnect-ms %d)",
                         c->endpoint, attempts, (time_now_ms() - start) / 1e3,
                         c->opts.reconnect_ms);
    if (rc == PSOC_OK && out) {
        out->round = w.round;
        out->global_best_loss = w.global_best_loss;
        out->personal_best_loss = NAN;
        out->global_best_particle = 0;
        out->evaluator = 0;
        out->resynced = attempts;
        out->lr = w.lr;
        out->momentum = w.momentum;
    }
    return rc;
}

int psoc_sync(struct psoc *c, float *weights, double loss, uint64_t samples,
              struct psoc_position *out, char *err, size_t errlen)
{
    struct psoc_report r = {loss, samples, NAN, NAN, 0};
    return psoc_sync_ex(c, weights, NULL, &r, out, err, errlen);
}

int psoc_sync_ex(struct psoc *c, float *weights, const float *gradient,
                 const struct psoc_report *rep, struct psoc_position *out, char *err, size_t errlen)
{
    if (!c->joined)
        return psoc__err(err, errlen, PSOC_ESTATE, "sync before join");
    if (!isfinite(rep->loss))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "loss is %g; the daemon only takes finite losses", rep->loss);
    if ((gradient != NULL) != (c->push_kind == PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT))
        return psoc__err(err, errlen, PSOC_EINVAL, "the daemon's strategy takes %s",
                         c->push_kind ? "gradients" : "weights");
    if (c->nsub)
        return psoc__sync_shards(c, weights, gradient, rep, out, err, errlen);
    uint64_t seq;
    int rc = psoc__push(c, weights, gradient, rep, &seq, err, errlen);
    if (rc == PSOC_ETIMEOUT && c->opts.reconnect_ms > 0)
        return s_resync(c, weights, out, err, errlen); /* no connection took it */
    if (rc)
        return rc;
    int resync = 0;
    rc = psoc__position(c, weights, seq, out, &resync, err, errlen);
    return resync ? s_resync(c, weights, out, err, errlen) : rc;
}
