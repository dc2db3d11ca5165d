/* psoctl: ask a running psod for its state, send it operator requests,
 * make CURVE keys.
 *
 *   psoctl status ENDPOINT [--json]          read-only; any allowed peer
 *   psoctl checkpoint ENDPOINT               write a checkpoint now     } admin key
 *   psoctl evict ENDPOINT WORKER             evict a worker (it may rejoin) } needed
 *   psoctl stop ENDPOINT                     final model + checkpoint, exit }
 *   psoctl keygen BASE                       BASE.key (secret) + BASE.pub
 *
 *   options: --curve-secret FILE --curve-server FILE   (CURVE daemons)
 *            --timeout-ms N  --json
 *
 * A plain client of the library. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/psoclient.h"
#include "common/status.h"
#include "common/wire.h"

static void s_print_text(const struct psoc_status *st)
{
    printf("psod %s  strategy %s  round %llu  uptime %.0f s\n", st->version, st->strategy,
           (unsigned long long)st->round, st->uptime_seconds);
    printf("particles %u (active %u, expected %u), pushed this round %u, parameters %llu\n",
           st->particles, st->active, st->workers_expected, st->pushed_this_round,
           (unsigned long long)st->param_count);
    printf("global loss %.6g (particle %d), test accuracy %.2f%%, last round %.2f ms\n",
           st->global_best_loss, st->global_best_particle, 100 * st->global_accuracy,
           st->last_round_seconds * 1e3);
    printf("bytes in %llu, out %llu, refused %llu, errors sent %llu\n",
           (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
           (unsigned long long)st->bytes_refused, (unsigned long long)st->errors_sent);
    for (int i = 1; i < PSOC_ERROR_CODES; i++)
        if (st->errors_by_code[i])
            printf("  %-22s %llu\n", wire_error_name(i), (unsigned long long)st->errors_by_code[i]);
    printf("connections %u open (max %u, 0 = no limit), %llu refused; traffic %s\n",
           st->peers_connected, st->max_peers, (unsigned long long)st->peers_refused,
           st->encrypted ? "encrypted (CURVE)" : "NOT encrypted");
    if (st->n_shards) {
        printf("sharded over %zu daemons; this is shard %u%s\n", st->n_shards, st->shard_index,
               st->shard_index ? " (ranges and rounds: ask shard 0, the coordinator)" : "");
        printf("%5s %-40s %12s %12s %10s %s\n", "shard", "endpoint", "offset", "length", "round",
               "state");
        for (size_t k = 0; k < st->n_shards; k++) {
            const struct psoc_shard_status *q = &st->shard[k];
            printf("%5u %-40s %12llu %12llu %10llu %s\n", q->index, q->endpoint,
                   (unsigned long long)q->offset, (unsigned long long)q->length,
                   (unsigned long long)q->round,
                   st->shard_index ? "-" : q->connected ? "in the swarm" : "LOST: rounds wait");
        }
    }
    if (st->n_particles)
        printf("%4s %-24s %7s %5s %12s %12s %8s %8s %s\n", "id", "worker", "active", "wire",
               "last loss", "best loss", "age s", "pushes", "round");
    for (size_t i = 0; i < st->n_particles; i++) {
        const struct psoc_particle_status *p = &st->particle[i];
        printf("%4u %-24s %7s %5s %12.6g %12.6g %8.1f %8llu %s\n", p->id, p->name,
               p->active ? "yes" : p->evicted ? "evicted" : "no", psoc_wire_name(p->wire),
               p->last_loss, p->best_loss, p->age_seconds,
               (unsigned long long)p->pushes,
               p->pushed_this_round ? "pushed" : p->active ? "round waits for it" : "-");
    }
}

static int s_print_json(const struct psoc_status *st)
{
    char *text = status_json(st);
    if (!text) {
        fprintf(stderr, "psoctl: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int s_usage(FILE *f)
{
    fprintf(f, "usage: psoctl status ENDPOINT [--json]\n"
               "       psoctl checkpoint|stop ENDPOINT\n"
               "       psoctl evict ENDPOINT WORKER\n"
               "       psoctl keygen BASE       (writes BASE.key, mode 0600, and BASE.pub)\n"
               "options: --curve-secret FILE --curve-server FILE (for a CURVE daemon),\n"
               "         --timeout-ms N (default 5000)\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return s_usage(stdout);
    if (argc < 3)
        return s_usage(stderr);
    const char *cmd = argv[1];
    char err[512];
    if (!strcmp(cmd, "keygen")) {
        if (argc != 3)
            return s_usage(stderr);
        if (keys_generate(argv[2], err, sizeof err) != 0) {
            fprintf(stderr, "psoctl: %s\n", err);
            return 1;
        }
        printf("wrote %s.key (secret, mode 0600) and %s.pub (copy it to psod's --allow or "
               "--admin directory)\n", argv[2], argv[2]);
        return 0;
    }
    int action = !strcmp(cmd, "checkpoint") ? PSOC_ADMIN_CHECKPOINT
                 : !strcmp(cmd, "evict")    ? PSOC_ADMIN_EVICT
                 : !strcmp(cmd, "stop")     ? PSOC_ADMIN_STOP
                                            : 0;
    if (!action && strcmp(cmd, "status") != 0) {
        fprintf(stderr, "psoctl: unknown command '%s'\n", cmd);
        return s_usage(stderr);
    }
    const char *worker = NULL, *secret = NULL, *server = NULL;
    int json = 0, first = 3;
    if (action == PSOC_ADMIN_EVICT) {
        if (argc < 4)
            return s_usage(stderr);
        worker = argv[3];
        first = 4;
    }
    struct psoc_options o;
    psoc_options_default(&o);
    o.connect_timeout_ms = 5000;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && !action)
            json = 1;
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            o.connect_timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--curve-secret") && i + 1 < argc)
            secret = argv[++i];
        else if (!strcmp(argv[i], "--curve-server") && i + 1 < argc)
            server = argv[++i];
        else {
            fprintf(stderr, "psoctl: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if ((secret != NULL) != (server != NULL)) {
        fprintf(stderr, "psoctl: CURVE needs both --curve-secret and --curve-server\n");
        return 2;
    }
    if (secret && psoc_options_curve(&o, secret, server, err, sizeof err) != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    struct psoc *c;
    if (psoc_open(&c, argv[2], NULL, &o, err, sizeof err) != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    if (action) {
        char reply[512];
        int rc = psoc_admin(c, action, worker, reply, sizeof reply, err, sizeof err);
        psoc_close(&c);
        if (rc != PSOC_OK) {
            fprintf(stderr, "psoctl: %s\n", err);
            return 1;
        }
        printf("%s\n", reply);
        return 0;
    }
    struct psoc_status st;
    int rc = psoc_status(c, 1, &st, err, sizeof err);
    psoc_close(&c);
    if (rc != PSOC_OK) {
        fprintf(stderr, "psoctl: %s\n", err);
        return 1;
    }
    rc = 0;
    if (json)
        rc = s_print_json(&st);
    else
        s_print_text(&st);
    psoc_status_free(&st);
    return rc;
}
