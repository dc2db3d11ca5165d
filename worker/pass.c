/* Forward and backward passes of the engine, on the model's thread team:
 * see model.h. One job per call; each layer is split the way that suits it
 * (below) and the team meets at a barrier after it. With one thread every
 * split is the whole range and the kernels run exactly as the reference. */
#include <string.h>

#include "worker/model.h"
#include "common/pool.h"

struct pass {
    struct model *m;
    const float *x;
    const uint8_t *y; /* NULL: no loss (model_forward) */
    int B;
    int backward;
    double part_loss[MODEL_MAX_THREADS]; /* per thread, summed in thread order */
    int part_correct[MODEL_MAX_THREADS];
};

/* A dense layer's outputs split across the team when there are enough of
 * them for every thread; otherwise its batch rows (forward) or inputs (the
 * weight gradient) are split. */
static int s_split_out(int OUT, int n) { return OUT >= 8 * n; }

static void s_forward_layer(struct pass *p, int i, int tid, int n, size_t b0, size_t b1)
{
    struct model *m = p->m;
    struct layer *l = &m->layer[i];
    const float *in = m->act[i];
    float *out = m->act[i + 1];
    const float *w = m->params + l->weight_off, *bias = m->params + l->bias_off;
    int nb = (int)(b1 - b0);
    switch (l->kind) {
    case LAYER_DENSE: {
        int IN = (int)l->in_size;
        if (s_split_out(l->OC, n)) {
            size_t o0, o1;
            pool_split((size_t)l->OC, tid, n, &o0, &o1);
            dense_forward_cols(out, in, w, bias, p->B, IN, l->OC, (int)o0, (int)o1);
        } else {
            dense_forward(out + b0 * l->OC, in + b0 * IN, w, bias, nb, IN, l->OC);
        }
        break;
    }
    case LAYER_CONV:
        conv_forward(out + b0 * l->out_size, in + b0 * l->in_size, w, bias, nb, &l->conv,
                     n > 1 ? m->tws[tid] : m->workspace);
        break;
    case LAYER_MAXPOOL:
        maxpool_forward(out + b0 * l->out_size, m->argmax[i] + b0 * l->out_size,
                        in + b0 * l->in_size, nb, l->C, l->H, l->W);
        break;
    case LAYER_RELU:
        relu_forward(out + b0 * l->out_size, in + b0 * l->in_size, l->out_size * nb);
        break;
    case LAYER_DROPOUT:
        if (m->training)
            dropout_forward(out + b0 * l->out_size, m->keep[i] + b0 * l->out_size,
                            in + b0 * l->in_size, l->out_size * nb, l->dropout,
                            m->step * 1000003u + (uint64_t)i, b0 * l->out_size);
        else
            memcpy(out + b0 * l->out_size, in + b0 * l->in_size, l->out_size * nb * sizeof(float));
        break;
    }
}

/* Convolution: each thread takes its samples into its own gradient buffer;
 * after a barrier the team sums the buffers, each thread a range of the
 * layer's parameters, in thread order. */
static void s_conv_backward(struct pass *p, int i, int tid, int n, size_t b0, size_t b1)
{
    struct model *m = p->m;
    struct layer *l = &m->layer[i];
    const float *w = m->params + l->weight_off;
    float *din = i > 0 ? m->dact[i] + b0 * l->in_size : NULL;
    const float *dout = m->dact[i + 1] + b0 * l->out_size, *in = m->act[i] + b0 * l->in_size;
    size_t nw = l->bias_off - l->weight_off;
    if (n == 1) {
        conv_backward(din, m->grads + l->weight_off, m->grads + l->bias_off, dout, in, w,
                      (int)(b1 - b0), &l->conv, m->workspace);
        return;
    }
    float *g = m->tgrad[tid];
    memset(g, 0, l->n_params * sizeof(float));
    conv_backward(din, g, g + nw, dout, in, w, (int)(b1 - b0), &l->conv, m->tws[tid]);
    pool_barrier(m->pool, tid);
    size_t k0, k1;
    pool_split(l->n_params, tid, n, &k0, &k1);
    float *dst = m->grads + l->weight_off;
    for (int t = 0; t < n; t++) {
        const float *src = m->tgrad[t];
        for (size_t k = k0; k < k1; k++)
            dst[k] += src[k];
    }
}

static void s_backward_layer(struct pass *p, int i, int tid, int n, size_t b0, size_t b1)
{
    struct model *m = p->m;
    struct layer *l = &m->layer[i];
    float *din = i > 0 ? m->dact[i] : NULL; /* no gradient for the input */
    const float *dout = m->dact[i + 1];
    int nb = (int)(b1 - b0);
    switch (l->kind) {
    case LAYER_DENSE: {
        int IN = (int)l->in_size, OUT = l->OC;
        float *dw = m->grads + l->weight_off, *db = m->grads + l->bias_off;
        const float *w = m->params + l->weight_off;
        size_t r0, r1;
        if (s_split_out(OUT, n)) {
            pool_split((size_t)OUT, tid, n, &r0, &r1);
            dense_backward_weight(dw, db, dout, m->act[i], p->B, IN, OUT, (int)r0, (int)r1, 0, IN);
        } else {
            pool_split((size_t)IN, tid, n, &r0, &r1);
            dense_backward_weight(dw, tid == 0 ? db : NULL, dout, m->act[i], p->B, IN, OUT, 0, OUT,
                                  (int)r0, (int)r1);
        }
        if (din)
            dense_backward_input(din + b0 * IN, dout + b0 * OUT, w, nb, IN, OUT);
        break;
    }
    case LAYER_CONV: s_conv_backward(p, i, tid, n, b0, b1); break;
    case LAYER_MAXPOOL:
        if (din)
            maxpool_backward(din + b0 * l->in_size, dout + b0 * l->out_size,
                             m->argmax[i] + b0 * l->out_size, nb, l->C, l->H, l->W);
        break;
    case LAYER_RELU:
        if (din)
            relu_backward(din + b0 * l->in_size, dout + b0 * l->out_size,
                          m->act[i + 1] + b0 * l->out_size, l->out_size * nb);
        break;
    case LAYER_DROPOUT:
        if (din)
            dropout_backward(din + b0 * l->in_size, dout + b0 * l->out_size,
                             m->keep[i] + b0 * l->out_size, l->out_size * nb, l->dropout);
        break;
    }
}

/* Whether layer i reads or writes rows of other threads' samples: a dense
 * layer split by outputs in the forward pass, any dense layer's weight
 * gradient in the backward pass. Everything else works on the thread's own
 * samples, so a run of such layers needs no barrier between them. */
static int s_all_rows_forward(const struct model *m, int i, int n)
{
    return i >= 0 && i < m->n_layers && m->layer[i].kind == LAYER_DENSE &&
           s_split_out(m->layer[i].OC, n);
}

static void s_job(void *arg, int tid, int n)
{
    struct pass *p = arg;
    struct model *m = p->m;
    size_t b0, b1, in = (size_t)m->in_c * m->in_h * m->in_w;
    pool_split((size_t)p->B, tid, n, &b0, &b1);
    memcpy(m->act[0] + b0 * in, p->x + b0 * in, (b1 - b0) * in * sizeof(float));
    if (p->backward) {
        size_t g0, g1;
        pool_split(m->n_params, tid, n, &g0, &g1);
        memset(m->grads + g0, 0, (g1 - g0) * sizeof(float));
    }
    if (s_all_rows_forward(m, 0, n))
        pool_barrier(m->pool, tid);
    for (int i = 0; i < m->n_layers; i++) {
        s_forward_layer(p, i, tid, n, b0, b1);
        if (s_all_rows_forward(m, i, n) || s_all_rows_forward(m, i + 1, n))
            pool_barrier(m->pool, tid);
    }
    if (p->y) {
        int C = m->n_classes, right = 0;
        float *dl = p->backward ? m->dact[m->n_layers] + b0 * C : NULL;
        double sum = softmax_xent_sum(dl, m->act[m->n_layers] + b0 * C, p->y + b0, (int)(b1 - b0),
                                      C, p->B, &right);
        p->part_loss[tid] = sum, p->part_correct[tid] = right;
    }
    if (!p->backward)
        return;
    /* the gradients are zeroed everywhere before anyone adds to them */
    pool_barrier(m->pool, tid);
    for (int i = m->n_layers - 1; i >= 0; i--) {
        enum layer_kind k = m->layer[i].kind;
        /* a dense weight gradient reads every sample's rows */
        if (k == LAYER_DENSE && i < m->n_layers - 1)
            pool_barrier(m->pool, tid);
        s_backward_layer(p, i, tid, n, b0, b1);
        /* a convolution's sum reads every thread's buffer, which the next
         * convolution's backward pass clears */
        if (k == LAYER_CONV)
            pool_barrier(m->pool, tid);
    }
}

static double s_run(struct model *m, const float *x, const uint8_t *y, int B, int backward,
                    int *correct)
{
    struct pass p = {.m = m, .x = x, .y = y, .B = B, .backward = backward};
    pool_run(m->pool, s_job, &p);
    double loss = 0;
    int right = 0;
    for (int t = 0; t < m->threads; t++)
        loss += p.part_loss[t], right += p.part_correct[t];
    if (correct)
        *correct = right;
    return loss / B;
}

const float *model_forward(struct model *m, const float *x, int B)
{
    s_run(m, x, NULL, B, 0, NULL);
    return m->act[m->n_layers];
}

double model_step(struct model *m, const float *x, const uint8_t *y, int B, int *correct)
{
    m->training = 1;
    double loss = s_run(m, x, y, B, 1, correct);
    m->step++;
    return loss;
}

double model_eval(struct model *m, const float *x, const uint8_t *y, int B, int *correct)
{
    m->training = 0;
    double loss = s_run(m, x, y, B, 0, correct);
    m->training = 1;
    return loss;
}
