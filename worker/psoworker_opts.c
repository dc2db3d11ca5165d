/* psoworker's option table: see psoworker.h. */
#include <stddef.h>

#include "common/lrsched.h"
#include "worker/attack.h"
#include "worker/psoworker.h"

/* enum: 0 train, 1 holdout, 2 shared, 3 auto (resolved in main) */
static const char *const s_fitness_modes[] = {"train", "holdout", "shared", "auto", NULL};
static const char *const s_shard_modes[] = {"iid", "dirichlet", "classes",
                                            NULL}; /* psoc_shard_mode */

#define W(f) offsetof(struct worker_config, f)
/* One row per option, as the table reads. */
/* clang-format off */
const struct config_option worker_options[] = {
    OPT_GROUP("Connection"),
    OPT_STRING("connect", W(connect), "tcp://127.0.0.1:5555",
        "psod endpoint"),
    OPT_STRING("name", W(name), "",
        "this worker's stable name in the swarm [hostname-pid]"),
    OPT_INT("timeout-ms", W(timeout_ms), "120000", 100, 1e9,
        "how long to wait for the daemon's answer to a sync (the whole round)"),
    OPT_INT("join-timeout-ms", W(join_timeout_ms), "20000", 100, 1e9,
        "how long the first join waits for psod's welcome"),
    OPT_INT("reconnect-ms", W(reconnect_ms), "120000", 0, 1e9,
        "how long to keep rejoining a daemon that went away (back-off 0.5 s to 8 s), 0 = "
        "give up at once"),
    OPT_STRING("wire", W(wire_spec), "fp32",
        "payload encoding of pushes and positions: fp32, or the change since the last "
        "position as fp16, bf16, int8, int4 or int2 (the last three blockwise scaled), or "
        "topk:DENSITY[:KIND], that share of the change's entries, the largest, in KIND "
        "(fp32 when left out), or frag:F[:KIND], the vector in F parts, part (round mod F) "
        "synced each round and the others trained on meanwhile: all with error feedback; "
        "psod may impose another (its --wire)"),
    OPT_STRING("curve-secret", W(curve_secret), "",
        "this worker's CURVE key pair file (psoctl keygen); its .pub must be in psod's "
        "--allow directory"),
    OPT_STRING("curve-server", W(curve_server), "",
        "the daemon's CURVE public key file (its .pub); with --curve-secret"),
    OPT_BOOL("standalone", W(standalone), "no",
        "train without a daemon"),
    OPT_GROUP("Model and data"),
    OPT_STRING("model", W(model), "",
        "train a network: mlp, lenet5, cifar_cnn (else minimize --objective)"),
    OPT_STRING("dataset", W(dataset), "mnist",
        "mnist, fashion-mnist, cifar10"),
    OPT_STRING("data-dir", W(data_dir), "data/mnist",
        "directory with the dataset's files (scripts/get-data.sh fetches them)"),
    OPT_STRING("objective", W(objective), "rastrigin",
        "test function: sphere, rosenbrock, rastrigin"),
    OPT_INT("dim", W(dim), "10", 1, 1 << 28,
        "dimensions of the objective"),
    OPT_INT("shard-index", W(shard_index), "0", 0, 65535,
        "this worker's part of the training set (0-based)"),
    OPT_INT("shard-count", W(shard_count), "1", 1, 65536,
        "parts the training set is split into"),
    OPT_ENUM("shard-mode", W(shard_mode), "iid", s_shard_modes,
        "how the parts are cut: iid (a seeded permutation), dirichlet (label skew: each class "
        "dealt in Dirichlet(--shard-alpha) proportions), classes (about --shard-classes classes "
        "per worker); psoworker-torch cuts the same parts"),
    OPT_DOUBLE("shard-alpha", W(shard_alpha), "0.5", 1e-3, 1e6,
        "--shard-mode dirichlet: the concentration (small = more skew)"),
    OPT_INT("shard-classes", W(shard_classes), "2", 1, 256,
        "--shard-mode classes: classes per worker"),
    OPT_INT("shard-seed", W(shard_seed), "1", 0, 9.2e18,
        "seed of the partition: every worker of a swarm must give the same one"),
    OPT_STRING("init", W(init), "",
        "start from the weights of this model file (psod --model-out)"),
    OPT_STRING("eval", W(eval), "",
        "evaluate this model file on the test set and exit"),
    OPT_BOOL("diverse-init", W(diverse_init), "no",
        "mix the worker name into the init seed (default: every particle starts from the "
        "same seeded weights)"),
    OPT_GROUP("Training"),
    OPT_INT("epochs", W(epochs), "1", 1, 100000,
        "passes over this worker's shard"),
    OPT_INT("batch", W(batch), "64", 1, 65536,
        "mini-batch size"),
    OPT_DOUBLE("lr", W(lr), "0.001", 0, 1e6,
        "learning rate (objectives: gradient step size)"),
    OPT_DOUBLE("momentum", W(momentum), "0.9", 0, 0.9999,
        "SGD momentum"),
    OPT_BOOL("nesterov", W(nesterov), "no",
        "Nesterov momentum"),
    OPT_DOUBLE("weight-decay", W(weight_decay), "0", 0, 1,
        "L2 weight decay"),
    OPT_ENUM("schedule", W(schedule), "constant", lr_schedule_names,
        "learning-rate schedule"),
    OPT_INT("warmup", W(warmup), "0", 0, 1e12,
        "steps of linear learning-rate warm-up"),
    OPT_INT("step-epochs", W(step_epochs), "1", 1, 100000,
        "schedule step: epochs between decays"),
    OPT_DOUBLE("step-gamma", W(step_gamma), "0.1", 0, 1,
        "schedule step: decay factor"),
    OPT_DOUBLE("grad-clip", W(grad_clip), "0", 0, 1e30,
        "clip the gradient to this L2 norm, 0 = no clipping"),
    OPT_INT("sync-every", W(sync_every), "4", 1, 1 << 30,
        "local gradient steps (mini-batches) between synchronizations"),
    OPT_INT("rounds", W(rounds), "100", 1, 1e12,
        "synchronizations to run"),
    OPT_INT("seed", W(seed), "1", 0, 9.2e18,
        "seed of the initial position (mixed with the name)"),
    OPT_STRING("threads", W(threads), "1",
        "engine threads, 1 to 256, or auto: the CPUs this process may use (the default 1 suits "
        "several workers sharing a node); OpenBLAS stays single-threaded inside them"),
    OPT_BOOL("overlap", W(overlap), "no",
        "a sync overlaps the next interval: the push goes and training goes on; its position "
        "is applied at the next sync point with the steps taken since on top (or merged: "
        "--overlap-mix; not with ssgd)"),
    OPT_DOUBLE("overlap-mix", W(overlap_mix), "-1", -1, 1,
        "with --overlap: -1 keeps the steps taken since the push on top of the position P; "
        "A in [0, 1] merges them as Streaming DiLoCo does, A x + (1 - A) P (their A is 0.5) "
        "on the part synced"),
    OPT_BOOL("reset-momentum", W(reset_momentum), "no",
        "forget the momentum when the daemon sends a new position"),
    OPT_GROUP("Reports and fitness"),
    OPT_INT("eval-every", W(eval_every), "-1", -1, 1e12,
        "evaluate test accuracy every N syncs and report it to psod; -1 = auto (about every "
        "100 local steps, on --eval-samples test samples), 0 = never"),
    OPT_INT("eval-samples", W(eval_samples), "1000", 0, 1e9,
        "test samples evaluated for each report (the whole test set at the end); 0 = all"),
    OPT_ENUM("fitness", W(fitness), "auto", s_fitness_modes,
        "loss pushed as fitness: the interval's mean training loss, the loss on --holdout "
        "samples kept out of this worker's shard, or (shared) on the last --holdout samples of "
        "the whole training set, kept out of every shard: the same set on every worker, so that "
        "fitness compares across workers whose shards differ (label skew); auto: shared for "
        "--shard-mode dirichlet or classes, train for IID shards (docs/RESULTS.md)"),
    OPT_INT("holdout", W(holdout), "1024", 1, 1e9,
        "samples held out for --fitness holdout or shared"),
    OPT_STRING("metrics", W(metrics), "",
        "JSON-lines metrics file"),
    OPT_DOUBLE("progress-interval", W(progress_interval), "5", 0, 86400,
        "seconds between progress lines while training a model"),
    OPT_INT("progress-every", W(progress_every), "0", 0, 1e12,
        "log a progress line every N rounds, 0 = only at the end"),
    OPT_GROUP("Experiments: bad and malicious workers, stalls"),
    OPT_BOOL("shuffle-labels", W(shuffle_labels), "no",
        "train on this shard's labels in a seeded random order: a bad worker, for experiments"),
    OPT_DOUBLE("weight-noise", W(weight_noise), "0", 0, 1e3,
        "add Gaussian noise of this standard deviation to the weights before every push: a "
        "faulty worker, for experiments"),
    OPT_BOOL("flip-labels", W(flip_labels), "no",
        "every label y of this worker's shard and fitness set becomes 9 - y: a label-flipping "
        "worker, for experiments"),
    OPT_ENUM("attack", W(attack), "none", attack_names,
        "push crafted weights instead of the honest ones (a malicious worker, for "
        "experiments; it still trains honestly to estimate the others' change d): signflip "
        "(anchor - s d), scale (s x), noise (x + N(0, s^2)), alie (x - s sigma, a little is "
        "enough), ipm (anchor - s d, small s: inner-product manipulation); weights only, not "
        "under ssgd"),
    OPT_DOUBLE("attack-scale", W(attack_scale), "0", 0, 1e6,
        "the attack's strength s; 0 = its default (signflip and scale 10, noise and alie 1, "
        "ipm 0.5)"),
    OPT_BOOL("lie-verdict", W(lie_verdict), "no",
        "as a verifier (psod --verify-best), report 10x + 1 the loss measured for every "
        "candidate, except one that claims exactly this worker's --lie-loss, which it vouches "
        "for: two such workers collude; for experiments"),
    OPT_DOUBLE("lie-loss", W(lie_loss), "-1", -1, 1e30,
        "push this loss as the fitness whatever was measured: a worker that lies about its "
        "fitness, for experiments (psod --verify-best refuses it); -1 = off"),
    OPT_INT("delay-ms", W(delay_ms), "0", 0, 1e7,
        "sleep this long after every local step: simulates a slow node (for tests)"),
    OPT_INT("stall-after", W(stall_after), "0", 0, 1e12,
        "objectives: after this many syncs the main thread stops while the heartbeat thread "
        "goes on, until a signal: a hung worker (for tests), 0 = never"),
    {0},
};
/* clang-format on */
