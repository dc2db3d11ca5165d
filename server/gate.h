/* The gate: who may connect to psod.
 *
 * Every connection to the daemon's ROUTER socket passes a ZAP handler
 * (ZeroMQ Authentication Protocol, RFC 27) that runs in the daemon's own
 * loop. It enforces two things:
 *
 *   - --max-peers: connections beyond the limit are refused (ZAP status 500;
 *     the peer's library reports it), so a flood of connections cannot
 *     exhaust the daemon's file descriptors or memory;
 *   - with --curve-secret, CURVE authentication and encryption: a peer's
 *     public key must be in the --allow (or --admin) directory. The ZAP
 *     reply's user id is the key's name ("admin:" + name for admin keys),
 *     which the daemon reads off every message to bind a particle to its key
 *     and to authorize admin requests.
 *
 * The daemon's own public key is let in too, with the user id
 * GATE_USER_DAEMON: in a sharded swarm every daemon holds the same pair
 * (one key set), and only that id may send shard messages.
 *
 * A socket monitor counts open connections and logs failed handshakes
 * (a peer without a key meeting a daemon with one, and the reverse). */
#ifndef PSOD_GATE_H
#define PSOD_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define GATE_USER_DAEMON "psod:daemon"

struct gate_config {
    const char *curve_secret; /* the daemon's .key file, "" = no CURVE */
    const char *allow_dir;    /* worker public keys (with curve_secret) */
    const char *admin_dir;    /* operator public keys, "" = no admin requests */
    long max_peers;           /* open connections allowed, 0 = no limit */
};

struct gate_stats {
    uint32_t connected; /* connections open now */
    uint64_t refused;   /* refused or failed handshakes */
    int encrypted;
    size_t allowed_keys, admin_keys;
};

struct gate;

/* Set up `sock` (a ROUTER, before it binds) to authenticate through the
 * gate. Returns 0 or -1 with err filled. With no CURVE and no peer limit
 * nothing is installed and *out is NULL (callers treat NULL as "open"). */
int gate_new(struct gate **out, void *ctx, void *sock, const struct gate_config *cfg, char *err,
             size_t errlen);
void gate_destroy(struct gate **g);

/* The sockets the daemon's zmq_poll must watch: fills up to 2 items,
 * returns how many. */
int gate_poll_items(struct gate *g, zmq_pollitem_t *items);
/* Answer pending ZAP requests and read monitor events. Never blocks. */
void gate_process(struct gate *g);
void gate_stats(const struct gate *g, struct gate_stats *st);

#endif
