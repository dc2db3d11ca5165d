/* psoworker's data preparation: see prepare.h. */
#include "worker/prepare.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "worker/client/psoclient.h"

static const char *const s_modes[] = {"iid", "dirichlet", "classes"}; /* psoc_shard_mode */

/* "0:123 3:456 ...": how many samples of each class a shard holds. */
static void s_class_counts(const struct dataset *d, char *text, size_t len)
{
    size_t per[256] = {0};
    for (size_t i = 0; i < d->n; i++)
        per[d->y[i]]++;
    text[0] = '\0';
    for (int k = 0, used = 0; k < 256 && used < (int)len - 24; k++)
        if (per[k])
            used += snprintf(text + used, len - (size_t)used, " %d:%zu", k, per[k]);
}

int data_prepare(const struct data_plan *p, struct dataset *train, struct dataset *test,
                 struct dataset *holdout, char *err, size_t errlen)
{
    memset(holdout, 0, sizeof *holdout);
    if (dataset_load(train, test, p->dataset, p->dir, err, errlen) != 0)
        return -1;
    size_t held = p->shared_holdout;
    /* --fitness auto on a small set: a tenth of it rather than a refusal */
    if (held && p->holdout_auto && held > train->n / 10) {
        size_t tenth = train->n / 10 ? train->n / 10 : 1;
        log_info("--fitness auto: holding out %zu of %zu samples (--holdout %zu is more than a "
                 "tenth)",
                 tenth, train->n, held);
        held = tenth;
    }
    if ((held && dataset_split_tail(train, held, holdout, err, errlen) != 0) ||
        (p->shard_count > 1 &&
         dataset_shard_by(train, p->shard_index, p->shard_count, p->shard_seed, p->shard_mode,
                          p->shard_alpha, p->shard_classes, err, errlen) != 0)) {
        dataset_free(train), dataset_free(test), dataset_free(holdout);
        return -1;
    }
    if (p->shard_count > 1 && p->shard_mode != PSOC_SHARD_IID) {
        char text[1024];
        s_class_counts(train, text, sizeof text);
        log_info("shard %d of %d (%s): samples per class%s", p->shard_index, p->shard_count,
                 s_modes[p->shard_mode], text);
    }
    if (p->flip_labels) {
        dataset_flip_labels(train, 10); /* every dataset psoworker reads has 10 classes */
        dataset_flip_labels(holdout, 10);
        log_info("--flip-labels: every label y of this worker (its fitness set too) is "
                 "classes - 1 - y");
    }
    if (p->shuffle_labels) {
        dataset_shuffle_labels(train, p->label_seed);
        log_info("--shuffle-labels: this worker trains on its labels in a random order");
    }
    return 0;
}
