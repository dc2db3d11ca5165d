/* Payload checks: see payload.h. */
#include "common/payload.h"

#include <string.h>

#include "common/crc32c.h"
#include "common/pool.h"
#include "common/simd.h"

/* Bit test rather than isfinite() so the loop vectorizes, with 32-bit
 * counts (one vector lane per value, no widening). Static: a cloned
 * function that is global would be exported from libpsoclient.so. */
PSOD_CLONES
static uint32_t s_count_nonfinite(const uint32_t *u, size_t n)
{
    uint32_t b = 0;
    for (size_t j = 0; j < n; j++)
        b += (u[j] & 0x7f800000u) == 0x7f800000u;
    return b;
}

size_t payload_count_nonfinite(const float *x, size_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)x;
    size_t bad = 0;
    for (size_t i = 0; i < n; i += (size_t)1 << 20)
        bad += s_count_nonfinite(u + i, n - i < ((size_t)1 << 20) ? n - i : (size_t)1 << 20);
    return bad;
}

#define CHECK_BLOCK ((size_t)1 << 14) /* floats: 64 KiB, well inside L2 */

/* The smallest range a thread of the shared team checks (pool_for). */
#define CHECK_PART ((size_t)1 << 18)

struct s_check {
    const float *x;
    payload_fold_fn fold;
    void *arg;
    uint32_t crc[POOL_MAX_PARTS];
    size_t bad[POOL_MAX_PARTS], len[POOL_MAX_PARTS];
};

static void s_check_range(void *arg, size_t lo, size_t hi, int part)
{
    struct s_check *k = arg;
    uint32_t c = 0;
    size_t bad = 0;
    for (size_t i = lo; i < hi; i += CHECK_BLOCK) {
        size_t len = hi - i < CHECK_BLOCK ? hi - i : CHECK_BLOCK;
        c = crc32c(c, k->x + i, len * sizeof(float));
        bad += payload_count_nonfinite(k->x + i, len);
        if (k->fold)
            k->fold(k->arg, i, i + len);
    }
    k->crc[part] = c;
    k->bad[part] = bad;
    k->len[part] = hi - lo;
}

size_t payload_check(const float *x, size_t n, uint32_t *crc)
{
    return payload_check_fold(x, n, crc, NULL, NULL);
}

size_t payload_check_fold(const float *x, size_t n, uint32_t *crc, payload_fold_fn fold, void *arg)
{
    struct s_check k;
    k.x = x;
    k.fold = fold;
    k.arg = arg;
    int parts = pool_for(n, CHECK_PART, s_check_range, &k);
    uint32_t c = k.crc[0];
    size_t bad = k.bad[0];
    for (int p = 1; p < parts; p++) {
        c = crc32c_combine(c, k.crc[p], k.len[p] * sizeof(float));
        bad += k.bad[p];
    }
    *crc = c;
    return bad;
}

uint32_t payload_copy_crc(void *dst, const void *src, size_t bytes)
{
    const size_t block = CHECK_BLOCK * sizeof(float);
    uint32_t c = 0;
    for (size_t i = 0; i < bytes; i += block) {
        size_t len = bytes - i < block ? bytes - i : block;
        c = crc32c(c, (const char *)src + i, len);
        memcpy((char *)dst + i, (const char *)src + i, len);
    }
    return c;
}
