/* The heartbeat thread: its own context and DEALER socket ("h:" + name),
 * so that liveness does not depend on what the caller is doing. */
#include "common/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/timeutil.h"

/* Beat every heartbeat_ms on a socket of its own until told to stop. */
static void *s_beat_main(void *arg)
{
    struct psoc *c = arg;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (sock) {
        char id[WIRE_MAX_ID];
        int len = snprintf(id, sizeof id, "h:%s", c->name);
        int linger = 0, hwm = 10;
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, id, (size_t)len);
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (psoc__apply_curve(sock, &c->opts) == 0 && zmq_connect(sock, c->endpoint) == 0) {
            uint64_t seq = 0;
            while (!atomic_load(&c->beat_stop)) {
                Psod__Heartbeat hb = PSOD__HEARTBEAT__INIT;
                hb.seq = ++seq;
                wire_send(sock, NULL, 0, PSOD__COMMAND__CMD_HEARTBEAT, &hb.base, NULL,
                          ZMQ_DONTWAIT);
                /* Drain the answers; sleep in small steps to stop promptly. */
                for (uint32_t waited = 0; waited < c->heartbeat_ms && !atomic_load(&c->beat_stop);
                     waited += 50) {
                    zmq_msg_t m;
                    zmq_msg_init(&m);
                    while (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) >= 0)
                        ;
                    zmq_msg_close(&m);
                    usleep(50000);
                }
            }
        }
        zmq_close(sock);
    }
    if (ctx)
        zmq_ctx_term(ctx);
    return NULL;
}

void psoc__beat_start(struct psoc *c)
{
    if (c->beat_running || !c->opts.heartbeat_thread || c->heartbeat_ms == 0 || !c->name[0])
        return;
    atomic_store(&c->beat_stop, 0);
    c->beat_running = pthread_create(&c->beat_thread, NULL, s_beat_main, c) == 0;
}

void psoc__beat_stop(struct psoc *c)
{
    if (!c->beat_running)
        return;
    atomic_store(&c->beat_stop, 1);
    pthread_join(c->beat_thread, NULL);
    c->beat_running = 0;
}
