/* Suite: worker/pass (the engine's passes on a thread team): for every
 * model, the loss, accuracy, logits and gradients of 2, 3 and 4 threads
 * agree with one thread within float rounding; a thread count repeats its
 * bits exactly; an odd batch (threads with unequal shares, a thread with
 * none); evaluation; dropout drawn per element whatever the split; thread
 * counts changed on a live model. */
#include "tests/lib/suite.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "worker/layers.h"
#include "worker/model.h"

static char err[256];

struct run {
    double loss, eval_loss;
    int correct, eval_correct;
    float *grads, *logits;
};

static void s_run(const char *name, int threads, int B, uint64_t seed, struct run *out)
{
    struct model *m = model_new(name, B, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    model_init(m, seed);
    ck_assert_msg(model_set_threads(m, threads, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(model_threads(m), threads);
    struct rng r;
    rng_seed(&r, seed + 7);
    size_t nin = (size_t)B * m->in_c * m->in_h * m->in_w;
    float *x = malloc(nin * 4);
    uint8_t *y = malloc((size_t)B);
    for (size_t i = 0; i < nin; i++)
        x[i] = (float)rng_normal(&r);
    for (int b = 0; b < B; b++)
        y[b] = (uint8_t)rng_below(&r, 10);
    /* two steps, so the second starts from weights the first moved */
    for (int s = 0; s < 2; s++) {
        out->loss = model_step(m, x, y, B, &out->correct);
        if (s == 0)
            for (size_t i = 0; i < m->n_params; i++)
                m->params[i] -= 0.05f * m->grads[i];
    }
    out->grads = malloc(m->n_params * 4);
    memcpy(out->grads, m->grads, m->n_params * 4);
    out->eval_loss = model_eval(m, x, y, B, &out->eval_correct);
    out->logits = malloc((size_t)B * m->n_classes * 4);
    memcpy(out->logits, model_forward(m, x, B), (size_t)B * m->n_classes * 4);
    free(x), free(y);
    model_destroy(&m);
}

static void s_free(struct run *r) { free(r->grads), free(r->logits); }

static void s_compare(const char *name, int B)
{
    struct model *m = model_new(name, 1, err, sizeof err);
    size_t np = m->n_params, nl = (size_t)B * m->n_classes;
    model_destroy(&m);
    struct run one, again;
    s_run(name, 1, B, 5, &one);
    for (int t = 2; t <= 4; t++) {
        struct run many, twice;
        s_run(name, t, B, 5, &many);
        s_run(name, t, B, 5, &twice);
        /* the same thread count: the same bits */
        ck_assert_mem_eq(many.grads, twice.grads, np * 4);
        ck_assert(many.loss == twice.loss && many.eval_loss == twice.eval_loss);
        /* against one thread: rounding only */
        ck_assert_double_eq_tol(many.loss, one.loss, 1e-6 * fabs(one.loss) + 1e-9);
        ck_assert_double_eq_tol(many.eval_loss, one.eval_loss, 1e-6 * fabs(one.loss) + 1e-9);
        ck_assert_int_eq(many.correct, one.correct);
        ck_assert_int_eq(many.eval_correct, one.eval_correct);
        double gmax = 0;
        for (size_t i = 0; i < np; i++)
            gmax = fmax(gmax, fabs(one.grads[i]));
        for (size_t i = 0; i < np; i++)
            ck_assert_msg(fabs(many.grads[i] - one.grads[i]) <=
                              1e-4 * fabs(one.grads[i]) + 1e-6 * gmax,
                          "%s threads %d grad[%zu]: %.9g against %.9g", name, t, i, many.grads[i],
                          one.grads[i]);
        for (size_t i = 0; i < nl; i++)
            ck_assert_float_eq_tol(many.logits[i], one.logits[i],
                                   1e-5f * fabsf(one.logits[i]) + 1e-6f);
        s_free(&many), s_free(&twice);
    }
    s_run(name, 1, B, 5, &again);
    ck_assert_mem_eq(one.grads, again.grads, np * 4);
    s_free(&one), s_free(&again);
}

START_TEST(mlp_threads_agree) { s_compare("mlp", 9); }
END_TEST
START_TEST(lenet5_threads_agree) { s_compare("lenet5", 9); }
END_TEST
START_TEST(cifar_cnn_threads_agree) { s_compare("cifar_cnn", 5); }
END_TEST

START_TEST(a_thread_with_no_samples)
{
    /* batch 2 on 4 threads: two threads own no sample but still take their
     * share of the dense outputs and of the gradient sums */
    struct run one, many;
    s_run("lenet5", 1, 2, 9, &one);
    s_run("lenet5", 4, 2, 9, &many);
    ck_assert_double_eq_tol(many.loss, one.loss, 1e-6);
    struct model *m = model_new("lenet5", 1, err, sizeof err);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabsf(many.grads[i] - one.grads[i]) <= 1e-4f * fabsf(one.grads[i]) + 1e-7f);
    model_destroy(&m);
    s_free(&one), s_free(&many);
}
END_TEST

START_TEST(dropout_slices_draw_the_whole_mask)
{
    enum { N = 1000 };
    float x[N], whole[N], part[N];
    uint8_t kw[N], kp[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i;
    dropout_forward(whole, kw, x, N, 0.3f, 42, 0);
    dropout_forward(part, kp, x, 377, 0.3f, 42, 0);
    dropout_forward(part + 377, kp + 377, x + 377, N - 377, 0.3f, 42, 377);
    ck_assert_mem_eq(whole, part, sizeof whole);
    ck_assert_mem_eq(kw, kp, sizeof kw);
}
END_TEST

START_TEST(threads_change_on_a_live_model)
{
    struct model *m = model_new("mlp", 4, err, sizeof err);
    model_init(m, 3);
    ck_assert_int_eq(model_threads(m), 1);
    ck_assert_int_eq(model_set_threads(m, 3, err, sizeof err), 0);
    ck_assert_int_eq(model_set_threads(m, 2, err, sizeof err), 0);
    ck_assert_int_eq(model_threads(m), 2);
    ck_assert_int_eq(model_set_threads(m, 0, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "threads"));
    ck_assert_int_eq(model_threads(m), 1); /* a refusal leaves it single-threaded */
    ck_assert_int_eq(model_set_threads(m, MODEL_MAX_THREADS + 1, err, sizeof err), -1);
    float x[4 * 784] = {0};
    uint8_t y[4] = {1, 2, 3, 4};
    ck_assert(isfinite(model_step(m, x, y, 4, NULL)));
    ck_assert_int_eq(model_set_threads(m, 1, err, sizeof err), 0);
    model_destroy(&m);
    /* flops: lenet5's forward, by hand: conv1 6*25*784, conv2 16*150*100,
     * dense 400*120 + 120*84 + 84*10 multiply-adds */
    m = model_new("lenet5", 1, err, sizeof err);
    double mac = 6.0 * 25 * 784 + 16.0 * 150 * 100 + 400 * 120 + 120 * 84 + 84 * 10;
    ck_assert_double_eq_tol(model_flops(m, 0), 2 * mac, 1e-6);
    ck_assert_double_eq_tol(model_flops(m, 1), 3 * model_flops(m, 0) - 2 * 6.0 * 25 * 784, 1e-6);
    model_destroy(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pass");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mlp_threads_agree);
    tcase_add_test(tc, lenet5_threads_agree);
    tcase_add_test(tc, cifar_cnn_threads_agree);
    tcase_add_test(tc, a_thread_with_no_samples);
    tcase_add_test(tc, dropout_slices_draw_the_whole_mask);
    tcase_add_test(tc, threads_change_on_a_live_model);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
