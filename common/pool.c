/* Thread team: see pool.h. Jobs are published under a mutex (a generation
 * count, so a helper that spins sees a new job without the lock); the
 * barrier is sense-reversing on two atomics. */
#define _GNU_SOURCE
#include "common/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Spins of the idle wait before sleeping (pool_set_spins changes it for
 * one pool), and of the barrier before yielding. */
#define POOL_IDLE_SPINS 20000
#define POOL_BARRIER_SPINS 2000

struct slot {
    _Alignas(64) int sense; /* this thread's barrier sense, one cache line each */
};

struct pool {
    int n;
    atomic_int spins; /* of the idle waits: the helpers' and the caller's */
    pthread_t *threads;
    struct slot *slot;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    atomic_uint gen;    /* bumped for every job */
    atomic_int pending; /* helpers still in the current job */
    int quit;
    pool_fn fn;
    void *arg;
    _Alignas(64) atomic_int arrived;
    atomic_int sense;
};

struct helper {
    struct pool *p;
    int tid;
};

static inline void s_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *s_helper(void *v)
{
    struct helper h = *(struct helper *)v;
    free(v);
    struct pool *p = h.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g = seen;
        int spins = atomic_load_explicit(&p->spins, memory_order_relaxed);
        for (int i = 0; i < spins; i++) {
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen)
                break;
            s_pause();
        }
        pthread_mutex_lock(&p->mu);
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->quit)
            pthread_cond_wait(&p->work, &p->mu);
        int quit = p->quit;
        pool_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        if (quit)
            return NULL;
        seen = g;
        fn(arg, h.tid, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void s_stop(struct pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(p->threads[i], NULL);
}

struct pool *pool_new(int nthreads, char *err, size_t errlen)
{
    if (nthreads < 1 || nthreads > 1024) {
        snprintf(err, errlen, "threads must be 1..1024, not %d", nthreads);
        return NULL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->n = nthreads;
    atomic_init(&p->spins, POOL_IDLE_SPINS);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    p->slot = aligned_alloc(64, (size_t)nthreads * sizeof *p->slot);
    if (!p->threads || !p->slot) {
        free(p->threads);
        free(p->slot);
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(p->slot, 0, (size_t)nthreads * sizeof *p->slot);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < nthreads; i++) {
        struct helper *h = malloc(sizeof *h);
        int rc = h ? 0 : -1;
        if (h) {
            h->p = p, h->tid = i;
            rc = pthread_create(&p->threads[i - 1], NULL, s_helper, h);
            if (rc != 0)
                free(h);
        }
        if (rc != 0) {
            snprintf(err, errlen, "cannot start engine thread %d of %d: %s", i + 1, nthreads,
                     h ? strerror(rc) : "out of memory");
            s_stop(p, i - 1);
            p->n = 0;
            pool_destroy(&p);
            return NULL;
        }
    }
    return p;
}

void pool_destroy(struct pool **pp)
{
    struct pool *p = *pp;
    if (!p)
        return;
    if (p->n > 1)
        s_stop(p, p->n - 1);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p->slot);
    free(p);
    *pp = NULL;
}

int pool_size(const struct pool *p) { return p ? p->n : 1; }

void pool_set_spins(struct pool *p, int spins)
{
    if (p)
        atomic_store_explicit(&p->spins, spins < 0 ? 0 : spins, memory_order_relaxed);
}

void pool_run(struct pool *p, pool_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = atomic_load_explicit(&p->spins, memory_order_relaxed);
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        s_pause();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_barrier(struct pool *p, int tid)
{
    if (!p || p->n == 1)
        return;
    int s = !p->slot[tid].sense;
    p->slot[tid].sense = s;
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&p->sense, s, memory_order_release);
        return;
    }
    for (long i = 0; atomic_load_explicit(&p->sense, memory_order_acquire) != s; i++) {
        if (i < POOL_BARRIER_SPINS)
            s_pause();
        else
            sched_yield();
    }
}

void pool_split(size_t n, int tid, int nthreads, size_t *lo, size_t *hi)
{
    size_t q = n / (size_t)nthreads, r = n % (size_t)nthreads, t = (size_t)tid;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r);
}

int pool_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static struct pool *s_shared;

void pool_set_shared(struct pool *p) { s_shared = p; }

struct s_for {
    size_t n;
    pool_range_fn fn;
    void *arg;
};

static void s_for_part(void *v, int tid, int nthreads)
{
    const struct s_for *f = v;
    size_t lo, hi;
    pool_split(f->n, tid, nthreads, &lo, &hi);
    f->fn(f->arg, lo, hi, tid);
}

int pool_for(size_t n, size_t min_part, pool_range_fn fn, void *arg)
{
    struct pool *p = s_shared;
    if (!p || p->n == 1 || p->n > POOL_MAX_PARTS || n < 2 * (min_part ? min_part : 1)) {
        fn(arg, 0, n, 0);
        return 1;
    }
    struct s_for f = {n, fn, arg};
    pool_run(p, s_for_part, &f);
    return p->n;
}
