/* CURVE keys: generating, reading and collecting them.
 *
 * psod and its peers authenticate and encrypt with ZeroMQ's CURVE mechanism
 * (CurveZMQ: Curve25519 key exchange, per-message encryption). A key pair
 * lives in a text file the owner alone may read; its public half in a file
 * of its own that can be copied to the daemon's allow-list directory:
 *
 *   NAME.key   # psod CURVE key pair: keep secret (mode 0600)
 *              public-key = <40 characters, Z85>
 *              secret-key = <40 characters, Z85>
 *   NAME.pub   public-key = <40 characters, Z85>
 *
 * An allow-list directory holds NAME.pub files; NAME is the identity the
 * daemon logs and binds a worker's particle to. Secret files that others
 * can read are refused, as ssh refuses such keys. */
#ifndef PSOD_KEYS_H
#define PSOD_KEYS_H

#include <stddef.h>

#define KEYS_Z85_LEN 40
#define KEYS_NAME_MAX 63

struct keypair {
    char public_key[KEYS_Z85_LEN + 1];
    char secret_key[KEYS_Z85_LEN + 1]; /* empty when read from a .pub file */
};

struct keyring {
    size_t count;
    struct {
        char name[KEYS_NAME_MAX + 1];
        unsigned char key[32];
    } * entry;
};

/* Whether this libzmq was built with CURVE (libsodium). */
int keys_curve_available(void);

/* Write BASE.key (mode 0600) and BASE.pub with a fresh key pair. Refuses to
 * overwrite either. Returns 0, or -1 with err filled. */
int keys_generate(const char *base, char *err, size_t errlen);

/* Read a key file: a .key file fills both halves (and must not be readable
 * by group or others), a .pub file only the public one. `need_secret`
 * refuses a file without the secret half. Returns 0 or -1 with err. */
int keys_read(const char *path, int need_secret, struct keypair *kp, char *err, size_t errlen);

/* Collect every NAME.pub in `dir`. Names are [A-Za-z0-9._-]+; other file
 * names and files that do not parse are errors, so a typo cannot silently
 * shrink the allow-list. Returns 0 or -1 with err. */
int keys_load_dir(const char *dir, struct keyring *kr, char *err, size_t errlen);

/* The name of `key` (32 bytes) in the ring, or NULL. */
const char *keys_find(const struct keyring *kr, const unsigned char *key);

void keys_ring_free(struct keyring *kr);

#endif
