/* Taking a push: the checks a push must pass (refused once, with the
 * reason), its payload read and checked (float32, or a compressed change
 * decoded against the position the worker holds), then the round's
 * bookkeeping and, when it completes the round, the close (rounds.c). */
#include "server/server_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/payload.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/sparse.h"
#include "common/timeutil.h"
#include "common/wire.h"

/* Whether the strategy sees this push at its arrival (a synchronous
 * round this daemon closes; a follower's pushes wait for the commit). */
static int s_arrives(struct server *s)
{
    return s->ops->arrive && s->cfg.mode == SERVER_SYNC && !srv_follower(s);
}

/* A float32 push: its size, CRC and values checked, the frame itself
 * becomes mb->push (updated in place at the close). The strategy sees it
 * as it arrives and may check it while it reads it (the mean's sum: one
 * pass over the push, not two); a push that fails is withdrawn. *arrived
 * says the strategy has seen it. 0, or -1 refused. */
static int s_take_push(struct server *s, struct wire_msg *in, struct member *mb,
                       const Psod__Push *p, int *arrived)
{
    size_t bytes = zmq_msg_size(&in->payload);
    if (bytes != s->n * sizeof(float)) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_SIZE, p->seq, "payload is %zu bytes, expected %zu",
                   bytes, s->n * sizeof(float));
        return -1;
    }
    zmq_msg_init(&mb->push);
    zmq_msg_move(&mb->push, &in->payload);
    const float *x = zmq_msg_data(&mb->push);
    const int i = (int)(mb - s->m);
    struct payload_check chk;
    *arrived = s_arrives(s);
    if (!*arrived || !s->ops->arrive(s->st, s->round, i, x, &chk))
        chk.bad = payload_check(x, s->n, &chk.crc);
    if (chk.crc == p->payload_crc32c && !chk.bad)
        return 0;
    if (*arrived && s->ops->withdraw)
        s->ops->withdraw(s->st, i);
    zmq_msg_close(&mb->push);
    zmq_msg_init(&mb->push);
    if (chk.crc != p->payload_crc32c)
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_CHECKSUM, p->seq,
                   "payload CRC-32C is %08x, push says %08x", chk.crc, p->payload_crc32c);
    else
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, p->seq,
                   "weights hold %zu NaN or infinite values", chk.bad);
    return -1;
}

/* A compressed push: the payload's layout and CRC checked, then decoded
 * against the position the worker holds (a gradient: against nothing) into
 * a float32 mb->push. A fragment push holds the change of its part only:
 * the rest of mb->push is that position, unchanged. 0, or -1 refused. */
static int s_decode_push(struct server *s, struct wire_msg *in, struct member *mb,
                         const Psod__Push *p)
{
    const void *q = zmq_msg_data(&in->payload);
    size_t bytes = zmq_msg_size(&in->payload), off, len;
    srv_fragment_range(mb, s->n, p->round, &off, &len);
    char msg[200];
    int code = p->sparse ? sparse_check(mb->wire, s->n, p->block_size, q, bytes, msg, sizeof msg)
                         : codec_check(mb->wire, len, p->block_size, q, bytes, msg, sizeof msg);
    if (code) {
        srv_reject(s, in, code, p->seq, "%s", msg);
        return -1;
    }
    uint32_t crc = crc32c(0, q, bytes);
    if (crc != p->payload_crc32c) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_CHECKSUM, p->seq,
                   "payload CRC-32C is %08x, push says %08x", crc, p->payload_crc32c);
        return -1;
    }
    zmq_msg_t x;
    if (zmq_msg_init_size(&x, s->n * sizeof(float)) != 0 || wire_payload_align(&x) != 0) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_INTERNAL, p->seq, "out of memory for a push");
        return -1;
    }
    const float *ref = s->ops->push_kind ? NULL : srv_base_of(mb);
    float *dst = zmq_msg_data(&x);
    if (len < s->n) /* fragments take weights: ref is there */
        memcpy(dst, ref, s->n * sizeof(float));
    size_t bad = p->sparse ? sparse_decode(mb->wire, s->n, p->block_size, q, bytes, ref, dst)
                           : codec_decode(mb->wire, len, p->block_size, q, ref ? ref + off : NULL,
                                          dst + off);
    if (bad) {
        zmq_msg_close(&x);
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_FINITE, p->seq,
                   "the %s%s push decodes to %zu NaN or infinite values",
                   p->sparse ? "sparse " : "", codec_name(mb->wire), bad);
        return -1;
    }
    zmq_msg_init(&mb->push);
    zmq_msg_move(&mb->push, &x);
    return 0;
}

/* What a push from a live member must be, before its payload is read: a
 * code and a reason, or 0. The handler refuses once. */
static int s_push_refusal(const struct server *s, const struct member *mb, const Psod__Push *p,
                          char *why, size_t len)
{
    if (p->round != s->round && s->cfg.mode == SERVER_SYNC)
        return snprintf(why, len, "push for round %llu, current is %llu",
                        (unsigned long long)p->round, (unsigned long long)s->round),
               PSOD__ERROR_CODE__ERR_ROUND;
    if (mb->has_push)
        return snprintf(why, len, "already pushed for round %llu", (unsigned long long)s->round),
               PSOD__ERROR_CODE__ERR_DUPLICATE;
    if ((int)p->encoding != mb->wire || p->sparse != (mb->density > 0))
        return snprintf(why, len,
                        "worker '%s' agreed on %s%s payloads at its hello; the push is %s%s",
                        mb->name, mb->density > 0 ? "sparse " : "", codec_name(mb->wire),
                        p->sparse ? "sparse " : "", codec_name((int)p->encoding)),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (mb->fragments < 2 && p->fragment != 0)
        return snprintf(why, len, "push carries fragment %u; worker '%s' agreed on whole payloads",
                        p->fragment, mb->name),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if (mb->fragments > 1 && p->fragment != p->round % mb->fragments)
        return snprintf(why, len, "push carries fragment %u; round %llu's is %llu of %u",
                        p->fragment, (unsigned long long)p->round,
                        (unsigned long long)(p->round % mb->fragments), mb->fragments),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if ((int)p->payload_kind != s->ops->push_kind)
        return snprintf(why, len, "strategy %s takes %s, the push carries %s", s->ops->name,
                        s->ops->push_kind ? "gradients" : "weights",
                        p->payload_kind ? "gradients" : "weights"),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (!isfinite(p->loss))
        return snprintf(why, len, "loss is %g", p->loss), PSOD__ERROR_CODE__ERR_NOT_FINITE;
    if (p->verdict && !isfinite(p->verdict->loss))
        return snprintf(why, len, "the verdict's loss is %g; a verifier measures a finite loss",
                        p->verdict->loss),
               PSOD__ERROR_CODE__ERR_NOT_FINITE;
    return 0;
}

void srv_handle_push(struct server *s, struct wire_msg *in)
{
    Psod__Push *p = (Psod__Push *)in->meta;
    struct member *mb = srv_by_id(s, in);
    if (!mb || !mb->active) {
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_NOT_JOINED, p->seq, "%s",
                   mb && mb->evicted ? "this worker was evicted for silence; send hello to rejoin"
                                     : "push before hello");
        return;
    }
    if (srv_foreign_key(s, mb, in, p->seq))
        return;
    mb->last_seen = time_now_s();
    char why[256];
    int code = s_push_refusal(s, mb, p, why, sizeof why);
    if (code) {
        srv_reject(s, in, code, p->seq, "%s", why);
        return;
    }
    int arrived = 0;
    if (srv_compressed(mb)) {
        if (s_decode_push(s, in, mb, p) != 0)
            return;
    } else if (s_take_push(s, in, mb, p, &arrived) != 0) {
        return;
    }
    mb->has_push = 1;
    srv_spare_position(s, mb);
    mb->push_loss = p->loss;
    mb->push_seq = p->seq;
    mb->push_acc = srv_accuracy(p->accuracy);
    mb->push_pos_acc = srv_accuracy(p->position_accuracy);
    mb->push_pos_round = p->position_round;
    if (!isnan(mb->push_acc))
        mb->last_acc = mb->push_acc;
    /* The global model's accuracy: the position received, where positions
     * are the global model, else the global model the evaluator fetched. */
    srv_global_report(s, mb->push_pos_acc, p->position_round);
    if (srv_pushed(s) == 1)
        s->first_push = time_now_s();
    log_debug("round %llu: push %zu from '%s'", (unsigned long long)s->round, srv_pushed(s),
              mb->name);
    mb->last_loss = p->loss;
    mb->pushes++;
    double now = time_now_s(), interval = now - mb->last_push_at;
    if (interval > mb->slowest_interval)
        mb->slowest_interval = interval;
    mb->intervals++;
    mb->last_push_at = now;
    mb->last_round = s->round;
    if (p->verdict)
        srv_verify_verdict(s, mb, p->verdict);
    if (!mb->has_push) /* its own verdict got it evicted (--strike-action evict) */
        return;

    if (srv_follower(s)) {
        srv_shard_vote(s, mb); /* held until the coordinator's commit */
        return;
    }
    if (s->cfg.mode == SERVER_ASYNC) {
        if (srv_decides(s) && srv_complete(s, mb))
            srv_async_step(s, mb);
        return;
    }
    /* The strategy starts on the round (the mean's sum) while others push. */
    if (!arrived && s->ops->arrive)
        s->ops->arrive(s->st, s->round, (int)(mb - s->m), zmq_msg_data(&mb->push), NULL);
    /* Whether the round can close now is the loop's question (server.c). */
}
