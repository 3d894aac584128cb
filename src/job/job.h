/* The job model and its state machine (SPEC sections 3.2 and 4).
 * Pure: no I/O, no allocation except in job_clear's counterpart owners. */
#ifndef COLLIE_JOB_JOB_H
#define COLLIE_JOB_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "util/ids.h"

enum job_status {
    JOB_PENDING,
    JOB_PROCESSING_INBOUND,
    JOB_AWAITING_RESPONSE,
    JOB_PROCESSING_OUTBOUND,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_EXPIRED,
    JOB_STATUS_COUNT
};

/* What the client asked for (the rows of the SPEC 3.2 table). */
enum job_mode {
    JOB_MODE_LEGACY,     /* message */
    JOB_MODE_INPUT,      /* message_input; outbound after POST .../response */
    JOB_MODE_INPUT_ONLY, /* message_input + inbound_only */
    JOB_MODE_OUTPUT,     /* message_output */
    JOB_MODE_COMBINED,   /* message_input + message_output */
    JOB_MODE_COUNT
};

/* The unit of work a status asks the pipeline to perform. */
enum job_step { JOB_STEP_NONE, JOB_STEP_INBOUND, JOB_STEP_OUTBOUND };

#define JOB_EVENT_INBOUND_COMPLETE "job.inbound_complete"
#define JOB_EVENT_OUTBOUND_COMPLETE "job.outbound_complete"
#define JOB_EVENT_FAILED "job.failed"
#define JOB_EVENT_EXPIRED "job.expired"

/* A job as stored. Strings are heap-allocated, NUL-terminated and owned by
 * the struct (NULL when absent); job_clear frees them. Times are epoch ms,
 * 0 when unset. *_json members hold serialized JSON. */
struct job {
    char id[IDS_MAX_LEN];
    int64_t project_id;
    enum job_status status;
    enum job_mode mode;
    char *message;
    char *message_input;
    char *message_output;
    char *webhook_url;
    char *webhook_secret; /* "whsec_<base64>" */
    char *metadata_json;  /* object, or NULL */
    int64_t created_at;
    int64_t expires_at;
    int64_t completed_at;
    char *filtered_input;
    char *filtered_output;
    char *inbound_result_json;
    char *outbound_result_json;
    char *error_json;
    /* Idempotency: key as sent and SHA-256 hex of the request body. */
    char *idempotency_key;
    char *request_hash;
};

/* Frees the strings a job owns and zeroes it. Accepts a zeroed job. */
void job_clear(struct job *j);

const char *job_status_name(enum job_status s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int job_status_parse(const char *name, enum job_status *out);
bool job_status_terminal(enum job_status s);

const char *job_mode_name(enum job_mode m);
int job_mode_parse(const char *name, enum job_mode *out);

/* The step a job in status s (and mode m) waits for, if any. */
enum job_step job_step_due(enum job_status s, enum job_mode m);

/* Status a job takes when a worker starts its due step:
 * pending -> processing_inbound (or processing_outbound for output-only). */
enum job_status job_status_on_claim(enum job_status s, enum job_mode m);

/* Status after the inbound step finished with the given decision
 * (blocked = the decision was "block"). */
enum job_status job_status_after_inbound(enum job_mode m, bool blocked);

/* Status after the outbound step: always completed. */
enum job_status job_status_after_outbound(enum job_mode m);

/* True when POST /v1/jobs/{id}/response is allowed. */
bool job_accepts_response(enum job_status s);

#endif
