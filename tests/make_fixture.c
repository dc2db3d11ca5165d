/* make_fixture DIR TRAIN TEST: write a small learnable dataset in MNIST's
 * IDX format (tests/fixtures.h) for scripts that need one, such as
 * tests/valgrind-daemon.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tests/fixtures.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_fixture DIR TRAIN_IMAGES TEST_IMAGES\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    long n_train = atol(argv[2]), n_test = atol(argv[3]);
    if (n_train < 1 || n_test < 1 || fixture_write_idx(argv[1], "train", (uint32_t)n_train, 1) ||
        fixture_write_idx(argv[1], "t10k", (uint32_t)n_test, 2)) {
        fprintf(stderr, "make_fixture: cannot write %s\n", argv[1]);
        return 1;
    }
    return 0;
}
