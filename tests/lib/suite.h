/* Shared by the Check suites: run one suite, print Check's summary line,
 * exit non-zero when anything failed.
 *
 * Where a test for module X goes: tests/unit/check_X.c when X is pure (no
 * daemon, no process); tests/daemon/ when it needs the daemon's state (an
 * in-process server_run and the client library); tests/system/ only when it
 * needs real processes (psod, workers, scripts). A new suite is added to
 * UNIT_SUITES in the Makefile (or to the process list beside it). */
#ifndef PSOD_TESTS_SUITE_H
#define PSOD_TESTS_SUITE_H

#include <check.h>
#include <stdlib.h>

static inline int suite_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
