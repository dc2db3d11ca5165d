/* psoclient: see psoclient.h. The API object and its options; opening
 * makes the link to the named daemon (psoclient_conn.c), closing says bye
 * on every link.
 *
 * Each link is one DEALER socket in a context of its own. Requests are
 * answered in order; replies whose seq does not match the request (a late
 * reply to a request we gave up on) and heartbeats are skipped while
 * waiting.
 *
 * Pushes send the caller's buffer zero-copy over tcp:// and ipc://. ZeroMQ
 * may keep reading that buffer until its I/O thread releases the message,
 * so before psoc_sync writes the new position into the same buffer it waits
 * for the release; on any failure the context is torn down, which also
 * releases it. The caller's buffer is therefore always free on return. */
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
#include "common/hash.h"
#include "common/keys.h"

_Static_assert(PSOC_NAME_MAX == WIRE_NAME_MAX, "one name limit");

void psoc_set_model(struct psoc *c, const char *model, const char *dataset, const uint32_t shape[3])
{
    snprintf(c->model, sizeof c->model, "%s", model ? model : "");
    snprintf(c->dataset, sizeof c->dataset, "%s", dataset ? dataset : "");
    for (int k = 0; k < 3; k++)
        c->shape[k] = shape ? shape[k] : 0;
}

void psoc_options_default(struct psoc_options *o)
{
    memset(o, 0, sizeof *o); /* every field, the CURVE keys among them */
    o->timeout_ms = 120000;
    o->connect_timeout_ms = 30000;
    o->reconnect_ms = 0;
    o->heartbeat_thread = 1;
    o->max_payload = (size_t)1 << 31;
    o->overlap_mix = -1;
}

int psoc_wire_parse(const char *name) { return name ? codec_parse(name) : -1; }

int psoc_wire_spec(struct psoc_options *o, const char *spec)
{
    int kind;
    double density;
    unsigned fragments;
    if (codec_spec_parse(spec, &kind, &density, &fragments) != 0)
        return PSOC_EINVAL;
    o->wire = kind;
    o->density = density;
    o->fragments = fragments;
    return PSOC_OK;
}
const char *psoc_wire_name(int wire) { return codec_name(wire); }

int psoc_options_curve(struct psoc_options *o, const char *key_file, const char *server_key_file,
                       char *err, size_t errlen)
{
    struct keypair mine, server;
    if (!keys_curve_available())
        return psoc__err(err, errlen, PSOC_EINVAL, "this libzmq was built without CURVE");
    if (keys_read(key_file, 1, &mine, err, errlen) != 0 ||
        keys_read(server_key_file, 0, &server, err, errlen) != 0)
        return PSOC_EINVAL;
    memcpy(o->curve_public, mine.public_key, sizeof o->curve_public);
    memcpy(o->curve_secret, mine.secret_key, sizeof o->curve_secret);
    memcpy(o->curve_server, server.public_key, sizeof o->curve_server);
    memset(&mine, 0, sizeof mine);
    return PSOC_OK;
}

const char *psoc_strerror(int code)
{
    switch (code) {
    case PSOC_OK: return "ok";
    case PSOC_EINVAL: return "invalid argument";
    case PSOC_ETIMEOUT: return "timed out";
    case PSOC_EPROTO: return "protocol error";
    case PSOC_EREFUSED: return "refused by the daemon";
    case PSOC_ECHECKSUM: return "payload checksum mismatch";
    case PSOC_ESYS: return "system error";
    case PSOC_ESTATE: return "call out of order";
    case PSOC_EINTR: return "interrupted";
    }
    return "unknown error";
}

uint64_t psoc_layout_hash(const char *layout) { return hash_fnv1a64(layout); }

size_t psoc_struct_size(const char *name)
{
    static const struct {
        const char *name;
        size_t size;
    } t[] = {
        {"psoc_options", sizeof(struct psoc_options)},
        {"psoc_welcome", sizeof(struct psoc_welcome)},
        {"psoc_report", sizeof(struct psoc_report)},
        {"psoc_position", sizeof(struct psoc_position)},
        {"psoc_particle_status", sizeof(struct psoc_particle_status)},
        {"psoc_status", sizeof(struct psoc_status)},
        {"psoc_shard_status", sizeof(struct psoc_shard_status)},
        {"psoc_model_info", sizeof(struct psoc_model_info)},
    };
    for (size_t i = 0; name && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].name, name) == 0)
            return t[i].size;
    return 0;
}

int psoc_last_server_error(const struct psoc *c) { return c->last_server_error; }

int psoc_open(struct psoc **out, const char *endpoint, const char *name,
              const struct psoc_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (name && !wire_valid_name(name))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "worker name must be 1 to %d printable characters without spaces",
                         PSOC_NAME_MAX);
    if (opts &&
        (opts->wire < 0 || opts->wire >= CODEC_KINDS ||
         !(opts->density >= 0 && opts->density <= 1) || opts->fragments > CODEC_MAX_FRAGMENTS ||
         (opts->fragments > 1 && opts->density > 0) || isnan(opts->overlap_mix) ||
         opts->overlap_mix > 1))
        return psoc__err(err, errlen, PSOC_EINVAL,
                         "wire kind %d, density %g, fragments %u, overlap mix %g: fp32, fp16, "
                         "bf16, int8, int4 or int2, a density in [0, 1] (0 = dense), 0 or 2 to "
                         "%u fragments (not both), and a mix below 0 (keep the steps) or in "
                         "[0, 1]",
                         opts->wire, opts->density, opts->fragments, opts->overlap_mix,
                         CODEC_MAX_FRAGMENTS);
    struct psoc *c = calloc(1, sizeof *c);
    if (!c || !(c->link = calloc(1, sizeof *c->link))) {
        free(c);
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    }
    c->final_accuracy = NAN;
    if (name)
        strcpy(c->name, name);
    if (opts)
        c->opts = *opts;
    else
        psoc_options_default(&c->opts);
    /* The named daemon's link; psoc_join gives it its range. */
    int rc = psoc__link_new(c, endpoint, 0, 0, 0, &c->link[0], err, errlen);
    if (rc) {
        free(c->link);
        free(c);
        return rc;
    }
    c->nlink = 1;
    *out = c;
    return PSOC_OK;
}

void psoc_close(struct psoc **cp)
{
    struct psoc *c = *cp;
    if (!c)
        return;
    c->inflight = 0; /* a sync still in flight is abandoned: the byes go */
    for (int k = 0; k < c->nlink; k++)
        psoc__link_close(&c->link[k]); /* each says bye to its daemon */
    free(c->link);
    free(c->cand);
    free(c->at_push);
    free(c->arrived);
    free(c);
    *cp = NULL;
}

void psoc_set_final(struct psoc *c, double accuracy, uint64_t round)
{
    c->final_accuracy = accuracy;
    c->final_round = round;
}
