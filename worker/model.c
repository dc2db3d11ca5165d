/* Models: see model.h. A model is built by appending layers to a shape
 * that flows from the input; the layout text records every layer so that two
 * workers agree on a model only if they build the same one. */
#include "worker/model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/client/psoclient.h"
#include "common/rng.h"
#include "common/pool.h"

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
    m->threads = 1;
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

static void s_free_threads(struct model *m)
{
    pool_destroy(&m->pool);
    for (int t = 1; t < m->threads && m->tws; t++)
        free(m->tws[t]);
    for (int t = 0; t < m->threads && m->tgrad; t++)
        free(m->tgrad[t]);
    free(m->tws);
    free(m->tgrad);
    m->tws = m->tgrad = NULL;
    m->threads = 1;
}

int model_set_threads(struct model *m, int threads, char *err, size_t errlen)
{
    s_free_threads(m);
    if (threads < 1 || threads > MODEL_MAX_THREADS) {
        snprintf(err, errlen, "threads must be 1..%d, not %d", MODEL_MAX_THREADS, threads);
        return -1;
    }
    /* OpenBLAS threads inside engine threads would oversubscribe the cores,
     * and its thread count changes the bits */
    openblas_set_num_threads(1);
    if (threads == 1)
        return 0;
    size_t ws = 0, g = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layer[i].kind == LAYER_CONV) {
            if (conv_workspace(&m->layer[i].conv) > ws)
                ws = conv_workspace(&m->layer[i].conv);
            if (m->layer[i].n_params > g)
                g = m->layer[i].n_params;
        }
    m->pool = pool_new(threads, err, errlen);
    if (!m->pool)
        return -1;
    m->threads = threads;
    m->tws = calloc((size_t)threads, sizeof *m->tws);
    m->tgrad = calloc((size_t)threads, sizeof *m->tgrad);
    int ok = m->tws && m->tgrad;
    for (int t = 0; ok && t < threads; t++) {
        m->tws[t] = t == 0 ? m->workspace : s_floats(ws);
        m->tgrad[t] = s_floats(g);
        ok = m->tws[t] && m->tgrad[t];
    }
    if (!ok) {
        s_free_threads(m);
        snprintf(err, errlen, "out of memory for %d engine threads", threads);
        return -1;
    }
    return 0;
}

int model_threads(const struct model *m) { return m->threads; }

double model_flops(const struct model *m, int backward)
{
    double f = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct layer *l = &m->layer[i];
        double mac = 0;
        if (l->kind == LAYER_DENSE)
            mac = (double)l->in_size * l->OC;
        else if (l->kind == LAYER_CONV)
            mac = (double)l->conv.OC * l->conv.C * l->conv.K * l->conv.K * l->OH * l->OW;
        /* forward; backward: the weight gradient, and the input's but for layer 0 */
        f += 2 * mac * (backward ? (i > 0 ? 3 : 2) : 1);
    }
    return f;
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
    s_free_threads(m);
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
        size_t fan_in =
            l->kind == LAYER_DENSE ? l->in_size : (size_t)l->conv.C * l->conv.K * l->conv.K;
        double bound = 1.0 / sqrt((double)fan_in);
        for (size_t k = l->weight_off; k < l->weight_off + l->n_params; k++)
            m->params[k] = (float)((2.0 * rng_double(&r) - 1.0) * bound);
    }
}

uint64_t model_layout_hash(const struct model *m) { return psoc_layout_hash(m->layout); }
