/* bench_train: training throughput of psoworker's engine, batch 64, for
 * each model, with 1 and 2 engine threads (OpenBLAS single-threaded inside
 * them, as psoworker --threads runs it), next to the sgemm GFLOP/s of the
 * same library at the same number of threads, measured in the same run.
 * Synthetic inputs (the speed of a step does not depend on the pixel
 * values).
 *
 *   bench_train [SECONDS_PER_CELL [THREADS [MODEL]]]   (default 5, "1,2", all)
 *
 * THREADS is a comma-separated list of thread counts.
 *
 * Prints one line per (model, threads): samples/s and the GFLOP/s they
 * mean (model_flops). run-bench.sh puts PyTorch's numbers for the identical
 * architectures beside them. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/timeutil.h"
#include "worker/model.h"
#include "worker/optim.h"

static double s_sgemm_gflops(int n, double secs)
{
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4),
          *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = 1.0f / (float)(1 + i % 7), b[i] = 1.0f / (float)(1 + i % 5), c[i] = 0;
    long reps = 0;
    double t0 = time_now_s(), dt;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        reps++;
        dt = time_now_s() - t0;
    } while (dt < secs);
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n * reps / dt / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5.0;
    int counts[16], nc = 0;
    for (const char *t = argc > 2 ? argv[2] : "1,2"; *t && nc < 16;) {
        char *end;
        long v = strtol(t, &end, 10);
        if (end == t || v < 1 || v > MODEL_MAX_THREADS) {
            fprintf(stderr, "bench_train: bad thread list '%s'\n", argv[2]);
            return 2;
        }
        counts[nc++] = (int)v;
        t = *end == ',' ? end + 1 : end;
    }
    const char *only = argc > 3 ? argv[3] : NULL; /* one model, for a profile */
    const char *models[] = {"mlp", "lenet5", "cifar_cnn"};
    const int B = 64;
    for (int c = 0; c < nc; c++) {
        int threads = counts[c];
        openblas_set_num_threads(threads);
        printf("sgemm threads=%d n=512 GFLOP/s %.1f\n", threads, s_sgemm_gflops(512, secs / 2));
        openblas_set_num_threads(1);
        for (int k = 0; k < 3; k++) {
            if (only && strcmp(only, models[k]) != 0)
                continue;
            char err[256];
            struct model *m = model_new(models[k], B, err, sizeof err);
            model_init(m, 1);
            if (model_set_threads(m, threads, err, sizeof err) != 0) {
                fprintf(stderr, "bench_train: %s\n", err);
                return 1;
            }
            size_t in = (size_t)m->in_c * m->in_h * m->in_w;
            float *x = malloc((size_t)B * in * 4);
            uint8_t y[64];
            struct rng r;
            rng_seed(&r, 3);
            for (size_t i = 0; i < (size_t)B * in; i++)
                x[i] = (float)rng_normal(&r);
            for (int b = 0; b < B; b++)
                y[b] = (uint8_t)(b % 10);
            struct sgd o;
            sgd_init(&o, m->n_params, 0.9, 0, 0);
            for (int w = 0; w < 3; w++) { /* warm-up */
                model_step(m, x, y, B, NULL);
                sgd_step(&o, m->params, m->grads, 0.01);
            }
            long steps = 0;
            double t0 = time_now_s(), dt;
            do {
                model_step(m, x, y, B, NULL);
                sgd_step(&o, m->params, m->grads, 0.01);
                steps++;
                dt = time_now_s() - t0;
            } while (dt < secs);
            double sps = (double)steps * B / dt;
            printf("psod model=%s threads=%d samples/s %.0f GFLOP/s %.1f\n", models[k], threads,
                   sps, sps * model_flops(m, 1) / 1e9);
            fflush(stdout);
            sgd_free(&o);
            free(x);
            model_destroy(&m);
        }
    }
    return 0;
}
