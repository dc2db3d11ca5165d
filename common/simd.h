/* Function multiversioning for hot element-wise loops: on x86-64 with GCC,
 * PSOD_CLONES builds an AVX2 version beside the baseline one and picks at
 * load time, so one binary runs everywhere and uses what the CPU has. */
#ifndef PSOD_SIMD_H
#define PSOD_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PSOD_NO_CLONES)
#define PSOD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PSOD_CLONES
#endif

#endif
