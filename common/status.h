/* A daemon's Status message as JSON (common/statusjson.c): what
 * `psoctl status --json` prints (the client library's psoc_status_json)
 * and psod serves at /status.json. The client's struct psoc_status is
 * filled from the same message (worker/client/psoclient_status.c). */
#ifndef PSOD_STATUS_H
#define PSOD_STATUS_H

#include "proto/psod.pb-c.h"

/* The status as one line of JSON (malloc'd, no newline), or NULL out of
 * memory. Non-finite numbers are null. */
char *status_json(const Psod__Status *st);

#endif
