/* Layer kernels of psoworker's training engine, as forward/backward pairs.
 *
 * Conventions (after llm.c): outputs first; every pointer's shape is in a
 * comment, batch-major NCHW; backward passes *accumulate* into parameter
 * gradients (dweight, dbias: +=) and *overwrite* the input gradient
 * (dinp: =), since every activation has exactly one consumer here.
 * Dense and convolution run on cblas_sgemm; convolution lowers each sample
 * with im2col into a caller-provided workspace. A naive convolution stays
 * beside the fast one for the tests. */
#ifndef PSOD_LAYERS_H
#define PSOD_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* out (B, OUT) = inp (B, IN) @ weight^T (OUT, IN) + bias (OUT) */
void dense_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                   int IN, int OUT);
void dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                    const float *weight, int B, int IN, int OUT);
/* The pieces the engine's threads split: output columns [o0, o1) of the
 * forward pass; the weight gradient's block [o0, o1) x [i0, i1) (and dbias
 * [o0, o1) when dbias is not NULL); the input gradient of B rows. */
void dense_forward_cols(float *out, const float *inp, const float *weight, const float *bias, int B,
                        int IN, int OUT, int o0, int o1);
void dense_backward_weight(float *dweight, float *dbias, const float *dout, const float *inp, int B,
                           int IN, int OUT, int o0, int o1, int i0, int i1);
void dense_backward_input(float *dinp, const float *dout, const float *weight, int B, int IN,
                          int OUT);

struct conv_shape {
    int C, H, W;    /* input channels, height, width */
    int OC, K, pad; /* output channels, square kernel, zero padding; stride 1 */
    int OH, OW;     /* output height, width: H + 2 pad - K + 1 */
};
void conv_shape_init(struct conv_shape *s, int C, int H, int W, int OC, int K, int pad);
/* Floats of workspace conv_forward/backward need: C*K*K * OH*OW. */
size_t conv_workspace(const struct conv_shape *s);

/* out (B, OC, OH, OW) = conv(inp (B, C, H, W), weight (OC, C, K, K)) + bias (OC) */
void conv_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                  const struct conv_shape *s, float *workspace);
void conv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                   const float *weight, int B, const struct conv_shape *s, float *workspace);
/* The definition, loop by loop, for tests. */
void conv_forward_naive(float *out, const float *inp, const float *weight, const float *bias, int B,
                        const struct conv_shape *s);

/* 2x2 max-pool, stride 2 (H, W even). argmax (B, C, H/2, W/2) records the
 * winning input index for the backward pass. */
void maxpool_forward(float *out, int32_t *argmax, const float *inp, int B, int C, int H, int W);
void maxpool_backward(float *dinp, const float *dout, const int32_t *argmax, int B, int C, int H,
                      int W);

/* n = B * features */
void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Inverted dropout: keep (n) gets 1 for the elements kept (drawn from
 * `seed` and each element's index, counted from `first`, so that a slice of
 * a batch draws what the whole batch would), and out = keep ? inp / (1 - p)
 * : 0; backward applies the same. */
void dropout_forward(float *out, uint8_t *keep, const float *inp, size_t n, float p, uint64_t seed,
                     size_t first);
void dropout_backward(float *dinp, const float *dout, const uint8_t *keep, size_t n, float p);

/* Mean softmax cross-entropy of logits (B, N) against labels (B);
 * dlogits (B, N) receives its gradient (may be NULL); correct, if not NULL,
 * the number of samples whose argmax is the label. */
double softmax_xent(float *dlogits, const float *logits, const uint8_t *labels, int B, int N,
                    int *correct);
/* The same over n of a batch's B samples: returns the sum of their losses,
 * dlogits divided by B. */
double softmax_xent_sum(float *dlogits, const float *logits, const uint8_t *labels, int n, int N,
                        int B, int *correct);

#endif
