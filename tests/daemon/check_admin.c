/* Suite: server/admin.c, the operator's requests, against an in-process
 * daemon: without the token (or with another) each is refused as
 * ERR_UNAUTHORIZED and changes nothing; with the token psod wrote, a
 * checkpoint is written (refused before there is a swarm), an evicted
 * worker's next push is refused as not joined (an unknown name is refused),
 * and a stop ends the loop. */
#include "tests/lib/suite.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/inproc.h"
#include "tests/lib/rawpeer.h"

#define N 4

static char s_dir[] = "/tmp/psod-admin-XXXXXX";
static char s_token[128], s_ckpt[128];

static void s_with_token(struct server_config *c)
{
    c->strategy = 1; /* avg */
    snprintf(c->admin_token_file, sizeof c->admin_token_file, "%s", s_token);
    snprintf(c->checkpoint_dir, sizeof c->checkpoint_dir, "%s", s_ckpt);
}

static struct psoc *s_operator(const char *token_file)
{
    char err[512];
    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 2000;
    struct psoc *c;
    ck_assert_msg(psoc_open(&c, inproc_ep, NULL, &o, err, sizeof err) == PSOC_OK, "%s", err);
    if (token_file)
        ck_assert_msg(psoc_set_admin_token(c, token_file, err, sizeof err) == PSOC_OK, "%s", err);
    return c;
}

/* An admin request: the reply's text, or the refusal's code. */
static int s_admin(struct psoc *c, int action, const char *worker, char *reply, size_t len)
{
    char err[512];
    int rc = psoc_admin(c, action, worker, reply, len, err, sizeof err);
    if (rc == PSOC_EREFUSED) {
        snprintf(reply, len, "%s", err);
        return psoc_last_server_error(c);
    }
    ck_assert_msg(rc == PSOC_OK, "%s", err);
    return 0;
}

START_TEST(operator_requests_need_the_token_and_each_does_what_it_says)
{
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    snprintf(s_token, sizeof s_token, "%s/admin.token", s_dir);
    snprintf(s_ckpt, sizeof s_ckpt, "%s/ckpt", s_dir);
    inproc_start("check_admin", 2, s_with_token);
    char reply[512];

    /* No token, then another one: refused, nothing done. */
    struct psoc *none = s_operator(NULL), *wrong;
    ck_assert_int_eq(s_admin(none, PSOD__ADMIN_ACTION__ADMIN_STOP, NULL, reply, sizeof reply),
                     PSOD__ERROR_CODE__ERR_UNAUTHORIZED);
    ck_assert_msg(strstr(reply, "--admin-token-file") != NULL, "%s", reply);
    psoc_close(&none);
    char other[160];
    snprintf(other, sizeof other, "%s/other.token", s_dir);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%064d\n", 0);
    fclose(f);
    chmod(other, 0600);
    wrong = s_operator(other);
    ck_assert_int_eq(s_admin(wrong, PSOD__ADMIN_ACTION__ADMIN_STOP, NULL, reply, sizeof reply),
                     PSOD__ERROR_CODE__ERR_UNAUTHORIZED);
    ck_assert_msg(strstr(reply, "this one is not it") != NULL, "%s", reply);
    psoc_close(&wrong);

    struct psoc *op = s_operator(s_token);
    /* No swarm yet: nothing to checkpoint. */
    ck_assert_int_eq(s_admin(op, PSOD__ADMIN_ACTION__ADMIN_CHECKPOINT, NULL, reply, sizeof reply),
                     PSOD__ERROR_CODE__ERR_UNSUPPORTED);
    ck_assert_msg(strstr(reply, "no swarm yet") != NULL, "%s", reply);

    /* A round, then a checkpoint on request. */
    float xa[N] = {1, 1, 1, 1}, xb[N] = {3, 3, 3, 3};
    struct rawpeer a, b;
    rawpeer_open(&a, inproc_ep);
    rawpeer_open(&b, inproc_ep);
    rawpeer_join(&a, "a", xa, N);
    rawpeer_join(&b, "b", xb, N);
    rawpeer_push(&a, 1, 0, 1.0, xa, N);
    rawpeer_push(&b, 1, 0, 1.0, xb, N);
    struct wire_msg m;
    ck_assert_int_eq(rawpeer_recv(&a, 5000, &m), 0);
    wire_msg_clear(&m);
    ck_assert_int_eq(rawpeer_recv(&b, 5000, &m), 0);
    wire_msg_clear(&m);
    ck_assert_int_eq(s_admin(op, PSOD__ADMIN_ACTION__ADMIN_CHECKPOINT, NULL, reply, sizeof reply),
                     0);
    ck_assert_msg(strstr(reply, "checkpoint of round 1 written") != NULL, "%s", reply);
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt-000000000001.psck", s_ckpt);
    ck_assert_msg(access(path, R_OK) == 0, "no %s", path);

    /* Evict: an unknown name is refused; b is out, its next push too. */
    ck_assert_int_eq(s_admin(op, PSOD__ADMIN_ACTION__ADMIN_EVICT, "ghost", reply, sizeof reply),
                     PSOD__ERROR_CODE__ERR_NOT_JOINED);
    ck_assert_int_eq(s_admin(op, PSOD__ADMIN_ACTION__ADMIN_EVICT, "b", reply, sizeof reply), 0);
    ck_assert_msg(strstr(reply, "worker 'b' evicted") != NULL, "%s", reply);
    char why[256];
    rawpeer_push(&b, 2, 1, 1.0, xb, N);
    ck_assert_int_eq(rawpeer_error(&b, why, sizeof why), PSOD__ERROR_CODE__ERR_NOT_JOINED);
    struct psoc_status st = inproc_status();
    ck_assert_uint_eq(st.active, 1);
    psoc_status_free(&st);

    /* Stop: the loop ends, and no one answers any more. */
    ck_assert_int_eq(s_admin(op, PSOD__ADMIN_ACTION__ADMIN_STOP, NULL, reply, sizeof reply), 0);
    ck_assert_msg(strstr(reply, "stopping after round 1") != NULL, "%s", reply);
    char err[256];
    ck_assert_int_eq(psoc_status(op, 0, &st, err, sizeof err), PSOC_ETIMEOUT);
    psoc_close(&op);
    rawpeer_close(&a);
    rawpeer_close(&b);
    inproc_stop();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("inproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, operator_requests_need_the_token_and_each_does_what_it_says);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
