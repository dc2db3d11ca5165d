/* Suite: what the daemon holds per parameter (issue: memory per
 * parameter), measured as the heap an in-process daemon grows by
 * (mallinfo2) with 4 peers of 1Mi floats, after two rounds (their replies
 * read and freed) and in the second round with all pushes in but one. pso
 * keeps per particle its personal best and its stored position, which goes
 * once its push is in (no velocity under w = 0), plus the swarm's mean:
 * 2 vectors each either way; avg keeps the mean, the sum being built and
 * one position every member shares (positions are the global model), plus
 * the pushes while a round is open. */
#include "tests/lib/suite.h"
#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N ((size_t)1 << 20)
#define K 4

static int s_strategy, s_bf16;
static void s_set(struct server_config *c)
{
    c->strategy = s_strategy;
    c->sp.best_bf16 = s_bf16;
}

/* Every vector of N floats mapped on its own, whichever thread allocates
 * it (ZeroMQ's I/O thread receives into its own arena, which mallinfo2's
 * uordblks does not count; hblkhd counts every mapping): a fixed
 * threshold, so glibc's dynamic one cannot move them into an arena. */
static void s_map_vectors(void) { mallopt(M_MMAP_THRESHOLD, 1 << 20); }

static double s_heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

/* Vectors of N floats the daemon holds after two rounds of K peers, and
 * in the second round once K - 1 pushes are in (*mid). */
static double s_held(int strategy, double *mid)
{
    s_strategy = strategy;
    s_map_vectors();
    float *x = malloc(N * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (size_t e = 0; e < N; e++)
        x[e] = (float)(e % 97) * 0.01f;
    inproc_start("check_memory", K, s_set);
    struct rawpeer p[K];
    for (int k = 0; k < K; k++)
        rawpeer_open(&p[k], inproc_ep);
    double before = s_heap();
    char name[8];
    for (int k = 0; k < K; k++) {
        snprintf(name, sizeof name, "w%d", k);
        rawpeer_join(&p[k], name, x, N);
    }
    for (uint64_t r = 0; r < 2; r++) {
        for (int k = 0; k < K; k++) {
            if (r == 1 && k == K - 1) {
                inproc_wait_pushed(K - 1); /* the round open with all pushes in but one */
                *mid = (s_heap() - before) / (double)(N * sizeof(float));
            }
            rawpeer_push(&p[k], r + 1, r, 1.0 + k, x, N);
        }
        for (int k = 0; k < K; k++) {
            struct wire_msg m;
            ck_assert_int_eq(rawpeer_recv(&p[k], 10000, &m), 0);
            ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
            wire_msg_clear(&m);
        }
    }
    struct psoc_status st = inproc_status(); /* the loop is past the close */
    ck_assert_uint_eq(st.round, 2);
    psoc_status_free(&st);
    double held = (s_heap() - before) / (double)(N * sizeof(float));
    for (int k = 0; k < K; k++)
        rawpeer_close(&p[k]);
    inproc_stop();
    free(x);
    return held;
}

START_TEST(pso_holds_two_vectors_per_particle_and_a_constant)
{
    double mid, held = s_held(0, &mid);
    fprintf(stderr,
            "memory: pso holds %.2f vectors of n for %d particles between rounds, %.2f with %d "
            "pushes in\n",
            held, K, mid, K - 1);
    /* A push in, its particle's stored position goes: still 2 each. */
    ck_assert_msg(mid <= 2.0 * K + 1.5, "pso holds %.2f vectors with %d pushes in", mid, K - 1);
    ck_assert_msg(held <= 2.0 * K + 1.5, "pso holds %.2f vectors of N for %d particles", held, K);
    ck_assert_msg(held >= 2.0 * K, "pso holds only %.2f vectors for %d particles?", held, K);
}
END_TEST

START_TEST(pso_with_bf16_bests_holds_one_and_a_half_per_particle)
{
    s_bf16 = 1;
    double mid, held = s_held(0, &mid);
    fprintf(stderr,
            "memory: pso --best-precision bf16 holds %.2f vectors of n for %d particles between "
            "rounds, %.2f with %d pushes in\n",
            held, K, mid, K - 1);
    /* Each particle: its best in bf16 (0.5) and its position or push (1);
     * the swarm: the mean and the widened global best (2). */
    ck_assert_msg(mid <= 1.5 * K + 2.5, "pso bf16 holds %.2f vectors with %d pushes in", mid,
                  K - 1);
    ck_assert_msg(held <= 1.5 * K + 2.5, "pso bf16 holds %.2f vectors for %d particles", held, K);
    ck_assert_msg(held >= 1.5 * K, "pso bf16 holds only %.2f vectors for %d particles?", held, K);
}
END_TEST

START_TEST(avg_holds_a_constant_whatever_the_workers)
{
    double mid, held = s_held(1, &mid);
    fprintf(stderr,
            "memory: avg holds %.2f vectors of n for %d workers between rounds, %.2f with %d "
            "pushes in\n",
            held, K, mid, K - 1);
    /* The pushes in, one each, and the constant. */
    ck_assert_msg(mid <= (K - 1) + 3.5, "avg holds %.2f vectors with %d pushes in", mid, K - 1);
    ck_assert_msg(held <= 3.5, "avg holds %.2f vectors of N for %d workers", held, K);
    ck_assert_msg(held >= 2.5, "avg holds only %.2f vectors?", held);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
#ifndef __SANITIZE_ADDRESS__ /* its allocator keeps no mallinfo2 figures */
    tcase_add_test(tc, pso_holds_two_vectors_per_particle_and_a_constant);
    tcase_add_test(tc, avg_holds_a_constant_whatever_the_workers);
    tcase_add_test(tc, pso_with_bf16_bests_holds_one_and_a_half_per_particle);
#else
    (void)pso_holds_two_vectors_per_particle_and_a_constant;
    (void)avg_holds_a_constant_whatever_the_workers;
    (void)pso_with_bf16_bests_holds_one_and_a_half_per_particle;
#endif
    suite_add_tcase(s, tc);
    return suite_run(s);
}
