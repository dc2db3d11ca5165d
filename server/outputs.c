/* What psod writes besides checkpoints: the global model file
 * (--model-out) and the metrics file, and the start-up checks that every
 * path it will write is usable (so a run does not fail at its end). */
#include "server/server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/modelfile.h"

/* Write the global model (atomically) to --model-out. */
int srv_save_model(struct server *s)
{
    if (!s->cfg.model_out[0] || !s->st)
        return 0;
    const float *g = s->ops->global(s->st);
    if (!g)
        return 0;
    struct modelfile_info info = {
        s->layout_hash, s->n, s->round, s->ops->global_loss(s->st), "", "", "", {0, 0, 0}, 0};
    snprintf(info.strategy, sizeof info.strategy, "%s", s->ops->name);
    snprintf(info.model, sizeof info.model, "%.31s", s->model_name);
    snprintf(info.dataset, sizeof info.dataset, "%.15s", s->dataset);
    memcpy(info.input_shape, s->input_shape, sizeof info.input_shape);
    char err[512];
    if (modelfile_write(s->cfg.model_out, &info, g, err, sizeof err) != 0) {
        log_error("could not save the global model: %s", err);
        return -1;
    }
    log_debug("global model of round %llu written to %s", (unsigned long long)s->round,
              s->cfg.model_out);
    return 1;
}

/* A file psod will write later: its directory must exist and be writable,
 * and the path itself must not be a directory. */
static int s_writable_file(const char *opt, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--%s '%s' is a directory; give a file name", opt, path);
        return -1;
    }
    char dir[CONF_STRLEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--%s '%s': directory '%s' does not exist", opt, path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "--%s '%s': directory '%s' is not writable: %s", opt, path, dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* An existing directory (must_exist) or one psod may create. */
static int s_usable_dir(const char *opt, const char *path, int must_exist, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (must_exist) {
            snprintf(err, errlen,
                     "--%s '%s' does not exist (a typo? --resume-or-start starts "
                     "a new swarm when there is nothing to resume)",
                     opt, path);
            return -1;
        }
        return s_writable_file(opt, path, err, errlen);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--%s '%s' is not a directory", opt, path);
        return -1;
    }
    if (access(path, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "--%s '%s' is not writable: %s", opt, path, strerror(errno));
        return -1;
    }
    return 0;
}

int srv_check_paths(const struct server_config *cfg, char *err, size_t errlen)
{
    if (cfg->model_out[0] && s_writable_file("model-out", cfg->model_out, err, errlen))
        return -1;
    if (cfg->metrics[0] && s_writable_file("metrics", cfg->metrics, err, errlen))
        return -1;
    if (cfg->endpoint_file[0] && s_writable_file("endpoint-file", cfg->endpoint_file, err, errlen))
        return -1;
    if (cfg->checkpoint_dir[0] &&
        s_usable_dir("checkpoint-dir", cfg->checkpoint_dir, 0, err, errlen))
        return -1;
    if (cfg->resume[0] && s_usable_dir("resume", cfg->resume, !cfg->resume_or_start, err, errlen))
        return -1;
    return 0;
}

/* After a resume, the metrics file keeps the rounds the checkpoint holds
 * (lines of later rounds, written before a crash, are dropped because those
 * rounds run again) and new lines are appended. */
int srv_open_metrics(struct server *s, char *err, size_t errlen)
{
    const char *path = s->cfg.metrics;
    FILE *old = s->round > 0 ? fopen(path, "r") : NULL;
    if (old) {
        char tmp[CONF_STRLEN + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        char *line = NULL;
        size_t cap = 0, kept = 0, dropped = 0;
        while (f && getline(&line, &cap, old) > 0) {
            unsigned long long r;
            if (sscanf(line, "{\"round\":%llu", &r) == 1 && r > s->round) {
                dropped++;
                continue;
            }
            fputs(line, f);
            kept++;
        }
        free(line);
        fclose(old);
        if (!f || fclose(f) != 0 || rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot rewrite metrics file '%s': %s", path, strerror(errno));
            return -1;
        }
        log_info("metrics file %s: kept %zu lines up to round %llu, dropped %zu of later rounds",
                 path, kept, (unsigned long long)s->round, dropped);
    }
    if (!(s->metrics = fopen(path, s->round > 0 ? "a" : "w"))) {
        snprintf(err, errlen, "cannot write metrics file '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
