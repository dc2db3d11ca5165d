/* libFuzzer target: the checkpoint reader, as --resume uses it: the field
 * stream (common/ckpt.c), the daemon's membership section and each
 * strategy's own state (server_restore).
 *
 * Input: one byte choosing the strategy, then the checkpoint image. What
 * loads must describe a usable swarm: a finite global loss or none. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *s_ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ctx) {
        s_ctx = zmq_ctx_new();
        log_init("fuzz_ckpt", LOG_OFF, stderr);
    }
    if (size < 1)
        return 0;
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[512];
    if (config_defaults(server_options(&cfg), err, sizeof err) != 0)
        abort();
    cfg.strategy = data[0] % 5;
    cfg.workers = 2;
    cfg.max_payload_mb = 1;
    cfg.progress_interval = 0;
    cfg.max_peers = 0;
    cfg.ctx = s_ctx;
    cfg.bind[0] = '\0'; /* detached: no socket */
    struct server *s;
    if (server_new(&s, &cfg, err, sizeof err) != 0)
        abort();
    if (server_restore(s, data + 1, size - 1, err, sizeof err) == 0) {
        double loss, acc;
        server_global(s, &loss, &acc);
        if (isnan(loss))
            abort(); /* a NaN best must not come back from disk either */
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }
    server_destroy(&s);
    return 0;
}
