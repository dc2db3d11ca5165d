/* Model files: the weights users take home from a run.
 *
 * psod writes the global model at the end of a run and every --save-every
 * rounds; `psoworker --eval FILE` evaluates one, `psoworker --init FILE`
 * trains from one. Layout (little-endian, 64-byte header, then the flat
 * float32 parameter block exactly as it travels on the wire):
 *
 *   0  "PSOM"             8  u64 layout hash      24  u32 CRC-32C of the weights
 *   4  u32 version       16  u64 parameter count  28  u32 CRC-32C of the header
 *  32  u64 round         40  f64 loss             48  char strategy[16]
 * version 2 adds 64 bytes (a 128-byte header):
 *  64  char model[32]    96  char dataset[16]    112  u32 channels, height, width
 * 124  u32 zero
 *
 * Version 1 files (64-byte header, no model or dataset) are still read. The
 * header CRC covers the whole header with its own field zeroed. Writes go to
 * a temporary file that is fsynced and renamed over the target, so a reader
 * sees the old file or the new one, never a torn one. Readers trust nothing:
 * every field is checked before the weights are allocated. */
#ifndef PSOD_MODELFILE_H
#define PSOD_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#define MODELFILE_MAGIC "PSOM"
#define MODELFILE_VERSION 2
#define MODELFILE_HEADER 64 /* version 1; the fixed part of version 2 */
#define MODELFILE_HEADER_V2 128
#define MODELFILE_MAX_PARAMS ((uint64_t)1 << 32)

struct modelfile_info {
    uint64_t layout_hash;
    uint64_t param_count;
    uint64_t round;
    double loss;
    char strategy[16];
    char model[32]; /* "" in version 1 files */
    char dataset[16];
    uint32_t input_shape[3]; /* channels, height, width; 0 if unknown */
    uint32_t header_size;    /* read: 64 or 128 */
};

/* Write atomically. Returns 0, or -1 with err filled. */
int modelfile_write(const char *path, const struct modelfile_info *info, const float *params,
                    char *err, size_t errlen);

/* Read and check a file; *params is malloc'ed (free it). Returns 0, or -1
 * with err naming the file and what is wrong. */
int modelfile_read(const char *path, struct modelfile_info *info, float **params, char *err,
                   size_t errlen);

/* Read and check only the header (what the file holds, not the weights).
 * Returns 0, or -1 with err filled. */
int modelfile_read_info(const char *path, struct modelfile_info *info, char *err, size_t errlen);

/* Check a header held in memory (used by the reader and the fuzzers): `len`
 * bytes at hdr (at least MODELFILE_HEADER; a version 2 header needs
 * MODELFILE_HEADER_V2). Returns 0, 1 when the header is longer than `len`
 * (read more and call again), or -1 with err filled; `file_size` is the
 * whole file's size. */
int modelfile_parse_header(const unsigned char *hdr, size_t len, uint64_t file_size,
                           struct modelfile_info *info, uint32_t *payload_crc, char *err,
                           size_t errlen);

#endif
