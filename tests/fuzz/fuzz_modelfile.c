/* libFuzzer target: the model-file reader (psoworker --init and --eval,
 * and anything else that loads psod's --model-out files).
 *
 * Input: the file's bytes, handed to modelfile_read through a memfd so the
 * real reader (fstat, header, two checksums) runs unchanged. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float s_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("fuzz-model", 0)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct modelfile_info info;
    float *params = NULL;
    if (modelfile_read(path, &info, &params, err, sizeof err) == 0) {
        if (info.param_count == 0 || info.param_count * 4 + info.header_size != size)
            abort();
        /* Touch every weight: the whole block was allocated and read. */
        float sum = 0;
        for (uint64_t i = 0; i < info.param_count; i++)
            sum += params[i];
        s_sink = sum;
        free(params);
    } else if (params || !err[0]) {
        abort();
    }
    return 0;
}
