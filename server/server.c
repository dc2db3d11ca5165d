/* psod's serving loop: see server.h and proto/PROTOCOL.md.
 *
 * Membership. A worker is known by its name. Routing ids are the ROUTER's
 * own, one per connection, never chosen by a peer and never handed over, so
 * no peer can take another's connection or its replies. A worker's later
 * hellos (after a reconnect) and its heartbeats prove they are its own with
 * the session its Welcome carried (members.c).
 *
 * Rounds. Round r closes once at least --workers particles exist and every
 * active one has pushed for r. A particle whose worker said bye no longer
 * holds the round up. At the close the strategy (strategy.h) computes each
 * pushed particle's new position in place, in the buffer the push arrived in, and
 * that buffer is both the stored position and (shared by reference count)
 * the Position reply.
 *
 * Peers are never trusted: wire_recv validates framing, each handler checks
 * its fields, and every refusal is an Error reply plus a rate-limited log
 * line. Nothing a peer sends ends the loop. */
#include "server/server_int.h"
#include "server/strategy/swarm.h"
#include "server/strategy/swarm_hyper.h"

#include <sys/stat.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/timeutil.h"
#include "common/wire.h"
#include "common/version.h"

/* The ROUTER socket, its gate and its bind. Returns 0 or -1 with err. */
static int s_listen(struct server *s, const struct server_config *cfg, char *err, size_t errlen)
{
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        snprintf(err, errlen, "cannot create ZeroMQ socket: %s", zmq_strerror(errno));
        return -1;
    }
    struct gate_config gc = {cfg->curve_secret, cfg->allow, cfg->admin, cfg->max_peers};
    if (gate_new(&s->gate, s->ctx, s->sock, &gc, err, errlen) != 0)
        return -1;
    long need = 2 * (cfg->max_workers > cfg->workers ? cfg->max_workers : cfg->workers);
    if (cfg->max_peers > 0 && cfg->max_peers < need)
        log_warn("--max-peers %ld is below the %ld connections %ld workers need (two each)",
                 cfg->max_peers, need, need / 2);
    int one = 1, linger = 0, hwm = 100;
    int64_t maxmsg = (int64_t)(s->lim.max_payload + s->lim.max_meta + 64);
    zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (wire_check_port(cfg->bind, err, errlen) != 0)
        return -1;
    if (zmq_bind(s->sock, cfg->bind) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on '%s': %s%s", cfg->bind, zmq_strerror(e),
                 e == EADDRINUSE      ? " (another process holds the port; pick another --bind)"
                 : e == EADDRNOTAVAIL ? " (no interface of this host has that address)"
                 : e == EINVAL || e == ENODEV || e == EPROTONOSUPPORT
                     ? " (expected tcp://ADDRESS:PORT with an interface's IP address, e.g. "
                       "tcp://10.0.0.1:5555 or tcp://127.0.0.1:* for any free port)"
                     : "");
        return -1;
    }
    size_t len = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len);
    return 0;
}

/* --aggregate and the verification panel: refused at start where they
 * cannot work, with the reason. */
static int s_check_aggregate(const struct server *s, char *err, size_t errlen)
{
    const struct server_config *cfg = &s->cfg;
    const struct agg_params *a = &cfg->sp.agg;
    if (cfg->sp.verify && cfg->sp.verify_quorum > cfg->sp.verify_panel) {
        snprintf(err, errlen,
                 "--verify-quorum %ld is more than --verify-panel %ld: no candidate "
                 "could ever be adopted",
                 cfg->sp.verify_quorum, cfg->sp.verify_panel);
        return -1;
    }
    if (a->rule == AGG_MEAN)
        return 0;
    const char *rule = agg_rule_names[a->rule];
    if (cfg->mode == SERVER_ASYNC) {
        snprintf(err, errlen,
                 "--aggregate %s needs --mode sync: in async mode each push is "
                 "applied alone, so there is no round of pushes to aggregate",
                 rule);
        return -1;
    }
    if (cfg->shards[0] && !agg_elementwise(a->rule)) {
        snprintf(err, errlen,
                 "--aggregate %s works on one daemon only: it needs norms of "
                 "whole changes and each shard holds a slice (median and trimmed are "
                 "element-wise and give the same bits sharded)",
                 rule);
        return -1;
    }
    if (s->ops->candidate && cfg->sp.attractor != PSO_ATTRACT_MEAN) {
        snprintf(err, errlen,
                 "--aggregate %s applies to pso's mean attractor (--attractor "
                 "mean): the personal-best attractor forms no mean, the weighted one weighs "
                 "pushes by the losses workers claim and the mix one by a searched mixture",
                 rule);
        return -1;
    }
    return agg_check(a, cfg->quorum > 0 && cfg->quorum < cfg->workers ? cfg->quorum : cfg->workers,
                     err, errlen);
}

static int s_new(struct server **out, const struct server_config *cfg, int detached, char *err,
                 size_t errlen)
{
    *out = NULL;
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->cfg.sp.seed = (uint64_t)cfg->seed;
    s->cfg.sp.workers = cfg->workers;
    s->ops = strategy_all[cfg->strategy];
    if (cfg->mode == SERVER_ASYNC && !s->ops->push) {
        snprintf(err, errlen, "--mode async works with strategies pso and avg, not %s",
                 s->ops->name);
        free(s);
        return -1;
    }
    if (s->ops->check && s->ops->check(&cfg->sp, err, errlen) != 0) {
        free(s);
        return -1;
    }
    if (cfg->sp.verify && (!s->ops->candidate || cfg->mode == SERVER_ASYNC || cfg->shards[0])) {
        snprintf(err, errlen,
                 "--verify-best works with --strategy pso in --mode sync on one "
                 "daemon (not %s%s%s)",
                 s->ops->candidate ? "" : s->ops->name,
                 cfg->mode == SERVER_ASYNC ? " --mode async" : "",
                 cfg->shards[0] ? " --shards" : "");
        free(s);
        return -1;
    }
    if (s_check_aggregate(s, err, errlen) != 0) {
        free(s);
        return -1;
    }
    if (cfg->hyper &&
        (s->ops->push_kind || cfg->mode == SERVER_ASYNC || cfg->shards[0] ||
         !(cfg->hyper_lr_min < cfg->hyper_lr_max) || !(cfg->hyper_mom_min <= cfg->hyper_mom_max))) {
        snprintf(err, errlen,
                 "--hyper works with a strategy whose workers take local steps (not "
                 "ssgd), in --mode sync on one daemon, with --hyper-lr-min below --hyper-lr-max "
                 "and --hyper-momentum-min at most --hyper-momentum-max");
        free(s);
        return -1;
    }
    if (srv_check_paths(cfg, err, errlen) != 0) {
        free(s);
        return -1;
    }
    if (srv_parse_wire(&s->cfg, err, errlen) != 0) {
        free(s);
        return -1;
    }
    s->g_acc = NAN;
    s->lim.max_meta = (size_t)cfg->max_meta_kb * 1024;
    s->lim.max_payload = (size_t)cfg->max_payload_mb << 20;
    s->ctx = detached ? NULL : zmq_ctx_new();
    if (srv_shard_init(s, err, errlen) != 0) {
        server_destroy(&s);
        return -1;
    }
    /* A shard listens at its own entry of --shards unless told otherwise. */
    if (s->sh.count > 1 && strcmp(s->cfg.bind, "tcp://127.0.0.1:5555") == 0)
        snprintf(s->cfg.bind, sizeof s->cfg.bind, "%s", s->sh.ep[s->sh.index]);
    if (!detached && (!s->ctx || s_listen(s, &s->cfg, err, errlen) != 0)) {
        if (!s->ctx)
            snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        server_destroy(&s);
        return -1;
    }
    if (!detached)
        srv_admin_token(s); /* before the endpoint file: whoever waits for that finds it */
    s->started = time_now_s();
    s->round_started = s->started;
    s->ckpt_time = s->started;
    snprintf(s->ckpt_dir, sizeof s->ckpt_dir, "%s",
             cfg->checkpoint_dir[0] ? cfg->checkpoint_dir : cfg->resume);
    if (s->ckpt_dir[0] && mkdir(s->ckpt_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create checkpoint directory '%s': %s", s->ckpt_dir,
                 strerror(errno));
        server_destroy(&s);
        return -1;
    }
    s->next_progress = s->started + cfg->progress_interval;
    /* The element-range team (the fuzzers' detached daemon keeps to one
     * thread). */
    int threads = cfg->threads > 0 ? (int)cfg->threads : pool_cpus();
    if (!detached && threads > 1) {
        if (threads > POOL_MAX_PARTS)
            threads = POOL_MAX_PARTS;
        if (!(s->team = pool_new(threads, err, errlen))) {
            server_destroy(&s);
            return -1;
        }
        /* Its jobs come a push apart: helpers sleep soon after one,
         * leaving the cores to ZeroMQ's I/O thread and to workers on the
         * head node. */
        pool_set_spins(s->team, 200);
        pool_set_shared(s->team);
        log_info("%d threads check pushes and compute updates and means (--threads)", threads);
    }
    s->swarm_id = (uint64_t)(time_wall_s() * 1e6);
    s->incarnation = s->swarm_id ^ ((uint64_t)getpid() << 40);
    if ((cfg->resume[0] && srv_resume(s, cfg->resume, err, errlen) != 0) ||
        (cfg->metrics[0] && srv_open_metrics(s, err, errlen) != 0) ||
        (!detached && srv_http_start(s, err, errlen) != 0)) {
        server_destroy(&s);
        return -1;
    }
    struct gate_stats gs;
    gate_stats(s->gate, &gs);
    if (gs.encrypted)
        log_info("listening on %s, strategy %s, waiting for %ld workers; CURVE on: traffic is "
                 "encrypted, %zu worker keys allowed, %zu admin keys, at most %ld connections",
                 s->endpoint, s->ops->name, cfg->workers, gs.allowed_keys, gs.admin_keys,
                 cfg->max_peers);
    else
        log_info("listening on %s, strategy %s, waiting for %ld workers; traffic is NOT "
                 "encrypted and peers are not authenticated (use --curve-secret and --allow on "
                 "untrusted networks)",
                 s->endpoint, s->ops->name, cfg->workers);
    /* Last: whoever waits for the endpoint file finds psod set up, its
     * "listening on" line in the log. */
    if (cfg->endpoint_file[0]) {
        char tmp[CONF_STRLEN + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", cfg->endpoint_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", s->endpoint) < 0 || fclose(f) != 0 ||
            rename(tmp, cfg->endpoint_file) != 0) {
            snprintf(err, errlen, "cannot write endpoint file '%s': %s", cfg->endpoint_file,
                     strerror(errno));
            server_destroy(&s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

int server_new(struct server **out, const struct server_config *cfg, char *err, size_t errlen)
{
    return s_new(out, cfg, 0, err, errlen);
}

int server_new_detached(struct server **out, const struct server_config *cfg, char *err,
                        size_t errlen)
{
    return s_new(out, cfg, 1, err, errlen);
}

void server_destroy(struct server **sp)
{
    struct server *s = *sp;
    if (!s)
        return;
    srv_http_stop(s);
    if (s->team) {
        pool_set_shared(NULL);
        pool_destroy(&s->team);
    }
    if (s->admin_token_path[0])
        unlink(s->admin_token_path);
    for (size_t i = 0; i < s->count; i++) {
        zmq_msg_close(&s->m[i].position);
        srv_forget_intended(&s->m[i]);
        if (s->m[i].has_push)
            zmq_msg_close(&s->m[i].push);
    }
    if (s->have_shared)
        zmq_msg_close(&s->shared_position);
    free(s->m);
    free(s->round_x);
    free(s->round_prev);
    free(s->round_loss);
    free(s->round_pbest_loss);
    if (s->st)
        s->ops->destroy(s->st);
    hyper_free(&s->hyper);
    if (s->metrics)
        fclose(s->metrics);
    srv_shard_destroy(s);
    if (s->sock && s->gate)
        zmq_socket_monitor(s->sock, NULL, 0); /* no more events: gate_destroy drains them */
    gate_destroy(&s->gate);
    if (s->sock) {
        /* The last round's positions (and byes' answers) are queued: give
         * them up to 2 s to leave before the socket goes, however slow a
         * peer reads. */
        int linger = 2000;
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s->sock);
    }
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    free(s);
    *sp = NULL;
}

const char *server_endpoint(const struct server *s) { return s->endpoint; }

int server_restart_wanted(const struct server *s, long *round)
{
    *round = s->sh.restart_round;
    return s->sh.restart;
}
uint64_t server_round(const struct server *s) { return s->round; }

void server_global(const struct server *s, double *loss, double *accuracy)
{
    *loss = s->st ? s->ops->global_loss(s->st) : INFINITY;
    *accuracy = s->g_acc;
}

static void s_dispatch(struct server *s, struct wire_msg *in)
{
    switch (in->command) {
    case PSOD__COMMAND__CMD_HELLO: srv_handle_hello(s, in); break;
    case PSOD__COMMAND__CMD_PUSH: srv_handle_push(s, in); break;
    case PSOD__COMMAND__CMD_HEARTBEAT: srv_handle_heartbeat(s, in); break;
    case PSOD__COMMAND__CMD_BYE: srv_handle_bye(s, in); break;
    case PSOD__COMMAND__CMD_STATUS_REQUEST: srv_handle_status(s, in); break;
    case PSOD__COMMAND__CMD_ADMIN: srv_handle_admin(s, in); break;
    case PSOD__COMMAND__CMD_MODEL_REQUEST: srv_handle_model_request(s, in); break;
    case PSOD__COMMAND__CMD_SHARD_HELLO: srv_handle_shard_hello(s, in); break;
    case PSOD__COMMAND__CMD_SHARD_REPORT: srv_handle_shard_report(s, in); break;
    case PSOD__COMMAND__CMD_SHARD_ORDER:
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNAUTHORIZED, 0,
                   "shard orders travel only on a shard's own connection to its coordinator");
        break;
    default:
        srv_reject(s, in, PSOD__ERROR_CODE__ERR_UNKNOWN_COMMAND, 0,
                   "'%s' is not a request the daemon serves", wire_command_name(in->command));
        break;
    }
}

/* One received message, valid (r == 0) or not (r > 0, werr says why). */
static void s_serve(struct server *s, struct wire_msg *in, int r, const struct wire_error *werr)
{
    /* Traffic served and traffic refused are counted apart, so garbage does
     * not pass for training traffic. */
    s->refused = 0;
    if (r > 0)
        srv_reject(s, in, werr->code, 0, "%s", werr->message);
    else
        s_dispatch(s, in);
    /* A push, a bye or an operator's eviction may complete the round: the
     * loop decides that here, so no handler has to (heartbeats, status and
     * model requests cannot). */
    if (in->command == PSOD__COMMAND__CMD_PUSH || in->command == PSOD__COMMAND__CMD_BYE ||
        in->command == PSOD__COMMAND__CMD_ADMIN)
        srv_maybe_close_round(s);
    if (s->refused)
        s->bytes_refused += in->bytes;
    else {
        s->bytes_in += in->bytes;
        s->obs.bytes_in_cmd[in->command > 0 && in->command < SRV_COMMANDS ? in->command : 0] +=
            in->bytes;
    }
    wire_msg_clear(in);
}

void server_handle_frames(struct server *s, const void *id, size_t id_len, const char *user,
                          zmq_msg_t *frames, int nframes)
{
    struct wire_msg in;
    struct wire_error werr;
    memset(&in, 0, sizeof in);
    in.id_len = id_len < WIRE_MAX_ID ? id_len : WIRE_MAX_ID;
    memcpy(in.id, id, in.id_len);
    snprintf(in.user, sizeof in.user, "%s", user ? user : "");
    for (int i = 0; i < nframes; i++)
        in.bytes += zmq_msg_size(&frames[i]);
    int extra = nframes > WIRE_MAX_FRAMES;
    int r = wire_decode(frames, extra ? WIRE_MAX_FRAMES : nframes, extra, &s->lim, &in, &werr);
    s_serve(s, &in, r, &werr);
}

int server_run(struct server *s, volatile sig_atomic_t *stop)
{
    while (!*stop && !s->done) {
        if (s->cfg.max_rounds && s->round >= (uint64_t)s->cfg.max_rounds && !srv_follower(s))
            break; /* a resume at or past the limit */
        double now = time_now_s();
        srv_timers(s, now);
        long timeout = s->cfg.heartbeat_ms < 1000 ? s->cfg.heartbeat_ms : 1000;
        if (s->cfg.round_timeout > 0 && srv_pushed(s) > 0) {
            /* Wake up for the round's deadline. */
            double left = (s->first_push + s->cfg.round_timeout - now) * 1e3;
            if (left < timeout)
                timeout = left < 1 ? 1 : (long)left;
        }
        if (s->cfg.progress_interval > 0) {
            if (now >= s->next_progress) {
                srv_progress(s, 0);
                s->next_progress = now + s->cfg.progress_interval;
            }
            double left = (s->next_progress - now) * 1e3;
            if (left < timeout)
                timeout = left < 1 ? 1 : (long)left;
        }
        zmq_pollitem_t items[5] = {{s->sock, 0, ZMQ_POLLIN, 0}};
        int nitems = 1 + gate_poll_items(s->gate, items + 1);
        int link = nitems;
        nitems += srv_shard_poll_item(s, items + nitems);
        int web = nitems;
        nitems += srv_http_poll_item(s, items + nitems);
        int rc = zmq_poll(items, nitems, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("zmq_poll: %s", zmq_strerror(errno));
            return -1;
        }
        gate_process(s->gate); /* before messages: connections wait on it */
        if (web < nitems && (items[web].revents & ZMQ_POLLIN))
            srv_http_process(s);
        if (link < nitems && (items[link].revents & ZMQ_POLLIN))
            srv_shard_process_link(s);
        /* Drain what is queued, bounded so timers still run under load. */
        for (int k = 0; (items[0].revents & ZMQ_POLLIN) && k < 256 && !*stop && !s->done; k++) {
            struct wire_msg in;
            struct wire_error werr;
            int r = wire_recv(s->sock, 1, ZMQ_DONTWAIT, &s->lim, &in, &werr);
            if (r < 0)
                break; /* EAGAIN: nothing more queued */
            s_serve(s, &in, r, &werr);
        }
    }
    srv_progress(s, 1);
    if (s->sh.restart) {
        log_warn("restarting from %s to stay with the other shards",
                 s->sh.restart_round >= 0 ? "an older checkpoint" : "nothing (a new swarm)");
        return 0; /* no model file or checkpoint: this state is being given up */
    }
    int rc = 0, saved = 0;
    if (srv_coordinator(s)) {
        /* The end of the run (not a signal, which a --resume may follow):
         * the shards write their final checkpoints and exit. */
        saved = srv_shard_save_model(s, *stop ? 10 : 60);
        if (s->sh.restart) {
            log_warn("a shard lacks the checkpoint of round %llu: rolling back before the "
                     "model is written",
                     (unsigned long long)s->round);
            return 0; /* as above: psod.c restarts even under a stop */
        }
        if (!*stop)
            srv_shard_order(s, PSOD__SHARD_ACTION__SHARD_STOP, s->round);
    } else if (!srv_follower(s)) {
        saved = srv_save_model(s);
    }
    /* SIGTERM, SIGINT, --max-rounds, --exit-when-done */
    if (s->ckpt_dir[0] && s->st && server_checkpoint(s) != 0) {
        log_error("the final checkpoint (round %llu) was not written: %s; psod exits with "
                  "status 1",
                  (unsigned long long)s->round, s->ckpt_error);
        rc = -1;
    }
    if (s->st && s->ops->global(s->st)) {
        char loss[LOG_NUM_LEN], acc[LOG_NUM_LEN];
        log_info("final: %s global model after %llu rounds: loss %s, test accuracy %s "
                 "(reported for round %llu)%s%s",
                 s->ops->name, (unsigned long long)s->round,
                 log_num(loss, "%.6g", s->ops->global_loss(s->st)), log_num(acc, "%.6f", s->g_acc),
                 (unsigned long long)s->g_acc_round, saved > 0 ? ", written to " : "",
                 saved > 0 ? s->cfg.model_out : "");
    } else if (s->st && srv_verifying(s)) {
        log_warn("final: after %llu rounds no candidate global best was verified (--verify-best): "
                 "no global model to write",
                 (unsigned long long)s->round);
    }
    if (saved < 0) {
        log_error("the final global model was NOT saved to %s (see above); exiting with an "
                  "error",
                  s->cfg.model_out);
        rc = -1;
    }
    return rc;
}
