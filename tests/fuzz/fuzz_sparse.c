/* libFuzzer target: sparse payloads (common/sparse.c), what a push or a
 * position carries under --wire topk:DENSITY[:KIND].
 *
 * Input: value kind (1 byte), block (2 bytes LE), value count n (2 bytes
 * LE), then the payload. Whatever sparse_check lets through must decode
 * without reading past the payload (ASan watches) and write only the
 * entries it lists; a finite result, encoded again as a step against the
 * same reference, must pass the check and decode to the encoder's own
 * result bit for bit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/sparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int kind = data[0] % (CODEC_KINDS + 1); /* one value past the last: unknown */
    size_t block = (size_t)data[1] | (size_t)data[2] << 8;
    size_t n = (size_t)data[3] | (size_t)data[4] << 8;
    data += 5;
    size -= 5;
    char msg[256];
    void *in = malloc(size ? size : 1); /* exactly the payload: ASan sees overreads */
    memcpy(in, data, size);
    if (sparse_check(kind, n, block, in, size, msg, sizeof msg) != 0 || n == 0) {
        free(in);
        return 0;
    }
    float *ref = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float)),
          *mirror = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        ref[i] = (float)(i % 17) * 0.25f - 2.0f;
    size_t bad = sparse_decode(kind, n, block, in, size, ref, x);
    if (bad > n)
        abort();
    if (bad == 0) {
        size_t k = n / 3 + 1;
        void *q = malloc(sparse_max_bytes(kind, n, k, CODEC_BLOCK));
        size_t bytes = sparse_encode_step(kind, n, k, x, ref, q);
        if (!bytes || sparse_check(kind, n, CODEC_BLOCK, q, bytes, msg, sizeof msg) != 0)
            abort(); /* what the encoder writes always passes the check */
        sparse_decode(kind, n, CODEC_BLOCK, q, bytes, ref, mirror);
        if (memcmp(mirror, x, n * sizeof(float)) != 0)
            abort();
        free(q);
    }
    free(ref);
    free(x);
    free(mirror);
    free(in);
    return 0;
}
