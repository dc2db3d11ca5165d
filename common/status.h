/* A daemon's status: the Status message as struct psoc_status
 * (common/status.c, in the client library and the daemon), and that struct
 * as JSON (common/statusjson.c: `psoctl status --json` and psod's
 * /status.json). */
#ifndef PSOD_STATUS_H
#define PSOD_STATUS_H

#include "common/psoclient.h"
#include "proto/psod.pb-c.h"

/* Fill `out` from `pb` (out's arrays allocated; free with status_free).
 * 0, or -1 out of memory (out holds nothing to free). */
int status_from_pb(const Psod__Status *pb, struct psoc_status *out);
void status_free(struct psoc_status *s);

/* The status as one line of JSON (malloc'd, no newline), or NULL out of
 * memory. Non-finite numbers are null. `error_name` names a daemon error
 * code (wire_error_name). */
char *status_json(const struct psoc_status *st);

#endif
