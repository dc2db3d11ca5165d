/* Suite: worker/client/psoclient against a real in-process daemon (server.c) on
 * loopback TCP: join, sync, status, refusals, rejoin, timeouts. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "worker/client/psoclient.h"
#include "proto/psod.pb-c.h"
#include "server/server.h"
#include "tests/lib/inproc.h"

static char err[512];

static void s_start(long workers) { inproc_start("check_client", workers, NULL); }
static void s_stop(void) { inproc_stop(); }

static struct psoc *s_open(const char *name)
{
    struct psoc_options o;
    psoc_options_default(&o);
    o.timeout_ms = 5000;
    o.connect_timeout_ms = 5000;
    struct psoc *c;
    ck_assert_msg(psoc_open(&c, inproc_ep, name, &o, err, sizeof err) == PSOC_OK, "%s", err);
    return c;
}

struct peer {
    const char *name;
    float x[16];
    double loss;
    int rounds, rc;
    struct psoc_position pos;
};

static void *s_peer(void *arg)
{
    struct peer *p = arg;
    char e[256];
    struct psoc *c = s_open(p->name);
    p->rc = psoc_join(c, 16, 42, p->x, NULL, e, sizeof e);
    for (int r = 0; r < p->rounds && p->rc == PSOC_OK; r++)
        p->rc = psoc_sync(c, p->x, p->loss + r, 1, &p->pos, e, sizeof e);
    psoc_close(&c);
    return NULL;
}

START_TEST(two_workers_sync_rounds)
{
    s_start(2);
    struct peer a = {.name = "a", .loss = 1.0, .rounds = 5},
                b = {.name = "b", .loss = 0.5, .rounds = 5};
    for (int i = 0; i < 16; i++)
        a.x[i] = 1.0f, b.x[i] = -1.0f;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, s_peer, &a);
    pthread_create(&tb, NULL, s_peer, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.rc, PSOC_OK);
    ck_assert_int_eq(b.rc, PSOC_OK);
    ck_assert_uint_eq(a.pos.round, 5);
    ck_assert_double_eq(a.pos.global_best_loss, 0.5); /* b's first loss */
    ck_assert_uint_eq(a.pos.global_best_particle, b.pos.global_best_particle);
    ck_assert_double_eq(b.pos.personal_best_loss, 0.5);
    ck_assert_double_eq(a.pos.personal_best_loss, 1.0);
    /* the daemon moved a: its position is no longer where it started */
    ck_assert(a.x[0] != 1.0f);
    struct psoc *c = s_open(NULL);
    struct psoc_status st;
    ck_assert_int_eq(psoc_status(c, 1, &st, err, sizeof err), PSOC_OK);
    ck_assert_uint_eq(st.round, 5);
    ck_assert_uint_eq(st.particles, 2);
    ck_assert_uint_eq(st.active, 0); /* both said bye */
    ck_assert_uint_eq(st.param_count, 16);
    ck_assert_uint_eq(st.n_particles, 2);
    ck_assert_uint_eq(st.particle[0].pushes, 5);
    ck_assert_str_eq(st.strategy, "pso");
    psoc_status_free(&st);
    psoc_close(&c);
    s_stop();
}
END_TEST

static void s_avg(struct server_config *c) { c->strategy = 1; }

START_TEST(an_overlapping_sync_keeps_the_steps_taken_meanwhile)
{
    /* avg, two workers: a begins its sync and trains on (adds d), b syncs
     * as usual; a's end gives the mean of the two pushes plus d, exactly
     * (float32 adds of exact values). Out-of-order calls are refused. */
    inproc_start("check_client", 2, s_avg);
    struct peer b = {.name = "b", .loss = 0.5, .rounds = 1};
    float x[16], d[16], pushed[16];
    for (int i = 0; i < 16; i++)
        x[i] = 1.0f + (float)i, b.x[i] = -1.0f, d[i] = 0.25f * (float)(i % 3);
    struct psoc *a = s_open("a");
    pthread_t tb;
    pthread_create(&tb, NULL, s_peer, &b);
    ck_assert_msg(psoc_join(a, 16, 42, x, NULL, err, sizeof err) == PSOC_OK, "%s", err);
    struct psoc_position pos;
    ck_assert_int_eq(psoc_sync_end(a, x, &pos, err, sizeof err), PSOC_ESTATE);
    struct psoc_report r = {1.0, 1, NAN, NAN, 0};
    memcpy(pushed, x, sizeof x);
    ck_assert_msg(psoc_sync_begin(a, x, &r, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert(psoc_sync_pending(a));
    ck_assert_int_eq(psoc_sync_begin(a, x, &r, err, sizeof err), PSOC_ESTATE);
    ck_assert_int_eq(psoc_sync(a, x, 1.0, 1, &pos, err, sizeof err), PSOC_ESTATE);
    for (int i = 0; i < 16; i++) /* the steps taken while the round closes */
        x[i] += d[i];
    ck_assert_msg(psoc_sync_end(a, x, &pos, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert(!psoc_sync_pending(a));
    pthread_join(tb, NULL);
    ck_assert_int_eq(b.rc, PSOC_OK);
    ck_assert_uint_eq(pos.round, 1);
    for (int i = 0; i < 16; i++) {
        float mean = (0.0f + pushed[i] + -1.0f) * 0.5f;
        ck_assert_float_eq(b.x[i], mean);
        ck_assert_float_eq(x[i], mean + ((pushed[i] + d[i]) - pushed[i]));
    }
    psoc_close(&a);
    inproc_stop();
}
END_TEST

static void s_avg_frag2(struct server_config *c)
{
    c->strategy = 1;
    snprintf(c->wire_spec, sizeof c->wire_spec, "frag:2");
}

START_TEST(an_overlapping_fragment_sync_merges_as_streaming_diloco_does)
{
    /* avg over two fragments (psod --wire frag:2), a with overlap_mix 0.5:
     * round 0 syncs [0, 8); a trains on (adds d) and its end merges that
     * part, 0.5 (pushed + d) + 0.5 mean, and keeps [8, 16) as trained. */
    inproc_start("check_client", 2, s_avg_frag2);
    struct peer b = {.name = "b", .loss = 0.5, .rounds = 1};
    float x[16], d[16], pushed[16];
    for (int i = 0; i < 16; i++)
        x[i] = 1.0f + (float)i, b.x[i] = -1.0f, d[i] = 0.25f * (float)(i % 3);
    struct psoc_options o;
    psoc_options_default(&o);
    ck_assert(o.overlap_mix < 0); /* the default keeps the steps */
    o.timeout_ms = o.connect_timeout_ms = 5000;
    o.overlap_mix = 0.5;
    struct psoc *a;
    ck_assert_msg(psoc_open(&a, inproc_ep, "a", &o, err, sizeof err) == PSOC_OK, "%s", err);
    pthread_t tb;
    pthread_create(&tb, NULL, s_peer, &b);
    struct psoc_welcome w;
    ck_assert_msg(psoc_join(a, 16, 42, x, &w, err, sizeof err) == PSOC_OK, "%s", err);
    ck_assert_uint_eq(w.fragments, 2);
    struct psoc_report r = {1.0, 1, NAN, NAN, 0};
    memcpy(pushed, x, sizeof x);
    ck_assert_msg(psoc_sync_begin(a, x, &r, err, sizeof err) == PSOC_OK, "%s", err);
    for (int i = 0; i < 16; i++)
        x[i] += d[i];
    struct psoc_position pos;
    ck_assert_msg(psoc_sync_end(a, x, &pos, err, sizeof err) == PSOC_OK, "%s", err);
    pthread_join(tb, NULL);
    ck_assert_int_eq(b.rc, PSOC_OK);
    for (int i = 0; i < 16; i++) {
        float mean = (0.0f + pushed[i] + -1.0f) * 0.5f, mine = pushed[i] + d[i];
        if (i < 8) {
            ck_assert_float_eq(b.x[i], mean);
            ck_assert_float_eq_tol(x[i], 0.5f * mine + 0.5f * mean, 1e-6f);
        } else {
            ck_assert_float_eq(b.x[i], -1.0f); /* not synced yet: b's own */
            ck_assert_float_eq(x[i], mine);
        }
    }
    psoc_close(&a);
    /* A mix above 1 or NaN is refused at the open. */
    o.overlap_mix = 1.5;
    ck_assert_int_eq(psoc_open(&a, inproc_ep, "a", &o, err, sizeof err), PSOC_EINVAL);
    o.overlap_mix = NAN;
    ck_assert_int_eq(psoc_open(&a, inproc_ep, "a", &o, err, sizeof err), PSOC_EINVAL);
    inproc_stop();
}
END_TEST

START_TEST(wrong_model_and_full_swarm_refused)
{
    s_start(1);
    float x[16] = {0}, y[17] = {0};
    struct psoc *a = s_open("a"), *b = s_open("b"), *d = s_open("d");
    ck_assert_int_eq(psoc_join(a, 16, 42, x, NULL, err, sizeof err), PSOC_OK);
    ck_assert_int_eq(psoc_join(b, 17, 42, y, NULL, err, sizeof err), PSOC_EREFUSED);
    ck_assert_int_eq(psoc_last_server_error(b), PSOD__ERROR_CODE__ERR_FINGERPRINT);
    ck_assert_ptr_nonnull(strstr(err, "fingerprint"));
    ck_assert_int_eq(psoc_join(d, 16, 43, x, NULL, err, sizeof err), PSOC_EREFUSED);
    ck_assert_int_eq(psoc_last_server_error(d), PSOD__ERROR_CODE__ERR_FINGERPRINT);
    ck_assert_int_eq(psoc_join(d, 16, 42, x, NULL, err, sizeof err), PSOC_EREFUSED);
    ck_assert_int_eq(psoc_last_server_error(d), PSOD__ERROR_CODE__ERR_SWARM_FULL);
    /* a carries on */
    ck_assert_int_eq(psoc_sync(a, x, 1.0, 1, NULL, err, sizeof err), PSOC_OK);
    psoc_close(&a);
    psoc_close(&b);
    psoc_close(&d);
    s_stop();
}
END_TEST

START_TEST(another_dataset_is_refused_with_both_names)
{
    s_start(2);
    float x[16] = {0};
    struct psoc *a = s_open("a"), *b = s_open("b");
    psoc_set_model(a, "lenet5", "mnist", NULL);
    psoc_set_model(b, "lenet5", "fashion-mnist", NULL);
    ck_assert_int_eq(psoc_join(a, 16, 42, x, NULL, err, sizeof err), PSOC_OK);
    ck_assert_int_eq(psoc_join(b, 16, 42, x, NULL, err, sizeof err), PSOC_EREFUSED);
    ck_assert_int_eq(psoc_last_server_error(b), PSOD__ERROR_CODE__ERR_FINGERPRINT);
    ck_assert_msg(strstr(err, "trains lenet5 on mnist") && strstr(err, "fashion-mnist"), "%s", err);
    psoc_set_model(b, "lenet5", "", NULL); /* a worker that names no dataset is not judged */
    ck_assert_msg(psoc_join(b, 16, 42, x, NULL, err, sizeof err) == PSOC_OK, "%s", err);
    psoc_close(&a);
    psoc_close(&b);
    s_stop();
}
END_TEST

struct said {
    pthread_mutex_t mu;
    char line[512];
    double at;
};

static void s_keep(void *ctx, int level, const char *msg)
{
    (void)level;
    struct said *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (!w->line[0] && strstr(msg, "waits for")) {
        snprintf(w->line, sizeof w->line, "%s", msg);
        w->at = time_now_s();
    }
    pthread_mutex_unlock(&w->mu);
}

START_TEST(a_worker_short_of_company_is_told_within_a_second)
{
    s_start(3);
    struct said w = {PTHREAD_MUTEX_INITIALIZER, "", 0};
    struct psoc_options o;
    psoc_options_default(&o);
    o.timeout_ms = 2000;
    o.log = s_keep;
    o.log_ctx = &w;
    struct psoc *a;
    ck_assert_msg(psoc_open(&a, inproc_ep, "a", &o, err, sizeof err) == PSOC_OK, "%s", err);
    float x[16] = {0};
    ck_assert_int_eq(psoc_join(a, 16, 42, x, NULL, err, sizeof err), PSOC_OK);
    double t0 = time_now_s();
    ck_assert_int_eq(psoc_sync(a, x, 1.0, 1, NULL, err, sizeof err), PSOC_ETIMEOUT);
    ck_assert_msg(strstr(w.line, "waits for 2 more workers of 3 to join before round 0"), "%s",
                  w.line);
    ck_assert_msg(w.at - t0 < 1.0, "told after %.2f s", w.at - t0);
    psoc_close(&a);
    s_stop();
}
END_TEST

START_TEST(nan_weights_refused_then_valid_push_served)
{
    s_start(1);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = 2.0f;
    struct psoc *a = s_open("a");
    ck_assert_int_eq(psoc_join(a, 16, 1, x, NULL, err, sizeof err), PSOC_OK);
    x[3] = NAN;
    ck_assert_int_eq(psoc_sync(a, x, 1.0, 1, NULL, err, sizeof err), PSOC_EREFUSED);
    ck_assert_int_eq(psoc_last_server_error(a), PSOD__ERROR_CODE__ERR_NOT_FINITE);
    ck_assert_int_eq(psoc_sync(a, x, NAN, 1, NULL, err, sizeof err), PSOC_EINVAL);
    x[3] = 2.0f;
    struct psoc_position pos;
    ck_assert_int_eq(psoc_sync(a, x, 3.0, 1, &pos, err, sizeof err), PSOC_OK);
    ck_assert_double_eq(pos.global_best_loss, 3.0);
    ck_assert_uint_eq(pos.round, 1);
    psoc_close(&a);
    s_stop();
}
END_TEST

START_TEST(restarted_worker_gets_its_particle_back)
{
    s_start(1);
    float x[16], y[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    struct psoc *a = s_open("a");
    struct psoc_welcome w;
    ck_assert_int_eq(psoc_join(a, 16, 1, x, &w, err, sizeof err), PSOC_OK);
    ck_assert_int_eq(w.rejoined, 0);
    for (int r = 0; r < 3; r++)
        ck_assert_int_eq(psoc_sync(a, x, 5.0 - r, 1, NULL, err, sizeof err), PSOC_OK);
    psoc_close(&a);
    a = s_open("a");
    memset(y, 0, sizeof y);
    ck_assert_int_eq(psoc_join(a, 16, 1, y, &w, err, sizeof err), PSOC_OK);
    ck_assert_int_eq(w.rejoined, 1);
    ck_assert_uint_eq(w.round, 3);
    ck_assert_uint_eq(w.particle_id, 0);
    ck_assert_double_eq(w.global_best_loss, 3.0);
    ck_assert_mem_eq(x, y, sizeof x); /* the position it last received */
    ck_assert_int_eq(psoc_sync(a, y, 1.0, 1, NULL, err, sizeof err), PSOC_OK);
    psoc_close(&a);
    s_stop();
}
END_TEST

START_TEST(no_daemon_times_out_clearly)
{
    struct psoc_options o;
    /* Defaults must set every field: garbage left in the CURVE keys once
     * made psoc_open fail with "cannot set CURVE keys". */
    memset(&o, 0x5a, sizeof o);
    psoc_options_default(&o);
    o.connect_timeout_ms = 300;
    struct psoc *c;
    /* A port nobody listens on: connect is lazy, the join times out. */
    ck_assert_int_eq(psoc_open(&c, "tcp://127.0.0.1:9", "a", &o, err, sizeof err), PSOC_OK);
    float x[4] = {0};
    ck_assert_int_eq(psoc_join(c, 4, 1, x, NULL, err, sizeof err), PSOC_ETIMEOUT);
    ck_assert_ptr_nonnull(strstr(err, "is psod running"));
    ck_assert_int_eq(psoc_sync(c, x, 1, 1, NULL, err, sizeof err), PSOC_ESTATE);
    psoc_close(&c);
    ck_assert_int_eq(psoc_open(&c, "nonsense", "a", &o, err, sizeof err), PSOC_EINVAL);
    ck_assert_int_eq(psoc_open(&c, "tcp://127.0.0.1:9", "", &o, err, sizeof err), PSOC_EINVAL);
}
END_TEST

START_TEST(layout_hash_is_fnv1a)
{
    ck_assert_uint_eq(psoc_layout_hash(""), 0xcbf29ce484222325ull);
    ck_assert_uint_eq(psoc_layout_hash("a"), 0xaf63dc4c8601ec8cull);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, two_workers_sync_rounds);
    tcase_add_test(tc, an_overlapping_sync_keeps_the_steps_taken_meanwhile);
    tcase_add_test(tc, an_overlapping_fragment_sync_merges_as_streaming_diloco_does);
    tcase_add_test(tc, wrong_model_and_full_swarm_refused);
    tcase_add_test(tc, nan_weights_refused_then_valid_push_served);
    tcase_add_test(tc, another_dataset_is_refused_with_both_names);
    tcase_add_test(tc, a_worker_short_of_company_is_told_within_a_second);
    tcase_add_test(tc, restarted_worker_gets_its_particle_back);
    tcase_add_test(tc, no_daemon_times_out_clearly);
    tcase_add_test(tc, layout_hash_is_fnv1a);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
