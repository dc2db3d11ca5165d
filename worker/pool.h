/* A fixed team of threads for the training engine: the caller is thread 0
 * and n - 1 helpers wait for work. One job runs on the whole team at a
 * time; inside it, pool_barrier() lines the team up between layers.
 *
 *   struct pool *p = pool_new(2, err, sizeof err);
 *   pool_run(p, fn, arg);      fn(arg, tid, 2) on both threads, then returns
 *   pool_destroy(&p);
 *
 * Helpers spin briefly after a job (the next one usually follows within
 * microseconds) and then sleep on a condition variable; the barrier spins
 * and yields, so a team larger than the cores it has still makes progress.
 * A pool of 1 runs jobs on the caller and creates no thread. */
#ifndef PSOD_POOL_H
#define PSOD_POOL_H

#include <stddef.h>

struct pool;
typedef void (*pool_fn)(void *arg, int tid, int nthreads);

struct pool *pool_new(int nthreads, char *err, size_t errlen);
void pool_destroy(struct pool **p);
int pool_size(const struct pool *p);

/* fn on every thread of the team; returns when all have returned. Not
 * reentrant: one caller thread drives a pool. */
void pool_run(struct pool *p, pool_fn fn, void *arg);

/* Inside a job: returns once every thread of the team has reached it. */
void pool_barrier(struct pool *p, int tid);

/* [*lo, *hi) of n items for thread tid of nthreads, in contiguous chunks
 * (the first n % nthreads threads take one more). */
void pool_split(size_t n, int tid, int nthreads, size_t *lo, size_t *hi);

/* CPUs this process may run on (its affinity mask), at least 1. */
int pool_cpus(void);

#endif
