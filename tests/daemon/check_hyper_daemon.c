/* Suite: server/hyper.c, psod --hyper in the daemon (the pure swarm of
 * points is tests/unit/check_hyper.c): against an in-process daemon and
 * hand-spoken peers, every Welcome and Position carries the point the
 * module computes for that particle (a reference swarm_hyper fed the same
 * streams and losses gives the same doubles), the points move at each
 * close before the positions go out, a checkpoint keeps them across a
 * resume, and a daemon without --hyper sends none. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "server/strategy/swarm_hyper.h"
#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N 4

static struct server_config s_cfg; /* what the daemon ran with */
static char s_ckpt[64];

static void s_hyper_on(struct server_config *c)
{
    c->strategy = 1; /* avg: any strategy with local steps */
    c->hyper = 1;
    c->hyper_lr_min = 1e-3;
    c->hyper_lr_max = 1e-1;
    c->hyper_mom_min = 0.0;
    c->hyper_mom_max = 0.9;
    c->seed = 11;
    if (s_ckpt[0]) {
        snprintf(c->checkpoint_dir, sizeof c->checkpoint_dir, "%s", s_ckpt);
        c->checkpoint_every = 1;
    }
    s_cfg = *c;
}

static void s_resume(struct server_config *c)
{
    s_hyper_on(c);
    snprintf(c->resume, sizeof c->resume, "%s", s_ckpt);
}

static void s_hyper_off(struct server_config *c) { c->strategy = 1; }

/* The reference: the module with the daemon's parameters. */
static struct swarm_hyper *s_reference(void)
{
    struct hyper_params p = {s_cfg.hyper_w,       s_cfg.hyper_c1,      s_cfg.hyper_c2,
                             s_cfg.hyper_lr_min,  s_cfg.hyper_lr_max,  s_cfg.hyper_mom_min,
                             s_cfg.hyper_mom_max, (uint64_t)s_cfg.seed};
    struct swarm_hyper *h = hyper_new(&p);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(hyper_reserve(h, 4), 0);
    return h;
}

struct point {
    int has;
    double lr, momentum;
};

/* HELLO as `name`; the Welcome's point. */
static struct point s_join(struct rawpeer *p, const char *name, const float *x)
{
    struct wire_msg m;
    rawpeer_hello(p, name, x, N, 0, &m);
    const Psod__Welcome *w = (const Psod__Welcome *)m.meta;
    struct point pt = {w->hyper, w->lr, w->momentum};
    wire_msg_clear(&m);
    return pt;
}

/* The next message: a POSITION for `round`; its point. */
static struct point s_position(struct rawpeer *p, uint64_t round)
{
    struct wire_msg m;
    ck_assert_msg(rawpeer_recv(p, 5000, &m) == 0, "no position");
    ck_assert_int_eq(m.command, PSOD__COMMAND__CMD_POSITION);
    const Psod__Position *q = (const Psod__Position *)m.meta;
    ck_assert_uint_eq(q->round, round);
    struct point pt = {q->hyper, q->lr, q->momentum};
    wire_msg_clear(&m);
    return pt;
}

static void s_same(struct point got, const struct swarm_hyper *ref, int i)
{
    double lr, mom;
    hyper_get(ref, i, &lr, &mom);
    ck_assert_msg(got.has, "no point sent");
    ck_assert_msg(got.lr == lr && got.momentum == mom,
                  "particle %d: sent lr %.17g momentum %.17g, the module has %.17g %.17g", i,
                  got.lr, got.momentum, lr, mom);
    ck_assert(lr >= 1e-3 && lr <= 1e-1 && mom >= 0 && mom <= 0.9);
}

START_TEST(welcomes_and_positions_carry_the_modules_points_and_a_resume_keeps_them)
{
    char dir[] = "/tmp/psod-hyperd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(s_ckpt, sizeof s_ckpt, "%s", dir);
    inproc_start("check_hyper_daemon", 2, s_hyper_on);
    struct swarm_hyper *ref = s_reference();
    hyper_add(ref, hash_fnv1a64("a"));
    hyper_add(ref, hash_fnv1a64("b"));
    float xa[N] = {1, 2, 3, 4}, xb[N] = {0, 0, 0, 0};
    struct rawpeer a, b;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    s_same(s_join(&a, "a", xa), ref, 0);
    s_same(s_join(&b, "b", xb), ref, 1);

    /* Three rounds; the losses cross so that the attractor changes. */
    double lr0[2], mom0[2];
    for (int i = 0; i < 2; i++)
        hyper_get(ref, i, &lr0[i], &mom0[i]);
    const double loss[3][2] = {{1.0, 2.0}, {3.0, 0.5}, {0.7, 0.9}};
    for (uint64_t r = 0; r < 3; r++) {
        rawpeer_push(&a, r + 1, r, loss[r][0], xa, N);
        rawpeer_push(&b, r + 1, r, loss[r][1], xb, N);
        float *x[2] = {xa, xb};
        hyper_round(ref, r, x, loss[r]);
        s_same(s_position(&a, r + 1), ref, 0);
        s_same(s_position(&b, r + 1), ref, 1);
    }
    int moved = 0;
    for (int i = 0; i < 2; i++) {
        double lr, mom;
        hyper_get(ref, i, &lr, &mom);
        moved += lr != lr0[i] || mom != mom0[i];
    }
    ck_assert_msg(moved == 2, "%d of 2 points moved in three rounds", moved);
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();

    /* Resumed from the checkpoint of round 3: the same points. */
    inproc_start("check_hyper_daemon", 2, s_resume);
    rawpeer_open(&a, inproc_ep);
    s_same(s_join(&a, "a", xa), ref, 0);
    rawpeer_close(&a);
    inproc_stop();
    hyper_free(&ref);
    s_ckpt[0] = '\0';
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(without_hyper_no_point_is_sent)
{
    inproc_start("check_hyper_daemon", 1, s_hyper_off);
    float x[N] = {1, 1, 1, 1};
    struct rawpeer a;
    rawpeer_open(&a, inproc_ep);
    ck_assert(!s_join(&a, "a", x).has);
    rawpeer_push(&a, 1, 0, 1.0, x, N);
    ck_assert(!s_position(&a, 1).has);
    rawpeer_close(&a);
    inproc_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hyper_daemon");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, welcomes_and_positions_carry_the_modules_points_and_a_resume_keeps_them);
    tcase_add_test(tc, without_hyper_no_point_is_sent);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
