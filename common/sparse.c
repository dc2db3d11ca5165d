/* Sparse payloads: see sparse.h. */
#include "common/sparse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "proto/psod.pb-c.h"

#define HEADER 8
#define VARINT_MAX 10

size_t sparse_k(size_t n, double density)
{
    if (!(density > 0))
        return n ? 1 : 0;
    double k = ceil((double)n * (density < 1 ? density : 1));
    return k < 1 ? 1 : k > (double)n ? n : (size_t)k;
}

static size_t s_align4(size_t b) { return (b + 3) & ~(size_t)3; }

size_t sparse_max_bytes(int kind, size_t n, size_t k, size_t block)
{
    (void)n;
    return HEADER + s_align4(k * VARINT_MAX) + codec_bytes(kind, k, block);
}

/* Magnitudes as unsigned keys: for finite floats the order of |x| is the
 * order of these integers. */
static inline uint32_t s_key(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

/* The k largest |d| (ties to the lower index) into idx[0..k), increasing:
 * a radix select on the keys, the top 16 bits then the low 16. -1 when
 * out of memory. */
static int s_select(const float *d, size_t n, size_t k, size_t *idx)
{
    size_t *h = calloc(65536, sizeof *h);
    if (!h)
        return -1;
    for (size_t i = 0; i < n; i++)
        h[s_key(d[i]) >> 16]++;
    size_t above = 0; /* keys in buckets above the one holding the k-th */
    uint32_t hi = 65535;
    for (;; hi--) {
        if (above + h[hi] >= k || hi == 0)
            break;
        above += h[hi];
    }
    memset(h, 0, 65536 * sizeof *h);
    for (size_t i = 0; i < n; i++)
        if (s_key(d[i]) >> 16 == hi)
            h[s_key(d[i]) & 0xffffu]++;
    uint32_t lo = 65535;
    for (;; lo--) {
        if (above + h[lo] >= k || lo == 0)
            break;
        above += h[lo];
    }
    free(h);
    const uint32_t t = hi << 16 | lo; /* the k-th largest key */
    size_t ties = k - above, j = 0;   /* `above` keys beat t; that many equal it go */
    for (size_t i = 0; i < n && j < k; i++) {
        uint32_t u = s_key(d[i]);
        if (u > t || (u == t && ties > 0)) {
            if (u == t)
                ties--;
            idx[j++] = i;
        }
    }
    return 0;
}

/* The header and the indices; returns where the values start. */
static size_t s_put_indices(unsigned char *out, const size_t *idx, size_t k)
{
    unsigned char *p = out + HEADER;
    for (size_t j = 0; j < k; j++) {
        uint64_t v = j ? idx[j] - idx[j - 1] - 1 : idx[0];
        do {
            unsigned char b = v & 0x7f;
            v >>= 7;
            *p++ = (unsigned char)(b | (v ? 0x80 : 0));
        } while (v);
    }
    uint32_t kk = (uint32_t)k, ib = (uint32_t)(p - out - HEADER);
    memcpy(out, &kk, 4);
    memcpy(out + 4, &ib, 4);
    size_t at = HEADER + ib;
    while (at % 4)
        out[at++] = 0;
    return at;
}

/* The top k of d, encoded into out, what the receiver decodes into deq
 * (k values) at the entries idx. Returns the bytes, 0 when out of memory. */
static size_t s_encode(int kind, size_t n, size_t k, const float *d, void *out, size_t **idx_out,
                       float **deq_out)
{
    size_t *idx = malloc(k * sizeof *idx);
    float *vals = calloc(k, sizeof *vals), *deq = malloc(k * sizeof *deq);
    if (!idx || !vals || !deq || s_select(d, n, k, idx) != 0) {
        free(idx), free(vals), free(deq);
        return 0;
    }
    size_t at = s_put_indices(out, idx, k);
    for (size_t j = 0; j < k; j++)
        vals[j] = d[idx[j]];
    unsigned char *v = (unsigned char *)out + at;
    codec_encode(kind, k, vals, NULL, NULL, v);
    codec_decode(kind, k, CODEC_BLOCK, v, NULL, deq);
    free(vals);
    *idx_out = idx;
    *deq_out = deq;
    return at + codec_bytes(kind, k, CODEC_BLOCK);
}

/* The top k of d (n floats, freed here) into out; then, with the receiver's
 * values at the entries sent: the residual (resid: d less what arrives)
 * or the step (target: state plus what arrives). Returns the bytes, 0 when
 * out of memory (resid and target untouched). */
static size_t s_finish(int kind, size_t n, size_t k, float *d, void *out, float *resid,
                       float *target, const float *state)
{
    size_t *idx;
    float *deq;
    size_t bytes = s_encode(kind, n, k, d, out, &idx, &deq);
    if (bytes && resid) {
        memcpy(resid, d, n * sizeof *d);
        for (size_t j = 0; j < k; j++)
            resid[idx[j]] = d[idx[j]] - deq[j];
    }
    if (bytes && target) {
        memcpy(target, state, n * sizeof *target);
        for (size_t j = 0; j < k; j++)
            target[idx[j]] = state[idx[j]] + deq[j];
    }
    if (bytes)
        free(idx), free(deq);
    free(d);
    return bytes;
}

/* Room for the change of n values, or NULL (out of memory, or k not in
 * 1 .. n). */
static float *s_change(size_t n, size_t k)
{
    return k && k <= n ? malloc(n * sizeof(float)) : NULL;
}

size_t sparse_encode(int kind, size_t n, size_t k, const float *x, const float *ref, float *resid,
                     void *out)
{
    float *d = s_change(n, k);
    if (!d)
        return 0;
    for (size_t i = 0; i < n; i++)
        d[i] = x[i] - (ref ? ref[i] : 0.0f) + (resid ? resid[i] : 0.0f);
    return s_finish(kind, n, k, d, out, resid, NULL, NULL);
}

size_t sparse_encode_step(int kind, size_t n, size_t k, float *target, const float *state,
                          void *out)
{
    float *d = s_change(n, k);
    if (!d)
        return 0;
    for (size_t i = 0; i < n; i++)
        d[i] = target[i] - state[i];
    return s_finish(kind, n, k, d, out, NULL, target, state);
}

/* Walks the indices: calls fn(arg, j, index) for each; 0, or an error
 * code with msg. */
typedef void s_visit_fn(void *arg, size_t j, size_t index);
static int s_walk(size_t n, const unsigned char *in, size_t bytes, size_t *k_out, size_t *values_at,
                  s_visit_fn *fn, void *arg, char *msg, size_t msglen)
{
    if (bytes < HEADER) {
        snprintf(msg, msglen, "sparse payload of %zu bytes, shorter than its header", bytes);
        return PSOD__ERROR_CODE__ERR_SIZE;
    }
    uint32_t k, ib;
    memcpy(&k, in, 4);
    memcpy(&ib, in + 4, 4);
    if (k < 1 || k > n) {
        snprintf(msg, msglen, "sparse payload of %u entries for %zu values", k, n);
        return PSOD__ERROR_CODE__ERR_MALFORMED;
    }
    if (ib > bytes - HEADER || ib > (size_t)k * VARINT_MAX) {
        snprintf(msg, msglen, "sparse payload says %u bytes of indices; it has %zu", ib,
                 bytes - HEADER);
        return PSOD__ERROR_CODE__ERR_SIZE;
    }
    const unsigned char *p = in + HEADER, *end = p + ib;
    uint64_t next = 0; /* the lowest index the next entry may have */
    for (size_t j = 0; j < k; j++) {
        uint64_t v = 0;
        int shift = 0, more = 1;
        while (more) {
            if (p == end || shift > 63) {
                snprintf(msg, msglen, "sparse index %zu is cut short or overlong", j);
                return PSOD__ERROR_CODE__ERR_MALFORMED;
            }
            unsigned char b = *p++;
            if (shift == 63 && (b & 0x7e)) {
                snprintf(msg, msglen, "sparse index %zu overflows", j);
                return PSOD__ERROR_CODE__ERR_MALFORMED;
            }
            v |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            more = b & 0x80;
        }
        if (v >= n || next + v >= n) {
            snprintf(msg, msglen, "sparse entry %zu: index out of range (%zu values)", j, n);
            return PSOD__ERROR_CODE__ERR_MALFORMED;
        }
        if (fn)
            fn(arg, j, (size_t)(next + v));
        next += v + 1;
    }
    if (p != end) {
        snprintf(msg, msglen, "sparse payload has %zu bytes of indices after its %u entries",
                 (size_t)(end - p), k);
        return PSOD__ERROR_CODE__ERR_MALFORMED;
    }
    size_t at = HEADER + ib;
    for (; at % 4; at++)
        if (at >= bytes || in[at] != 0) {
            snprintf(msg, msglen, "sparse payload's padding is cut short or not zero");
            return PSOD__ERROR_CODE__ERR_MALFORMED;
        }
    *k_out = k;
    *values_at = at;
    return 0;
}

int sparse_check(int kind, size_t n, size_t block, const void *in, size_t bytes, char *msg,
                 size_t msglen)
{
    size_t k, at;
    int code = s_walk(n, in, bytes, &k, &at, NULL, NULL, msg, msglen);
    if (code)
        return code;
    return codec_check(kind, k, block, (const char *)in + at, bytes - at, msg, msglen);
}

struct s_scatter {
    const float *val, *ref;
    float *dst;
    size_t bad;
};

static void s_scatter(void *arg, size_t j, size_t i)
{
    struct s_scatter *s = arg;
    float v = (s->ref ? s->ref[i] : 0.0f) + s->val[j];
    s->dst[i] = v;
    s->bad += !isfinite(v);
}

size_t sparse_decode(int kind, size_t n, size_t block, const void *in, size_t bytes,
                     const float *ref, float *dst)
{
    char msg[160];
    size_t k, at;
    if (s_walk(n, in, bytes, &k, &at, NULL, NULL, msg, sizeof msg) != 0)
        return n; /* not checked: nothing usable */
    float *val = malloc(k * sizeof *val);
    if (!val)
        return n;
    codec_decode(kind, k, block, (const char *)in + at, NULL, val);
    if (dst != ref) {
        if (ref)
            memcpy(dst, ref, n * sizeof *dst);
        else
            memset(dst, 0, n * sizeof *dst);
    }
    struct s_scatter s = {val, ref, dst, 0};
    s_walk(n, in, bytes, &k, &at, s_scatter, &s, msg, sizeof msg);
    free(val);
    return s.bad;
}
