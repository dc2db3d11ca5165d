/* Models of psoworker's training engine: a short list of layers over ONE
 * flat float32 parameter block (what goes on the wire and what the swarm
 * stores per particle), with a gradient block of the same layout.
 *
 *   struct model *m = model_new("lenet5", 64, err, sizeof err);
 *   model_init(m, seed);                           PyTorch's default init
 *   double loss = model_step(m, x, y, B, &correct); forward + backward
 *   ... optimizer on m->params with m->grads ...
 *   model_destroy(&m);
 *
 * Activations for up to max_batch samples are allocated once.
 *
 * With model_set_threads(m, n), every pass runs on a team of n threads that
 * split the batch (convolutions, pooling, activations, the loss, the input
 * gradient of dense layers) or a dense layer's outputs (its forward pass
 * and weight gradient), with a barrier between layers. Convolution weight
 * gradients are summed from per-thread buffers in thread order, so a given
 * thread count gives the same bits on every run; different counts agree to
 * rounding. It sets OpenBLAS to one thread (for the whole process). */
#ifndef PSOD_MODEL_H
#define PSOD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "worker/layers.h"

struct pool;

enum layer_kind { LAYER_DENSE, LAYER_CONV, LAYER_MAXPOOL, LAYER_RELU, LAYER_DROPOUT };

struct layer {
    enum layer_kind kind;
    int C, H, W;    /* input shape per sample (dense: C features, H = W = 1) */
    int OC, OH, OW; /* output shape per sample */
    struct conv_shape conv;
    float dropout;
    size_t weight_off, bias_off, n_params; /* into the flat block */
    size_t in_size, out_size;              /* floats per sample */
};

#define MODEL_MAX_LAYERS 24
#define MODEL_MAX_THREADS 256

struct model {
    char name[32];
    int n_layers;
    struct layer layer[MODEL_MAX_LAYERS];
    int in_c, in_h, in_w, n_classes;
    size_t n_params;
    float *params; /* (n_params) */
    float *grads;  /* (n_params) */
    int max_batch;
    float *act[MODEL_MAX_LAYERS + 1]; /* act[0] is the input copy; act[i+1] layer i's output */
    float *dact[MODEL_MAX_LAYERS + 1];
    int32_t *argmax[MODEL_MAX_LAYERS];
    uint8_t *keep[MODEL_MAX_LAYERS];
    float *workspace;
    int threads; /* engine threads (model_set_threads), 1 = the caller only */
    struct pool *pool;
    float **tws;      /* (threads) conv workspaces, tws[0] = workspace */
    float **tgrad;    /* (threads) each thread's conv gradients before the sum */
    int training;     /* dropout active */
    uint64_t step;    /* seeds dropout masks */
    char layout[512]; /* text description, hashed for the fingerprint */
};

/* "mlp", "lenet5", "cifar_cnn"; NULL with err filled when unknown. */
struct model *model_new(const char *name, int max_batch, char *err, size_t errlen);
void model_destroy(struct model **m);
const char *model_names(void);

/* PyTorch's defaults for Linear and Conv2d: weights and biases uniform in
 * +-1/sqrt(fan_in), from a seeded generator. */
void model_init(struct model *m, uint64_t seed);

/* Fingerprint for the protocol: FNV-1a 64 of the layout text. */
uint64_t model_layout_hash(const struct model *m);

/* Forward pass on x (B, C, H, W); returns the logits (B, n_classes), which
 * live in the model. B <= max_batch. */
const float *model_forward(struct model *m, const float *x, int B);

/* Forward, loss and backward: m->grads is overwritten with the gradient of
 * the mean cross-entropy. Returns the loss; `correct` (may be NULL) gets the
 * number of samples classified right. */
double model_step(struct model *m, const float *x, const uint8_t *y, int B, int *correct);

/* Engine threads for every pass from now on (1..MODEL_MAX_THREADS); -1 with err filled
 * when the threads or their buffers cannot be had (the model is then
 * single-threaded). */
int model_set_threads(struct model *m, int threads, char *err, size_t errlen);
int model_threads(const struct model *m);

/* Floating-point operations of the GEMM-shaped work per sample: the forward
 * pass, or (backward) a whole training step. */
double model_flops(const struct model *m, int backward);

/* Loss and correct count without gradients (evaluation mode). */
double model_eval(struct model *m, const float *x, const uint8_t *y, int B, int *correct);

#endif
