#include "webhook/outcome.h"

enum delivery_status webhook_outcome(const struct webhook_schedule *s, int jitter_pct, int attempt,
                                     int status_code, int64_t retry_after_s, int64_t now,
                                     int64_t *next_attempt_at)
{
    *next_attempt_at = 0;
    if (status_code >= 200 && status_code <= 299)
        return DELIVERY_DELIVERED;
    if (status_code == 410)
        return DELIVERY_FAILED;

    int64_t delay = webhook_schedule_delay(s, attempt, jitter_pct);
    if (delay < 0)
        return DELIVERY_FAILED;

    /* A receiver that is overloaded may ask for more time; we grant it up to
     * the schedule's longest pause, so one header cannot park an event for
     * days, and never shorten our own back-off because of it. */
    if ((status_code == 429 || status_code == 503) && retry_after_s > 0) {
        int64_t cap = webhook_schedule_max_delay(s);
        int64_t ra = retry_after_s > cap / 1000 ? cap : retry_after_s * 1000;
        if (ra > delay)
            delay = ra;
    }
    *next_attempt_at = now + delay;
    return DELIVERY_RETRYING;
}
