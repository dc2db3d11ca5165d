/* Suite: server/push.c, taking a push, against an in-process daemon and a
 * peer that speaks the wire by hand: every refusal (not joined, another
 * round, a second push, another encoding, a non-finite loss, a payload of
 * the wrong size, a wrong CRC, NaN weights) comes back as its own error
 * code, changes nothing, and the round then closes on the good pushes
 * with the mean they make. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
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

int main(void)
{
    Suite *s = suite_create("push");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_bad_push_gets_its_own_refusal_and_changes_nothing);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
