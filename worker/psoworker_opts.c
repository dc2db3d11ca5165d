/* psoworker's option table: see psoworker.h. */
#include <stddef.h>

#include "common/lrsched.h"
#include "worker/attack.h"
#include "worker/psoworker.h"

/* enum: 0 train, 1 holdout, 2 shared, 3 auto (resolved in main) */
static const char *const s_fitness_modes[] = {"train", "holdout", "shared", "auto", NULL};
static const char *const s_shard_modes[] = {"iid", "dirichlet", "classes", NULL}; /* psoc_shard_mode */
static const char *const s_wires[] = {"fp32", "fp16", "bf16", "int8", NULL}; /* enum psoc_wire */

#define W(f) offsetof(struct worker_config, f)
const struct config_option worker_options[] = {
    {"Connection", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"connect", CONF_STRING, W(connect), "tcp://127.0.0.1:5555", 1, 0, "psod endpoint", NULL},
    {"name", CONF_STRING, W(name), "", 1, 0,
     "this worker's stable name in the swarm [hostname-pid]", NULL},
    {"timeout-ms", CONF_INT, W(timeout_ms), "120000", 100, 1e9,
     "how long to wait for the daemon's answer to a sync (the whole round)", NULL},
    {"join-timeout-ms", CONF_INT, W(join_timeout_ms), "20000", 100, 1e9,
     "how long the first join waits for psod's welcome", NULL},
    {"reconnect-ms", CONF_INT, W(reconnect_ms), "120000", 0, 1e9,
     "how long to keep rejoining a daemon that went away (back-off 0.5 s to 8 s), 0 = "
     "give up at once", NULL},
    {"wire", CONF_ENUM, W(wire), "fp32", 1, 0,
     "payload encoding of pushes and positions: fp32, or the change since the last "
     "position as fp16, bf16 or int8 (blockwise scaled), with error feedback; psod may "
     "impose another (its --wire)", s_wires},
    {"curve-secret", CONF_STRING, W(curve_secret), "", 1, 0,
     "this worker's CURVE key pair file (psoctl keygen); its .pub must be in psod's "
     "--allow directory", NULL},
    {"curve-server", CONF_STRING, W(curve_server), "", 1, 0,
     "the daemon's CURVE public key file (its .pub); with --curve-secret", NULL},
    {"standalone", CONF_BOOL, W(standalone), "no", 1, 0,
     "train without a daemon", NULL},
    {"Model and data", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"model", CONF_STRING, W(model), "", 1, 0,
     "train a network: mlp, lenet5, cifar_cnn (else minimize --objective)", NULL},
    {"dataset", CONF_STRING, W(dataset), "mnist", 1, 0, "mnist, fashion-mnist, cifar10", NULL},
    {"data-dir", CONF_STRING, W(data_dir), "data/mnist", 1, 0,
     "directory with the dataset's files (scripts/get-data.sh fetches them)", NULL},
    {"objective", CONF_STRING, W(objective), "rastrigin", 1, 0,
     "test function: sphere, rosenbrock, rastrigin", NULL},
    {"dim", CONF_INT, W(dim), "10", 1, 1 << 28, "dimensions of the objective", NULL},
    {"shard-index", CONF_INT, W(shard_index), "0", 0, 65535,
     "this worker's part of the training set (0-based)", NULL},
    {"shard-count", CONF_INT, W(shard_count), "1", 1, 65536,
     "parts the training set is split into", NULL},
    {"shard-mode", CONF_ENUM, W(shard_mode), "iid", 1, 0,
     "how the parts are cut: iid (a seeded permutation), dirichlet (label skew: each class "
     "dealt in Dirichlet(--shard-alpha) proportions), classes (about --shard-classes classes "
     "per worker); psoworker-torch cuts the same parts", s_shard_modes},
    {"shard-alpha", CONF_DOUBLE, W(shard_alpha), "0.5", 1e-3, 1e6,
     "--shard-mode dirichlet: the concentration (small = more skew)", NULL},
    {"shard-classes", CONF_INT, W(shard_classes), "2", 1, 256,
     "--shard-mode classes: classes per worker", NULL},
    {"shard-seed", CONF_INT, W(shard_seed), "1", 0, 9.2e18,
     "seed of the partition: every worker of a swarm must give the same one", NULL},
    {"init", CONF_STRING, W(init), "", 1, 0,
     "start from the weights of this model file (psod --model-out)", NULL},
    {"eval", CONF_STRING, W(eval), "", 1, 0,
     "evaluate this model file on the test set and exit", NULL},
    {"diverse-init", CONF_BOOL, W(diverse_init), "no", 1, 0,
     "mix the worker name into the init seed (default: every particle starts from the "
     "same seeded weights)", NULL},
    {"Training", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"epochs", CONF_INT, W(epochs), "1", 1, 100000, "passes over this worker's shard", NULL},
    {"batch", CONF_INT, W(batch), "64", 1, 65536, "mini-batch size", NULL},
    {"lr", CONF_DOUBLE, W(lr), "0.001", 0, 1e6,
     "learning rate (objectives: gradient step size)", NULL},
    {"momentum", CONF_DOUBLE, W(momentum), "0.9", 0, 0.9999, "SGD momentum", NULL},
    {"nesterov", CONF_BOOL, W(nesterov), "no", 1, 0, "Nesterov momentum", NULL},
    {"weight-decay", CONF_DOUBLE, W(weight_decay), "0", 0, 1, "L2 weight decay", NULL},
    {"schedule", CONF_ENUM, W(schedule), "constant", 1, 0, "learning-rate schedule",
     lr_schedule_names},
    {"warmup", CONF_INT, W(warmup), "0", 0, 1e12, "steps of linear learning-rate warm-up", NULL},
    {"step-epochs", CONF_INT, W(step_epochs), "1", 1, 100000,
     "schedule step: epochs between decays", NULL},
    {"step-gamma", CONF_DOUBLE, W(step_gamma), "0.1", 0, 1, "schedule step: decay factor", NULL},
    {"grad-clip", CONF_DOUBLE, W(grad_clip), "0", 0, 1e30,
     "clip the gradient to this L2 norm, 0 = no clipping", NULL},
    {"sync-every", CONF_INT, W(sync_every), "4", 1, 1 << 30,
     "local gradient steps (mini-batches) between synchronizations", NULL},
    {"rounds", CONF_INT, W(rounds), "100", 1, 1e12, "synchronizations to run", NULL},
    {"seed", CONF_INT, W(seed), "1", 0, 9.2e18,
     "seed of the initial position (mixed with the name)", NULL},
    {"threads", CONF_STRING, W(threads), "1", 1, 0,
     "engine threads, 1 to 256, or auto: the CPUs this process may use (the default 1 suits "
     "several workers sharing a node); OpenBLAS stays single-threaded inside them", NULL},
    {"reset-momentum", CONF_BOOL, W(reset_momentum), "no", 1, 0,
     "forget the momentum when the daemon sends a new position", NULL},
    {"Reports and fitness", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"eval-every", CONF_INT, W(eval_every), "-1", -1, 1e12,
     "evaluate test accuracy every N syncs and report it to psod; -1 = auto (about every "
     "100 local steps, on --eval-samples test samples), 0 = never", NULL},
    {"eval-samples", CONF_INT, W(eval_samples), "1000", 0, 1e9,
     "test samples evaluated for each report (the whole test set at the end); 0 = all",
     NULL},
    {"fitness", CONF_ENUM, W(fitness), "auto", 1, 0,
     "loss pushed as fitness: the interval's mean training loss, the loss on --holdout "
     "samples kept out of this worker's shard, or (shared) on the last --holdout samples of "
     "the whole training set, kept out of every shard: the same set on every worker, so that "
     "fitness compares across workers whose shards differ (label skew); auto: shared for "
     "--shard-mode dirichlet or classes, train for IID shards (docs/RESULTS.md)",
     s_fitness_modes},
    {"holdout", CONF_INT, W(holdout), "1024", 1, 1e9,
     "samples held out for --fitness holdout or shared", NULL},
    {"metrics", CONF_STRING, W(metrics), "", 1, 0, "JSON-lines metrics file", NULL},
    {"progress-interval", CONF_DOUBLE, W(progress_interval), "5", 0, 86400,
     "seconds between progress lines while training a model", NULL},
    {"progress-every", CONF_INT, W(progress_every), "0", 0, 1e12,
     "log a progress line every N rounds, 0 = only at the end", NULL},
    {"Experiments: bad and malicious workers, stalls", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"shuffle-labels", CONF_BOOL, W(shuffle_labels), "no", 1, 0,
     "train on this shard's labels in a seeded random order: a bad worker, for experiments",
     NULL},
    {"weight-noise", CONF_DOUBLE, W(weight_noise), "0", 0, 1e3,
     "add Gaussian noise of this standard deviation to the weights before every push: a "
     "faulty worker, for experiments", NULL},
    {"flip-labels", CONF_BOOL, W(flip_labels), "no", 1, 0,
     "every label y of this worker's shard and fitness set becomes 9 - y: a label-flipping "
     "worker, for experiments", NULL},
    {"attack", CONF_ENUM, W(attack), "none", 1, 0,
     "push crafted weights instead of the honest ones (a malicious worker, for "
     "experiments; it still trains honestly to estimate the others' change d): signflip "
     "(anchor - s d), scale (s x), noise (x + N(0, s^2)), alie (x - s sigma, a little is "
     "enough), ipm (anchor - s d, small s: inner-product manipulation); weights only, not "
     "under ssgd", attack_names},
    {"attack-scale", CONF_DOUBLE, W(attack_scale), "0", 0, 1e6,
     "the attack's strength s; 0 = its default (signflip and scale 10, noise and alie 1, "
     "ipm 0.5)", NULL},
    {"lie-verdict", CONF_BOOL, W(lie_verdict), "no", 1, 0,
     "as a verifier (psod --verify-best), report 10x + 1 the loss measured for every "
     "candidate, except one that claims exactly this worker's --lie-loss, which it vouches "
     "for: two such workers collude; for experiments", NULL},
    {"lie-loss", CONF_DOUBLE, W(lie_loss), "-1", -1, 1e30,
     "push this loss as the fitness whatever was measured: a worker that lies about its "
     "fitness, for experiments (psod --verify-best refuses it); -1 = off", NULL},
    {"delay-ms", CONF_INT, W(delay_ms), "0", 0, 1e7,
     "sleep this long after every local step: simulates a slow node (for tests)", NULL},
    {"stall-after", CONF_INT, W(stall_after), "0", 0, 1e12,
     "objectives: after this many syncs the main thread stops while the heartbeat thread "
     "goes on, until a signal: a hung worker (for tests), 0 = never", NULL},
    {0},
};
