/* libFuzzer target: compressed payloads (common/codec.c), what a push or a
 * position carries over a wire kind other than fp32.
 *
 * Input: kind (1 byte), int8 block (2 bytes LE), value count n (2 bytes
 * LE), then the payload. Whatever codec_check lets through must decode
 * without reading past the payload (ASan watches), and a finite result,
 * encoded again as a change against the same reference and decoded, must
 * give the encoder's own result bit for bit: the rule that keeps a worker's
 * position identical to psod's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

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
    /* A copy of exactly the payload's size, so ASan sees any overread. */
    void *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    if (codec_check(kind, n, block, in, size, msg, sizeof msg) != 0 || n == 0) {
        free(in);
        return 0;
    }
    float *ref = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float)),
          *mirror = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        ref[i] = (float)(i % 17) * 0.25f - 2.0f;
    size_t bad = codec_decode(kind, n, block, in, ref, x);
    if (bad > n)
        abort();
    if (bad == 0 && kind != CODEC_FP32) {
        void *q = malloc(codec_bytes(kind, n, CODEC_BLOCK));
        codec_encode_step(kind, n, x, ref, q); /* x becomes what a receiver decodes */
        if (codec_check(kind, n, CODEC_BLOCK, q, codec_bytes(kind, n, CODEC_BLOCK), msg,
                        sizeof msg) != 0)
            abort(); /* what the encoder writes always passes the check */
        codec_decode(kind, n, CODEC_BLOCK, q, ref, mirror);
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
