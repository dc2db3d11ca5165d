/* The C engine's loss and gradient on one batch, for the PyTorch worker's
 * test (python/tests/test_torch.py compares them with autograd):
 *
 *   nn_ref MODEL WEIGHTS.psom BATCH OUT [THREADS]
 *
 * BATCH: u32 B, then B samples of the model's input as float32, then B
 * labels as bytes. OUT: f64 mean loss, then the gradient (n_params float32).
 * THREADS: the engine's threads (default 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelfile.h"
#include "worker/model.h"

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: nn_ref MODEL WEIGHTS.psom BATCH OUT [THREADS]\n");
        return 2;
    }
    char err[512];
    struct modelfile_info info;
    float *w;
    if (modelfile_read(argv[2], &info, &w, err, sizeof err) != 0) {
        fprintf(stderr, "nn_ref: %s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[3], "rb");
    uint32_t B = 0;
    if (!f || fread(&B, 4, 1, f) != 1 || B == 0 || B > 4096) {
        fprintf(stderr, "nn_ref: %s: no batch\n", argv[3]);
        return 1;
    }
    struct model *m = model_new(argv[1], (int)B, err, sizeof err);
    if (!m || m->n_params != info.param_count) {
        fprintf(stderr, "nn_ref: %s\n", m ? "the file is another model" : err);
        return 1;
    }
    if (model_set_threads(m, argc == 6 ? atoi(argv[5]) : 1, err, sizeof err) != 0) {
        fprintf(stderr, "nn_ref: %s\n", err);
        return 1;
    }
    size_t per = (size_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc(B * per * sizeof(float));
    uint8_t *y = malloc(B);
    if (!x || !y || fread(x, sizeof(float), B * per, f) != B * per || fread(y, 1, B, f) != B) {
        fprintf(stderr, "nn_ref: %s: short batch\n", argv[3]);
        return 1;
    }
    fclose(f);
    memcpy(m->params, w, m->n_params * sizeof(float));
    int correct;
    double loss = model_step(m, x, y, (int)B, &correct);
    FILE *o = fopen(argv[4], "wb");
    if (!o || fwrite(&loss, 8, 1, o) != 1 ||
        fwrite(m->grads, sizeof(float), m->n_params, o) != m->n_params || fclose(o) != 0) {
        fprintf(stderr, "nn_ref: cannot write %s\n", argv[4]);
        return 1;
    }
    model_destroy(&m);
    free(w), free(x), free(y);
    return 0;
}
