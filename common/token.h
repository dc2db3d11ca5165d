/* The operator's token: psod without CURVE keys still takes admin requests
 * (psoctl stop, checkpoint, evict) from the operator on its own host. At
 * start psod writes 32 random bytes (hex) to a file only its user can read,
 * named after its port; psoctl on that host reads it and sends it with the
 * request. Anyone who cannot read the file (another user, another host) is
 * refused as before. */
#ifndef PSOD_TOKEN_H
#define PSOD_TOKEN_H

#include <stddef.h>

#define TOKEN_HEX 64

/* The default file for a daemon at `endpoint` (tcp://HOST:PORT, or
 * ipc://PATH): $XDG_RUNTIME_DIR/psod/admin-KEY.token when that directory
 * exists, else /tmp/psod-UID/admin-KEY.token; KEY is the port (a hash of
 * the path for ipc). Returns 0, or -1 with err filled. */
int token_default_path(const char *endpoint, char *out, size_t len, char *err, size_t errlen);

/* psod: a new random token in `hex` (TOKEN_HEX + 1 bytes), written to path
 * (its directory made 0700 when missing, and refused when another user
 * owns it or others may write it; the file 0600, written atomically).
 * Returns 0, or -1 with err filled. */
int token_create(const char *path, char hex[TOKEN_HEX + 1], char *err, size_t errlen);

/* psoctl: the token in path into hex. Returns 0, or -1 (err filled). */
int token_read(const char *path, char hex[TOKEN_HEX + 1], char *err, size_t errlen);

/* Equal tokens, in time that does not depend on where they differ. */
int token_equal(const char *a, const char *b);

#endif
