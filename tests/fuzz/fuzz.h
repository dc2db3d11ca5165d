/* Shared by the fuzz targets and make_corpus.
 *
 * Frames: a frame is a 16-bit little-endian length and that many bytes; the
 * last frame takes whatever is left if its length runs past the end.
 * make_corpus writes valid messages this way. */
#ifndef PSOD_FUZZ_H
#define PSOD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/codec.h"
#include "common/log.h"
#include "server/strategy/aggregate.h"
#include "server/server.h"

#define FUZZ_MAX_FRAMES 6

/* Read up to `count` frames from *data into `f` (initialised messages the
 * caller closes). Returns the number read. */
static inline int fuzz_take_frames(const uint8_t **data, size_t *size, int count, zmq_msg_t *f)
{
    int n = 0;
    while (n < count && *size >= 2) {
        size_t len = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
        *data += 2;
        *size -= 2;
        if (len > *size)
            len = *size;
        zmq_msg_init_size(&f[n], len);
        if (len)
            memcpy(zmq_msg_data(&f[n]), *data, len);
        *data += len;
        *size -= len;
        n++;
    }
    return n;
}

/* A detached daemon (server_new_detached) with the defaults, `strategy`,
 * sync or async mode, --wire `wire` (0 any, else a kind + 1), --verify-best
 * when `verify` (pso in sync mode only, a quorum of 1 so that two workers
 * can adopt) with a robust --aggregate (cclip for pso, median for the
 * others; sync mode), pso's personal bests in bfloat16 when it has no
 * --verify-best and `wire` is odd, 2 workers and small limits;
 * logging off. Aborts if it cannot be made: that is a bug,
 * not a finding. */
static inline struct server *fuzz_server_new(const char *name, int strategy, int async, int wire,
                                             int verify)
{
    static int ready;
    if (!ready) {
        ready = 1;
        log_init(name, LOG_OFF, stderr);
    }
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[512];
    if (config_defaults(server_options(&cfg, (struct config_table[SERVER_OPTION_TABLES]){{0}}), err,
                        sizeof err) != 0)
        abort();
    cfg.strategy = strategy;
    cfg.mode = async && strategy <= 1; /* async: pso and avg */
    /* --wire: any, or one kind imposed (the sparse form of int8 for the
     * kind past the last) */
    if (wire > CODEC_KINDS)
        snprintf(cfg.wire_spec, sizeof cfg.wire_spec, "topk:0.25:int8");
    else if (wire > 0)
        snprintf(cfg.wire_spec, sizeof cfg.wire_spec, "%s", codec_name(wire - 1));
    cfg.sp.verify = verify && strategy == 0 && !cfg.mode;
    cfg.sp.verify_quorum = 1;
    cfg.sp.agg.rule = verify && !cfg.mode ? (strategy == 0 ? AGG_CCLIP : AGG_MEDIAN) : AGG_MEAN;
    cfg.hyper = verify && strategy != 4 && !cfg.mode; /* not ssgd */
    cfg.sp.best_bf16 = strategy == 0 && !cfg.sp.verify && (wire & 1);
    cfg.workers = 2;
    cfg.max_payload_mb = 1;
    cfg.max_meta_kb = 4;
    cfg.progress_interval = 0;
    cfg.max_peers = 0;
    struct server *s;
    if (server_new_detached(&s, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        abort();
    }
    return s;
}

#endif
