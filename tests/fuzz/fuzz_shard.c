/* libFuzzer target: a daemon of a sharded swarm (server/shard/shard.c), the
 * coordinator or a follower, with the whole swarm behind it.
 *
 * Input: one byte of configuration (strategy: the byte % 5; bit 3 async
 * mode; bit 6 a follower, else the coordinator of two daemons), then
 * messages as in fuzz_server: a byte naming the sender and its key, a byte
 * with the frame count, then frames (fuzz.h). Senders are two workers
 * ("w:a", "w:b"), the other daemon and a stranger; to a follower, the
 * other daemon's messages come on its coordinator link (its orders), to
 * the coordinator on its socket (registrations, votes, model ranges). Keys
 * are none, "a", "b" or the daemons' own. Invariants checked after every
 * message: the global loss is never NaN, and the round never moves
 * backwards except by a rollback the coordinator ordered. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/gate.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct server *s_daemon(int strategy, int async, int follower)
{
    static int ready;
    if (!ready) {
        ready = 1;
        log_init("fuzz_shard", LOG_OFF, stderr);
    }
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[512];
    if (config_defaults(server_options(&cfg, (struct config_table[SERVER_OPTION_TABLES]){{0}}), err,
                        sizeof err) != 0)
        abort();
    cfg.strategy = strategy;
    cfg.mode = async && strategy <= 1;
    cfg.workers = 2;
    cfg.max_payload_mb = 1;
    cfg.max_meta_kb = 4;
    cfg.progress_interval = 0;
    cfg.max_peers = 0;
    snprintf(cfg.shards, sizeof cfg.shards, "ipc://fuzz-shard-0,ipc://fuzz-shard-1");
    cfg.shard_index = follower;
    struct server *s;
    if (server_new_detached(&s, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_shard: %s\n", err);
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int follower = (data[0] >> 6) & 1;
    struct server *s = s_daemon(data[0] % 5, (data[0] >> 3) & 1, follower);
    data++;
    size--;
    static const char *const ids[4] = {"w:a", "w:b", "shard", "stranger"};
    static const char *const users[4] = {"", "a", "b", GATE_USER_DAEMON};
    uint64_t last_round = 0;
    while (size >= 2) {
        int who = data[0] & 3, user = (data[0] >> 2) & 3, count = data[1] % (FUZZ_MAX_FRAMES + 1);
        data += 2;
        size -= 2;
        zmq_msg_t f[FUZZ_MAX_FRAMES];
        int n = fuzz_take_frames(&data, &size, count, f);
        if (follower && who == 2)
            server_handle_link_frames(s, f, n);
        else
            server_handle_frames(s, ids[who], strlen(ids[who]), users[user], f, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        double loss, acc;
        long gen;
        server_global(s, &loss, &acc);
        if (isnan(loss) || (server_round(s) < last_round && !server_restart_wanted(s, &gen)))
            abort();
        last_round = server_round(s);
    }
    server_destroy(&s);
    return 0;
}
