/* Monotonic clock helpers. */
#ifndef PSOD_TIMEUTIL_H
#define PSOD_TIMEUTIL_H

#include <stdint.h>

int64_t time_now_ms(void); /* monotonic milliseconds */
double time_now_s(void);   /* monotonic seconds, sub-microsecond resolution */
double time_wall_s(void);  /* seconds since the epoch */

#endif
