/* psod's option table: struct server_config, then each strategy's
 * options. See server.h. */
#include "server/server_int.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "server/strategy/strategy.h"

static const char *const s_modes[] = {"sync", "async", NULL};

/* --preset: the options docs/RESULTS.md's scenario campaign found best for
 * a kind of cluster. They go before the command line's own (server_preset_argv),
 * so an option given explicitly still wins. One list: the table and the
 * option's choices come from it.
 *   healthy: IID shards, healthy workers: averaging matched or beat every
 *     pso form at every sync interval measured (1 to 256).
 *   skewed: label-skewed shards: pso with its defaults, the workers pushing
 *     the shared held-out loss (their --fitness auto does under
 *     --shard-mode); +15 points over averaging at Dirichlet 0.1.
 *   faulty: workers that may be bad or malicious (wrong labels, crafted
 *     weights, lying losses and verdicts): averaging under centered
 *     clipping, the smallest worst-case loss against the clean run over
 *     every attack and scenario of docs/RESULTS.md's robust campaign (it
 *     never reads a worker's claimed loss, so lies cost it nothing). */
#define PRESET_LIST(X)                                          \
    X(none, NULL)                                               \
    X(healthy, "--strategy", "avg", NULL)                       \
    X(skewed, "--strategy", "pso", "--attractor", "mean", NULL) \
    X(faulty, "--strategy", "avg", "--aggregate", "cclip", NULL)
#define PRESET_ROW(name, ...) {#name, {__VA_ARGS__}},
#define PRESET_NAME(name, ...) #name,
static const struct server_preset {
    const char *name;
    const char *const argv[10];
} s_presets[] = {PRESET_LIST(PRESET_ROW)};
#define PRESETS (sizeof s_presets / sizeof *s_presets)
static const char *const s_preset_names[] = {PRESET_LIST(PRESET_NAME) NULL};

char **server_preset_argv(int argc, char **argv, int *argc_out, char *err, size_t errlen)
{
    const char *name = config_find_arg(argc, argv, "--preset");
    size_t k = 0;
    for (; name && k < PRESETS; k++)
        if (strcmp(name, s_presets[k].name) == 0)
            break;
    if (name && k == PRESETS) {
        int n = snprintf(err, errlen, "unknown --preset '%s' (choose", name);
        for (size_t j = 0; j < PRESETS && n > 0 && (size_t)n < errlen; j++)
            n += snprintf(err + n, errlen - (size_t)n, "%s %s", j ? "," : "", s_presets[j].name);
        if (n > 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ")");
        return NULL;
    }
    int extra = 0;
    while (name && s_presets[k].argv[extra])
        extra++;
    char **out = calloc((size_t)argc + (size_t)extra + 1, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    out[0] = argv[0];
    for (int i = 0; i < extra; i++)
        out[1 + i] = (char *)s_presets[k].argv[i];
    for (int i = 1; i < argc; i++)
        out[extra + i] = argv[i];
    *argc_out = argc + extra;
    return out;
}
#define C(f) offsetof(struct server_config, f)
/* One row per option, as the table reads. */
/* clang-format off */
static const struct config_option s_options[] = {
    OPT_GROUP("The swarm"),
    OPT_STRING("bind", C(bind), "tcp://127.0.0.1:5555",
        "ZeroMQ endpoint to listen on: an explicit interface address and port (port * = any free)"),
    OPT_STRING("endpoint-file", C(endpoint_file), "",
        "write the bound endpoint to this file once listening"),
    OPT_INT("workers", C(workers), "4", 1, 65536,
        "particles a round waits for (the swarm size)"),
    OPT_ENUM("strategy", C(strategy), "pso", strategy_choices,
        "synchronization strategy (docs/STRATEGIES.md); pso is PSO-PS"),
    OPT_ENUM("preset", C(preset), "none", s_preset_names,
        "options for a kind of cluster, from docs/RESULTS.md (options given explicitly still "
        "win): healthy (IID shards, healthy workers: --strategy avg), skewed (label-skewed "
        "shards: pso, the workers' --fitness auto pushing a shared held-out loss), faulty "
        "(workers that may be bad, malicious or lie: --strategy avg --aggregate cclip)"),
    OPT_ENUM("mode", C(mode), "sync", s_modes,
        "sync: rounds with a barrier; async: each push is answered at once from the current "
        "state, so a slow worker slows only itself (pso and avg)"),
    OPT_STRING("wire", C(wire_spec), "any",
        "payload encoding of pushes and positions: any = what each worker's hello asks for; "
        "fp32, fp16, bf16, int8, int4, int2, topk:DENSITY[:KIND] (sparse: that share of "
        "each change's entries, the largest), frag:F[:KIND] (the vector in F parts, part "
        "round mod F synced each round) = imposed on every worker (changes against "
        "shared state, with error feedback; PROTOCOL.md)"),
    OPT_INT("seed", C(seed), "1", 0, 9.2e18,
        "seed of the swarm's random factors"),
    OPT_INT("max-rounds", C(max_rounds), "0", 0, 9.2e18,
        "exit cleanly after this many rounds, 0 = run until signalled"),
    OPT_INT("quorum", C(quorum), "0", 0, 65536,
        "close a round as soon as this many workers pushed, 0 = all live workers"),
    OPT_DOUBLE("round-timeout", C(round_timeout), "0", 0, 1e9,
        "close a round this many seconds after its first push, with whoever pushed; 0 = wait "
        "for every live worker"),
    OPT_INT("max-workers", C(max_workers), "0", 0, 65536,
        "particles allowed in all: more workers than --workers may join a running swarm "
        "(they start from the global model); 0 = --workers"),
    OPT_INT("threads", C(threads), "0", 0, 64,
        "threads that check pushes and compute updates and means, split by element ranges "
        "(the same bits as one thread; vectors under 512 Ki elements stay on one); the poll "
        "loop stays on one. 0 = the cores this process may use"),
    OPT_GROUP("Liveness"),
    OPT_INT("heartbeat-ms", C(heartbeat_ms), "1000", 10, 3.6e6,
        "interval workers send heartbeats at (told to them at join)"),
    OPT_INT("liveness", C(liveness), "10", 1, 1000000,
        "heartbeat intervals without a word before a worker is evicted"),
    OPT_DOUBLE("progress-factor", C(progress_factor), "20", 0, 1e6,
        "evict a worker that has not pushed for this many times its own slowest interval "
        "between pushes (and at least --heartbeat-ms x --liveness) while the round waits for "
        "it, though its heartbeats go on (a hung main thread); 0 = heartbeats alone"),
    OPT_DOUBLE("retire-after", C(retire_after), "0", 0, 1e9,
        "seconds a departed or evicted worker keeps its particle; then a new worker may take "
        "the slot over (from the global model); 0 = forever"),
    OPT_GROUP("Output"),
    OPT_DOUBLE("progress-interval", C(progress_interval), "10", 0, 86400,
        "seconds between progress lines, 0 = none"),
    OPT_STRING("metrics", C(metrics), "",
        "JSON-lines file: one line per round (losses, accuracies, bytes, times)"),
    OPT_STRING("model-out", C(model_out), "",
        "write the global model here at the end and every --save-every rounds"),
    OPT_INT("save-every", C(save_every), "0", 0, 9.2e18,
        "rounds between model files, 0 = only at the end"),
    OPT_BOOL("exit-when-done", C(exit_when_done), "no",
        "exit once every worker has said bye (one training run per daemon)"),
    OPT_STRING("http", C(http), "",
        "serve /metrics (Prometheus), a status page (/) and /status.json at ADDRESS:PORT "
        "(an interface's address, as for --bind; port 0 = any free); read-only, off when empty"),
    OPT_INT("http-max-connections", C(http_max_connections), "16", 1, 1024,
        "HTTP connections served at once; more are refused"),
    OPT_INT("http-max-particles", C(http_max_particles), "64", 0, 65536,
        "particles given their own series in /metrics (bounds its label cardinality)"),
    OPT_GROUP("Checkpoints"),
    OPT_STRING("checkpoint-dir", C(checkpoint_dir), "",
        "write the whole swarm state here (atomically, with a checksum); empty = never"),
    OPT_INT("checkpoint-every", C(checkpoint_every), "100", 0, 9.2e18,
        "rounds between checkpoints, 0 = by time only"),
    OPT_DOUBLE("checkpoint-seconds", C(checkpoint_seconds), "60", 0, 1e9,
        "seconds between checkpoints, 0 = by rounds only"),
    OPT_INT("keep", C(keep), "3", 1, 1000,
        "checkpoint generations kept"),
    OPT_STRING("resume", C(resume), "",
        "restore the newest intact checkpoint in this directory (a corrupt one is skipped "
        "for the one before); checkpoints then go on there unless --checkpoint-dir says "
        "otherwise; a missing directory or one without checkpoints is an error"),
    OPT_BOOL("resume-or-start", C(resume_or_start), "no",
        "with --resume: start a new swarm (and create the directory) when there is nothing "
        "to resume, e.g. a job's first start"),
    OPT_GROUP("Security and limits"),
    OPT_STRING("curve-secret", C(curve_secret), "",
        "the daemon's CURVE key pair (psoctl keygen): authenticate and encrypt every "
        "connection; needs --allow"),
    OPT_STRING("allow", C(allow), "",
        "directory of NAME.pub public keys of the workers that may connect (CURVE)"),
    OPT_STRING("admin", C(admin), "",
        "directory of NAME.pub public keys that may send admin requests (psoctl checkpoint, "
        "evict, stop); none without it"),
    OPT_STRING("admin-token-file", C(admin_token_file), "auto",
        "without CURVE: where psod writes a random token (mode 0600, removed at exit) that psoctl "
        "on this host sends to make admin requests: auto = $XDG_RUNTIME_DIR/psod/ (else "
        "/tmp/psod-UID/) admin-PORT.token, none = off; whoever cannot read it is refused"),
    OPT_INT("max-peers", C(max_peers), "1024", 0, 1000000,
        "open connections allowed (each worker holds two, psoctl one); more are refused "
        "and logged; 0 = no limit"),
    OPT_INT("max-payload-mb", C(max_payload_mb), "1024", 1, 1 << 20,
        "largest payload frame accepted, MiB (bounds memory a peer can make us allocate)"),
    OPT_INT("max-meta-kb", C(max_meta_kb), "64", 1, 65536,
        "largest metadata frame accepted, KiB"),
    OPT_GROUP("Shards (several daemons, one model)"),
    OPT_STRING("shards", C(shards), "",
        "sharded swarm: the endpoints of every daemon, comma-separated, the same list on "
        "each; the first coordinates (PROTOCOL.md, Shards); empty = one daemon"),
    OPT_INT("shard-index", C(shard_index), "0", 0, 63,
        "which entry of --shards this daemon is; it listens there unless --bind is given"),
    OPT_GROUP("Hyperparameter particles (--hyper)"),
    OPT_BOOL("hyper", C(hyper), "no",
        "particles also carry a learning rate and a momentum, which the workers train with "
        "and a second swarm moves toward the values whose pushes had the lowest loss (in the "
        "manner of population-based training; give the workers --fitness shared); any "
        "strategy but ssgd, --mode sync, one daemon"),
    OPT_DOUBLE("hyper-lr-min", C(hyper_lr_min), "0.005", 1e-12, 1e6,
        "--hyper: the smallest learning rate (searched in log space)"),
    OPT_DOUBLE("hyper-lr-max", C(hyper_lr_max), "0.2", 1e-12, 1e6,
        "--hyper: the largest learning rate"),
    OPT_DOUBLE("hyper-momentum-min", C(hyper_mom_min), "0.5", 0, 0.999,
        "--hyper: the smallest momentum"),
    OPT_DOUBLE("hyper-momentum-max", C(hyper_mom_max), "0.95", 0, 0.999,
        "--hyper: the largest momentum"),
    OPT_DOUBLE("hyper-w", C(hyper_w), "0.5", 0, 10,
        "--hyper: inertia of the points"),
    OPT_DOUBLE("hyper-c1", C(hyper_c1), "1", 0, 10,
        "--hyper: pull of a particle's point toward its best one"),
    OPT_DOUBLE("hyper-c2", C(hyper_c2), "1", 0, 10,
        "--hyper: pull toward the swarm's best point"),
    {0},
};
/* clang-format on */
#undef C

const struct config_table *server_options(struct server_config *c,
                                          struct config_table t[SERVER_OPTION_TABLES])
{
    t[0] = (struct config_table){s_options, c};
    for (int j = 0; j < STRATEGY_COUNT; j++)
        t[1 + j] = (struct config_table){strategy_all[j]->options, &c->sp};
    t[1 + STRATEGY_COUNT] = (struct config_table){agg_options, &c->sp.agg};
    t[SERVER_OPTION_TABLES - 1] = (struct config_table){NULL, NULL};
    return t;
}

int srv_parse_wire(struct server_config *cfg, char *err, size_t errlen)
{
    cfg->wire = 0;
    cfg->wire_density = 0;
    cfg->wire_fragments = 0;
    if (strcmp(cfg->wire_spec, "any") == 0)
        return 0;
    int kind;
    if (codec_spec_parse(cfg->wire_spec, &kind, &cfg->wire_density, &cfg->wire_fragments) != 0) {
        snprintf(err, errlen,
                 "--wire %s: any, fp32, fp16, bf16, int8, int4, int2, topk:DENSITY[:KIND] "
                 "with 0 < DENSITY <= 1 or frag:F[:KIND] with 2 <= F <= %u",
                 cfg->wire_spec, CODEC_MAX_FRAGMENTS);
        return -1;
    }
    cfg->wire = kind + 1;
    return 0;
}
