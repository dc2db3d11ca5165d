/* How the fuzz targets cut their input into ZeroMQ frames.
 *
 * A frame is a 16-bit little-endian length and that many bytes; the last
 * frame takes whatever is left if its length runs past the end. Shared by
 * the targets and by make_corpus, which writes valid messages this way. */
#ifndef PSOD_FUZZ_FRAMES_H
#define PSOD_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#define FUZZ_MAX_FRAMES 6

/* Read up to `count` frames from *data into `f` (initialised messages the
 * caller closes). Returns the number read. */
static inline int fuzz_take_frames(const uint8_t **data, size_t *size, int count, zmq_msg_t *f)
{
    int n = 0;
    while (n < count && *size >= 2) {
        size_t len = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
        *data += 2;
        *size -= 2;
        if (len > *size)
            len = *size;
        zmq_msg_init_size(&f[n], len);
        if (len)
            memcpy(zmq_msg_data(&f[n]), *data, len);
        *data += len;
        *size -= len;
        n++;
    }
    return n;
}

#endif
