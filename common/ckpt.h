/* Checkpoint files: a stream of little-endian fields with a running
 * CRC-32C, written atomically (temporary file, fsync, rename, fsync of the
 * directory) and read back with every length checked against what is left
 * of the file. The daemon's swarm state goes through this (server.c and
 * each strategy's save/load); the format of the contents is theirs.
 *
 *   "PSCK" u32 version | fields ... | u32 CRC-32C of everything before it
 *
 * A reader that reaches the end checks the trailing CRC, so a torn write
 * (truncated file) or a flipped bit is caught before any state is used. */
#ifndef PSOD_CKPT_H
#define PSOD_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CKPT_MAGIC "PSCK"
/* Container versions: 1 and 2 carried records without a version of their
 * own (a record read the container version); from 3 each record begins
 * with its own u64 version, written and read beside the record. */
#define CKPT_VERSION 3 /* written; 1 to 3 are read */
#define CKPT_VERSION_MIN 1
/* A checkpoint's file name: CKPT_PREFIX, the zero-padded round, CKPT_SUFFIX. */
#define CKPT_PREFIX "ckpt-"
#define CKPT_SUFFIX ".psck"

struct ckpt_writer {
    FILE *f;
    uint32_t crc;
    int failed;
    char tmp[4096], path[4096];
};

struct ckpt_reader {
    FILE *f;
    uint32_t crc;
    uint64_t left;    /* bytes of the file not read yet, the trailing CRC included */
    uint32_t version; /* of the file being read */
    char err[256];    /* first error */
};

/* Writer: open path's temporary file; put fields; commit (renames). */
int ckpt_begin(struct ckpt_writer *w, const char *path, char *err, size_t errlen);
void ckpt_put(struct ckpt_writer *w, const void *data, size_t len);
void ckpt_put_u64(struct ckpt_writer *w, uint64_t v);
void ckpt_put_f64(struct ckpt_writer *w, double v);
void ckpt_put_str(struct ckpt_writer *w, const char *s);
int ckpt_commit(struct ckpt_writer *w, char *err, size_t errlen);
void ckpt_abort(struct ckpt_writer *w);

/* Reader: every get returns 0, or -1 with r->err set (and keeps failing). */
int ckpt_open(struct ckpt_reader *r, const char *path);
/* The same over an image in memory (not copied: keep it alive until close). */
int ckpt_open_mem(struct ckpt_reader *r, const void *data, size_t len);
int ckpt_get(struct ckpt_reader *r, void *data, size_t len);
int ckpt_get_u64(struct ckpt_reader *r, uint64_t *v);
int ckpt_get_f64(struct ckpt_reader *r, double *v);
int ckpt_get_str(struct ckpt_reader *r, char *s, size_t cap);
/* Check that only the trailing CRC is left and that it matches. */
int ckpt_finish(struct ckpt_reader *r);
void ckpt_close(struct ckpt_reader *r);
/* Read a whole file through its trailing CRC without interpreting it:
 * 0 (the file is intact, its container version in *version), or -1 with
 * the reason in err. */
int ckpt_verify(const char *path, uint32_t *version, char *err, size_t errlen);
/* The checkpoint files in dir, newest first: the count, their names in
 * *names (malloc'ed; free with ckpt_list_free). 0 when there are none or
 * dir cannot be read. */
size_t ckpt_list(const char *dir, char ***names);
void ckpt_list_free(char **names, size_t n);

#endif
