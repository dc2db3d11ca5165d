/* Process helpers shared by the integration suites (check_cluster,
 * check_security): spawn the real binaries with their output in the test
 * directory, wait with a deadline, read what they wrote. Failures are Check
 * assertions, so they end the test that called them. */
#ifndef PSOD_TESTS_PROC_H
#define PSOD_TESTS_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Where the binaries are ($BUILD) and the test's scratch directory; both
 * strings must outlive the test. */
void proc_init(const char *bin_dir, const char *test_dir);
/* A suite's fixture: $BUILD (default "build") into bin (256 bytes), a fresh
 * directory made from the template in dir ("/tmp/...-XXXXXX", rewritten
 * each time), then proc_init. */
void proc_setup(char *bin, char *dir, const char *template);
/* Remove dir, unless KEEP_TEST_DIR is set (to look at the logs). */
void proc_teardown(const char *dir);
void proc_bin(char *out, size_t len, const char *name);
/* Start argv with stdout and stderr in DIR/TAG.out and DIR/TAG.err. */
pid_t proc_spawn(char *const argv[], const char *tag);
double proc_now(void);
/* Wait for pid up to `secs`, killing it after. Returns its exit status,
 * -SIGNAL if a signal ended it, or -1000 on timeout. */
int proc_wait(pid_t pid, double secs);
/* DIR/TAG.EXT into buf ("" if missing). */
void proc_read(const char *tag, const char *ext, char *buf, size_t len);
/* Start psod on tcp://127.0.0.1:* with `extra` args (NULL-terminated);
 * returns its pid once it has written its endpoint into `ep`. */
pid_t proc_psod(const char *tag, char *ep, size_t eplen, char *const extra[]);
/* Poll DIR/TAG.EXT until it holds `text` (returns 1) or `secs` pass (0). */
int proc_wait_for(const char *tag, const char *ext, const char *text, double secs);
/* Run psoctl with `args` (NULL-terminated, its output in DIR/TAG.*) until
 * it exits 0 and, if `ok` is given, ok(its stdout) holds; or `secs` pass.
 * Returns 1 when it did, 0 on timeout; `out` holds the last stdout. */
int proc_ctl_until(const char *tag, char *const args[], int (*ok)(const char *out), double secs,
                   char *out, size_t len);
/* The number after `key` in the text, or NaN. */
double proc_after(const char *text, const char *key);
/* A file's bytes (up to 4 MiB, malloc'ed), or NULL; *len gets the size. */
unsigned char *proc_slurp(const char *path, size_t *len);
/* The last line of the file at path. */
void proc_last_line(const char *path, char *buf, size_t len);

#endif
