/* The terms of a hello (members.c handles it): what the message itself
 * must be, whether it fits this swarm (its model, its dataset, fragment
 * payloads the strategy can take), and the wire the worker then gets. */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/log.h"

/* The wire kind and density of a worker: psod's --wire when it imposes
 * one, else what the hello asks for. */
void srv_agree_wire(const struct server *s, const Psod__Hello *h, struct member *mb)
{
    int want = (int)h->encoding;
    double dwant = h->density;
    unsigned fwant = h->fragments > 1 ? h->fragments : 0;
    if (!s->cfg.wire) {
        mb->wire = want;
        mb->density = dwant;
        mb->fragments = fwant;
        return;
    }
    mb->wire = s->cfg.wire - 1;
    mb->density = s->cfg.wire_density;
    mb->fragments = s->cfg.wire_fragments;
    if (mb->wire != want || mb->density != dwant || mb->fragments != fwant) {
        char a[64], b[64];
        codec_spec_name(want, dwant, fwant, a, sizeof a);
        codec_spec_name(mb->wire, mb->density, mb->fragments, b, sizeof b);
        log_info("worker '%s' asked for %s payloads; psod imposes %s (--wire)", mb->name, a, b);
    }
}

int srv_hello_malformed(const struct server *s, const Psod__Hello *h, char *why, size_t len)
{
    if (h->protocol_version != PSOD_PROTOCOL_VERSION)
        return snprintf(why, len, "hello says protocol %u, daemon speaks %u", h->protocol_version,
                        PSOD_PROTOCOL_VERSION),
               PSOD__ERROR_CODE__ERR_VERSION;
    if (!h->worker_name || !wire_valid_name(h->worker_name))
        return snprintf(why, len,
                        "worker name must be 1 to %d printable characters without "
                        "spaces",
                        WIRE_NAME_MAX),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if (h->session.len != 0 && h->session.len != PSOD_SESSION_LEN)
        return snprintf(why, len, "a hello's session is empty or the %d bytes of a Welcome's",
                        PSOD_SESSION_LEN),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if ((int)h->encoding < 0 || (int)h->encoding >= CODEC_KINDS)
        return snprintf(why, len,
                        "hello asks for wire encoding %d; this daemon speaks fp32, "
                        "fp16, bf16, int8, int4, int2",
                        (int)h->encoding),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (!(h->density >= 0 && h->density <= 1))
        return snprintf(why, len, "hello asks for sparse payloads of density %g; 0 to 1",
                        (double)h->density),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if (h->fragments > CODEC_MAX_FRAGMENTS || (h->fragments > 1 && h->density > 0))
        return snprintf(why, len,
                        "hello asks for %u fragments%s; 0 or 2 to %u, and not with sparse "
                        "payloads",
                        h->fragments, h->density > 0 ? " of sparse payloads" : "",
                        CODEC_MAX_FRAGMENTS),
               PSOD__ERROR_CODE__ERR_MALFORMED;
    if (h->payload_kind != PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS || h->auth_token.len != 0)
        return snprintf(why, len, "hello takes float32 initial weights, without tokens"),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (h->param_count == 0 || h->param_count > s->lim.max_payload / sizeof(float))
        return snprintf(why, len, "param_count %llu outside 1..%zu (see --max-payload-mb)",
                        (unsigned long long)h->param_count, s->lim.max_payload / sizeof(float)),
               PSOD__ERROR_CODE__ERR_TOO_LARGE;
    return 0;
}

/* Whether fragment payloads, asked for or imposed, fit this swarm: a
 * strategy that takes weights, rounds, and a part per fragment. */
static int s_hello_fragments(const struct server *s, const Psod__Hello *h, char *why, size_t len)
{
    unsigned f = s->cfg.wire ? s->cfg.wire_fragments : h->fragments;
    if (f < 2)
        return 0;
    if (s->ops->push_kind)
        return snprintf(why, len,
                        "strategy %s takes gradients of the whole model; fragment payloads "
                        "sync a part of the weights each round",
                        s->ops->name),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (s->cfg.mode == SERVER_ASYNC)
        return snprintf(why, len,
                        "fragment payloads sync part (round mod %u) each round; --mode async "
                        "has no rounds to count them by",
                        f),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    if (f > h->param_count)
        return snprintf(why, len, "%u fragments of %llu parameters: at most one a parameter", f,
                        (unsigned long long)h->param_count),
               PSOD__ERROR_CODE__ERR_UNSUPPORTED;
    return 0;
}

static int s_hello_foreign(const struct server *s, const Psod__Hello *h, char *why, size_t len)
{
    if (!s->st)
        return 0; /* the first hello sets the model */
    if (s->dataset[0] && h->dataset && h->dataset[0] && strcmp(s->dataset, h->dataset) != 0)
        return snprintf(why, len,
                        "this swarm trains %s on %s; the worker's data is %s: start "
                        "it with the swarm's --dataset (or a daemon of its own)",
                        s->model_name[0] ? s->model_name : "its model", s->dataset, h->dataset),
               PSOD__ERROR_CODE__ERR_FINGERPRINT;
    if (h->param_count == s->n && h->layout_hash == s->layout_hash)
        return 0;
    const char *theirs = h->model_name && h->model_name[0] ? h->model_name : "?";
    if (s->model_name[0])
        snprintf(why, len,
                 "this swarm trains %s%s%s (%zu parameters); the hello is for %s%s%s "
                 "(%llu parameters): start the worker with the swarm's --model",
                 s->model_name, s->dataset[0] ? " on " : "", s->dataset, s->n, theirs,
                 h->dataset && h->dataset[0] ? " on " : "", h->dataset ? h->dataset : "",
                 (unsigned long long)h->param_count);
    else
        snprintf(why, len,
                 "model fingerprint %llu/%016llx (%s) does not match the swarm's "
                 "%zu/%016llx",
                 (unsigned long long)h->param_count, (unsigned long long)h->layout_hash, theirs,
                 s->n, (unsigned long long)s->layout_hash);
    return PSOD__ERROR_CODE__ERR_FINGERPRINT;
}

int srv_hello_misfit(const struct server *s, const Psod__Hello *h, char *why, size_t len)
{
    int code = s_hello_foreign(s, h, why, len);
    return code ? code : s_hello_fragments(s, h, why, len);
}
