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

#include "common/crc32c.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "server/strategy/strategy.h"

static const char *const s_modes[] = {"sync", "async", NULL};

/* --preset: the options docs/RESULTS.md's scenario campaign found best for
 * a kind of cluster. They go before the command line's own (server_preset_argv),
 * so an option given explicitly still wins. */
static const struct server_preset {
    const char *name;
    const char *const argv[10];
} s_presets[] = {
    {"none", {NULL}},
    /* IID shards, healthy workers: averaging matched or beat every pso form
     * at every sync interval measured (1 to 256). */
    {"healthy", {"--strategy", "avg", NULL}},
    /* Label-skewed shards: pso with its defaults, the workers pushing the
     * shared held-out loss (their --fitness auto does under --shard-mode);
     * +15 points over averaging at Dirichlet 0.1. */
    {"skewed", {"--strategy", "pso", "--attractor", "mean", NULL}},
    /* Workers that may be bad or malicious (wrong labels, crafted weights,
     * lying losses and verdicts): averaging under centered clipping, the
     * smallest worst-case loss against the clean run over every attack and
     * scenario of docs/RESULTS.md's robust campaign (it never reads a
     * worker's claimed loss, so lies cost it nothing). */
    {"faulty", {"--strategy", "avg", "--aggregate", "cclip", NULL}},
};
#define PRESETS (sizeof s_presets / sizeof *s_presets)
static const char *const s_preset_names[] = {"none", "healthy", "skewed", "faulty", NULL};

char **server_preset_argv(int argc, char **argv, int *argc_out, char *err, size_t errlen)
{
    const char *name = config_find_arg(argc, argv, "--preset");
    size_t k = 0;
    for (; name && k < PRESETS; k++)
        if (strcmp(name, s_presets[k].name) == 0)
            break;
    if (name && k == PRESETS) {
        snprintf(err, errlen, "unknown --preset '%s' (choose none, healthy, skewed, faulty)",
                 name);
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
/* "any", then the codec's kinds in order: value - 1 is the kind. */
static const char *const s_wires[] = {"any", "fp32", "fp16", "bf16", "int8", NULL};

#define C(f) offsetof(struct server_config, f)
static const struct config_option s_options[] = {
    {"The swarm", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"bind", CONF_STRING, C(bind), "tcp://127.0.0.1:5555", 1, 0,
     "ZeroMQ endpoint to listen on: an explicit interface address and port (port * = any free)", NULL},
    {"endpoint-file", CONF_STRING, C(endpoint_file), "", 1, 0,
     "write the bound endpoint to this file once listening", NULL},
    {"workers", CONF_INT, C(workers), "4", 1, 65536,
     "particles a round waits for (the swarm size)", NULL},
    {"strategy", CONF_ENUM, C(strategy), "pso", 1, 0,
     "synchronization strategy (docs/STRATEGIES.md); pso is PSO-PS",
     strategy_choices},
    {"preset", CONF_ENUM, C(preset), "none", 1, 0,
     "options for a kind of cluster, from docs/RESULTS.md (options given explicitly still "
     "win): healthy (IID shards, healthy workers: --strategy avg), skewed (label-skewed "
     "shards: pso, the workers' --fitness auto pushing a shared held-out loss), faulty "
     "(workers that may be bad, malicious or lie: --strategy avg --aggregate cclip)",
     s_preset_names},
    {"mode", CONF_ENUM, C(mode), "sync", 1, 0,
     "sync: rounds with a barrier; async: each push is answered at once from the current "
     "state, so a slow worker slows only itself (pso and avg)", s_modes},
    {"wire", CONF_ENUM, C(wire), "any", 1, 0,
     "payload encoding of pushes and positions: any = what each worker's hello asks for; "
     "fp32, fp16, bf16 or int8 = imposed on every worker (changes against shared state, "
     "with error feedback; PROTOCOL.md)", s_wires},
    {"seed", CONF_INT, C(seed), "1", 0, 9.2e18, "seed of the swarm's random factors", NULL},
    {"max-rounds", CONF_INT, C(max_rounds), "0", 0, 9.2e18,
     "exit cleanly after this many rounds, 0 = run until signalled", NULL},
    {"quorum", CONF_INT, C(quorum), "0", 0, 65536,
     "close a round as soon as this many workers pushed, 0 = all live workers", NULL},
    {"round-timeout", CONF_DOUBLE, C(round_timeout), "0", 0, 1e9,
     "close a round this many seconds after its first push, with whoever pushed; 0 = wait "
     "for every live worker", NULL},
    {"max-workers", CONF_INT, C(max_workers), "0", 0, 65536,
     "particles allowed in all: more workers than --workers may join a running swarm "
     "(they start from the global model); 0 = --workers", NULL},
    {"Liveness", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"heartbeat-ms", CONF_INT, C(heartbeat_ms), "1000", 10, 3.6e6,
     "interval workers send heartbeats at (told to them at join)", NULL},
    {"liveness", CONF_INT, C(liveness), "10", 1, 1000000,
     "heartbeat intervals without a word before a worker is evicted", NULL},
    {"progress-factor", CONF_DOUBLE, C(progress_factor), "20", 0, 1e6,
     "evict a worker that has not pushed for this many times its own slowest interval "
     "between pushes (and at least --heartbeat-ms x --liveness) while the round waits for "
     "it, though its heartbeats go on (a hung main thread); 0 = heartbeats alone", NULL},
    {"retire-after", CONF_DOUBLE, C(retire_after), "0", 0, 1e9,
     "seconds a departed or evicted worker keeps its particle; then a new worker may take "
     "the slot over (from the global model); 0 = forever", NULL},
    {"Output", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"progress-interval", CONF_DOUBLE, C(progress_interval), "10", 0, 86400,
     "seconds between progress lines, 0 = none", NULL},
    {"metrics", CONF_STRING, C(metrics), "", 1, 0,
     "JSON-lines file: one line per round (losses, accuracies, bytes, times)", NULL},
    {"model-out", CONF_STRING, C(model_out), "", 1, 0,
     "write the global model here at the end and every --save-every rounds", NULL},
    {"save-every", CONF_INT, C(save_every), "0", 0, 9.2e18,
     "rounds between model files, 0 = only at the end", NULL},
    {"exit-when-done", CONF_BOOL, C(exit_when_done), "no", 1, 0,
     "exit once every worker has said bye (one training run per daemon)", NULL},
    {"http", CONF_STRING, C(http), "", 1, 0,
     "serve /metrics (Prometheus), a status page (/) and /status.json at ADDRESS:PORT "
     "(an interface's address, as for --bind; port 0 = any free); read-only, off when empty",
     NULL},
    {"http-max-connections", CONF_INT, C(http_max_connections), "16", 1, 1024,
     "HTTP connections served at once; more are refused", NULL},
    {"http-max-particles", CONF_INT, C(http_max_particles), "64", 0, 65536,
     "particles given their own series in /metrics (bounds its label cardinality)", NULL},
    {"Checkpoints", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"checkpoint-dir", CONF_STRING, C(checkpoint_dir), "", 1, 0,
     "write the whole swarm state here (atomically, with a checksum); empty = never", NULL},
    {"checkpoint-every", CONF_INT, C(checkpoint_every), "100", 0, 9.2e18,
     "rounds between checkpoints, 0 = by time only", NULL},
    {"checkpoint-seconds", CONF_DOUBLE, C(checkpoint_seconds), "60", 0, 1e9,
     "seconds between checkpoints, 0 = by rounds only", NULL},
    {"keep", CONF_INT, C(keep), "3", 1, 1000, "checkpoint generations kept", NULL},
    {"resume", CONF_STRING, C(resume), "", 1, 0,
     "restore the newest intact checkpoint in this directory (a corrupt one is skipped "
     "for the one before); checkpoints then go on there unless --checkpoint-dir says "
     "otherwise; a missing directory or one without checkpoints is an error", NULL},
    {"resume-or-start", CONF_BOOL, C(resume_or_start), "no", 1, 0,
     "with --resume: start a new swarm (and create the directory) when there is nothing "
     "to resume, e.g. a job's first start", NULL},
    {"Security and limits", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"curve-secret", CONF_STRING, C(curve_secret), "", 1, 0,
     "the daemon's CURVE key pair (psoctl keygen): authenticate and encrypt every "
     "connection; needs --allow", NULL},
    {"allow", CONF_STRING, C(allow), "", 1, 0,
     "directory of NAME.pub public keys of the workers that may connect (CURVE)", NULL},
    {"admin", CONF_STRING, C(admin), "", 1, 0,
     "directory of NAME.pub public keys that may send admin requests (psoctl checkpoint, "
     "evict, stop); none without it", NULL},
    {"admin-token-file", CONF_STRING, C(admin_token_file), "auto", 1, 0,
     "without CURVE: where psod writes a random token (mode 0600, removed at exit) that psoctl "
     "on this host sends to make admin requests: auto = $XDG_RUNTIME_DIR/psod/ (else "
     "/tmp/psod-UID/) admin-PORT.token, none = off; whoever cannot read it is refused", NULL},
    {"max-peers", CONF_INT, C(max_peers), "1024", 0, 1000000,
     "open connections allowed (each worker holds two, psoctl one); more are refused "
     "and logged; 0 = no limit", NULL},
    {"max-payload-mb", CONF_INT, C(max_payload_mb), "1024", 1, 1 << 20,
     "largest payload frame accepted, MiB (bounds memory a peer can make us allocate)", NULL},
    {"max-meta-kb", CONF_INT, C(max_meta_kb), "64", 1, 65536,
     "largest metadata frame accepted, KiB", NULL},
    {"Shards (several daemons, one model)", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"shards", CONF_STRING, C(shards), "", 1, 0,
     "sharded swarm: the endpoints of every daemon, comma-separated, the same list on "
     "each; the first coordinates (PROTOCOL.md, Shards); empty = one daemon", NULL},
    {"shard-index", CONF_INT, C(shard_index), "0", 0, 63,
     "which entry of --shards this daemon is; it listens there unless --bind is given", NULL},
    {"Hyperparameter particles (--hyper)", CONF_GROUP, 0, NULL, 1, 0, NULL, NULL},
    {"hyper", CONF_BOOL, C(hyper), "no", 1, 0,
     "particles also carry a learning rate and a momentum, which the workers train with "
     "and a second swarm moves toward the values whose pushes had the lowest loss (in the "
     "manner of population-based training; give the workers --fitness shared); any "
     "strategy but ssgd, --mode sync, one daemon", NULL},
    {"hyper-lr-min", CONF_DOUBLE, C(hyper_lr_min), "0.005", 1e-12, 1e6,
     "--hyper: the smallest learning rate (searched in log space)", NULL},
    {"hyper-lr-max", CONF_DOUBLE, C(hyper_lr_max), "0.2", 1e-12, 1e6,
     "--hyper: the largest learning rate", NULL},
    {"hyper-momentum-min", CONF_DOUBLE, C(hyper_mom_min), "0.5", 0, 0.999,
     "--hyper: the smallest momentum", NULL},
    {"hyper-momentum-max", CONF_DOUBLE, C(hyper_mom_max), "0.95", 0, 0.999,
     "--hyper: the largest momentum", NULL},
    {"hyper-w", CONF_DOUBLE, C(hyper_w), "0.5", 0, 10, "--hyper: inertia of the points", NULL},
    {"hyper-c1", CONF_DOUBLE, C(hyper_c1), "1", 0, 10,
     "--hyper: pull of a particle's point toward its best one", NULL},
    {"hyper-c2", CONF_DOUBLE, C(hyper_c2), "1", 0, 10,
     "--hyper: pull toward the swarm's best point", NULL},
    {0},
};
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
