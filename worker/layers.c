/* Layer kernels: see layers.h. */
#include "worker/layers.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "common/rng.h"
#include "common/simd.h"

void dense_forward_cols(float *out, const float *inp, const float *weight, const float *bias, int B,
                        int IN, int OUT, int o0, int o1)
{
    /* out[:, o0:o1] (B, o1 - o0), rows OUT apart */
    if (o1 <= o0 || B <= 0)
        return;
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * OUT + o0, bias + o0, (size_t)(o1 - o0) * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, o1 - o0, IN, 1.0f, inp, IN,
                weight + (size_t)o0 * IN, IN, 1.0f, out + o0, OUT);
}

void dense_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                   int IN, int OUT)
{
    dense_forward_cols(out, inp, weight, bias, B, IN, OUT, 0, OUT);
}

void dense_backward_weight(float *dweight, float *dbias, const float *dout, const float *inp, int B,
                           int IN, int OUT, int o0, int o1, int i0, int i1)
{
    /* dweight[o0:o1, i0:i1] += dout[:, o0:o1]^T (o1 - o0, B) @ inp[:, i0:i1] (B, i1 - i0) */
    if (o1 > o0 && i1 > i0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, i1 - i0, B, 1.0f, dout + o0,
                    OUT, inp + i0, IN, 1.0f, dweight + (size_t)o0 * IN + i0, IN);
    if (dbias)
        for (int b = 0; b < B; b++)
            for (int o = o0; o < o1; o++)
                dbias[o] += dout[(size_t)b * OUT + o];
}

void dense_backward_input(float *dinp, const float *dout, const float *weight, int B, int IN,
                          int OUT)
{
    /* dinp (B, IN) = dout (B, OUT) @ weight (OUT, IN) */
    if (B > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1.0f, dout, OUT, weight,
                    IN, 0.0f, dinp, IN);
}

void dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                    const float *weight, int B, int IN, int OUT)
{
    dense_backward_weight(dweight, dbias, dout, inp, B, IN, OUT, 0, OUT, 0, IN);
    if (dinp)
        dense_backward_input(dinp, dout, weight, B, IN, OUT);
}

void conv_shape_init(struct conv_shape *s, int C, int H, int W, int OC, int K, int pad)
{
    s->C = C, s->H = H, s->W = W, s->OC = OC, s->K = K, s->pad = pad;
    s->OH = H + 2 * pad - K + 1;
    s->OW = W + 2 * pad - K + 1;
}

size_t conv_workspace(const struct conv_shape *s)
{
    return (size_t)s->C * s->K * s->K * s->OH * s->OW;
}

/* col (C*K*K, OH*OW) from one sample img (C, H, W). Rows are (c, ky, kx),
 * the order of weight (OC, C, K, K), so the convolution is one GEMM. */
PSOD_CLONES static void s_im2col(float *col, const float *img, const struct conv_shape *s)
{
    const int OH = s->OH, OW = s->OW, K = s->K, H = s->H, W = s->W, pad = s->pad;
    for (int c = 0; c < s->C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *row = col + (((size_t)c * K + ky) * K + kx) * OH * OW;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy + ky - pad;
                    float *dst = row + (size_t)oy * OW;
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *src = img + ((size_t)c * H + iy) * W;
                    int ox0 = pad - kx > 0 ? pad - kx : 0;           /* ix >= 0 */
                    int ox1 = W + pad - kx < OW ? W + pad - kx : OW; /* ix < W */
                    for (int ox = 0; ox < ox0; ox++)
                        dst[ox] = 0.0f;
                    /* rows are short (28 floats): a loop beats a memcpy call */
                    const float *from = src + kx - pad;
                    for (int ox = ox0; ox < ox1; ox++)
                        dst[ox] = from[ox];
                    for (int ox = ox1 > ox0 ? ox1 : ox0; ox < OW; ox++)
                        dst[ox] = 0.0f;
                }
            }
}

/* img (C, H, W) = sum of col (C*K*K, OH*OW) scattered back: im2col's adjoint. */
PSOD_CLONES static void s_col2im(float *img, const float *col, const struct conv_shape *s)
{
    const int OH = s->OH, OW = s->OW, K = s->K, H = s->H, W = s->W, pad = s->pad;
    memset(img, 0, (size_t)s->C * H * W * sizeof(float));
    for (int c = 0; c < s->C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *row = col + (((size_t)c * K + ky) * K + kx) * OH * OW;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy + ky - pad;
                    if (iy < 0 || iy >= H)
                        continue;
                    float *dst = img + ((size_t)c * H + iy) * W;
                    const float *src = row + (size_t)oy * OW;
                    int ox0 = pad - kx > 0 ? pad - kx : 0;
                    int ox1 = W + pad - kx < OW ? W + pad - kx : OW;
                    for (int ox = ox0; ox < ox1; ox++)
                        dst[ox + kx - pad] += src[ox];
                }
            }
}

void conv_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                  const struct conv_shape *s, float *workspace)
{
    const int CKK = s->C * s->K * s->K, P = s->OH * s->OW;
    for (int b = 0; b < B; b++) {
        const float *img = inp + (size_t)b * s->C * s->H * s->W;
        float *o = out + (size_t)b * s->OC * P; /* (OC, OH*OW) */
        s_im2col(workspace, img, s);
        for (int oc = 0; oc < s->OC; oc++)
            for (int i = 0; i < P; i++)
                o[(size_t)oc * P + i] = bias[oc];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->OC, P, CKK, 1.0f, weight, CKK,
                    workspace, P, 1.0f, o, P);
    }
}

void conv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                   const float *weight, int B, const struct conv_shape *s, float *workspace)
{
    const int CKK = s->C * s->K * s->K, P = s->OH * s->OW;
    for (int b = 0; b < B; b++) {
        const float *img = inp + (size_t)b * s->C * s->H * s->W;
        const float *d = dout + (size_t)b * s->OC * P; /* (OC, OH*OW) */
        for (int oc = 0; oc < s->OC; oc++) {
            float acc = 0;
            for (int i = 0; i < P; i++)
                acc += d[(size_t)oc * P + i];
            dbias[oc] += acc;
        }
        s_im2col(workspace, img, s);
        /* dweight (OC, CKK) += d (OC, P) @ col^T (P, CKK) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->OC, CKK, P, 1.0f, d, P, workspace,
                    P, 1.0f, dweight, CKK);
        if (dinp) {
            /* dcol (CKK, P) = weight^T (CKK, OC) @ d (OC, P), then col2im */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, P, s->OC, 1.0f, weight, CKK,
                        d, P, 0.0f, workspace, P);
            s_col2im(dinp + (size_t)b * s->C * s->H * s->W, workspace, s);
        }
    }
}

void conv_forward_naive(float *out, const float *inp, const float *weight, const float *bias, int B,
                        const struct conv_shape *s)
{
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < s->OC; oc++)
            for (int oy = 0; oy < s->OH; oy++)
                for (int ox = 0; ox < s->OW; ox++) {
                    double acc = bias[oc];
                    for (int c = 0; c < s->C; c++)
                        for (int ky = 0; ky < s->K; ky++)
                            for (int kx = 0; kx < s->K; kx++) {
                                int iy = oy + ky - s->pad, ix = ox + kx - s->pad;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W)
                                    continue;
                                acc += (double)weight[((oc * s->C + c) * s->K + ky) * s->K + kx] *
                                       inp[(((size_t)b * s->C + c) * s->H + iy) * s->W + ix];
                            }
                    out[(((size_t)b * s->OC + oc) * s->OH + oy) * s->OW + ox] = (float)acc;
                }
}

PSOD_CLONES void maxpool_forward(float *restrict out, int32_t *restrict argmax,
                                 const float *restrict inp, int B, int C, int H, int W)
{
    const int OH = H / 2, OW = W / 2;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *x = inp + bc * H * W;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int best = (2 * oy) * W + 2 * ox;
                int cand[3] = {best + 1, best + W, best + W + 1};
                for (int k = 0; k < 3; k++)
                    if (x[cand[k]] > x[best])
                        best = cand[k];
                size_t o = bc * OH * OW + (size_t)oy * OW + ox;
                out[o] = x[best];
                argmax[o] = best;
            }
    }
}

void maxpool_backward(float *dinp, const float *dout, const int32_t *argmax, int B, int C, int H,
                      int W)
{
    const size_t per_in = (size_t)H * W, per_out = (size_t)(H / 2) * (W / 2);
    memset(dinp, 0, (size_t)B * C * per_in * sizeof(float));
    for (size_t bc = 0; bc < (size_t)B * C; bc++)
        for (size_t o = 0; o < per_out; o++)
            dinp[bc * per_in + argmax[bc * per_out + o]] += dout[bc * per_out + o];
}

PSOD_CLONES void relu_forward(float *restrict out, const float *restrict inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

PSOD_CLONES void relu_backward(float *restrict dinp, const float *restrict dout,
                               const float *restrict out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void dropout_forward(float *out, uint8_t *keep, const float *inp, size_t n, float p, uint64_t seed,
                     size_t first)
{
    const float scale = 1.0f / (1.0f - p);
    uint32_t key = (uint32_t)rng_splitmix64(seed);
    for (size_t k = 0; k < n; k++) {
        size_t i = first + k;
        float u, unused;
        rng_uniform_pair(rng_key_hi(key, i), (uint32_t)i, &u, &unused);
        keep[k] = u >= p;
        out[k] = keep[k] ? inp[k] * scale : 0.0f;
    }
}

void dropout_backward(float *dinp, const float *dout, const uint8_t *keep, size_t n, float p)
{
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        dinp[i] = keep[i] ? dout[i] * scale : 0.0f;
}

double softmax_xent_sum(float *dlogits, const float *logits, const uint8_t *labels, int n, int N,
                        int B, int *correct)
{
    double loss = 0;
    int right = 0;
    for (int b = 0; b < n; b++) {
        const float *z = logits + (size_t)b * N;
        int arg = 0;
        for (int i = 1; i < N; i++)
            if (z[i] > z[arg])
                arg = i;
        right += arg == labels[b];
        double sum = 0;
        for (int i = 0; i < N; i++)
            sum += exp((double)z[i] - z[arg]);
        double logsum = log(sum) + z[arg];
        loss += logsum - z[labels[b]];
        if (dlogits)
            for (int i = 0; i < N; i++) {
                double pr = exp((double)z[i] - logsum);
                dlogits[(size_t)b * N + i] = (float)((pr - (i == labels[b])) / B);
            }
    }
    if (correct)
        *correct = right;
    return loss;
}

double softmax_xent(float *dlogits, const float *logits, const uint8_t *labels, int B, int N,
                    int *correct)
{
    return softmax_xent_sum(dlogits, logits, labels, B, N, B, correct) / B;
}
