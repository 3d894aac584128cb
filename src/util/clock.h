/* Wall-clock time in milliseconds and RFC 3339 formatting.
 * All persisted times are Unix epoch milliseconds (int64_t); 0 means "none". */
#ifndef COLLIE_UTIL_CLOCK_H
#define COLLIE_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_RFC3339_LEN 32 /* "2026-02-23T10:30:00.123Z" + NUL, with room */

/* Current wall-clock time, epoch milliseconds. */
int64_t clock_now_ms(void);

/* Monotonic time in nanoseconds, for measuring durations only. */
int64_t clock_mono_ns(void);

/* The CLOCK_REALTIME instant ms milliseconds from now, as
 * pthread_cond_timedwait wants its deadline. */
void clock_deadline(int64_t ms, struct timespec *out);

/* Writes ms as RFC 3339 UTC with millisecond precision and a 'Z'
 * ("2026-02-23T10:30:00.123Z") into out (at least CLOCK_RFC3339_LEN bytes).
 * Returns out. */
char *clock_format_rfc3339(int64_t ms, char *out);

#endif
