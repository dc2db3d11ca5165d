/* Datasets for psoworker: the IDX files of MNIST and Fashion-MNIST (plain
 * or gzip) and the CIFAR-10 binary batches, decoded into normalized float
 * images (N, C, H, W) and byte labels, with seeded shuffling and sharding
 * so that worker i of K trains on its own disjoint part.
 *
 * Readers check magic numbers, dimensions, counts and file sizes, and name
 * the file in every error. */
#ifndef PSOD_DATA_H
#define PSOD_DATA_H

#include <stddef.h>
#include <stdint.h>

struct dataset {
    size_t n; /* samples */
    int c, h, w;
    float *x;   /* (n, c, h, w), normalized */
    uint8_t *y; /* (n) */
};

void dataset_free(struct dataset *d);

/* images: an idx3-ubyte file; labels: idx1-ubyte; ".gz" or not, either
 * works (zlib reads both). Pixels scaled to [0,1], then (x - mean) / std. */
int idx_load(struct dataset *d, const char *images, const char *labels, float mean, float std,
             char *err, size_t errlen);

/* CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (R, G, B
 * planes of 32x32), from any number of files. Per-channel normalization. */
int cifar_load(struct dataset *d, const char *const *files, int n_files, const float mean[3],
               const float std[3], char *err, size_t errlen);

/* Load a named dataset from dir: "mnist", "fashion-mnist" (the usual file
 * names, plain or .gz) or "cifar10" (data_batch_*.bin or the 4000-image
 * slice; test_batch.bin or the 1000-image slice). */
int dataset_load(struct dataset *train, struct dataset *test, const char *name, const char *dir,
                 char *err, size_t errlen);

/* Keep shard `index` of `count` after a seeded permutation of the samples:
 * shards are disjoint and together cover everything. */
int dataset_shard(struct dataset *d, int index, int count, uint64_t seed, char *err, size_t errlen);
/* The same with a label-skew mode of psoc_partition (enum psoc_shard_mode,
 * with its Dirichlet alpha or classes per worker). */
int dataset_shard_by(struct dataset *d, int index, int count, uint64_t seed, int mode, double alpha,
                     int classes, char *err, size_t errlen);

/* Deal the labels to the samples again in a seeded random order (the
 * images stay): a worker whose labels mean nothing. */
void dataset_shuffle_labels(struct dataset *d, uint64_t seed);
/* Every label y becomes classes - 1 - y (a label-flipping worker). */
void dataset_flip_labels(struct dataset *d, int classes);

/* Move the last k samples of d into `out` (a new dataset); d keeps the
 * rest. Used to hold out a fitness set from a worker's shard. */
int dataset_split_tail(struct dataset *d, size_t k, struct dataset *out, char *err, size_t errlen);

/* A seeded permutation of 0..n-1 into order (n). */
void dataset_permutation(size_t *order, size_t n, uint64_t seed);

/* Gather samples order[from .. from+B) into x (B, c, h, w) and y (B). */
void dataset_batch(const struct dataset *d, const size_t *order, size_t from, int B, float *x,
                   uint8_t *y);

#endif
