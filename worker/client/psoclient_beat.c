/* A link's heartbeat thread: its own context and DEALER socket, so that
 * liveness does not depend on what the caller is doing. */
#include "worker/client/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/timeutil.h"

/* Take in the daemon's answers: heartbeats carry its incarnation. */
static void s_read_answers(struct psoc_link *l, void *sock)
{
    struct wire_limits lim = {0, 0};
    for (;;) {
        struct wire_msg m;
        struct wire_error werr;
        int rc = wire_recv(sock, 0, ZMQ_DONTWAIT, &lim, &m, &werr);
        if (rc < 0)
            return;
        if (rc == 0 && m.command == PSOD__COMMAND__CMD_HEARTBEAT) {
            atomic_store(&l->heard_ms, (long long)time_now_ms());
            atomic_store(&l->heard_incarnation,
                         (unsigned long long)((Psod__Heartbeat *)m.meta)->incarnation);
        }
        if (rc == 0)
            wire_msg_clear(&m);
    }
}

/* Say once when the daemon goes silent, and once when it is back. */
static void s_watch(struct psoc_link *l)
{
    long long heard = atomic_load(&l->heard_ms);
    if (!heard)
        return;
    long long silent = (long long)time_now_ms() - heard;
    int lost = silent > (long long)l->heartbeat_ms * PSOC_LIVENESS;
    if (lost && !l->beat_said_lost)
        psoc__say(l->api, 2,
                  "lost psod at %s: no answer to heartbeats for %.1f s; the next sync "
                  "rejoins for up to %.0f s (--reconnect-ms)",
                  l->endpoint, silent / 1e3, l->api->opts.reconnect_ms / 1e3);
    else if (!lost && l->beat_said_lost)
        psoc__say(l->api, 1, "psod at %s answers again", l->endpoint);
    l->beat_said_lost = lost;
}

/* Beat every heartbeat_ms on a socket of its own until told to stop. */
static void *s_beat_main(void *arg)
{
    struct psoc_link *l = arg;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (sock) {
        int linger = 0, hwm = 10;
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (psoc__apply_curve(sock, &l->api->opts) == 0 && zmq_connect(sock, l->endpoint) == 0) {
            uint64_t seq = 0;
            while (!atomic_load(&l->beat_stop)) {
                Psod__Heartbeat hb;
                uint64_t session[2];
                psoc__heartbeat(l, ++seq, &hb, session);
                wire_send(sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
                          ZMQ_DONTWAIT);
                /* Read the answers (when the daemon was last heard, and
                 * which incarnation); sleep in small steps to stop promptly. */
                for (uint32_t waited = 0; waited < l->heartbeat_ms && !atomic_load(&l->beat_stop);
                     waited += 50) {
                    s_read_answers(l, sock);
                    usleep(50000);
                }
                s_watch(l);
            }
        }
        zmq_close(sock);
    }
    if (ctx)
        zmq_ctx_term(ctx);
    return NULL;
}

ProtobufCBinaryData psoc__session(struct psoc_link *l, uint64_t buf[2])
{
    buf[0] = atomic_load(&l->session[0]);
    buf[1] = atomic_load(&l->session[1]);
    return (buf[0] | buf[1]) ? (ProtobufCBinaryData){PSOD_SESSION_LEN, (uint8_t *)buf}
                             : (ProtobufCBinaryData){0, NULL};
}

void psoc__heartbeat(struct psoc_link *l, uint64_t seq, Psod__Heartbeat *hb, uint64_t session[2])
{
    psod__heartbeat__init(hb);
    hb->seq = seq;
    hb->worker_name = l->api->name;
    hb->session = psoc__session(l, session);
}

void psoc__beat_start(struct psoc_link *l)
{
    if (l->beat_running || !l->api->opts.heartbeat_thread || l->heartbeat_ms == 0 ||
        !l->api->name[0])
        return;
    atomic_store(&l->beat_stop, 0);
    atomic_store(&l->heard_ms, (long long)time_now_ms());
    l->beat_said_lost = 0;
    l->beat_running = pthread_create(&l->beat_thread, NULL, s_beat_main, l) == 0;
}

void psoc__beat_stop(struct psoc_link *l)
{
    if (!l->beat_running)
        return;
    atomic_store(&l->beat_stop, 1);
    pthread_join(l->beat_thread, NULL);
    l->beat_running = 0;
}
