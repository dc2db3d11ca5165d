/* CURVE key files: see keys.h. */
#include "common/keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int keys_curve_available(void) { return zmq_has("curve"); }

static int s_write_new(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int keys_generate(const char *base, char *err, size_t errlen)
{
    if (!keys_curve_available()) {
        snprintf(err, errlen, "this libzmq was built without CURVE support");
        return -1;
    }
    char pub[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "zmq_curve_keypair: %s", zmq_strerror(errno));
        return -1;
    }
    char keypath[4096], pubpath[4096], text[256];
    snprintf(keypath, sizeof keypath, "%s.key", base);
    snprintf(pubpath, sizeof pubpath, "%s.pub", base);
    if (access(keypath, F_OK) == 0 || access(pubpath, F_OK) == 0) {
        snprintf(err, errlen, "'%s' or '%s' exists already; not overwriting a key", keypath,
                 pubpath);
        return -1;
    }
    snprintf(text, sizeof text,
             "# psod CURVE key pair: keep this file secret\npublic-key = %s\nsecret-key = %s\n",
             pub, sec);
    if (s_write_new(keypath, 0600, text, err, errlen) != 0)
        return -1;
    snprintf(text, sizeof text, "# psod CURVE public key\npublic-key = %s\n", pub);
    if (s_write_new(pubpath, 0644, text, err, errlen) != 0) {
        unlink(keypath);
        return -1;
    }
    return 0;
}

/* A Z85 key is 40 characters of the Z85 alphabet that decode to 32 bytes. */
static int s_valid_z85(const char *z)
{
    unsigned char raw[32];
    return strlen(z) == KEYS_Z85_LEN && zmq_z85_decode(raw, z) != NULL;
}

int keys_read(const char *path, int need_secret, struct keypair *kp, char *err, size_t errlen)
{
    memset(kp, 0, sizeof *kp);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open key file '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[256];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        s[strcspn(s, "\r\n")] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        char key[32], value[64];
        if (sscanf(s, "%31[a-z-] = %63s", key, value) != 2 || !s_valid_z85(value)) {
            snprintf(err, errlen,
                     "key file '%s' line %d: expected 'public-key = ' or "
                     "'secret-key = ' and 40 Z85 characters",
                     path, lineno);
            rc = -1;
        } else if (strcmp(key, "public-key") == 0)
            memcpy(kp->public_key, value, KEYS_Z85_LEN + 1);
        else if (strcmp(key, "secret-key") == 0)
            memcpy(kp->secret_key, value, KEYS_Z85_LEN + 1);
        else {
            snprintf(err, errlen, "key file '%s' line %d: unknown field '%s'", path, lineno, key);
            rc = -1;
        }
    }
    struct stat st;
    int mode_ok = fstat(fileno(f), &st) == 0 && (st.st_mode & 077) == 0;
    fclose(f);
    if (rc != 0)
        return -1;
    if (!kp->public_key[0]) {
        snprintf(err, errlen, "key file '%s' has no public-key line", path);
        return -1;
    }
    if (need_secret && !kp->secret_key[0]) {
        snprintf(err, errlen,
                 "key file '%s' has no secret-key line (give the .key file, not "
                 "the .pub)",
                 path);
        return -1;
    }
    if (kp->secret_key[0]) {
        if (!mode_ok) {
            snprintf(err, errlen, "secret key file '%s' is readable by others; chmod 600 it", path);
            return -1;
        }
        /* The two halves must belong together. */
        char derived[KEYS_Z85_LEN + 1];
        if (zmq_curve_public(derived, kp->secret_key) != 0 ||
            strcmp(derived, kp->public_key) != 0) {
            snprintf(err, errlen, "key file '%s': the public key is not the secret key's", path);
            return -1;
        }
    }
    return 0;
}

static int s_valid_name(const char *s, size_t len)
{
    if (len == 0 || len > KEYS_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(s[i] == '.' || s[i] == '_' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

static int s_cmp_entry(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b); /* name is the first member */
}

int keys_load_dir(const char *dir, struct keyring *kr, char *err, size_t errlen)
{
    memset(kr, 0, sizeof *kr);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open key directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        if (len < 5 || strcmp(e->d_name + len - 4, ".pub") != 0)
            continue; /* README, .key files kept elsewhere by mistake are not keys */
        if (!s_valid_name(e->d_name, len - 4)) {
            snprintf(err, errlen,
                     "key directory '%s': '%s' is not NAME.pub with NAME of "
                     "letters, digits, '.', '_', '-' (at most %d)",
                     dir, e->d_name, KEYS_NAME_MAX);
            rc = -1;
            break;
        }
        char path[4096];
        struct keypair kp;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (keys_read(path, 0, &kp, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (kr->count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            void *p = realloc(kr->entry, ncap * sizeof *kr->entry);
            if (!p) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            kr->entry = p;
            cap = ncap;
        }
        memcpy(kr->entry[kr->count].name, e->d_name, len - 4);
        kr->entry[kr->count].name[len - 4] = '\0';
        zmq_z85_decode(kr->entry[kr->count].key, kp.public_key);
        kr->count++;
    }
    closedir(d);
    if (rc != 0) {
        keys_ring_free(kr);
        return -1;
    }
    if (kr->count)
        qsort(kr->entry, kr->count, sizeof *kr->entry, s_cmp_entry);
    return 0;
}

const char *keys_find(const struct keyring *kr, const unsigned char *key)
{
    for (size_t i = 0; i < kr->count; i++)
        if (memcmp(kr->entry[i].key, key, 32) == 0)
            return kr->entry[i].name;
    return NULL;
}

void keys_ring_free(struct keyring *kr)
{
    free(kr->entry);
    memset(kr, 0, sizeof *kr);
}
