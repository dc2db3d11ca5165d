/* Models: see model.h. A model is built by appending layers to a shape
 * that flows from the input; the layout text records every layer so that two
 * workers agree on a model only if they build the same one. */
#include "worker/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/psoclient.h"
#include "common/rng.h"

struct builder {
    struct model *m;
    int C, H, W;
    int ok;
};

static void s_append(struct builder *b, struct layer *l, const char *text)
{
    struct model *m = b->m;
    if (m->n_layers >= MODEL_MAX_LAYERS) {
        b->ok = 0;
        return;
    }
    l->C = b->C, l->H = b->H, l->W = b->W;
    l->in_size = (size_t)l->C * l->H * l->W;
    l->out_size = (size_t)l->OC * l->OH * l->OW;
    m->layer[m->n_layers++] = *l;
    b->C = l->OC, b->H = l->OH, b->W = l->OW;
    size_t len = strlen(m->layout);
    snprintf(m->layout + len, sizeof m->layout - len, "%s%s", len ? ";" : "", text);
}

static void s_conv(struct builder *b, int OC, int K, int pad)
{
    struct layer l = {.kind = LAYER_CONV};
    conv_shape_init(&l.conv, b->C, b->H, b->W, OC, K, pad);
    l.OC = OC, l.OH = l.conv.OH, l.OW = l.conv.OW;
    l.weight_off = b->m->n_params;
    l.bias_off = l.weight_off + (size_t)OC * b->C * K * K;
    l.n_params = (size_t)OC * b->C * K * K + OC;
    b->m->n_params += l.n_params;
    char text[64];
    snprintf(text, sizeof text, "conv%dx%d:%d->%d:pad%d", K, K, b->C, OC, pad);
    s_append(b, &l, text);
}

static void s_dense(struct builder *b, int OUT)
{
    int IN = b->C * b->H * b->W; /* flattens whatever comes in */
    struct layer l = {.kind = LAYER_DENSE, .OC = OUT, .OH = 1, .OW = 1};
    l.weight_off = b->m->n_params;
    l.bias_off = l.weight_off + (size_t)OUT * IN;
    l.n_params = (size_t)OUT * IN + OUT;
    b->m->n_params += l.n_params;
    b->C = IN, b->H = 1, b->W = 1;
    char text[64];
    snprintf(text, sizeof text, "dense:%d->%d", IN, OUT);
    s_append(b, &l, text);
}

static void s_simple(struct builder *b, enum layer_kind kind, float p)
{
    struct layer l = {.kind = kind, .OC = b->C, .OH = b->H, .OW = b->W, .dropout = p};
    const char *text = kind == LAYER_RELU ? "relu" : "dropout";
    char buf[32];
    if (kind == LAYER_MAXPOOL) {
        if (b->H % 2 || b->W % 2)
            b->ok = 0;
        l.OH = b->H / 2, l.OW = b->W / 2;
        text = "maxpool2";
    } else if (kind == LAYER_DROPOUT) {
        snprintf(buf, sizeof buf, "dropout%.3g", p);
        text = buf;
    }
    s_append(b, &l, text);
}

const char *model_names(void) { return "mlp, lenet5, cifar_cnn"; }

static int s_define(struct builder *b, const char *name)
{
    struct model *m = b->m;
    if (strcmp(name, "mlp") == 0) {
        m->in_c = 1, m->in_h = 28, m->in_w = 28;
        b->C = 1, b->H = 28, b->W = 28;
        s_dense(b, 512), s_simple(b, LAYER_RELU, 0);
        s_dense(b, 512), s_simple(b, LAYER_RELU, 0);
        s_dense(b, 10);
    } else if (strcmp(name, "lenet5") == 0) {
        m->in_c = 1, m->in_h = 28, m->in_w = 28;
        b->C = 1, b->H = 28, b->W = 28;
        s_conv(b, 6, 5, 2), s_simple(b, LAYER_RELU, 0), s_simple(b, LAYER_MAXPOOL, 0);
        s_conv(b, 16, 5, 0), s_simple(b, LAYER_RELU, 0), s_simple(b, LAYER_MAXPOOL, 0);
        s_dense(b, 120), s_simple(b, LAYER_RELU, 0);
        s_dense(b, 84), s_simple(b, LAYER_RELU, 0);
        s_dense(b, 10);
    } else if (strcmp(name, "cifar_cnn") == 0) {
        m->in_c = 3, m->in_h = 32, m->in_w = 32;
        b->C = 3, b->H = 32, b->W = 32;
        s_conv(b, 32, 3, 1), s_simple(b, LAYER_RELU, 0), s_simple(b, LAYER_MAXPOOL, 0);
        s_conv(b, 64, 3, 1), s_simple(b, LAYER_RELU, 0), s_simple(b, LAYER_MAXPOOL, 0);
        s_conv(b, 64, 3, 1), s_simple(b, LAYER_RELU, 0), s_simple(b, LAYER_MAXPOOL, 0);
        s_dense(b, 256), s_simple(b, LAYER_RELU, 0);
        s_dense(b, 10);
    } else {
        return -1;
    }
    m->n_classes = b->C;
    return 0;
}

static float *s_floats(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0)
        return NULL;
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

struct model *model_new(const char *name, int max_batch, char *err, size_t errlen)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct builder b = {.m = m, .ok = 1};
    if (strlen(name) >= sizeof m->name || s_define(&b, name) != 0) {
        snprintf(err, errlen, "unknown model '%s' (choose %s)", name, model_names());
        free(m);
        return NULL;
    }
    if (!b.ok || max_batch < 1) {
        snprintf(err, errlen, "model '%s' cannot be built for batch %d", name, max_batch);
        free(m);
        return NULL;
    }
    strcpy(m->name, name);
    m->max_batch = max_batch;
    m->training = 1;
    m->params = s_floats(m->n_params);
    m->grads = s_floats(m->n_params);
    size_t in = (size_t)m->in_c * m->in_h * m->in_w, ws = 0;
    m->act[0] = s_floats(in * max_batch);
    m->dact[0] = s_floats(in * max_batch);
    int ok = m->params && m->grads && m->act[0] && m->dact[0];
    for (int i = 0; ok && i < m->n_layers; i++) {
        struct layer *l = &m->layer[i];
        m->act[i + 1] = s_floats(l->out_size * max_batch);
        m->dact[i + 1] = s_floats(l->out_size * max_batch);
        ok = m->act[i + 1] && m->dact[i + 1];
        if (l->kind == LAYER_MAXPOOL) {
            m->argmax[i] = malloc(l->out_size * max_batch * sizeof(int32_t));
            ok = ok && m->argmax[i];
        } else if (l->kind == LAYER_DROPOUT) {
            m->keep[i] = malloc(l->out_size * max_batch);
            ok = ok && m->keep[i];
        } else if (l->kind == LAYER_CONV && conv_workspace(&l->conv) > ws) {
            ws = conv_workspace(&l->conv);
        }
    }
    m->workspace = ok ? s_floats(ws) : NULL;
    if (!ok || !m->workspace) {
        model_destroy(&m);
        snprintf(err, errlen, "out of memory for model '%s' at batch %d", name, max_batch);
        return NULL;
    }
    return m;
}

void model_destroy(struct model **mp)
{
    struct model *m = *mp;
    if (!m)
        return;
    free(m->params);
    free(m->grads);
    for (int i = 0; i <= m->n_layers; i++) {
        free(m->act[i]);
        free(m->dact[i]);
        if (i < m->n_layers) {
            free(m->argmax[i]);
            free(m->keep[i]);
        }
    }
    free(m->workspace);
    free(m);
    *mp = NULL;
}

void model_init(struct model *m, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->n_layers; i++) {
        struct layer *l = &m->layer[i];
        if (l->kind != LAYER_DENSE && l->kind != LAYER_CONV)
            continue;
        size_t fan_in = l->kind == LAYER_DENSE ? l->in_size
                                               : (size_t)l->conv.C * l->conv.K * l->conv.K;
        double bound = 1.0 / sqrt((double)fan_in);
        for (size_t k = l->weight_off; k < l->weight_off + l->n_params; k++)
            m->params[k] = (float)((2.0 * rng_double(&r) - 1.0) * bound);
    }
}

uint64_t model_layout_hash(const struct model *m) { return psoc_layout_hash(m->layout); }

const float *model_forward(struct model *m, const float *x, int B)
{
    memcpy(m->act[0], x, (size_t)B * m->in_c * m->in_h * m->in_w * sizeof(float));
    for (int i = 0; i < m->n_layers; i++) {
        struct layer *l = &m->layer[i];
        const float *in = m->act[i];
        float *out = m->act[i + 1];
        const float *w = m->params + l->weight_off, *bias = m->params + l->bias_off;
        switch (l->kind) {
        case LAYER_DENSE:
            dense_forward(out, in, w, bias, B, (int)l->in_size, l->OC);
            break;
        case LAYER_CONV:
            conv_forward(out, in, w, bias, B, &l->conv, m->workspace);
            break;
        case LAYER_MAXPOOL:
            maxpool_forward(out, m->argmax[i], in, B, l->C, l->H, l->W);
            break;
        case LAYER_RELU:
            relu_forward(out, in, l->out_size * B);
            break;
        case LAYER_DROPOUT:
            if (m->training)
                dropout_forward(out, m->keep[i], in, l->out_size * B, l->dropout,
                                m->step * 1000003u + (uint64_t)i);
            else
                memcpy(out, in, l->out_size * B * sizeof(float));
            break;
        }
    }
    return m->act[m->n_layers];
}

static void s_backward(struct model *m, int B)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
    for (int i = m->n_layers - 1; i >= 0; i--) {
        struct layer *l = &m->layer[i];
        const float *dout = m->dact[i + 1];
        float *din = i > 0 ? m->dact[i] : NULL; /* no gradient for the input */
        const float *in = m->act[i];
        float *dw = m->grads + l->weight_off, *db = m->grads + l->bias_off;
        const float *w = m->params + l->weight_off;
        switch (l->kind) {
        case LAYER_DENSE:
            dense_backward(din, dw, db, dout, in, w, B, (int)l->in_size, l->OC);
            break;
        case LAYER_CONV:
            conv_backward(din, dw, db, dout, in, w, B, &l->conv, m->workspace);
            break;
        case LAYER_MAXPOOL:
            if (din)
                maxpool_backward(din, dout, m->argmax[i], B, l->C, l->H, l->W);
            break;
        case LAYER_RELU:
            if (din)
                relu_backward(din, dout, m->act[i + 1], l->out_size * B);
            break;
        case LAYER_DROPOUT:
            if (din)
                dropout_backward(din, dout, m->keep[i], l->out_size * B, l->dropout);
            break;
        }
    }
}

double model_step(struct model *m, const float *x, const uint8_t *y, int B, int *correct)
{
    m->training = 1;
    const float *logits = model_forward(m, x, B);
    double loss = softmax_xent(m->dact[m->n_layers], logits, y, B, m->n_classes, correct);
    s_backward(m, B);
    m->step++;
    return loss;
}

double model_eval(struct model *m, const float *x, const uint8_t *y, int B, int *correct)
{
    m->training = 0;
    const float *logits = model_forward(m, x, B);
    double loss = softmax_xent(NULL, logits, y, B, m->n_classes, correct);
    m->training = 1;
    return loss;
}
