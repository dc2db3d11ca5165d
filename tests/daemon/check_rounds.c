/* Suite: server/rounds.c and the loop's round decisions, against an
 * in-process daemon (server_run in a thread) and the client library on
 * loopback: the barrier, --quorum, --round-timeout, a bye or an eviction
 * that completes the round (the loop decides after every message, not the
 * handler). About a second a check (most of it the client's bye linger),
 * where the process suites (check_cluster) take many. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/client/psoclient.h"
#include "common/timeutil.h"
#include "proto/psod.pb-c.h"
#include "server/server.h"
#include "tests/lib/inproc.h"

static char err[512];

/* A daemon of `workers` particles under avg (positions are the mean, easy
 * to check); `set` adjusts its configuration. */
static void s_avg(struct server_config *c) { c->strategy = 1; }
static void (*s_also)(struct server_config *);
static void s_set(struct server_config *c)
{
    s_avg(c);
    if (s_also)
        s_also(c);
}
static void s_start(long workers, void (*set)(struct server_config *))
{
    s_also = set;
    inproc_start("check_rounds", workers, s_set);
}
static void s_stop(void) { inproc_stop(); }

static struct psoc *s_join(const char *name, float v, float *x)
{
    struct psoc_options o;
    psoc_options_default(&o);
    o.timeout_ms = 5000;
    o.connect_timeout_ms = 5000;
    struct psoc *c;
    ck_assert_msg(psoc_open(&c, inproc_ep, name, &o, err, sizeof err) == PSOC_OK, "%s", err);
    for (int i = 0; i < 16; i++)
        x[i] = v;
    ck_assert_msg(psoc_join(c, 16, 7, x, NULL, err, sizeof err) == PSOC_OK, "%s", err);
    return c;
}

struct pusher {
    struct psoc *c;
    float *x;
    int rc;
    struct psoc_position pos;
    double took;
};

static void *s_push(void *arg)
{
    struct pusher *p = arg;
    char e[512];
    double t0 = time_now_s();
    p->rc = psoc_sync(p->c, p->x, 1.0, 1, &p->pos, e, sizeof e);
    p->took = time_now_s() - t0;
    return NULL;
}

static uint64_t s_round(void)
{
    struct psoc_status st = inproc_status();
    uint64_t r = st.round;
    psoc_status_free(&st);
    return r;
}

START_TEST(the_round_waits_for_every_worker_then_gives_the_mean)
{
    s_start(3, NULL);
    float xa[16], xb[16], xc[16];
    struct psoc *a = s_join("a", 1, xa), *b = s_join("b", 2, xb), *c = s_join("c", 6, xc);
    struct pusher pa = {a, xa, 0, {0}, 0}, pb = {b, xb, 0, {0}, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, s_push, &pa);
    pthread_create(&tb, NULL, s_push, &pb);
    usleep(200000);
    ck_assert_uint_eq(s_round(), 0); /* two of three pushed: still open */
    struct pusher pc = {c, xc, 0, {0}, 0};
    s_push(&pc);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(pa.rc, PSOC_OK);
    ck_assert_int_eq(pc.rc, PSOC_OK);
    ck_assert_uint_eq(pc.pos.round, 1);
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq_tol(xa[i], 3.0f, 1e-6f); /* (1 + 2 + 6) / 3 */
    ck_assert_mem_eq(xa, xc, sizeof xa);
    psoc_close(&a);
    psoc_close(&b);
    psoc_close(&c);
    s_stop();
}
END_TEST

static void s_quorum2(struct server_config *c) { c->quorum = 2; }

START_TEST(a_quorum_closes_the_round_early)
{
    s_start(3, s_quorum2);
    float xa[16], xb[16], xc[16];
    struct psoc *a = s_join("a", 1, xa), *b = s_join("b", 3, xb), *c = s_join("c", 9, xc);
    struct pusher pa = {a, xa, 0, {0}, 0};
    pthread_t ta;
    pthread_create(&ta, NULL, s_push, &pa);
    struct pusher pb = {b, xb, 0, {0}, 0};
    s_push(&pb); /* the second push closes the round: c never pushed */
    pthread_join(ta, NULL);
    ck_assert_int_eq(pb.rc, PSOC_OK);
    ck_assert_uint_eq(pb.pos.round, 1);
    ck_assert_float_eq_tol(xb[0], 2.0f, 1e-6f);
    psoc_close(&a);
    psoc_close(&b);
    psoc_close(&c);
    s_stop();
}
END_TEST

static void s_deadline(struct server_config *c) { c->round_timeout = 0.3; }

START_TEST(a_deadline_closes_the_round_with_whoever_pushed)
{
    s_start(2, s_deadline);
    float xa[16], xb[16];
    struct psoc *a = s_join("a", 4, xa), *b = s_join("b", 8, xb);
    struct pusher pa = {a, xa, 0, {0}, 0};
    s_push(&pa);
    ck_assert_int_eq(pa.rc, PSOC_OK);
    ck_assert_uint_eq(pa.pos.round, 1);
    ck_assert_msg(pa.took >= 0.25 && pa.took < 3, "closed after %.2f s", pa.took);
    ck_assert_float_eq_tol(xa[0], 4.0f, 1e-6f); /* the mean of the one push */
    psoc_close(&a);
    psoc_close(&b);
    s_stop();
}
END_TEST

START_TEST(a_bye_completes_the_round_it_was_holding)
{
    /* a pushed and waits; b leaves without pushing: the loop, not the bye
     * handler, sees the round can close now. */
    s_start(2, NULL);
    float xa[16], xb[16];
    struct psoc *a = s_join("a", 5, xa), *b = s_join("b", 7, xb);
    struct pusher pa = {a, xa, 0, {0}, 0};
    pthread_t ta;
    pthread_create(&ta, NULL, s_push, &pa);
    usleep(200000);
    ck_assert_uint_eq(s_round(), 0);
    psoc_close(&b);
    pthread_join(ta, NULL);
    ck_assert_int_eq(pa.rc, PSOC_OK);
    ck_assert_uint_eq(pa.pos.round, 1);
    ck_assert_msg(pa.took < 2, "the bye closed the round only after %.2f s", pa.took);
    ck_assert_float_eq_tol(xa[0], 5.0f, 1e-6f);
    psoc_close(&a);
    s_stop();
}
END_TEST

static char s_token_path[128];
static void s_token(struct server_config *c)
{
    snprintf(s_token_path, sizeof s_token_path, "/tmp/check_rounds-%ld/admin.token",
             (long)getpid());
    snprintf(c->admin_token_file, sizeof c->admin_token_file, "%s", s_token_path);
}

START_TEST(an_eviction_completes_the_round_it_was_holding)
{
    /* The operator evicts b (the token psod wrote, no CURVE): the round a
     * waits in closes at once, without b. */
    s_start(2, s_token);
    float xa[16], xb[16];
    struct psoc *a = s_join("a", 3, xa), *b = s_join("b", 11, xb);
    struct pusher pa = {a, xa, 0, {0}, 0};
    pthread_t ta;
    pthread_create(&ta, NULL, s_push, &pa);
    usleep(200000);
    struct psoc *op;
    struct psoc_options o;
    psoc_options_default(&o);
    ck_assert_int_eq(psoc_open(&op, inproc_ep, NULL, &o, err, sizeof err), PSOC_OK);
    ck_assert_msg(psoc_set_admin_token(op, s_token_path, err, sizeof err) == PSOC_OK, "%s", err);
    char reply[256];
    ck_assert_msg(psoc_admin(op, PSOC_ADMIN_EVICT, "b", reply, sizeof reply, err, sizeof err) ==
                      PSOC_OK,
                  "%s", err);
    ck_assert_ptr_nonnull(strstr(reply, "worker 'b' evicted"));
    pthread_join(ta, NULL);
    ck_assert_int_eq(pa.rc, PSOC_OK);
    ck_assert_uint_eq(pa.pos.round, 1);
    ck_assert_float_eq_tol(xa[0], 3.0f, 1e-6f);
    psoc_close(&op);
    psoc_close(&a);
    psoc_close(&b);
    s_stop();
    char dir[160];
    snprintf(dir, sizeof dir, "/tmp/check_rounds-%ld", (long)getpid());
    rmdir(dir); /* psod removed the token at exit */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rounds");
    TCase *tc = tcase_create("barrier");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, the_round_waits_for_every_worker_then_gives_the_mean);
    tcase_add_test(tc, a_quorum_closes_the_round_early);
    tcase_add_test(tc, a_deadline_closes_the_round_with_whoever_pushed);
    tcase_add_test(tc, a_bye_completes_the_round_it_was_holding);
    tcase_add_test(tc, an_eviction_completes_the_round_it_was_holding);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
