/* Every refusal goes out here: an Error reply with psod's code, a
 * rate-limited log line naming the peer, and the counters (by code, and the
 * refused bytes). Handlers check, then call srv_reject once. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"

int srv_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

int srv_reject(struct server *s, const struct wire_msg *in, int code, uint64_t seq, const char *fmt,
               ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char who[WIRE_NAME_MAX + 8];
    size_t k = 0;
    /* A worker by its name ("w:" + name, as the log always called it): the
     * connection's member, or the name a hello claims; else the routing id. */
    const struct member *mb = srv_by_id(s, in);
    const char *name = mb ? mb->name
                       : in->command == PSOD__COMMAND__CMD_HELLO && in->meta
                           ? ((const Psod__Hello *)in->meta)->worker_name
                           : NULL;
    int named = name && wire_valid_name(name);
    if (named)
        k = (size_t)snprintf(who, sizeof who, "w:%s", name);
    for (size_t i = 0; !named && i < in->id_len && k + 4 < sizeof who; i++) {
        unsigned char ch = in->id[i];
        k += (size_t)snprintf(who + k, sizeof who - k, ch >= 32 && ch < 127 ? "%c" : "\\x%02x", ch);
    }
    who[k] = '\0';
    log_ratelimited(LOG_WARN, wire_error_name(code), "refused peer '%s': %s: %s", who,
                    wire_error_name(code), msg);
    /* Codes are the daemon's own; one past the table would be a bug, counted
     * as internal rather than lost. */
    s->refused = 1;
    s->errors[code >= 0 && code < PSOD_ERROR_CODES ? code : PSOD__ERROR_CODE__ERR_INTERNAL]++;
    if (in->id_len)
        wire_send_error(s->sock, in->id, in->id_len, code, msg, seq, s->round);
    return code;
}

uint64_t srv_errors_sent(const struct server *s)
{
    uint64_t n = 0;
    for (int i = 0; i < PSOD_ERROR_CODES; i++)
        n += s->errors[i];
    return n;
}

/* With CURVE a particle belongs to the key that created it: whether this
 * message comes from another key (ERR_UNAUTHORIZED, refused here). */
int srv_foreign_key(struct server *s, const struct member *mb, const struct wire_msg *in,
                    uint64_t seq)
{
    if (!mb->key[0] || strcmp(mb->key, in->user) == 0)
        return 0;
    srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, seq,
               "particle of worker '%s' belongs to key '%s'; this connection's key is '%s'",
               mb->name, mb->key, in->user);
    return 1;
}
