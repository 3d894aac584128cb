#include "job/view.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/jsonfmt.h"

json_t *job_view_time(int64_t ms)
{
    char buf[CLOCK_RFC3339_LEN];
    return ms ? json_string(clock_format_rfc3339(ms, buf)) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Stored JSON text back to a value; null when absent. Stored text was
 * produced by us, so a parse failure means corruption: show null. */
static json_t *json_or_null(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return v ? v : json_null();
}

json_t *job_view(const struct job *j, const struct store_delivery_state *d)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "job_id", json_string(j->id));
    json_object_set_new(o, "status", json_string(job_status_name(j->status)));
    json_object_set_new(o, "created_at", job_view_time(j->created_at));
    json_object_set_new(o, "completed_at", job_view_time(j->completed_at));
    json_object_set_new(o, "expires_at", job_view_time(j->expires_at));
    json_object_set_new(o, "metadata", json_or_null(j->metadata_json));
    json_object_set_new(o, "message", str_or_null(j->message));
    json_object_set_new(o, "message_input", str_or_null(j->message_input));
    json_object_set_new(o, "message_output", str_or_null(j->message_output));
    json_object_set_new(o, "filtered_input", str_or_null(j->filtered_input));
    json_object_set_new(o, "filtered_output", str_or_null(j->filtered_output));
    json_object_set_new(o, "inbound_result", json_or_null(j->inbound_result_json));
    json_object_set_new(o, "outbound_result", json_or_null(j->outbound_result_json));
    if (d) {
        json_object_set_new(
            o, "webhook_delivery",
            json_pack("{s:s, s:s, s:i, s:o, s:o, s:o}", "url", d->url, "status",
                      delivery_status_name(d->status), "attempts", d->attempts, "response_code",
                      d->response_code ? json_integer(d->response_code) : json_null(),
                      "delivered_at", job_view_time(d->delivered_at), "next_attempt_at",
                      job_view_time(d->next_attempt_at)));
    } else {
        json_object_set_new(o, "webhook_delivery", json_null());
    }
    json_object_set_new(o, "error", json_or_null(j->error_json));
    return o;
}

char *job_event_body_for(const struct job *j, const char *type, enum job_status status_after,
                         int64_t created_at)
{
    if (strcmp(type, JOB_EVENT_INBOUND_COMPLETE) == 0)
        return job_event_body(j, type, status_after, "inbound", j->filtered_input,
                              j->inbound_result_json, NULL, created_at);
    if (strcmp(type, JOB_EVENT_OUTBOUND_COMPLETE) == 0)
        return job_event_body(j, type, status_after, "outbound", j->filtered_output,
                              j->outbound_result_json, NULL, created_at);
    return job_event_body(j, type, status_after, NULL, NULL, NULL,
                          strcmp(type, JOB_EVENT_FAILED) == 0 ? j->error_json : NULL, created_at);
}

char *job_event_body_after_step(const struct job *j, const struct store_step_result *r)
{
    if (!r->event_type)
        return NULL;
    /* A shallow copy carrying what the step writes; only read from. The
     * casts drop const for the copy's fields, never to write through. */
    struct job after = *j;
    after.status = r->to;
    if (r->step == JOB_STEP_INBOUND) {
        after.filtered_input = (char *)r->filtered;
        after.inbound_result_json = (char *)r->result_json;
    } else {
        after.filtered_output = (char *)r->filtered;
        after.outbound_result_json = (char *)r->result_json;
    }
    after.error_json = (char *)r->error_json;
    return job_event_body_for(&after, r->event_type, r->to, r->now);
}

json_t *job_view_summary(const struct store_job_summary *s)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "job_id", s->id, "status",
                     job_status_name(s->status), "created_at", job_view_time(s->created_at),
                     "completed_at", job_view_time(s->completed_at), "metadata",
                     json_or_null(s->metadata_json));
}

char *job_event_body(const struct job *j, const char *type, enum job_status status,
                     const char *direction, const char *filtered, const char *result_json,
                     const char *error_json, int64_t now)
{
    json_t *data = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "job_id", j->id, "status",
                             job_status_name(status), "direction", str_or_null(direction),
                             "metadata", json_or_null(j->metadata_json), "filtered_content",
                             str_or_null(filtered), "result", json_or_null(result_json));
    if (!data)
        return NULL;
    if (error_json)
        json_object_set_new(data, "error", json_or_null(error_json));
    json_t *body =
        json_pack("{s:s, s:o, s:o}", "type", type, "timestamp", job_view_time(now), "data", data);
    char *text = body ? json_dumps(body, JSONFMT_FLAGS) : NULL;
    json_decref(body);
    return text;
}
