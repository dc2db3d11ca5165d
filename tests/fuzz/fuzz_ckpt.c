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

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char err[512];
    struct server *s = fuzz_server_new("fuzz_ckpt", data[0] % 5, 0, 0, data[0] >> 7);
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
