/* A fixed team of threads (the training engine's, and psod's --threads):
 * the caller is thread 0 and n - 1 helpers wait for work. One job runs on the whole team at a
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
#ifndef PSOD_COMMON_POOL_H
#define PSOD_COMMON_POOL_H

#include <stddef.h>

struct pool;
typedef void (*pool_fn)(void *arg, int tid, int nthreads);

struct pool *pool_new(int nthreads, char *err, size_t errlen);
void pool_destroy(struct pool **p);
int pool_size(const struct pool *p);

/* How long an idle helper (and the caller waiting for the team) spins
 * before it sleeps, in pause instructions (20000 by default: jobs that
 * follow within microseconds, as the engine's layers do). A team whose
 * jobs come milliseconds apart (psod's, one per push) sets a few hundred:
 * spinning there takes the cores from the processes it waits for. */
void pool_set_spins(struct pool *p, int spins);

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

/* Element-wise loops on a process-wide team (psod's --threads; none: the
 * caller alone). pool_for runs fn(arg, lo, hi, part) over [0, n) in
 * contiguous ranges, one per thread of the team (pool_split's), when n is
 * at least 2 x min_part, else fn(arg, 0, n, 0) on the caller; it returns
 * the number of parts, at most POOL_MAX_PARTS. Results kept per part and
 * combined in part order (a CRC: crc32c_combine) do not depend on the
 * team's size. One thread drives it (psod's loop). */
#define POOL_MAX_PARTS 64
typedef void (*pool_range_fn)(void *arg, size_t lo, size_t hi, int part);
void pool_set_shared(struct pool *p);
int pool_for(size_t n, size_t min_part, pool_range_fn fn, void *arg);

#endif
