/* Process helpers for the integration suites: see proc.h. */
#include "tests/lib/proc.h"

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *bin = "build", *dir = "/tmp";

void proc_init(const char *bin_dir, const char *test_dir)
{
    bin = bin_dir;
    dir = test_dir;
}

void proc_setup(char *bin_buf, char *dir_buf, const char *template)
{
    const char *b = getenv("BUILD");
    snprintf(bin_buf, 256, "%s", b && *b ? b : "build");
    strcpy(dir_buf, template);
    ck_assert_ptr_nonnull(mkdtemp(dir_buf));
    proc_init(bin_buf, dir_buf);
}

void proc_teardown(const char *dir_path)
{
    char cmd[600];
    if (getenv("KEEP_TEST_DIR"))
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir_path);
}

void proc_bin(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", bin, name); }

/* Start argv with stdout and stderr redirected to files in the test dir. */
pid_t proc_spawn(char *const argv[], const char *tag)
{
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", dir, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "spawn %s: %s", argv[0], strerror(rc));
    return pid;
}

double proc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wait for pid up to `secs`; kill it after. Returns its exit status, or
 * -SIGNAL if it died by a signal, or -1000 on timeout. */
int proc_wait(pid_t pid, double secs)
{
    double deadline = proc_now() + secs;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        if (proc_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1000;
        }
        usleep(10000);
    }
}

void proc_read(const char *tag, const char *ext, char *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s", dir, tag, ext);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Start psod with extra args; return its pid and fill `ep`. */
pid_t proc_psod(const char *tag, char *ep, size_t eplen, char *const extra[])
{
    char psod[300], epfile[512];
    proc_bin(psod, sizeof psod, "psod");
    snprintf(epfile, sizeof epfile, "%s/%s.endpoint", dir, tag);
    unlink(epfile);
    char *argv[40] = {
        psod, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile, "--progress-interval", "0"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = proc_spawn(argv, tag);
    double deadline = proc_now() + 10;
    for (;;) {
        FILE *f = fopen(epfile, "r");
        if (f) {
            char *ok = fgets(ep, (int)eplen, f);
            fclose(f);
            if (ok) {
                ep[strcspn(ep, "\n")] = '\0';
                return pid;
            }
        }
        ck_assert_msg(proc_now() < deadline, "psod did not start");
        ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "psod exited at start");
        usleep(10000);
    }
}

/* The number after `key` in the text, or NaN. */
double proc_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

unsigned char *proc_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 22);
    *len = buf ? fread(buf, 1, 1 << 22, f) : 0;
    fclose(f);
    return buf;
}

/* The last line of the JSON-lines file at path. */
void proc_last_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f))
        snprintf(buf, len, "%s", line);
    fclose(f);
}

int proc_wait_for(const char *tag, const char *ext, const char *text, double secs)
{
    static char buf[1 << 18];
    double deadline = proc_now() + secs;
    do {
        proc_read(tag, ext, buf, sizeof buf);
        if (strstr(buf, text))
            return 1;
        usleep(20000);
    } while (proc_now() < deadline);
    return 0;
}

int proc_ctl_until(const char *tag, char *const args[], int (*ok)(const char *out), double secs,
                   char *out, size_t len)
{
    char ctl[300];
    proc_bin(ctl, sizeof ctl, "psoctl");
    char *argv[32] = {ctl};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    double deadline = proc_now() + secs;
    do {
        int rc = proc_wait(proc_spawn(argv, tag), 10);
        proc_read(tag, "out", out, len);
        if (rc == 0 && (!ok || ok(out)))
            return 1;
        usleep(50000);
    } while (proc_now() < deadline);
    return 0;
}
