#include "job/job.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[JOB_STATUS_COUNT] = {
    [JOB_PENDING] = "pending",
    [JOB_PROCESSING_INBOUND] = "processing_inbound",
    [JOB_AWAITING_RESPONSE] = "awaiting_response",
    [JOB_PROCESSING_OUTBOUND] = "processing_outbound",
    [JOB_COMPLETED] = "completed",
    [JOB_FAILED] = "failed",
    [JOB_EXPIRED] = "expired",
};

static const char *const mode_names[JOB_MODE_COUNT] = {
    [JOB_MODE_LEGACY] = "legacy",         [JOB_MODE_INPUT] = "input",
    [JOB_MODE_INPUT_ONLY] = "input_only", [JOB_MODE_OUTPUT] = "output",
    [JOB_MODE_COMBINED] = "combined",
};

void job_clear(struct job *j)
{
    free(j->message);
    free(j->message_input);
    free(j->message_output);
    free(j->webhook_url);
    free(j->webhook_secret);
    free(j->metadata_json);
    free(j->filtered_input);
    free(j->filtered_output);
    free(j->inbound_result_json);
    free(j->outbound_result_json);
    free(j->error_json);
    free(j->idempotency_key);
    free(j->request_hash);
    memset(j, 0, sizeof(*j));
}

const char *job_status_name(enum job_status s)
{
    return (unsigned)s < JOB_STATUS_COUNT ? status_names[s] : "unknown";
}

int job_status_parse(const char *name, enum job_status *out)
{
    for (int i = 0; i < JOB_STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum job_status)i;
            return 0;
        }
    }
    return -1;
}

bool job_status_terminal(enum job_status s)
{
    return s == JOB_COMPLETED || s == JOB_FAILED || s == JOB_EXPIRED;
}

const char *job_mode_name(enum job_mode m)
{
    return (unsigned)m < JOB_MODE_COUNT ? mode_names[m] : "unknown";
}

int job_mode_parse(const char *name, enum job_mode *out)
{
    for (int i = 0; i < JOB_MODE_COUNT; i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *out = (enum job_mode)i;
            return 0;
        }
    }
    return -1;
}

enum job_step job_step_due(enum job_status s, enum job_mode m)
{
    switch (s) {
    case JOB_PENDING:
        return m == JOB_MODE_OUTPUT ? JOB_STEP_OUTBOUND : JOB_STEP_INBOUND;
    case JOB_PROCESSING_INBOUND:
        return JOB_STEP_INBOUND;
    case JOB_PROCESSING_OUTBOUND:
        return JOB_STEP_OUTBOUND;
    default:
        return JOB_STEP_NONE;
    }
}

enum job_status job_status_on_claim(enum job_status s, enum job_mode m)
{
    if (s == JOB_PENDING)
        return m == JOB_MODE_OUTPUT ? JOB_PROCESSING_OUTBOUND : JOB_PROCESSING_INBOUND;
    return s;
}

enum job_status job_status_after_inbound(enum job_mode m, bool blocked)
{
    if (blocked)
        return JOB_COMPLETED;
    switch (m) {
    case JOB_MODE_INPUT:
        return JOB_AWAITING_RESPONSE;
    case JOB_MODE_COMBINED:
        return JOB_PROCESSING_OUTBOUND;
    default: /* legacy, inbound_only */
        return JOB_COMPLETED;
    }
}

enum job_status job_status_after_outbound(enum job_mode m)
{
    (void)m;
    return JOB_COMPLETED;
}

bool job_accepts_response(enum job_status s)
{
    return s == JOB_AWAITING_RESPONSE;
}
