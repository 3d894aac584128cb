/* What follows a delivery attempt: delivered, retry later, or give up.
 * Pure apart from the jitter's random draw, so it is unit-tested without a
 * network. */
#ifndef COLLIE_WEBHOOK_OUTCOME_H
#define COLLIE_WEBHOOK_OUTCOME_H

#include <stdint.h>

#include "store/store.h"
#include "webhook/schedule.h"

/* Classifies attempt number `attempt` (1-based: the attempts made so far,
 * this one included) that ended with HTTP status_code (0 = no usable
 * response: connect error, timeout, …) at time now (epoch ms).
 *   2xx              -> DELIVERED
 *   410 Gone         -> FAILED (the receiver asked us to stop)
 *   anything else    -> RETRYING, *next_attempt_at = now + delay, where
 *                       delay = webhook_schedule_delay(s, attempt, jitter_pct);
 *                       or FAILED when the schedule is exhausted.
 * On 429 and 503 a Retry-After of retry_after_s seconds (0 = none) lengthens
 * the delay to max(delay, retry_after) but never beyond the schedule's
 * largest delay; it cannot add attempts. *next_attempt_at is set to 0 unless
 * the result is RETRYING. */
enum delivery_status webhook_outcome(const struct webhook_schedule *s, int jitter_pct, int attempt,
                                     int status_code, int64_t retry_after_s, int64_t now,
                                     int64_t *next_attempt_at);

#endif
