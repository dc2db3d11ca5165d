/* A TCP relay at a given rate, for tests that need a slow link without
 * network namespaces: it listens on a loopback port of its own and
 * forwards every connection to `port` on 127.0.0.1, both ways, at most
 * `bytes_per_s` in all (one budget for every connection and direction, as
 * one shared link). A thread of the test process runs it.
 *
 *   struct relay r;
 *   relay_start(&r, psod_port, 12.5e6);     100 Mbit/s
 *   ... connect to tcp://127.0.0.1:<r.port> ...
 *   relay_stop(&r);
 */
#ifndef PSOD_TESTS_RELAY_H
#define PSOD_TESTS_RELAY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_PAIRS 16

struct relay {
    int port;   /* where it listens */
    int target; /* where it forwards */
    double rate;
    int lfd;
    int fd[RELAY_PAIRS][2]; /* [0] the client's side, [1] the target's; -1 = free */
    atomic_int stop;
    pthread_t th;
    double sent; /* bytes forwarded since the start */
};

static inline double relay__now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void relay__close(struct relay *r, int k)
{
    for (int s = 0; s < 2; s++)
        if (r->fd[k][s] >= 0)
            close(r->fd[k][s]);
    r->fd[k][0] = r->fd[k][1] = -1;
}

static inline void relay__accept(struct relay *r)
{
    int c = accept(r->lfd, NULL, NULL);
    if (c < 0)
        return;
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->target)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int k = 0; k < RELAY_PAIRS; k++)
        if (r->fd[k][0] < 0) {
            if (t >= 0 && connect(t, (struct sockaddr *)&a, sizeof a) == 0) {
                r->fd[k][0] = c;
                r->fd[k][1] = t;
                return;
            }
            break;
        }
    close(c);
    if (t >= 0)
        close(t);
}

static inline void *relay__run(void *arg)
{
    struct relay *r = arg;
    static char buf[1 << 16];
    double t0 = relay__now();
    while (!atomic_load(&r->stop)) {
        struct pollfd p[1 + 2 * RELAY_PAIRS];
        int n = 0;
        p[n++] = (struct pollfd){r->lfd, POLLIN, 0};
        for (int k = 0; k < RELAY_PAIRS; k++)
            for (int s = 0; s < 2; s++)
                p[n++] = (struct pollfd){r->fd[k][s], POLLIN, 0};
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        if (p[0].revents & POLLIN)
            relay__accept(r);
        for (int k = 0; k < RELAY_PAIRS; k++)
            for (int s = 0; s < 2; s++) {
                struct pollfd *q = &p[1 + 2 * k + s];
                if (q->fd < 0 || !(q->revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t got = read(q->fd, buf, sizeof buf);
                if (got <= 0) {
                    relay__close(r, k);
                    break;
                }
                for (ssize_t off = 0; off < got;) {
                    ssize_t w = write(r->fd[k][!s], buf + off, (size_t)(got - off));
                    if (w <= 0)
                        break;
                    off += w;
                }
                /* The link's rate: wait until the bytes so far are due. */
                r->sent += (double)got;
                double due = t0 + r->sent / r->rate - relay__now();
                if (due > 0)
                    usleep((useconds_t)(due * 1e6));
            }
    }
    return NULL;
}

/* 0, or -1 when it cannot listen. */
static inline int relay_start(struct relay *r, int target_port, double bytes_per_s)
{
    memset(r, 0, sizeof *r);
    r->target = target_port;
    r->rate = bytes_per_s;
    for (int k = 0; k < RELAY_PAIRS; k++)
        r->fd[k][0] = r->fd[k][1] = -1;
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(r->lfd, 16) != 0 || getsockname(r->lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    r->port = ntohs(a.sin_port);
    atomic_init(&r->stop, 0);
    return pthread_create(&r->th, NULL, relay__run, r) == 0 ? 0 : -1;
}

static inline void relay_stop(struct relay *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->th, NULL);
    for (int k = 0; k < RELAY_PAIRS; k++)
        relay__close(r, k);
    close(r->lfd);
}

#endif
