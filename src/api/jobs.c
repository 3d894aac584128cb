/* /v1/jobs: create, list, get, submit the LLM response, redeliver. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "job/view.h"
#include "util/clock.h"
#include "util/ids.h"
#include "util/jsonfmt.h"
#include "util/jsonparse.h"
#include "util/metrics.h"
#include "util/utf8.h"
#include "webhook/address.h"
#include "webhook/sign.h"

#define WEBHOOK_URL_MAX 2048
#define METADATA_MAX_KEYS 50
#define METADATA_MAX_KEY_BYTES 64
#define METADATA_MAX_BYTES (16 * 1024)
#define EXPIRES_MIN 60
#define EXPIRES_MAX 604800
#define IDEMPOTENCY_KEY_MAX 255
#define IDEMPOTENCY_WINDOW_MS (24LL * 3600 * 1000)

static json_t *created_view(const struct job *j)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "job_id", j->id, "status", "pending",
                     "webhook_secret", j->webhook_secret, "created_at",
                     job_view_time(j->created_at), "expires_at", job_view_time(j->expires_at));
}

/* ---- validation ------------------------------------------------------------ */

/* The last webhook URL this HTTP thread accepted. A client sends the same
 * URL with every job, and the checks below parse it twice with curl's URL
 * parser (~3 µs); their verdict depends only on the string and on the
 * configuration, which is fixed for the life of the process. */
static _Thread_local char accepted_url[WEBHOOK_URL_MAX + 1];

/* url has passed api_string_or_reply (type, NUL, at most WEBHOOK_URL_MAX). */
static bool webhook_url_or_reply(struct http_request *rq, const char *url)
{
    struct app *app = http_request_app(rq);
    if (!url) {
        http_reply_error(rq, 422, "validation_error", "webhook_url", "webhook_url is required");
        return false;
    }
    if (accepted_url[0] && strcmp(url, accepted_url) == 0)
        return true;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    bool https = ok && strcmp(scheme, "https") == 0;
    bool http = ok && strcmp(scheme, "http") == 0;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok) {
        http_reply_error(rq, 422, "validation_error", "webhook_url",
                         "webhook_url must be an absolute URL with a host");
        return false;
    }
    if (!https && !(http && app->cfg->allow_http_webhooks)) {
        http_reply_error(rq, 422, "validation_error", "webhook_url",
                         app->cfg->allow_http_webhooks ? "webhook_url must use http:// or https://"
                                                       : "webhook_url must use https://");
        return false;
    }
    /* A literal address can be judged now; names are checked at delivery,
     * against the address actually connected to. */
    char why[WEBHOOK_ADDR_REASON_LEN];
    if (webhook_url_literal_check(url, app->cfg->allow_private_webhooks, why, sizeof(why)) != 0) {
        http_reply_error(rq, 422, "validation_error", "webhook_url", "webhook_url refused: %s",
                         why);
        return false;
    }
    snprintf(accepted_url, sizeof(accepted_url), "%s", url);
    return true;
}

static bool metadata_or_reply(struct http_request *rq, json_t *body, char **out)
{
    json_t *m = json_object_get(body, "metadata");
    *out = NULL;
    if (!m || json_is_null(m))
        return true;
    if (!json_is_object(m)) {
        http_reply_error(rq, 422, "validation_error", "metadata", "metadata must be an object");
        return false;
    }
    if (json_object_size(m) > METADATA_MAX_KEYS) {
        http_reply_error(rq, 422, "validation_error", "metadata",
                         "metadata has %zu keys; the limit is %d", json_object_size(m),
                         METADATA_MAX_KEYS);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (strlen(k) > METADATA_MAX_KEY_BYTES) {
            http_reply_error(rq, 422, "validation_error", "metadata",
                             "metadata key '%.64s…' is longer than %d bytes", k,
                             METADATA_MAX_KEY_BYTES);
            return false;
        }
    }
    if (api_json_any(m, jsonparse_string_has_nul)) {
        http_reply_error(rq, 422, "validation_error", "metadata",
                         "metadata must not contain strings with NUL characters");
        return false;
    }
    char *text = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        return false;
    }
    if (strlen(text) > METADATA_MAX_BYTES) {
        http_reply_error(rq, 422, "validation_error", "metadata",
                         "metadata is %zu bytes serialized; the limit is %d", strlen(text),
                         METADATA_MAX_BYTES);
        free(text);
        return false;
    }
    *out = text;
    return true;
}

/* Fills j from the request body; false when a 4xx was sent. */
static bool job_from_body_or_reply(struct http_request *rq, json_t *body, struct job *j)
{
    struct app *app = http_request_app(rq);
    size_t max = app->cfg->max_message_bytes;
    const char *msg, *in, *out, *url;
    if (!api_string_or_reply(rq, body, "message", max, &msg, NULL) ||
        !api_string_or_reply(rq, body, "message_input", max, &in, NULL) ||
        !api_string_or_reply(rq, body, "message_output", max, &out, NULL))
        return false;
    if (msg && (in || out)) {
        http_reply_error(rq, 400, "invalid_request", "message",
                         "message (legacy mode) cannot be combined with message_input or "
                         "message_output");
        return false;
    }
    if (!msg && !in && !out) {
        http_reply_error(rq, 422, "validation_error", "message_input",
                         "one of message, message_input or message_output is required");
        return false;
    }
    if (!api_string_or_reply(rq, body, "webhook_url", WEBHOOK_URL_MAX, &url, NULL) ||
        !webhook_url_or_reply(rq, url))
        return false;

    int64_t expires_s = app->cfg->default_expires_s;
    json_t *e = json_object_get(body, "expires_in_seconds");
    if (e && !json_is_null(e)) {
        if (!json_is_integer(e)) {
            http_reply_error(rq, 422, "validation_error", "expires_in_seconds",
                             "expires_in_seconds must be an integer");
            return false;
        }
        expires_s = json_integer_value(e);
        if (expires_s < EXPIRES_MIN || expires_s > EXPIRES_MAX) {
            http_reply_error(rq, 422, "validation_error", "expires_in_seconds",
                             "expires_in_seconds must be between %d and %d", EXPIRES_MIN,
                             EXPIRES_MAX);
            return false;
        }
    }
    bool inbound_only = false;
    json_t *io = json_object_get(body, "inbound_only");
    if (io && !json_is_null(io)) {
        if (!json_is_boolean(io)) {
            http_reply_error(rq, 422, "validation_error", "inbound_only",
                             "inbound_only must be a boolean");
            return false;
        }
        inbound_only = json_is_true(io);
    }
    if (inbound_only && out) {
        http_reply_error(rq, 422, "validation_error", "inbound_only",
                         "inbound_only cannot be combined with message_output");
        return false;
    }
    char *metadata;
    if (!metadata_or_reply(rq, body, &metadata))
        return false;

    int64_t now = clock_now_ms();
    memset(j, 0, sizeof(*j));
    j->metadata_json = metadata;
    j->status = JOB_PENDING;
    j->mode = msg            ? JOB_MODE_LEGACY
              : in && out    ? JOB_MODE_COMBINED
              : out          ? JOB_MODE_OUTPUT
              : inbound_only ? JOB_MODE_INPUT_ONLY
                             : JOB_MODE_INPUT;
    j->created_at = now;
    j->expires_at = now + expires_s * 1000;
    j->message = msg ? strdup(msg) : NULL;
    j->message_input = in ? strdup(in) : NULL;
    j->message_output = out ? strdup(out) : NULL;
    j->webhook_url = strdup(url);
    j->webhook_secret = malloc(WEBHOOK_SECRET_LEN);
    if (ids_new(j->id, sizeof(j->id), "job_", now) != 0 || !j->webhook_url || !j->webhook_secret ||
        webhook_secret_new(j->webhook_secret, WEBHOOK_SECRET_LEN) != 0 || (msg && !j->message) ||
        (in && !j->message_input) || (out && !j->message_output)) {
        job_clear(j);
        http_reply_error(rq, 500, "internal_error", NULL, "internal error");
        return false;
    }
    return true;
}

/* ---- create ------------------------------------------------------------------ */

struct create_ctx {
    struct http_request *rq;
    struct app *app;
    int64_t project;
    struct job job;
    /* The 202 body, serialised before the job is queued: create_done runs
     * on the store's writer thread, which every create waits for. */
    char *accepted;
};

/* Runs on the store's writer thread once the job is durable (or not). */
static void create_done(void *ud, int rc)
{
    struct create_ctx *c = ud;
    if (c->job.idempotency_key)
        idem_end(c->app->idem, c->project, c->job.idempotency_key);
    if (rc == STORE_OK) {
        metrics_inc(METRIC_JOBS_CREATED);
        http_reply_json_text(c->rq, 202, c->accepted);
        c->accepted = NULL;
    } else if (rc == STORE_CONSTRAINT) {
        http_reply_error(c->rq, 409, "conflict", NULL,
                         "a request with this Idempotency-Key was accepted concurrently");
    } else {
        api_reply_store_error(c->rq, rc);
    }
    job_clear(&c->job);
    free(c->accepted);
    free(c);
}

/* Answers a create whose Idempotency-Key was used before. true = replied. */
static bool idempotent_replay(struct http_request *rq, struct app *app, int64_t project,
                              const char *key, const char *hash)
{
    struct job prev = {0};
    int rc = store_job_find_idempotent(app->st, project, key,
                                       clock_now_ms() - IDEMPOTENCY_WINDOW_MS, &prev);
    if (rc == STORE_NOTFOUND)
        return false;
    if (rc != STORE_OK)
        api_reply_store_error(rq, rc);
    else if (prev.request_hash && strcmp(prev.request_hash, hash) == 0)
        http_reply_json(rq, 202, created_view(&prev));
    else
        http_reply_error(rq, 422, "idempotency_key_reused", NULL,
                         "this Idempotency-Key was used with a different request body");
    job_clear(&prev);
    return true;
}

void api_jobs_create(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    if (!api_auth_or_reply(rq, &project))
        return;
    const char *key = http_request_header(rq, "Idempotency-Key");
    if (key && (key[0] == '\0' || utf8_chars(key, strlen(key)) > IDEMPOTENCY_KEY_MAX)) {
        http_reply_error(rq, 400, "invalid_request", "Idempotency-Key",
                         "Idempotency-Key must be 1 to %d characters", IDEMPOTENCY_KEY_MAX);
        return;
    }
    json_t *body = api_json_body_or_reply(rq);
    if (!body)
        return;
    struct create_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(body);
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        return;
    }
    bool ok = job_from_body_or_reply(rq, body, &c->job);
    json_decref(body);
    if (!ok) {
        free(c);
        return;
    }
    c->rq = rq;
    c->app = app;
    c->project = project;
    c->job.project_id = project;

    if (key) {
        size_t len;
        const char *raw = http_request_body(rq, &len);
        uint8_t digest[32];
        char hash[65];
        ids_sha256(raw, len, digest);
        ids_hex(digest, sizeof(digest), hash);
        enum idem_begin_result begun = idem_begin(app->idem, project, key);
        if (begun == IDEM_NOMEM) {
            http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
            goto fail;
        }
        if (begun == IDEM_IN_FLIGHT) {
            http_reply_error(rq, 409, "conflict", NULL,
                             "a request with this Idempotency-Key is still in progress");
            goto fail;
        }
        /* In flight is marked first, then the store is asked: a key that
         * commits meanwhile is seen by the lookup, never missed. */
        if (idempotent_replay(rq, app, project, key, hash)) {
            idem_end(app->idem, project, key);
            goto fail;
        }
        c->job.idempotency_key = strdup(key);
        c->job.request_hash = strdup(hash);
        if (!c->job.idempotency_key || !c->job.request_hash) {
            idem_end(app->idem, project, key);
            http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
            goto fail;
        }
    }

    json_t *view = created_view(&c->job);
    c->accepted = view ? json_dumps(view, JSONFMT_FLAGS) : NULL;
    json_decref(view);
    if (!c->accepted) {
        if (c->job.idempotency_key)
            idem_end(app->idem, project, c->job.idempotency_key);
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        goto fail;
    }

    /* Suspend before queueing: the commit may finish before we return. */
    if (!http_request_suspend(rq)) {
        if (c->job.idempotency_key)
            idem_end(app->idem, project, c->job.idempotency_key);
        http_reply_shutting_down(rq);
        goto fail;
    }
    int rc = store_job_create_async(app->st, &c->job, create_done, c);
    /* On success c belongs to create_done, which may already have run. */
    if (rc != STORE_OK) /* done will not run: answer here (resumes the connection) */
        create_done(c, rc);
    return;
fail:
    job_clear(&c->job);
    free(c->accepted);
    free(c);
}

/* ---- read -------------------------------------------------------------------- */

void api_jobs_get(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    if (!api_auth_or_reply(rq, &project))
        return;
    struct job j = {0};
    int rc = store_job_get(app->st, project, http_request_param(rq, 0), &j);
    if (rc == STORE_NOTFOUND) {
        http_reply_error(rq, 404, "not_found", NULL, "no job %s", http_request_param(rq, 0));
        return;
    }
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        return;
    }
    struct store_delivery_state d;
    rc = store_delivery_state(app->st, j.id, &d);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        job_clear(&j);
        api_reply_store_error(rq, rc);
        return;
    }
    http_reply_json(rq, 200, job_view(&j, rc == STORE_OK ? &d : NULL));
    if (rc == STORE_OK)
        free(d.url);
    job_clear(&j);
}

/* Strict decimal in [min, max]; false for anything else. */
static bool parse_query_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || strlen(s) > 10)
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

void api_jobs_list(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    if (!api_auth_or_reply(rq, &project))
        return;
    /* Which of two values counts would be a guess: a proxy or cache may
     * have read the other. */
    static const char *const params[] = {"page", "page_size", "status_filter"};
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        if (http_request_query_count(rq, params[i]) > 1) {
            http_reply_error(rq, 422, "validation_error", params[i], "%s is given more than once",
                             params[i]);
            return;
        }
    int64_t page = 1, page_size = 20;
    const char *q = http_request_query(rq, "page");
    if (q && !parse_query_int(q, 1, 1000000000, &page)) {
        http_reply_error(rq, 422, "validation_error", "page",
                         "page must be an integer >= 1 (got '%.32s')", q);
        return;
    }
    q = http_request_query(rq, "page_size");
    if (q && !parse_query_int(q, 1, 100, &page_size)) {
        http_reply_error(rq, 422, "validation_error", "page_size",
                         "page_size must be an integer from 1 to 100 (got '%.32s')", q);
        return;
    }
    unsigned statuses = 0;
    q = http_request_query(rq, "status_filter");
    if (q) {
        enum job_status s;
        if (strcmp(q, "processing") == 0) {
            statuses = (1u << JOB_PROCESSING_INBOUND) | (1u << JOB_PROCESSING_OUTBOUND);
        } else if (job_status_parse(q, &s) == 0) {
            statuses = 1u << s;
        } else {
            http_reply_error(rq, 422, "validation_error", "status_filter",
                             "unknown status_filter '%.32s'", q);
            return;
        }
    }
    struct store_job_summary *rows;
    size_t n;
    int64_t total;
    int rc = store_job_list(app->st, project, statuses, (page - 1) * page_size, page_size, &rows,
                            &n, &total);
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        return;
    }
    json_t *jobs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(jobs, job_view_summary(&rows[i]));
    store_job_summaries_free(rows, n);
    http_reply_json(rq, 200,
                    json_pack("{s:o, s:I, s:I, s:I}", "jobs", jobs, "total", (json_int_t)total,
                              "page", (json_int_t)page, "page_size", (json_int_t)page_size));
}

/* ---- response submission ------------------------------------------------------------ */

void api_jobs_response(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    const char *id = http_request_param(rq, 0);
    json_t *body = api_auth_json_or_reply(rq, &project);
    if (!body)
        return;
    const char *response;
    if (!api_string_or_reply(rq, body, "response", app->cfg->max_message_bytes, &response, NULL))
        goto out;
    if (!response) {
        http_reply_error(rq, 422, "validation_error", "response",
                         "response is required (the LLM's answer as a string)");
        goto out;
    }
    int64_t now = clock_now_ms();
    int rc = store_job_submit_response(app->st, project, id, response, now);
    struct job j = {0};
    if (rc == STORE_STATE && store_job_get(app->st, project, id, &j) == STORE_OK &&
        j.status == JOB_AWAITING_RESPONSE && j.expires_at > now) {
        /* The inbound step finished between the two reads: the job is
         * awaiting the response now, so take it. */
        job_clear(&j);
        rc = store_job_submit_response(app->st, project, id, response, now);
        if (rc == STORE_STATE)
            store_job_get(app->st, project, id, &j); /* j stays empty on failure */
    }
    if (rc == STORE_OK) {
        http_reply_json(rq, 202,
                        json_pack("{s:s, s:s}", "job_id", id, "status",
                                  job_status_name(JOB_PROCESSING_OUTBOUND)));
    } else if (rc == STORE_NOTFOUND) {
        http_reply_error(rq, 404, "not_found", NULL, "no job %s", id);
    } else if (rc == STORE_STATE) {
        /* j: the job as read after the refusal (empty when it could not be) */
        bool expired = j.status == JOB_AWAITING_RESPONSE && j.expires_at <= now;
        http_reply_error(rq, 400, "invalid_job_state", NULL,
                         "job %s is %s%s; a response is accepted only in awaiting_response", id,
                         j.id[0] ? job_status_name(j.status) : "unknown",
                         expired ? " but has expired" : "");
    } else {
        api_reply_store_error(rq, rc);
    }
    job_clear(&j);
out:
    json_decref(body);
}

/* ---- redelivery ------------------------------------------------------------------------ */

void api_jobs_redeliver(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    if (!api_auth_or_reply(rq, &project))
        return;
    const char *id = http_request_param(rq, 0);
    size_t count = 0;
    int rc = store_event_redeliver(app->st, project, id, clock_now_ms(), &count);
    if (rc == STORE_NOTFOUND) {
        http_reply_error(rq, 404, "not_found", NULL, "no job %s", id);
    } else if (rc == STORE_STATE) {
        http_reply_error(rq, 409, "conflict", NULL,
                         "job %s has an event being delivered; redeliver once that attempt "
                         "has finished",
                         id);
    } else if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
    } else if (count == 0) {
        http_reply_error(rq, 409, "conflict", NULL, "job %s has no events to redeliver yet", id);
    } else {
        http_reply_json(rq, 202,
                        json_pack("{s:s, s:I}", "job_id", id, "events", (json_int_t)count));
    }
}
