/* Suite: server/persist.c, checkpoints and --resume, against an in-process
 * daemon: a resumed daemon is at the round it stopped at and gives each
 * worker its particle back where it was; an unreadable newest checkpoint
 * falls back to the generation before it; a directory with nothing usable
 * is refused with the reason. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"
#include "worker/client/psoclient.h"

#define N 8

static char dir[256], err[512];

static void s_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/psod-persist-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int s_resume; /* the next daemon resumes from dir */
static void s_ckpt(struct server_config *c)
{
    c->strategy = 1; /* avg */
    snprintf(c->checkpoint_dir, sizeof c->checkpoint_dir, "%s", dir);
    c->checkpoint_every = 1;
    c->keep = 3;
    if (s_resume)
        snprintf(c->resume, sizeof c->resume, "%s", dir);
}

/* One round of a (values va) and b (vb) by hand; the mean comes back. */
static void s_round(struct rawpeer *a, struct rawpeer *b, uint64_t round, float va, float vb)
{
    float xa[N], xb[N];
    for (int i = 0; i < N; i++)
        xa[i] = va + (float)i, xb[i] = vb + (float)i;
    rawpeer_push(a, round + 1, round, 1.0, xa, N);
    rawpeer_push(b, round + 1, round, 2.0, xb, N);
    struct rawpeer *peers[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        struct wire_msg m;
        ck_assert_int_eq(rawpeer_recv(peers[k], 5000, &m), 0);
        ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
        ck_assert_uint_eq(((const Psod__Position *)m.meta)->round, round + 1);
        wire_msg_clear(&m);
    }
}

/* a and b join and run `rounds` rounds (a at 2r, b at 2r + 2: mean 2r + 1
 * + i), then the daemon stops (its final checkpoint). */
static void s_train(int rounds)
{
    s_resume = 0;
    inproc_start("check_persist", 2, s_ckpt);
    struct rawpeer a, b;
    float x0[N] = {0};
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    rawpeer_join(&a, "a", x0, N);
    rawpeer_join(&b, "b", x0, N);
    for (int r = 0; r < rounds; r++)
        s_round(&a, &b, (uint64_t)r, 2.0f * (float)r, 2.0f * (float)r + 2);
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();
}

/* Rejoin as `name` on the resumed daemon: the welcome, its position in x. */
static struct psoc_welcome s_rejoin(const char *name, float *x)
{
    struct psoc_options o;
    psoc_options_default(&o);
    struct psoc *c;
    struct psoc_welcome w;
    for (int i = 0; i < N; i++)
        x[i] = -1;
    ck_assert_int_eq(psoc_open(&c, inproc_ep, name, &o, err, sizeof err), PSOC_OK);
    ck_assert_msg(psoc_join(c, N, 7, x, &w, err, sizeof err) == PSOC_OK, "%s", err);
    psoc_close(&c);
    return w;
}

START_TEST(a_resumed_daemon_gives_each_worker_its_particle_back)
{
    s_train(3); /* the last mean: 5 + i */
    s_resume = 1;
    inproc_start("check_persist", 2, s_ckpt);
    float x[N];
    struct psoc_welcome w = s_rejoin("b", x);
    ck_assert_int_eq(w.rejoined, 1);
    ck_assert_uint_eq(w.particle_id, 1);
    ck_assert_uint_eq(w.round, 3);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq_tol(x[i], 5.0f + (float)i, 1e-6f);
    inproc_stop();
}
END_TEST

START_TEST(an_unreadable_newest_checkpoint_falls_back_to_the_one_before)
{
    s_train(3);
    char cmd[600];
    /* Flip a byte in the middle of the newest generation. */
    snprintf(cmd, sizeof cmd,
             "f=$(ls '%s'/ckpt-*.psck | sort | tail -1) && "
             "printf '\\377' | dd of=\"$f\" bs=1 seek=$(( $(stat -c %%s \"$f\") / 2 )) "
             "conv=notrunc status=none",
             dir);
    ck_assert_int_eq(system(cmd), 0);
    s_resume = 1;
    inproc_start("check_persist", 2, s_ckpt);
    float x[N];
    struct psoc_welcome w = s_rejoin("a", x);
    ck_assert_int_eq(w.rejoined, 1);
    ck_assert_uint_lt(w.round, 3); /* an older generation */
    ck_assert_uint_ge(w.round, 1);
    for (int i = 0; i < N; i++) /* the mean of that round */
        ck_assert_float_eq_tol(x[i], 2.0f * (float)w.round - 1 + (float)i, 1e-6f);
    inproc_stop();
}
END_TEST

START_TEST(nothing_usable_to_resume_from_is_refused_with_the_reason)
{
    char e[512];
    struct server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct config_table tabs[SERVER_OPTION_TABLES];
    ck_assert_int_eq(config_defaults(server_options(&cfg, tabs), e, sizeof e), 0);
    strcpy(cfg.bind, "tcp://127.0.0.1:*");
    strcpy(cfg.admin_token_file, "none");
    snprintf(cfg.resume, sizeof cfg.resume, "%s", dir);
    struct server *s = NULL;
    log_init("check_persist", LOG_ERROR, stderr);
    ck_assert_int_ne(server_new(&s, &cfg, e, sizeof e), 0);
    ck_assert_msg(strstr(e, "holds no checkpoint") && strstr(e, "--resume-or-start"), "%s", e);

    s_train(1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "for f in '%s'/ckpt-*.psck; do printf 'junk' > \"$f\"; done", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ne(server_new(&s, &cfg, e, sizeof e), 0);
    ck_assert_msg(strstr(e, "no usable checkpoint"), "%s", e);
}
END_TEST

START_TEST(a_checkpoint_that_cannot_be_written_is_counted_and_shown)
{
    s_resume = 0;
    inproc_start("check_persist", 2, s_ckpt);
    struct rawpeer a, b;
    float x0[N] = {0};
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    rawpeer_join(&a, "a", x0, N);
    rawpeer_join(&b, "b", x0, N);
    s_round(&a, &b, 0, 0, 2);
    struct psoc_status st = inproc_status();
    ck_assert_uint_eq(st.checkpoint_round, 1);
    ck_assert(st.checkpoint_age_seconds >= 0 && st.checkpoint_age_seconds < 60);
    ck_assert_uint_eq(st.checkpoint_failures, 0);
    ck_assert_str_eq(st.checkpoint_error, "");
    psoc_status_free(&st);

    /* The directory gone, a file in its place: every write fails. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && touch '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    s_round(&a, &b, 1, 2, 4);
    s_round(&a, &b, 2, 4, 6);
    st = inproc_status();
    ck_assert_uint_eq(st.checkpoint_round, 1); /* the last one written */
    ck_assert_uint_eq(st.checkpoint_failures, 2);
    ck_assert_msg(strstr(st.checkpoint_error, "cannot") != NULL, "%s", st.checkpoint_error);
    psoc_status_free(&st);
    struct psoc_options o;
    psoc_options_default(&o);
    struct psoc *c;
    char *json;
    ck_assert_int_eq(psoc_open(&c, inproc_ep, NULL, &o, err, sizeof err), PSOC_OK);
    ck_assert_int_eq(psoc_status_json(c, 0, &json, err, sizeof err), PSOC_OK);
    psoc_close(&c);
    ck_assert_msg(strstr(json, "\"checkpoint\":{\"round\":1,") && strstr(json, "\"failures\":2"),
                  "%s", json);
    free(json);

    /* The directory back: the next round's checkpoint is written, the
     * error cleared, the count kept. */
    snprintf(cmd, sizeof cmd, "rm -f '%s' && mkdir '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    s_round(&a, &b, 3, 6, 8);
    st = inproc_status();
    ck_assert_uint_eq(st.checkpoint_round, 4);
    ck_assert_uint_eq(st.checkpoint_failures, 2);
    ck_assert_str_eq(st.checkpoint_error, "");
    psoc_status_free(&st);
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("persist");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, a_resumed_daemon_gives_each_worker_its_particle_back);
    tcase_add_test(tc, an_unreadable_newest_checkpoint_falls_back_to_the_one_before);
    tcase_add_test(tc, nothing_usable_to_resume_from_is_refused_with_the_reason);
    tcase_add_test(tc, a_checkpoint_that_cannot_be_written_is_counted_and_shown);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
