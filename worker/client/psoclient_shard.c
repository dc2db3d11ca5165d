/* Finding the swarm's daemons at the join (PROTOCOL.md, "Shards"): the
 * client asks the daemon psoc_open named for its status; when it lists
 * several daemons, the client makes one link per daemon, each over its
 * range of the vector (common/range.c), the named daemon's link among
 * them. One daemon is the case of one link over the whole vector. */
#include "worker/client/psoclient_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/range.h"
#include "common/timeutil.h"

/* The named daemon's status, asked until it answers or the join's budget
 * is spent. */
static int s_ask(struct psoc *c, struct psoc_status *st, char *err, size_t errlen)
{
    int64_t deadline = time_now_ms() + c->opts.connect_timeout_ms;
    int budget = c->opts.connect_timeout_ms, rc;
    for (int attempt = 1;; attempt++) {
        int64_t left = deadline - time_now_ms();
        c->opts.connect_timeout_ms = left < 4000 ? (int)(left > 100 ? left : 100) : 4000;
        rc = psoc_status(c, 0, st, err, errlen);
        c->opts.connect_timeout_ms = budget;
        if (rc != PSOC_ETIMEOUT || time_now_ms() >= deadline)
            break;
        if (attempt == 1 || attempt % 4 == 0)
            psoc__say(c, 2, "psod at %s not answering yet (attempt %d, %.0f s left)",
                      c->link[c->ctl]->endpoint, attempt, (deadline - time_now_ms()) / 1e3);
        if (c->opts.stop && *c->opts.stop)
            return psoc__err(err, errlen, PSOC_EINTR, "interrupted while joining");
    }
    if (rc == PSOC_ETIMEOUT)
        return psoc__err(err, errlen, PSOC_ETIMEOUT,
                         "no answer from psod at %s within %d ms: is psod running there, and is "
                         "that the address it listens on (its 'listening on' line)?",
                         c->link[c->ctl]->endpoint, budget);
    return rc;
}

/* Back to the named daemon's link alone (a join again after a sharded
 * one). */
static void s_one_link(struct psoc *c)
{
    struct psoc_link *named = c->link[c->ctl];
    for (int k = 0; k < c->nlink; k++)
        if (k != c->ctl)
            psoc__link_close(&c->link[k]);
    c->link[0] = named;
    c->nlink = 1;
    c->ctl = 0;
}

int psoc__discover(struct psoc *c, char *err, size_t errlen)
{
    s_one_link(c);
    struct psoc_link *named = c->link[0];
    struct psoc_status st;
    int rc = s_ask(c, &st, err, errlen);
    if (rc)
        return rc;
    int count = (int)st.n_shards;
    if (count <= 1) {
        psoc_status_free(&st);
        named->offset = 0;
        named->n = c->n;
        named->total = 0;
        return 1;
    }
    if ((uint64_t)count > c->n || count > 64 || st.shard_index >= (uint32_t)count) {
        psoc_status_free(&st);
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "%d shards for %zu parameters (at most 64, and one parameter each; "
                         "the daemon says it is shard %u)",
                         count, c->n, st.shard_index);
    }
    struct psoc_link **links = calloc((size_t)count, sizeof *links);
    if (!links) {
        psoc_status_free(&st);
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    }
    int mine = (int)st.shard_index;
    for (int k = 0; k < count && rc == PSOC_OK; k++) {
        uint64_t off, len;
        range_of(c->n, count, k, &off, &len);
        if (k != mine) {
            rc = psoc__link_new(c, st.shard[k].endpoint, off, len, c->n, &links[k], err, errlen);
            continue;
        }
        links[k] = named;
        named->offset = off;
        named->n = len;
        named->total = c->n;
    }
    if (rc) {
        for (int k = 0; k < count; k++)
            if (k != mine)
                psoc__link_free(&links[k], 0);
        free(links);
        psoc_status_free(&st);
        return rc;
    }
    free(c->link);
    c->link = links;
    c->nlink = count;
    c->ctl = mine;
    psoc__say(c, 1,
              "psod at %s is shard %u of a swarm of %d daemons; joining each with its "
              "range",
              named->endpoint, st.shard_index, count);
    psoc_status_free(&st);
    return count;
}
