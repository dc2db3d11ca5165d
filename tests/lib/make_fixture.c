/* make_fixture DIR TRAIN TEST: write a small learnable dataset in MNIST's
 * IDX format (tests/fixtures.h) for scripts that need one, such as
 * tests/valgrind-daemon.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tests/lib/fixtures.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: make_fixture DIR TRAIN_IMAGES TEST_IMAGES [BLOCK NOISE]\n");
        return 2;
    }
    int block = argc == 6 ? atoi(argv[4]) : 255, noise = argc == 6 ? atoi(argv[5]) : 96;
    if (block < 1 || noise < 1 || noise > 256) {
        fprintf(stderr, "make_fixture: BLOCK >= 1 and NOISE in 1..256\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    long n_train = atol(argv[2]), n_test = atol(argv[3]);
    if (n_train < 1 || n_test < 1 ||
        fixture_write_idx_ex(argv[1], "train", (uint32_t)n_train, 1, block, noise) ||
        fixture_write_idx_ex(argv[1], "t10k", (uint32_t)n_test, 2, block, noise)) {
        fprintf(stderr, "make_fixture: cannot write %s\n", argv[1]);
        return 1;
    }
    return 0;
}
