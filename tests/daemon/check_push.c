/* Suite: server/push.c, taking a push, against an in-process daemon and a
 * peer that speaks the wire by hand: every refusal (not joined, another
 * round, a second push, another encoding, a non-finite loss, a payload of
 * the wrong size, a wrong CRC, NaN weights) comes back as its own error
 * code, changes nothing, and the round then closes on the good pushes
 * with the mean they make; fragment pushes (--wire frag:F) carry their
 * round's part and nothing else, and are refused where they cannot work. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N 8

static void s_avg(struct server_config *c)
{
    c->strategy = 1; /* heartbeats: psod's default 1 s x 10 */
}

START_TEST(each_bad_push_gets_its_own_refusal_and_changes_nothing)
{
    inproc_start("check_push", 2, s_avg);
    char why[512];
    float a[N], b[N], bad[N];
    for (int i = 0; i < N; i++)
        a[i] = 1, b[i] = 3;
    struct rawpeer pa, pb, stranger;
    rawpeer_open(&pa, inproc_ep);
    rawpeer_open(&pb, inproc_ep);
    rawpeer_open(&stranger, inproc_ep);

    /* Before a hello. */
    rawpeer_push(&stranger, 1, 0, 1.0, a, N);
    ck_assert_int_eq(rawpeer_error(&stranger, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_JOINED);
    ck_assert_msg(strstr(why, "push before hello") != NULL, "%s", why);

    ck_assert_uint_eq(rawpeer_join(&pa, "a", a, N), 0);
    ck_assert_uint_eq(rawpeer_join(&pb, "b", b, N), 0);

    /* Another round. */
    rawpeer_push(&pa, 2, 5, 1.0, a, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_ROUND);
    ck_assert_msg(strstr(why, "round 5, current is 0") != NULL, "%s", why);
    /* A loss that is not finite. */
    rawpeer_push(&pa, 3, 0, NAN, a, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_FINITE);
    ck_assert_msg(strstr(why, "loss is nan") != NULL, "%s", why);
    /* A payload of the wrong size. */
    rawpeer_push(&pa, 4, 0, 1.0, a, N - 1);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_SIZE);
    /* A CRC that does not match. */
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = 5;
    q.loss = 1.0;
    q.payload_crc32c = crc32c(0, a, sizeof a) ^ 1;
    rawpeer_send(&pa, PSOD__COMMAND__CMD_PUSH, &q.base, a, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_CHECKSUM);
    /* Another encoding than the one agreed at the hello. */
    q.encoding = PSOD__ENCODING__ENC_BF16;
    q.payload_crc32c = crc32c(0, a, sizeof a);
    rawpeer_send(&pa, PSOD__COMMAND__CMD_PUSH, &q.base, a, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "agreed on fp32") != NULL, "%s", why);
    /* NaN among the weights. */
    memcpy(bad, a, sizeof bad);
    bad[3] = NAN;
    rawpeer_push(&pa, 6, 0, 1.0, bad, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_FINITE);

    /* The good push is taken (no answer until the round closes); a second
     * one in the same round is refused. */
    rawpeer_push(&pa, 7, 0, 1.0, a, N);
    rawpeer_push(&pa, 8, 0, 1.0, b, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_DUPLICATE);

    /* b's push closes round 0: both get the mean of the two good pushes,
     * for the first push's seq. */
    rawpeer_push(&pb, 1, 0, 2.0, b, N);
    struct rawpeer *peers[2] = {&pa, &pb};
    for (int k = 0; k < 2; k++) {
        struct wire_msg m;
        ck_assert_int_eq(rawpeer_recv(peers[k], 5000, &m), 0);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        const Psod__Position *pos = (const Psod__Position *)m.meta;
        ck_assert_uint_eq(pos->round, 1);
        ck_assert_uint_eq(pos->seq, k == 0 ? 7 : 1);
        ck_assert_uint_eq(zmq_msg_size(&m.payload), sizeof a);
        const float *x = zmq_msg_data(&m.payload);
        for (int i = 0; i < N; i++)
            ck_assert_float_eq_tol(x[i], 2.0f, 1e-6f);
        wire_msg_clear(&m);
    }
    rawpeer_close(&pa);
    rawpeer_close(&pb);
    rawpeer_close(&stranger);
    inproc_stop();
}
END_TEST

static void s_avg_frag4(struct server_config *c)
{
    c->strategy = 1;
    snprintf(c->wire_spec, sizeof c->wire_spec, "frag:4");
}

/* A fragment push of round `round`, part `frag`: the n floats d (the
 * change), with a right CRC. */
static void s_frag_push(struct rawpeer *p, uint64_t seq, uint64_t round, uint32_t frag,
                        const float *d, size_t n)
{
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = seq;
    q.round = round;
    q.loss = 1.0;
    q.samples = 1;
    q.fragment = frag;
    q.payload_crc32c = crc32c(0, d, n * sizeof(float));
    rawpeer_send(p, PSOD__COMMAND__CMD_PUSH, &q.base, d, n);
}

/* The position of a fragment round: part `frag` (2 floats) is `step`, and
 * the whole vector it decodes to (CRC) is `held` with that part moved. */
static void s_expect_part(struct rawpeer *p, uint32_t frag, float step, const float *held)
{
    struct wire_msg m;
    ck_assert_int_eq(rawpeer_recv(p, 5000, &m), 0);
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
    const Psod__Position *pos = (const Psod__Position *)m.meta;
    ck_assert_uint_eq(pos->fragment, frag);
    ck_assert_uint_eq(zmq_msg_size(&m.payload), 2 * sizeof(float));
    const float *x = zmq_msg_data(&m.payload);
    ck_assert_float_eq_tol(x[0], step, 1e-6f);
    ck_assert_float_eq_tol(x[1], step, 1e-6f);
    float whole[N];
    memcpy(whole, held, sizeof whole);
    whole[2 * frag] += x[0];
    whole[2 * frag + 1] += x[1];
    ck_assert_uint_eq(pos->position_crc32c, crc32c(0, whole, sizeof whole));
    wire_msg_clear(&m);
}

START_TEST(fragment_pushes_carry_their_part_and_nothing_else)
{
    /* psod --wire frag:4 over 8 floats: parts of 2. A push of the wrong
     * part, of the whole vector, or a part's worth for a worker on whole
     * payloads is refused; round 0 averages part 0 and leaves the rest
     * where each worker holds it, round 1 part 1. */
    inproc_start("check_push", 2, s_avg_frag4);
    char why[512];
    float a[N], b[N], up[2] = {1, 1}, down[2] = {-1, -1}, zero[2] = {0, 0};
    for (int i = 0; i < N; i++)
        a[i] = 1, b[i] = 3;
    struct rawpeer pa, pb;
    rawpeer_open(&pa, inproc_ep);
    rawpeer_open(&pb, inproc_ep);
    struct wire_msg m;
    rawpeer_hello(&pa, "a", a, N, 0, &m);
    ck_assert_uint_eq(((const Psod__Welcome *)m.meta)->fragments, 4);
    wire_msg_clear(&m);
    ck_assert_uint_eq(rawpeer_join(&pb, "b", b, N), 0);

    s_frag_push(&pa, 1, 0, 1, up, 2);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_msg(strstr(why, "fragment 1; round 0's is 0 of 4") != NULL, "%s", why);
    s_frag_push(&pa, 2, 0, 0, a, N);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_SIZE);
    s_frag_push(&pa, 3, 0, 0, up, 1);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_SIZE);
    float inf[2] = {INFINITY, 1};
    s_frag_push(&pa, 4, 0, 0, inf, 2);
    ck_assert_int_eq(rawpeer_error(&pa, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_FINITE);

    /* Round 0: a's part 0 goes 1 -> 2, b's 3 -> 2; the mean is 2 all over
     * (a holds 1 and b 3 elsewhere, and their pushes say so). */
    s_frag_push(&pa, 5, 0, 0, up, 2);
    s_frag_push(&pb, 1, 0, 0, down, 2);
    s_expect_part(&pa, 0, 1.0f, a);
    s_expect_part(&pb, 0, -1.0f, b);
    a[0] = a[1] = 2, b[0] = b[1] = 2;
    /* Round 1: no change from either; part 1 comes down as the mean. */
    s_frag_push(&pa, 6, 1, 1, zero, 2);
    s_frag_push(&pb, 2, 1, 1, zero, 2);
    s_expect_part(&pa, 1, 1.0f, a);
    s_expect_part(&pb, 1, -1.0f, b);
    rawpeer_close(&pa);
    rawpeer_close(&pb);
    inproc_stop();
}
END_TEST

/* Round 0 of a frag:4 avg swarm of three, the pushes sent in `order`:
 * the CRC of the whole vector each worker then holds, by worker. */
static void s_frag_round(const int order[3], uint32_t crc[3])
{
    inproc_start("check_push", 3, s_avg_frag4);
    static const char *const names[3] = {"a", "b", "c"};
    /* Values whose float32 sums depend on the order they are added in. */
    static const float start[3] = {1e7f, 0.1f, -1e7f};
    static const float d[3][2] = {{0.3f, -1.7f}, {3.1f, 0.7f}, {-0.9f, 2.3f}};
    struct rawpeer p[3];
    float x[3][N];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++)
            x[k][i] = start[k] + (float)i;
        rawpeer_open(&p[k], inproc_ep);
        ck_assert_uint_eq(rawpeer_join(&p[k], names[k], x[k], N), 0);
    }
    for (int j = 0; j < 3; j++)
        s_frag_push(&p[order[j]], 1, 0, 0, d[order[j]], 2);
    for (int k = 0; k < 3; k++) {
        struct wire_msg m;
        ck_assert_int_eq(rawpeer_recv(&p[k], 5000, &m), 0);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        crc[k] = ((const Psod__Position *)m.meta)->position_crc32c;
        wire_msg_clear(&m);
        rawpeer_close(&p[k]);
    }
    inproc_stop();
}

START_TEST(fragment_rounds_give_the_same_bits_in_any_push_order)
{
    static const int orders[3][3] = {{0, 1, 2}, {2, 1, 0}, {1, 2, 0}};
    uint32_t first[3], crc[3];
    s_frag_round(orders[0], first);
    for (int o = 1; o < 3; o++) {
        s_frag_round(orders[o], crc);
        for (int k = 0; k < 3; k++)
            ck_assert_uint_eq(crc[k], first[k]);
    }
}
END_TEST

static void s_ssgd(struct server_config *c) { c->strategy = 4; }

static void s_async(struct server_config *c)
{
    c->strategy = 1;
    c->mode = SERVER_ASYNC;
}

/* A hello asking for `fragments` (and sparse payloads at `density`): the
 * refusal's code and reason. */
static int s_hello_refused(uint32_t fragments, float density, char *why, size_t len)
{
    struct rawpeer p;
    rawpeer_open(&p, inproc_ep);
    float x[N] = {0};
    Psod__Hello h = PSOD__HELLO__INIT;
    h.worker_name = "f";
    h.protocol_version = PSOD_PROTOCOL_VERSION;
    h.param_count = N;
    h.layout_hash = 7;
    h.payload_crc32c = crc32c(0, x, sizeof x);
    h.fragments = fragments;
    h.density = density;
    rawpeer_send(&p, PSOD__COMMAND__CMD_HELLO, &h.base, x, N);
    int code = rawpeer_error(&p, why, len);
    rawpeer_close(&p);
    return code;
}

START_TEST(fragments_are_refused_where_they_cannot_work)
{
    char why[512];
    inproc_start("check_push", 2, s_avg);
    ck_assert_int_eq(s_hello_refused(N + 1, 0, why, sizeof why), PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "9 fragments of 8 parameters") != NULL, "%s", why);
    ck_assert_int_eq(s_hello_refused(5000, 0, why, sizeof why), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_int_eq(s_hello_refused(4, 0.5f, why, sizeof why), PSOD__ERROR_CODE__ERR_MALFORMED);
    ck_assert_msg(strstr(why, "not with sparse") != NULL, "%s", why);
    inproc_stop();
    inproc_start("check_push", 2, s_ssgd);
    ck_assert_int_eq(s_hello_refused(4, 0, why, sizeof why), PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "takes gradients") != NULL, "%s", why);
    inproc_stop();
    inproc_start("check_push", 2, s_async);
    ck_assert_int_eq(s_hello_refused(4, 0, why, sizeof why), PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "--mode async") != NULL, "%s", why);
    inproc_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("push");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_bad_push_gets_its_own_refusal_and_changes_nothing);
    tcase_add_test(tc, fragment_pushes_carry_their_part_and_nothing_else);
    tcase_add_test(tc, fragments_are_refused_where_they_cannot_work);
    tcase_add_test(tc, fragment_rounds_give_the_same_bits_in_any_push_order);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
