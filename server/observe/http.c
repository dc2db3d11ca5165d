/* --http: psod's metrics endpoint and status page, read-only.
 *
 *   /              the status page (server/observe/web/: the swarm, the particles,
 *                  losses and accuracy over rounds, whom the round waits for)
 *   /metrics       Prometheus text format (metrics.c)
 *   /status.json   what `psoctl status --json` prints (common/statusjson.c)
 *   /history.json  the last rounds, as columns, for the page's plot
 *
 * libmicrohttpd parses HTTP and runs its own thread (poll(), no limit on
 * descriptor numbers), so no HTTP client can stall psod's poll loop. That
 * thread never touches the server's state: a request for a generated page
 * asks the loop for it (a byte on a pipe that is one more item of the
 * daemon's zmq_poll), and the loop renders what was asked, between two
 * messages, and hands it back under a mutex. A loop too busy to answer in
 * 3 s gets its client a 503. Connections are bounded
 * (--http-max-connections, 10 s idle timeout against slow clients), and so
 * is a request (16 KiB for its line and headers, no body: anything but GET
 * and HEAD is refused with 405).
 */
#include "server/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "server/observe/web.h"

/* The documents the loop renders on request. */
enum { DOC_METRICS, DOC_STATUS, DOC_HISTORY, DOC_COUNT };

struct srv_http {
    struct MHD_Daemon *d;
    int wake[2];        /* pipe: the HTTP thread asks, the loop reads */
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;
    unsigned want;          /* 1 << DOC_*: asked for, not yet rendered */
    uint64_t asked, served; /* request generations: asked, rendered */
    char *doc[DOC_COUNT];   /* the last rendering of each (NULL: out of memory) */
    size_t len[DOC_COUNT];
    int stopping;
    uint64_t answers[HTTP_ANSWER_KINDS];
    char url[96];         /* http://ADDRESS:PORT, the port resolved */
    char last_error[256]; /* libmicrohttpd's last log line */
};

/* libmicrohttpd's format strings: its own, passed through as they are. */
static void s_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct srv_http *h = cls;
    vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
    size_t n = strlen(h->last_error);
    while (n && (h->last_error[n - 1] == '\n' || h->last_error[n - 1] == '\r'))
        h->last_error[--n] = '\0';
    log_ratelimited(LOG_WARN, "http", "http: %s", h->last_error);
}

/* "ADDRESS:PORT" or "[V6ADDRESS]:PORT" with a numeric address; port 0 or
 * * = any free. 0, or -1 with err. */
static int s_parse(const char *spec, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    if (!colon || hl == 0 || hl >= sizeof host) {
        snprintf(err, errlen,
                 "--http '%s': expected ADDRESS:PORT with an interface's IP "
                 "address, e.g. 127.0.0.1:9464 or 10.0.0.1:0 for any free port",
                 spec);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *port = colon + 1;
    char *end;
    long p = strcmp(port, "*") == 0 ? 0 : strtol(port, &end, 10);
    if (strcmp(port, "*") != 0 && (!*port || *end || p < 0 || p > 65535)) {
        snprintf(err, errlen, "--http '%s': '%s' is not a port (0 to 65535, or *)", spec, port);
        return -1;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%ld", p);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen,
                 "--http '%s': '%s' is not an IP address (give an interface's "
                 "address, as for --bind; names are not resolved)",
                 spec, host);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static enum MHD_Result s_send(struct MHD_Connection *c, struct server *s, unsigned code,
                              const char *type, void *body, size_t len, int owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                            "img-src 'self' data:; frame-ancestors 'none'");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    struct srv_http *h = s->http;
    pthread_mutex_lock(&h->mu);
    h->answers[code < 300 ? 0 : code == 404 ? 1 : code == 405 ? 2 : code == 503 ? 3 : 4]++;
    pthread_mutex_unlock(&h->mu);
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *c, struct server *s, unsigned code,
                              const char *msg)
{
    return s_send(c, s, code, "text/plain; charset=utf-8", (void *)msg, strlen(msg), 0);
}

/* /status.json: what psoctl status --json prints, built the same way. */
static char *s_status_json(struct server *s, size_t *len)
{
    struct srv_status_buf b;
    char *text = NULL;
    if (srv_status_fill(s, 1, &b) == 0) {
        text = status_json(&b.st);
        srv_status_buf_free(&b);
    }
    *len = text ? strlen(text) : 0;
    return text;
}

/* HTTP thread: ask the loop for a document and wait (3 s at most) for it.
 * A malloc'd copy, NULL with *busy set when the loop did not answer in
 * time (or psod is stopping), NULL alone when out of memory. */
static char *s_ask(struct srv_http *h, int doc, size_t *len, int *busy)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    char *copy = NULL;
    *busy = 0;
    pthread_mutex_lock(&h->mu);
    uint64_t gen = ++h->asked;
    h->want |= 1u << doc;
    char byte = 1;
    if (write(h->wake[1], &byte, 1) < 0 && errno != EAGAIN)
        h->stopping = 1; /* the pipe is gone: nobody will answer */
    while (h->served < gen && !h->stopping)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
            break;
    if (h->served < gen || h->stopping) {
        *busy = 1;
    } else if (h->doc[doc]) {
        copy = malloc(h->len[doc] + 1);
        if (copy) {
            memcpy(copy, h->doc[doc], h->len[doc] + 1);
            *len = h->len[doc];
        }
    }
    pthread_mutex_unlock(&h->mu);
    return copy;
}

static enum MHD_Result s_generated(struct MHD_Connection *c, struct server *s, int doc,
                                   const char *type)
{
    size_t len = 0;
    int busy;
    char *text = s_ask(s->http, doc, &len, &busy);
    if (busy)
        return s_text(c, s, MHD_HTTP_SERVICE_UNAVAILABLE, "psod is busy or stopping; try again\n");
    if (!text)
        return s_text(c, s, 500, "out of memory\n");
    return s_send(c, s, 200, type, text, len, 1);
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct server *s = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        /* Read the body and drop it, then answer: answering first and
         * closing on unread bytes resets the connection before the client
         * has read the 405. The bytes dropped so far ride in *con_cls (no
         * allocation); past 64 KiB the connection is closed. */
        uintptr_t seen = (uintptr_t)*con_cls;
        if (seen == 0) {
            *con_cls = (void *)(uintptr_t)1;
            return MHD_YES;
        }
        if (*upload_size > 0) {
            seen += *upload_size;
            *upload_size = 0;
            *con_cls = (void *)seen;
            return seen > 65536 ? MHD_NO : MHD_YES;
        }
        return s_text(c, s, MHD_HTTP_METHOD_NOT_ALLOWED,
                      "read-only endpoint: GET /, /metrics, /status.json or /history.json\n");
    }
    if (strcmp(url, "/metrics") == 0)
        return s_generated(c, s, DOC_METRICS, "text/plain; version=0.0.4; charset=utf-8");
    if (strcmp(url, "/status.json") == 0)
        return s_generated(c, s, DOC_STATUS, "application/json");
    if (strcmp(url, "/history.json") == 0)
        return s_generated(c, s, DOC_HISTORY, "application/json");
    const char *path = strcmp(url, "/") == 0 ? "/index.html" : url;
    for (const struct web_asset *a = web_assets; a->path; a++)
        if (strcmp(a->path, path) == 0)
            return s_send(c, s, 200, a->type, (void *)a->data, a->len, 0);
    return s_text(c, s, MHD_HTTP_NOT_FOUND,
                  "not found: GET /, /metrics, /status.json or /history.json\n");
}

static void s_free(struct srv_http *h)
{
    if (h->wake[0] >= 0)
        close(h->wake[0]);
    if (h->wake[1] >= 0)
        close(h->wake[1]);
    for (int k = 0; k < DOC_COUNT; k++)
        free(h->doc[k]);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static struct srv_http *s_new(void)
{
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->wake[0] = h->wake[1] = -1;
    if (pipe(h->wake) != 0) {
        s_free(h);
        return NULL;
    }
    for (int k = 0; k < 2; k++) {
        fcntl(h->wake[k], F_SETFD, FD_CLOEXEC);
        fcntl(h->wake[k], F_SETFL, fcntl(h->wake[k], F_GETFL) | O_NONBLOCK);
    }
    return h;
}

int srv_http_start(struct server *s, char *err, size_t errlen)
{
    if (!s->cfg.http[0])
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (s_parse(s->cfg.http, &ss, err, errlen) != 0)
        return -1;
    struct srv_http *h = s_new();
    if (!h) {
        snprintf(err, errlen, "--http: out of memory or descriptors: %s", strerror(errno));
        return -1;
    }
    s->http = h;
    /* The HTTP thread takes no signals: SIGTERM and SIGINT must reach the
     * loop's thread, whose zmq_poll they interrupt. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, s_handle, s, MHD_OPTION_EXTERNAL_LOGGER,
                            s_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.http_max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)16384, MHD_OPTION_LISTEN_BACKLOG_SIZE, 32u, MHD_OPTION_END);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d) {
        snprintf(err, errlen, "--http %s: cannot serve HTTP there: %s%s", s->cfg.http,
                 h->last_error[0] ? h->last_error : strerror(e),
                 e == EADDRINUSE      ? " (another process holds the port; pick another)"
                 : e == EADDRNOTAVAIL ? " (no interface of this host has that address)"
                                      : "");
        s->http = NULL;
        s_free(h);
        return -1;
    }
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    char addr[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
    int any = strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
    snprintf(h->url, sizeof h->url, "http://%s%s%s:%u", ss.ss_family == AF_INET6 ? "[" : "", addr,
             ss.ss_family == AF_INET6 ? "]" : "", port ? port->port : 0);
    log_info("status page at %s/ (metrics at /metrics)%s", h->url,
             any ? "; on every interface: anyone who reaches this host can read it" : "");
    return 0;
}

int srv_http_poll_item(struct server *s, zmq_pollitem_t *item)
{
    if (!s->http)
        return 0;
    *item = (zmq_pollitem_t){NULL, s->http->wake[0], ZMQ_POLLIN, 0};
    return 1;
}

/* The loop's side: render what the HTTP thread asked for. Rendering reads
 * the server's state, so it happens here and not in the HTTP thread; the
 * mutex is held only to swap the results in. */
void srv_http_process(struct server *s)
{
    struct srv_http *h = s->http;
    if (!h)
        return;
    char sink[64];
    while (read(h->wake[0], sink, sizeof sink) > 0)
        ;
    pthread_mutex_lock(&h->mu);
    unsigned want = h->want;
    uint64_t gen = h->asked, answers[HTTP_ANSWER_KINDS];
    memcpy(answers, h->answers, sizeof answers);
    h->want = 0;
    pthread_mutex_unlock(&h->mu);
    if (!want)
        return;
    char *doc[DOC_COUNT] = {NULL};
    size_t len[DOC_COUNT] = {0};
    if (want & (1u << DOC_METRICS))
        doc[DOC_METRICS] = srv_metrics_text(s, answers, &len[DOC_METRICS]);
    if (want & (1u << DOC_STATUS))
        doc[DOC_STATUS] = s_status_json(s, &len[DOC_STATUS]);
    if (want & (1u << DOC_HISTORY))
        doc[DOC_HISTORY] = srv_history_json(s, &len[DOC_HISTORY]);
    pthread_mutex_lock(&h->mu);
    for (int k = 0; k < DOC_COUNT; k++)
        if (want & (1u << k)) {
            free(h->doc[k]);
            h->doc[k] = doc[k];
            h->len[k] = len[k];
        }
    h->served = gen;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

const char *server_http_url(const struct server *s) { return s->http ? s->http->url : NULL; }

void srv_http_stop(struct server *s)
{
    struct srv_http *h = s->http;
    if (!h)
        return;
    pthread_mutex_lock(&h->mu); /* a request waiting on the loop gets its 503 */
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    s->http = NULL;
    s_free(h);
}
