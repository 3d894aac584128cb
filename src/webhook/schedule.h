/* The retry schedule: the delays before each retry of an event. */
#ifndef COLLIE_WEBHOOK_SCHEDULE_H
#define COLLIE_WEBHOOK_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SCHEDULE_MAX 32
/* Longest single delay a schedule may hold (30 days); longer items are
 * rejected by webhook_schedule_parse, which keeps now + delay far from
 * int64 overflow. */
#define WEBHOOK_SCHEDULE_DELAY_MAX_MS (INT64_C(30) * 24 * 3600 * 1000)

struct webhook_schedule {
    int64_t delay_ms[WEBHOOK_SCHEDULE_MAX];
    size_t n; /* retries after the first attempt; total attempts = n + 1 */
};

/* The default: 5s, 5m, 30m, 2h, 5h, 10h, 10h. */
void webhook_schedule_default(struct webhook_schedule *s);

/* Parses a comma-separated list of durations with units ms, s, m, h
 * ("200ms,1s,5m"). Returns 0, or -1 on a malformed or empty list. Items are
 * non-negative integers with a unit; blanks around items are allowed; an
 * empty item, an unknown or missing unit, an item over
 * WEBHOOK_SCHEDULE_DELAY_MAX_MS or more than WEBHOOK_SCHEDULE_MAX items is
 * malformed. On failure *s is left unchanged. */
int webhook_schedule_parse(const char *text, struct webhook_schedule *s);

/* Delay before retry number `retry` (1-based) with ±jitter_pct random jitter,
 * or -1 when the schedule is exhausted. The jitter is drawn uniformly from
 * [delay - delay*pct/100, delay + delay*pct/100] with the CSPRNG; jitter_pct
 * is clamped to 0..100. */
int64_t webhook_schedule_delay(const struct webhook_schedule *s, int retry, int jitter_pct);

/* The largest delay of the schedule (0 for an empty one); the cap on a
 * receiver's Retry-After. */
int64_t webhook_schedule_max_delay(const struct webhook_schedule *s);

#endif
