/* Suite: server/observe/http.c and metrics.c against an in-process daemon with
 * --http on loopback: the routes, their types and refusals; --http specs
 * refused with the reason; a loop that does not answer gives 503 in 3 s
 * while the static page is still served; stopping the daemon answers a
 * waiting request at once. */
#include "tests/lib/suite.h"
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/server.h"

static struct server *srv;
static pthread_t thr;
static int running;
static volatile sig_atomic_t stop;
static char err[512];
static char resp[1 << 18];

static void *s_serve(void *arg)
{
    (void)arg;
    server_run(srv, &stop);
    return NULL;
}

static void s_config(struct server_config *cfg, const char *http)
{
    log_init("check_http", LOG_ERROR, stderr);
    memset(cfg, 0, sizeof *cfg);
    ck_assert_int_eq(
        config_defaults(server_options(cfg, (struct config_table[SERVER_OPTION_TABLES]){{0}}), err,
                        sizeof err),
        0);
    strcpy(cfg->bind, "tcp://127.0.0.1:*");
    cfg->workers = 2;
    cfg->progress_interval = 0;
    snprintf(cfg->http, sizeof cfg->http, "%s", http);
}

/* A daemon with --http 127.0.0.1:0; its loop runs in a thread when `run`. */
static void s_start(int run)
{
    struct server_config cfg;
    s_config(&cfg, "127.0.0.1:0");
    ck_assert_msg(server_new(&srv, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(server_http_url(srv));
    stop = 0;
    running = run;
    if (run)
        pthread_create(&thr, NULL, s_serve, NULL);
}

static void s_stop(void)
{
    if (running) {
        stop = 1;
        pthread_join(thr, NULL);
    }
    server_destroy(&srv);
}

static int s_port(void)
{
    const char *url = server_http_url(srv);
    return atoi(strrchr(url, ':') + 1);
}

/* Send a raw request, read the answer until the server closes; its length. */
static size_t s_http(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t n = 0;
    ssize_t r;
    while (n < sizeof resp - 1 && (r = read(fd, resp + n, sizeof resp - 1 - n)) > 0)
        n += (size_t)r;
    resp[n] = '\0';
    close(fd);
    return n;
}

static size_t s_get(const char *path)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    return s_http(s_port(), req);
}

START_TEST(routes_answer_with_their_types)
{
    s_start(1);
    s_get("/metrics");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n# HELP psod_"));
    ck_assert_ptr_nonnull(strstr(resp, "\npsod_rounds_total 0\n"));
    ck_assert_ptr_nonnull(strstr(resp, "\npsod_workers_expected 2\n"));
    ck_assert_ptr_nonnull(strstr(resp, "psod_round_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    s_get("/status.json");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "Content-Type: application/json"));
    ck_assert_ptr_nonnull(strstr(resp, "\"workers_expected\":2"));
    s_get("/history.json");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    s_get("/");
    ck_assert_ptr_nonnull(strstr(resp, "Content-Type: text/html"));
    ck_assert_ptr_nonnull(strstr(resp, "<html"));
    ck_assert_ptr_nonnull(strstr(resp, "Content-Security-Policy:"));
    s_get("/uPlot.iife.min.js");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    s_get("/../etc/passwd");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 404", 12) == 0, "%.300s", resp);
    size_t n = s_http(s_port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    ck_assert_msg(strstr(resp, "\r\n\r\n") == resp + n - 4, "HEAD sent a body: %.300s", resp);
    s_http(s_port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     "Connection: close\r\n\r\nhello");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 405", 12) == 0, "%.300s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "Allow: GET, HEAD"));
    s_http(s_port(), "\x01\x02 not http\r\n\r\n");
    ck_assert_msg(resp[0] == '\0' || strncmp(resp, "HTTP/1.1 4", 10) == 0, "%.300s", resp);
    /* The answers so far are counted by kind. */
    s_get("/metrics");
    ck_assert_ptr_nonnull(strstr(resp, "psod_http_responses_total{code=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(resp, "psod_http_responses_total{code=\"405\"} 1\n"));
    s_stop();
}
END_TEST

START_TEST(bad_specs_are_refused_with_the_reason)
{
    static const char *const bad[][2] = {
        {"9464", "expected ADDRESS:PORT"},
        {"127.0.0.1:65536", "is not a port"},
        {"127.0.0.1:x", "is not a port"},
        {"example.com:9464", "is not an IP address"},
        {"192.0.2.1:9464", "no interface of this host has that address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct server_config cfg;
        s_config(&cfg, bad[i][0]);
        err[0] = '\0';
        ck_assert_int_ne(server_new(&srv, &cfg, err, sizeof err), 0);
        ck_assert_msg(strstr(err, bad[i][1]), "--http %s: %s", bad[i][0], err);
    }
    /* A port another process holds. */
    s_start(0);
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", s_port());
    struct server_config cfg;
    s_config(&cfg, spec);
    struct server *second = NULL;
    ck_assert_int_ne(server_new(&second, &cfg, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "another process holds the port"), "%s", err);
    s_stop();
}
END_TEST

START_TEST(a_loop_that_does_not_answer_gives_503_and_the_page_still_loads)
{
    s_start(0); /* nobody runs the loop: generated pages cannot be made */
    double t0 = time_now_s();
    s_get("/metrics");
    double took = time_now_s() - t0;
    ck_assert_msg(strncmp(resp, "HTTP/1.1 503", 12) == 0, "%.300s", resp);
    ck_assert_msg(took > 2.5 && took < 6, "503 after %.2f s", took);
    s_get("/");
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
    s_stop();
}
END_TEST

struct waiter {
    int port;
    double took;
    char status[16];
};

static void *s_wait_metrics(void *arg)
{
    struct waiter *w = arg;
    double t0 = time_now_s();
    s_http(w->port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    w->took = time_now_s() - t0;
    snprintf(w->status, sizeof w->status, "%.12s", resp);
    return NULL;
}

START_TEST(stopping_answers_a_waiting_request_at_once)
{
    s_start(0);
    struct waiter w = {.port = s_port()};
    pthread_t t;
    pthread_create(&t, NULL, s_wait_metrics, &w);
    usleep(300000);
    s_stop();
    pthread_join(t, NULL);
    ck_assert_msg(strcmp(w.status, "HTTP/1.1 503") == 0 || w.status[0] == '\0', "%s", w.status);
    ck_assert_msg(w.took < 2.5, "the waiting request took %.2f s", w.took);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("endpoint");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, routes_answer_with_their_types);
    tcase_add_test(tc, bad_specs_are_refused_with_the_reason);
    tcase_add_test(tc, a_loop_that_does_not_answer_gives_503_and_the_page_still_loads);
    tcase_add_test(tc, stopping_answers_a_waiting_request_at_once);
    suite_add_tcase(s, tc);
    return suite_run(s);
}
