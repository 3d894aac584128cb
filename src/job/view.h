/* JSON views of a job: the GET representation (SPEC 3.3), the list summary
 * (3.5) and webhook event bodies (6). Pure functions of their inputs. */
#ifndef COLLIE_JOB_VIEW_H
#define COLLIE_JOB_VIEW_H

#include <jansson.h>

#include "job/job.h"
#include "store/store.h"

/* The full GET object. delivery may be NULL (no event yet). New reference. */
json_t *job_view(const struct job *j, const struct store_delivery_state *delivery);

/* The list item {"job_id","status","created_at","completed_at","metadata"}. */
json_t *job_view_summary(const struct store_job_summary *s);

/* A webhook body {"type","timestamp","data":{…}} as compact JSON text
 * (malloc'ed, caller frees). direction is "inbound", "outbound" or NULL;
 * filtered / result_json / error_json may be NULL. */
char *job_event_body(const struct job *j, const char *type, enum job_status status,
                     const char *direction, const char *filtered, const char *result_json,
                     const char *error_json, int64_t now);

/* The body of event `type` of job j, as sent for every attempt: the parts
 * come from the job according to the type (inbound: filtered_input and
 * inbound_result; outbound: filtered_output and outbound_result; failed:
 * error). status_after is the job's status right after the step; created_at
 * is the event's time. malloc'ed; NULL when memory ran out. */
char *job_event_body_for(const struct job *j, const char *type, enum job_status status_after,
                         int64_t created_at);

/* The body of the event step result r makes for job j (as claimed, before
 * the step): identical to job_event_body_for on the job as stored after
 * the step, without reading it back. NULL when r has no event or memory
 * ran out. */
char *job_event_body_after_step(const struct job *j, const struct store_step_result *r);

/* RFC 3339 string for ms, or JSON null for 0. New reference. */
json_t *job_view_time(int64_t ms);

#endif
