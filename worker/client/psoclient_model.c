/* Model files through the client library, for bindings: the one reader and
 * writer (common/modelfile.c) behind the psoc_ API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelfile.h"
#include "worker/client/psoclient.h"

static void s_to(struct modelfile_info *m, const struct psoc_model_info *p)
{
    memset(m, 0, sizeof *m);
    m->layout_hash = p->layout_hash;
    m->param_count = p->param_count;
    m->round = p->round;
    m->loss = p->loss;
    snprintf(m->strategy, sizeof m->strategy, "%s", p->strategy);
    snprintf(m->model, sizeof m->model, "%s", p->model);
    snprintf(m->dataset, sizeof m->dataset, "%s", p->dataset);
    memcpy(m->input_shape, p->input_shape, sizeof m->input_shape);
}

static void s_from(struct psoc_model_info *p, const struct modelfile_info *m)
{
    memset(p, 0, sizeof *p);
    p->layout_hash = m->layout_hash;
    p->param_count = m->param_count;
    p->round = m->round;
    p->loss = m->loss;
    snprintf(p->strategy, sizeof p->strategy, "%s", m->strategy);
    snprintf(p->model, sizeof p->model, "%s", m->model);
    snprintf(p->dataset, sizeof p->dataset, "%s", m->dataset);
    memcpy(p->input_shape, m->input_shape, sizeof p->input_shape);
}

int psoc_model_save(const char *path, const struct psoc_model_info *info, const float *params,
                    char *err, size_t errlen)
{
    struct modelfile_info m;
    s_to(&m, info);
    return modelfile_write(path, &m, params, err, errlen) == 0 ? PSOC_OK : PSOC_ESYS;
}

int psoc_model_load(const char *path, struct psoc_model_info *info, float *params, size_t n,
                    char *err, size_t errlen)
{
    struct modelfile_info m;
    if (!params) {
        if (modelfile_read_info(path, &m, err, errlen) != 0)
            return PSOC_EINVAL;
        s_from(info, &m);
        return PSOC_OK;
    }
    float *w;
    if (modelfile_read(path, &m, &w, err, errlen) != 0)
        return PSOC_EINVAL;
    s_from(info, &m);
    if (m.param_count != n) {
        snprintf(err, errlen, "%s holds %llu parameters, the model has %zu", path,
                 (unsigned long long)m.param_count, n);
        free(w);
        return PSOC_EINVAL;
    }
    memcpy(params, w, n * sizeof(float));
    free(w);
    return PSOC_OK;
}
