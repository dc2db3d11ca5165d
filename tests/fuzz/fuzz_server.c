/* libFuzzer target: the daemon's message handler (server_handle_frames),
 * with the whole swarm behind it: membership, rounds, every strategy's
 * update, status and admin requests.
 *
 * Input: one byte of configuration (strategy, sync or async mode, psod's
 * --wire: any, one kind imposed or a sparse one (bits 4-6), and bit 7:
 * --verify-best and --hyper), then
 * messages. Each message is one byte naming the sender and its key, one
 * byte with the frame count, then frames (fuzz.h). Senders are two
 * workers ("w:a", "w:b"), a's heartbeat socket ("h:a") and a stranger; keys
 * are none, "a", "b" or an admin's, so key binding and admin checks run.
 * Each input gets a fresh detached daemon (no socket: the whole input is
 * handled in this thread and its replies go nowhere, as to a peer that went
 * away), so every allocation is freed within the input and LeakSanitizer
 * sees real leaks only.
 * Invariants checked after every message: the global loss is never NaN,
 * and the round never moves backwards. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct server *s = fuzz_server_new("fuzz_server", data[0] % 5, (data[0] >> 3) & 1,
                                       (data[0] >> 4) & 7, data[0] >> 7);
    data++;
    size--;
    static const char *const ids[4] = {"w:a", "w:b", "h:a", "stranger"};
    static const char *const users[4] = {"", "a", "b", "admin:op"};
    uint64_t last_round = 0;
    while (size >= 2) {
        int who = data[0] & 3, user = (data[0] >> 2) & 3, count = data[1] % (FUZZ_MAX_FRAMES + 1);
        data += 2;
        size -= 2;
        zmq_msg_t f[FUZZ_MAX_FRAMES];
        int n = fuzz_take_frames(&data, &size, count, f);
        server_handle_frames(s, ids[who], strlen(ids[who]), users[user], f, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        double loss, acc;
        server_global(s, &loss, &acc);
        if (isnan(loss) || server_round(s) < last_round)
            abort();
        last_round = server_round(s);
    }
    server_destroy(&s);
    return 0;
}
