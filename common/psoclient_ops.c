/* Operator calls: status and admin requests. */
#include "common/psoclient_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/status.h"
#include "common/timeutil.h"

/* Send an operator request and wait for its reply (`want`) into m. */
static int s_request(struct psoc *c, int command, const ProtobufCMessage *meta, int want,
                     struct wire_msg *m, char *err, size_t errlen)
{
    if (wire_send(c->sock, NULL, 0, command, meta, NULL, 0))
        return psoc__err(err, errlen, PSOC_ESYS, "send %s: %s", wire_command_name(command),
                         zmq_strerror(errno));
    return psoc__await(c, want, 0, c->opts.connect_timeout_ms, m, err, errlen);
}

int psoc_status(struct psoc *c, int with_particles, struct psoc_status *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    Psod__StatusRequest r = PSOD__STATUS_REQUEST__INIT;
    r.include_particles = with_particles != 0;
    struct wire_msg m;
    int rc = s_request(c, PSOD__COMMAND__CMD_STATUS_REQUEST, &r.base, PSOD__COMMAND__CMD_STATUS,
                       &m, err, errlen);
    if (rc)
        return rc;
    int bad = status_from_pb((const Psod__Status *)m.meta, out);
    wire_msg_clear(&m);
    if (bad)
        return psoc__err(err, errlen, PSOC_ESYS, "out of memory");
    return PSOC_OK;
}

int psoc_admin(struct psoc *c, int action, const char *worker, char *reply, size_t replylen,
               char *err, size_t errlen)
{
    Psod__Admin a = PSOD__ADMIN__INIT;
    a.action = (Psod__AdminAction)action;
    a.worker_name = (char *)(worker ? worker : "");
    struct wire_msg m;
    int rc = s_request(c, PSOD__COMMAND__CMD_ADMIN, &a.base, PSOD__COMMAND__CMD_ADMIN_REPLY, &m,
                       err, errlen);
    if (rc)
        return rc;
    Psod__AdminReply *r = (Psod__AdminReply *)m.meta;
    if (reply && replylen)
        snprintf(reply, replylen, "%s", r->message ? r->message : "");
    wire_msg_clear(&m);
    return PSOC_OK;
}

void psoc_status_free(struct psoc_status *s) { status_free(s); }
