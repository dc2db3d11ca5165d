/* psoworker's training set as a swarm worker sees it: loaded, the shared
 * fitness set cut off its tail (--fitness shared), this worker's shard cut
 * from the rest (--shard-mode), its labels shuffled for a bad-worker
 * experiment; each step logged. */
#ifndef PSOD_PREPARE_H
#define PSOD_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "worker/data.h"

struct data_plan {
    const char *dataset, *dir;
    size_t shared_holdout; /* samples for --fitness shared, 0 = none */
    int holdout_auto;      /* --fitness auto chose it: a tenth of a small set instead */
    int shard_index, shard_count, shard_mode, shard_classes; /* enum psoc_shard_mode */
    double shard_alpha;
    uint64_t shard_seed;
    int shuffle_labels;
    int flip_labels; /* label y -> classes - 1 - y, in the training set and the holdout */
    uint64_t label_seed;
};

/* train, test and (shared fitness) holdout; 0, or -1 with err filled and
 * everything freed. */
int data_prepare(const struct data_plan *p, struct dataset *train, struct dataset *test,
                 struct dataset *holdout, char *err, size_t errlen);

#endif
