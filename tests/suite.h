/* Shared by the Check suites: run one suite, print Check's summary line,
 * exit non-zero when anything failed. */
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
