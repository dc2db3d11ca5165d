/* Suite: server/verify.c, the verified global best (pso --verify-best),
 * against an in-process daemon and peers that speak the wire by hand. A
 * claim goes to a panel of the other workers as a VERIFY (the claimant's
 * weights, its CRC, the claimed loss) before their positions; their next
 * pushes carry verdicts. A quorum within the tolerance adopts it, with the
 * largest confirmed loss; a quorum beyond it refuses it and strikes the
 * claimant. A verdict that answers nothing is ignored and the push still
 * counts; a NaN verdict refuses the push. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <string.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N 8

static void s_verified_pso(struct server_config *c)
{
    c->strategy = 0; /* pso */
    c->sp.verify = 1;
    c->sp.verify_panel = 2;
    c->sp.verify_quorum = 2;
    c->sp.verify_tol = 0.1;
}

/* HELLO offering to verify; the Welcome's particle. */
static uint32_t s_join(struct rawpeer *p, const char *name, const float *x)
{
    struct wire_msg m;
    rawpeer_hello(p, name, x, N, 1, &m);
    uint32_t particle = ((const Psod__Welcome *)m.meta)->particle_id;
    wire_msg_clear(&m);
    return particle;
}

/* A push of x for `round` with `loss`, carrying `verdict` when not NULL. */
static void s_push(struct rawpeer *p, uint64_t seq, uint64_t round, double loss, const float *x,
                   const Psod__Verdict *verdict)
{
    Psod__Push q = PSOD__PUSH__INIT;
    q.seq = seq;
    q.round = round;
    q.loss = loss;
    q.samples = 1;
    q.payload_crc32c = crc32c(0, x, N * sizeof(float));
    q.verdict = (Psod__Verdict *)verdict;
    rawpeer_send(p, PSOD__COMMAND__CMD_PUSH, &q.base, x, N);
}

/* The next message must be a POSITION for `round`. */
static void s_expect_position(struct rawpeer *p, uint64_t round)
{
    struct wire_msg m;
    ck_assert_msg(rawpeer_recv(p, 5000, &m) == 0, "no position");
    ck_assert_msg(m.command == PSOD__COMMAND__CMD_POSITION, "%s, not a position",
                  wire_command_name(m.command));
    ck_assert_uint_eq(((const Psod__Position *)m.meta)->round, round);
    wire_msg_clear(&m);
}

/* Read up to the POSITION for `round`, candidates to verify on the way
 * skipped (a new one may come with any close). */
static void s_drain_to_position(struct rawpeer *p, uint64_t round)
{
    for (;;) {
        struct wire_msg m;
        ck_assert_msg(rawpeer_recv(p, 5000, &m) == 0, "no position");
        int cmd = m.command;
        uint64_t r =
            cmd == PSOD__COMMAND__CMD_POSITION ? ((const Psod__Position *)m.meta)->round : 0;
        wire_msg_clear(&m);
        if (cmd == PSOD__COMMAND__CMD_VERIFY)
            continue;
        ck_assert_msg(cmd == PSOD__COMMAND__CMD_POSITION, "%s, not a position",
                      wire_command_name(cmd));
        ck_assert_uint_eq(r, round);
        return;
    }
}

/* The next message must be a VERIFY of `particle`'s claim `claimed` with
 * weights x; its verdict skeleton into v. */
static void s_expect_verify(struct rawpeer *p, uint32_t particle, double claimed, const float *x,
                            Psod__Verdict *v)
{
    struct wire_msg m;
    ck_assert_msg(rawpeer_recv(p, 5000, &m) == 0, "no candidate to verify");
    ck_assert_msg(m.command == PSOD__COMMAND__CMD_VERIFY, "%s, not a candidate",
                  wire_command_name(m.command));
    const Psod__Verify *q = (const Psod__Verify *)m.meta;
    ck_assert_uint_eq(q->particle, particle);
    ck_assert_double_eq_tol(q->claimed_loss, claimed, 1e-12);
    ck_assert_uint_eq(zmq_msg_size(&m.payload), N * sizeof(float));
    ck_assert_int_eq(memcmp(zmq_msg_data(&m.payload), x, N * sizeof(float)), 0);
    ck_assert_uint_eq(q->payload_crc32c, crc32c(0, x, N * sizeof(float)));
    psod__verdict__init(v);
    v->round = q->round;
    v->particle = q->particle;
    v->payload_crc32c = q->payload_crc32c;
    wire_msg_clear(&m);
}

START_TEST(a_claim_goes_to_the_panel_and_its_quorum_decides)
{
    /* _i = 0: both verifiers measure close to the claim (adopted);
     * _i = 1: both measure far above it (refused, the claimant struck). */
    const int adopt = _i == 0;
    inproc_start("check_verify", 3, s_verified_pso);
    float xa[N], xb[N], xc[N];
    for (int i = 0; i < N; i++)
        xa[i] = 0.5f + (float)i, xb[i] = 2.0f, xc[i] = -1.0f;
    struct rawpeer a, b, c;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    rawpeer_open(&c, inproc_ep);
    uint32_t pa = s_join(&a, "a", xa);
    s_join(&b, "b", xb);
    s_join(&c, "c", xc);

    /* Round 0: a claims by far the best loss. The claimant is never on its
     * own panel: b and c get the candidate before their positions. */
    s_push(&a, 1, 0, 0.1, xa, NULL);
    s_push(&b, 1, 0, 1.0, xb, NULL);
    s_push(&c, 1, 0, 1.0, xc, NULL);
    Psod__Verdict vb, vc;
    s_expect_position(&a, 1);
    s_expect_verify(&b, pa, 0.1, xa, &vb);
    s_expect_position(&b, 1);
    s_expect_verify(&c, pa, 0.1, xa, &vc);
    s_expect_position(&c, 1);
    struct psoc_status st = inproc_status_of(1);
    ck_assert_uint_eq(st.verify_adopted + st.verify_refused, 0); /* undecided until verdicts */
    psoc_status_free(&st);

    /* Round 1: the verdicts. */
    vb.loss = adopt ? 0.104 : 3.0;
    vc.loss = adopt ? 0.107 : 2.5;
    s_push(&a, 2, 1, 0.9, xa, NULL);
    s_push(&b, 2, 1, 0.9, xb, &vb);
    s_push(&c, 2, 1, 0.9, xc, &vc);
    s_drain_to_position(&a, 2);
    s_drain_to_position(&b, 2);
    s_drain_to_position(&c, 2);
    st = inproc_status_of(1);
    ck_assert_uint_eq(st.verify_adopted, adopt ? 1 : 0);
    ck_assert_uint_eq(st.verify_refused, adopt ? 0 : 1);
    ck_assert_uint_eq(st.verify_ignored, 0);
    ck_assert_uint_eq(st.n_particles, 3);
    for (size_t k = 0; k < st.n_particles; k++)
        if (st.particle[k].id == pa)
            ck_assert_uint_eq(st.particle[k].strikes, adopt ? 0 : 1);
    if (adopt) {
        /* The largest confirmed loss, not the claim. */
        ck_assert_int_eq(st.global_best_particle, (int32_t)pa);
        ck_assert_double_eq_tol(st.global_best_loss, 0.107, 1e-9);
    } else {
        ck_assert_msg(!(st.global_best_loss < 0.5), "the refused claim became the best: %g",
                      st.global_best_loss);
    }
    psoc_status_free(&st);
    rawpeer_close(&a);
    rawpeer_close(&b);
    rawpeer_close(&c);
    inproc_stop();
}
END_TEST

START_TEST(verdicts_that_answer_nothing_are_ignored_and_a_nan_verdict_is_refused)
{
    inproc_start("check_verify", 2, s_verified_pso);
    float xa[N], xb[N];
    for (int i = 0; i < N; i++)
        xa[i] = 1.0f, xb[i] = 3.0f;
    struct rawpeer a, b;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    s_join(&a, "a", xa);
    s_join(&b, "b", xb);
    char why[512];

    /* A NaN verdict refuses its push, which changes nothing. */
    Psod__Verdict v = PSOD__VERDICT__INIT;
    v.loss = NAN;
    s_push(&a, 1, 0, 0.5, xa, &v);
    ck_assert_int_eq(rawpeer_error(&a, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_FINITE);
    ck_assert_msg(strstr(why, "verdict") != NULL, "%s", why);

    /* A verdict for a candidate no one was sent: ignored, counted, and the
     * push goes into the round, which closes on both. */
    v.loss = 0.3;
    v.round = 0;
    v.particle = 1;
    v.payload_crc32c = 0xdeadbeef;
    s_push(&a, 2, 0, 0.5, xa, &v);
    s_push(&b, 1, 0, 0.7, xb, NULL);
    s_expect_position(&a, 1);
    s_expect_position(&b, 1);
    struct psoc_status st = inproc_status_of(1);
    ck_assert_uint_eq(st.verify_ignored, 1);
    ck_assert_uint_eq(st.verify_adopted + st.verify_refused, 0);
    ck_assert_uint_eq(st.round, 1);
    psoc_status_free(&st);
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, a_claim_goes_to_the_panel_and_its_quorum_decides, 0, 2);
    tcase_add_test(tc, verdicts_that_answer_nothing_are_ignored_and_a_nan_verdict_is_refused);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
