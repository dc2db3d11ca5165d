/* Suite: server/members.c, joining and leaving, against an in-process
 * daemon: every hello that does not fit the swarm is refused with its own
 * code and the reason; a bye frees the worker's place and the same worker
 * gets its particle back; a worker silent past --liveness beats is
 * evicted, told so at its next push, and may rejoin. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"
#include "worker/client/psoclient.h"

#define N 8

static char err[512];
static int s_loop; /* the loop test's index, for its configuration */

static void s_two(struct server_config *c)
{
    c->strategy = 1; /* avg; heartbeats: psod's default 1 s x 10 */
}

/* A hello as rawpeer_join's, then changed by the test. */
static void s_hello(Psod__Hello *h, const char *name, const float *x, size_t n)
{
    Psod__Hello init = PSOD__HELLO__INIT;
    *h = init;
    h->worker_name = (char *)name;
    h->protocol_version = PSOD_PROTOCOL_VERSION;
    h->param_count = n;
    h->layout_hash = 7;
    h->payload_crc32c = crc32c(0, x, n * sizeof(float));
}

static int s_refused(struct rawpeer *p, const Psod__Hello *h, const float *x, size_t n, char *why)
{
    rawpeer_send(p, PSOD__COMMAND__CMD_HELLO, &h->base, x, n);
    return rawpeer_error(p, why, 512);
}

static uint32_t s_active(void)
{
    struct psoc_status st = inproc_status();
    uint32_t n = st.active;
    psoc_status_free(&st);
    return n;
}

START_TEST(hellos_that_do_not_fit_are_refused_each_with_its_reason)
{
    inproc_start("check_members", 2, s_two);
    char why[512];
    float x[N + 1], nan[N];
    for (int i = 0; i <= N; i++)
        x[i] = (float)i;
    memcpy(nan, x, sizeof nan);
    nan[2] = NAN;
    struct rawpeer a, p;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&p, inproc_ep);
    Psod__Hello h;

    /* Before any model: a new particle must bring finite weights that
     * match their size and CRC. */
    s_hello(&h, "p", x, N);
    ck_assert_int_eq(s_refused(&p, &h, x, 0, why), PSOD__ERROR_CODE__ERR_NEED_WEIGHTS);
    ck_assert_int_eq(s_refused(&p, &h, x, N - 1, why), PSOD__ERROR_CODE__ERR_SIZE);
    h.payload_crc32c ^= 1;
    ck_assert_int_eq(s_refused(&p, &h, x, N, why), PSOD__ERROR_CODE__ERR_CHECKSUM);
    s_hello(&h, "p", nan, N);
    ck_assert_int_eq(s_refused(&p, &h, nan, N, why), PSOD__ERROR_CODE__ERR_NOT_FINITE);
    ck_assert_msg(strstr(why, "1 NaN") != NULL, "%s", why);
    s_hello(&h, "p", x, N);
    h.protocol_version = 9;
    ck_assert_int_eq(s_refused(&p, &h, x, N, why), PSOD__ERROR_CODE__ERR_VERSION);
    ck_assert_msg(strstr(why, "protocol 9") != NULL, "%s", why);

    /* a sets the model; another model, or a's name from another process,
     * is refused. */
    rawpeer_join(&a, "a", x, N);
    s_hello(&h, "p", x, N + 1);
    ck_assert_int_eq(s_refused(&p, &h, x, N + 1, why), PSOD__ERROR_CODE__ERR_FINGERPRINT);
    ck_assert_msg(strstr(why, "9/0000000000000007") != NULL, "%s", why);
    s_hello(&h, "a", x, N);
    h.pid = 4242;
    h.host = "elsewhere";
    ck_assert_int_eq(s_refused(&p, &h, x, N, why), PSOD__ERROR_CODE__ERR_NAME_TAKEN);
    ck_assert_msg(strstr(why, "held by a live worker") != NULL, "%s", why);

    /* None of that took a place: b still joins, then the swarm is full. */
    struct rawpeer b;
    rawpeer_open(&b, inproc_ep);
    rawpeer_join(&b, "b", x, N);
    s_hello(&h, "c", x, N);
    ck_assert_int_eq(s_refused(&p, &h, x, N, why), PSOD__ERROR_CODE__ERR_SWARM_FULL);
    ck_assert_uint_eq(s_active(), 2);
    rawpeer_close(&a);
    rawpeer_close(&b);
    rawpeer_close(&p);
    inproc_stop();
}
END_TEST

START_TEST(a_bye_frees_the_place_and_the_worker_gets_its_particle_back)
{
    inproc_start("check_members", 2, s_two);
    struct psoc_options o;
    psoc_options_default(&o);
    float x[N] = {0};
    struct psoc *a, *b;
    struct psoc_welcome wa, wb, again;
    ck_assert_int_eq(psoc_open(&a, inproc_ep, "a", &o, err, sizeof err), PSOC_OK);
    ck_assert_msg(psoc_join(a, N, 7, x, &wa, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert_int_eq(psoc_open(&b, inproc_ep, "b", &o, err, sizeof err), PSOC_OK);
    ck_assert_msg(psoc_join(b, N, 7, x, &wb, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert_int_eq(wa.rejoined, 0);
    ck_assert_uint_ne(wa.particle_id, wb.particle_id);
    ck_assert_uint_eq(s_active(), 2);
    psoc_close(&b); /* bye */
    for (int i = 0; i < 100 && s_active() != 1; i++)
        usleep(20000);
    ck_assert_uint_eq(s_active(), 1);
    ck_assert_int_eq(psoc_open(&b, inproc_ep, "b", &o, err, sizeof err), PSOC_OK);
    ck_assert_msg(psoc_join(b, N, 7, x, &again, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert_int_eq(again.rejoined, 1);
    ck_assert_uint_eq(again.particle_id, wb.particle_id);
    ck_assert_uint_eq(s_active(), 2);
    psoc_close(&a);
    psoc_close(&b);
    inproc_stop();
}
END_TEST

static void s_beats(struct server_config *c)
{
    c->strategy = 1;
    c->heartbeat_ms = 100;
    c->liveness = 3;
}

START_TEST(a_silent_worker_is_evicted_told_at_its_push_and_may_rejoin)
{
    inproc_start("check_members", 1, s_beats);
    char why[512];
    float x[N] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct rawpeer a;
    rawpeer_open(&a, inproc_ep);
    rawpeer_join(&a, "a", x, N);
    ck_assert_uint_eq(s_active(), 1);
    /* No heartbeats: out after 3 x 100 ms (and a timer pass). */
    for (int i = 0; i < 100 && s_active() != 0; i++)
        usleep(20000);
    ck_assert_uint_eq(s_active(), 0);
    rawpeer_push(&a, 1, 0, 1.0, x, N);
    ck_assert_int_eq(rawpeer_error(&a, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_JOINED);
    ck_assert_msg(strstr(why, "evicted for silence") != NULL, "%s", why);
    rawpeer_join(&a, "a", x, N); /* a hello again: back in */
    ck_assert_uint_eq(s_active(), 1);
    rawpeer_close(&a);
    inproc_stop();
}
END_TEST

static void s_pso_or_avg(struct server_config *c) { c->strategy = s_loop; /* 0 pso, 1 avg */ }

START_TEST(a_rejoin_in_the_open_round_takes_back_what_it_pushed_or_where_it_started)
{
    /* A worker that pushed and then says hello again in the same round
     * (its connection was reset) gets a welcome and no longer counts as
     * pushed. Under pso its stored position went when its push came in
     * (nothing reads it before the close), so the welcome carries the
     * weights it pushed; under avg the position stays, and the welcome
     * says it is where it started: the weights its hello carried. */
    s_loop = _i;
    inproc_start("check_members", 2, s_pso_or_avg);
    float x0[N], xa[N];
    for (int e = 0; e < N; e++)
        x0[e] = 1.0f, xa[e] = 5.0f + (float)e;
    struct rawpeer a, b;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    rawpeer_join(&a, "a", x0, N);
    rawpeer_join(&b, "b", x0, N);
    rawpeer_push(&a, 1, 0, 1.0, xa, N);
    inproc_wait_pushed(1);
    struct wire_msg m;
    rawpeer_hello(&a, "a", x0, N, 0, &m);
    const Psod__Welcome *w = (const Psod__Welcome *)m.meta;
    ck_assert_int_eq(w->rejoined, 1);
    if (_i == 0) {
        ck_assert_uint_eq(zmq_msg_size(&m.payload), sizeof xa);
        ck_assert_int_eq(memcmp(zmq_msg_data(&m.payload), xa, sizeof xa), 0);
    } else { /* where it started: the weights its hello carried, not sent back */
        ck_assert(w->same_weights);
        ck_assert_uint_eq(w->payload_crc32c, crc32c(0, x0, sizeof x0));
        ck_assert(!m.has_payload || zmq_msg_size(&m.payload) == 0);
    }
    wire_msg_clear(&m);
    struct psoc_status st = inproc_status();
    ck_assert_uint_eq(st.pushed_this_round, 0);
    psoc_status_free(&st);
    /* The round then closes on both pushes as usual. */
    rawpeer_push(&a, 2, 0, 1.0, xa, N);
    rawpeer_push(&b, 1, 0, 2.0, x0, N);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(rawpeer_recv(k ? &b : &a, 5000, &m), 0);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        wire_msg_clear(&m);
    }
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("members");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hellos_that_do_not_fit_are_refused_each_with_its_reason);
    tcase_add_test(tc, a_bye_frees_the_place_and_the_worker_gets_its_particle_back);
    tcase_add_test(tc, a_silent_worker_is_evicted_told_at_its_push_and_may_rejoin);
    tcase_add_loop_test(
        tc, a_rejoin_in_the_open_round_takes_back_what_it_pushed_or_where_it_started, 0, 2);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
