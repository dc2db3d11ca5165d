/* Suite: psod --threads (common/pool.c's shared team, used by the push
 * checks, the pso kernel, the arrival mean and the broadcast): against an
 * in-process daemon with 3 peers of a vector long enough to be split, the
 * positions of three rounds are the same bytes on 1, 2 and 3 threads,
 * under every strategy; a push with a NaN in the last range is refused on
 * every team, and its CRC (combined from the ranges) is checked. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N (((size_t)1 << 20) + 77) /* ranges of uneven length */
#define K 3

static int s_strategy, s_bf16;
static long s_threads;
static void s_set(struct server_config *c)
{
    c->strategy = s_strategy;
    c->threads = s_threads;
    c->sp.best_bf16 = s_bf16;
}

/* rawpeer_push, with gradients where the strategy takes them (ssgd). */
static void s_push(struct rawpeer *p, uint64_t seq, uint64_t round, double loss, const float *x)
{
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = seq;
    q.round = round;
    q.loss = loss;
    q.samples = 1;
    q.payload_kind = strategy_all[s_strategy]->push_kind ? PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT
                                                         : PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS;
    q.payload_crc32c = crc32c(0, x, N * sizeof(float));
    rawpeer_send(p, PSOD__COMMAND__CMD_PUSH, &q.base, x, N);
}

/* The positions of three rounds (K x 3 vectors) with `threads`. */
static float *s_positions(int strategy, long threads)
{
    s_strategy = strategy;
    s_threads = threads;
    float *x = malloc(K * N * sizeof(float)), *out = malloc(3 * K * N * sizeof(float));
    ck_assert(x && out);
    for (int k = 0; k < K; k++)
        for (size_t e = 0; e < N; e++)
            x[k * N + e] = (float)((e * (k + 3)) % 101) * 0.01f - 0.5f;
    inproc_start("check_threads", K, s_set);
    struct rawpeer p[K];
    char name[8], why[256];
    for (int k = 0; k < K; k++) {
        rawpeer_open(&p[k], inproc_ep);
        snprintf(name, sizeof name, "w%d", k);
        rawpeer_join(&p[k], name, x + k * N, N);
    }
    /* A NaN in the last range and a CRC that does not match are refused
     * whichever thread checked them. */
    float keep = x[N - 1];
    x[N - 1] = NAN;
    s_push(&p[0], 1, 0, 1.0, x);
    ck_assert_int_eq(rawpeer_error(&p[0], why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_FINITE);
    x[N - 1] = keep;
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = 2;
    q.loss = 1.0;
    q.payload_kind = strategy_all[s_strategy]->push_kind ? PSOD__PAYLOAD_KIND__PAYLOAD_GRADIENT
                                                         : PSOD__PAYLOAD_KIND__PAYLOAD_WEIGHTS;
    q.payload_crc32c = crc32c(0, x, (N - 1) * sizeof(float)); /* all but the last float */
    rawpeer_send(&p[0], PSOD__COMMAND__CMD_PUSH, &q.base, x, N);
    ck_assert_int_eq(rawpeer_error(&p[0], why, sizeof why), PSOD__ERROR_CODE__ERR_CHECKSUM);
    for (uint64_t r = 0; r < 3; r++) {
        for (int k = 0; k < K; k++)
            s_push(&p[k], 3 + r, r, 1.0 + 0.1 * k - 0.2 * (double)r, x + k * N);
        for (int k = 0; k < K; k++) {
            struct wire_msg m;
            ck_assert_int_eq(rawpeer_recv(&p[k], 10000, &m), 0);
            ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
            ck_assert_uint_eq(zmq_msg_size(&m.payload), N * sizeof(float));
            const Psod__Position *pos = (const Psod__Position *)m.meta;
            ck_assert_uint_eq(pos->payload_crc32c, crc32c(0, zmq_msg_data(&m.payload), N * 4));
            memcpy(out + (r * K + k) * N, zmq_msg_data(&m.payload), N * sizeof(float));
            memcpy(x + k * N, zmq_msg_data(&m.payload), N * sizeof(float));
            wire_msg_clear(&m);
        }
    }
    for (int k = 0; k < K; k++)
        rawpeer_close(&p[k]);
    inproc_stop();
    free(x);
    return out;
}

START_TEST(positions_are_the_same_bytes_on_any_team)
{
    /* strategy_all's order, then pso with --best-precision bf16 */
    const int strategy = _i < STRATEGY_COUNT ? _i : 0;
    s_bf16 = _i == STRATEGY_COUNT;
    float *one = s_positions(strategy, 1);
    for (long t = 2; t <= 3; t++) {
        float *many = s_positions(strategy, t);
        ck_assert_msg(memcmp(one, many, 3 * K * N * sizeof(float)) == 0,
                      "%s: positions on %ld threads differ from one thread's",
                      strategy_choices[strategy], t);
        free(many);
    }
    free(one);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, positions_are_the_same_bytes_on_any_team, 0, STRATEGY_COUNT + 1);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
