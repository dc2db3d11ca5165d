/* bench_update: throughput of the PSO-PS update and of the payload checks,
 * next to memory-bandwidth references measured in the same run.
 *
 *   bench_update [N ...]      (default 1048576 4194304 16777216 elements)
 *
 * All figures in GB/s, counting the bytes each loop must move: the update
 * reads x, v, p, g and writes x, v (24 bytes per element); STREAM-style
 * triad a = b + s*c moves 12; memcpy 8 (read + write); the checks read 4.
 * Each figure is the best of 7 runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/payload.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "server/strategy/swarm.h"

#define REPS 7

static float *s_floats(size_t n, float base)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof(float)) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = base + (float)(i % 1000) * 1e-3f;
    return p;
}

static volatile float s_sink;

int main(int argc, char **argv)
{
    size_t sizes[8] = {1 << 20, 1 << 22, 1 << 24};
    int nsizes = 3;
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = (size_t)strtoull(argv[i], NULL, 0);
    }
    printf("| elements | update, r per particle | update, r per element | update, r per "
           "element + CRC of result | triad a=b+s*c | memcpy | CRC-32C | CRC-32C + NaN scan |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < nsizes; k++) {
        size_t n = sizes[k];
        float *x = s_floats(n, 1), *v = s_floats(n, 0), *p = s_floats(n, 2), *g = s_floats(n, 3);
        enum { UPD0, UPD1, UPD2, TRIAD, COPY, CRC, CHECK, NCOL };
        double best[NCOL];
        for (int c = 0; c < NCOL; c++)
            best[c] = 1e9;
        struct pso_params prm = {
            0.7298, 1.49618, 1.49618, 0, PSO_RANDOM_PARTICLE, 1, 0, 0, 0.1, 0, 0, 0, 0,
            0,      {0},     0,       0};
        uint32_t crc;
        for (int r = 0; r < REPS; r++) {
            for (int mode = UPD0; mode <= UPD2; mode++) {
                struct pso_step st;
                prm.random_mode = mode == UPD0 ? PSO_RANDOM_PARTICLE : PSO_RANDOM_ELEMENT;
                pso_step_init(&st, &prm, (uint64_t)r, 0, 0);
                st.w = 0.5f; /* keep values bounded over repetitions */
                double t0 = time_now_s();
                pso_update(x, v, p, g, n, 0, &st, mode == UPD2 ? &crc : NULL);
                double dt = time_now_s() - t0;
                if (dt < best[mode])
                    best[mode] = dt;
            }
            double t0 = time_now_s();
            for (size_t i = 0; i < n; i++)
                v[i] = p[i] + 0.5f * g[i];
            double dt = time_now_s() - t0;
            best[TRIAD] = dt < best[TRIAD] ? dt : best[TRIAD];
            s_sink = v[n / 2];
            t0 = time_now_s();
            memcpy(v, p, n * sizeof(float));
            dt = time_now_s() - t0;
            best[COPY] = dt < best[COPY] ? dt : best[COPY];
            t0 = time_now_s();
            s_sink = (float)crc32c(0, x, n * sizeof(float));
            dt = time_now_s() - t0;
            best[CRC] = dt < best[CRC] ? dt : best[CRC];
            t0 = time_now_s();
            s_sink = (float)payload_check(x, n, &crc);
            dt = time_now_s() - t0;
            best[CHECK] = dt < best[CHECK] ? dt : best[CHECK];
        }
        double gb = 1e-9 * (double)n * sizeof(float);
        printf("| %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", n, 6 * gb / best[UPD0],
               6 * gb / best[UPD1], 6 * gb / best[UPD2], 3 * gb / best[TRIAD], 2 * gb / best[COPY],
               gb / best[CRC], gb / best[CHECK]);
        free(x), free(v), free(p), free(g);
    }
    printf("\nCRC-32C uses %s.\n",
           crc32c_hw_available() ? "the SSE4.2 instruction (3 streams)" : "slicing-by-8 tables");
    return 0;
}
