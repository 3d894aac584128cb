/* The SQLite store, against a real database file in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job/view.h"
#include "store_scratch.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/ids.h"
#include "util/secretbox.h"

#include <sqlite3.h>

struct fixture {
    struct scratch s;
    int64_t project, other;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (scratch_open(&f->s) != 0 || store_project_create(f->s.st, "a", &f->project) != STORE_OK ||
        store_project_create(f->s.st, "b", &f->other) != STORE_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = scratch_close(&f->s);
    free(f);
    return rc;
}

/* A job of the given mode owned by the test (strings are literals, so the
 * struct is never cleared). */
static struct job make_job(int64_t project, enum job_mode mode, int64_t now)
{
    struct job j;
    memset(&j, 0, sizeof(j));
    ids_new(j.id, sizeof(j.id), "job_", now);
    j.project_id = project;
    j.status = JOB_PENDING;
    j.mode = mode;
    j.message = mode == JOB_MODE_LEGACY ? "legacy text" : NULL;
    j.message_input =
        (mode == JOB_MODE_INPUT || mode == JOB_MODE_INPUT_ONLY || mode == JOB_MODE_COMBINED)
            ? "input text"
            : NULL;
    j.message_output =
        (mode == JOB_MODE_OUTPUT || mode == JOB_MODE_COMBINED) ? "output text" : NULL;
    j.webhook_url = "https://example.com/hook";
    j.webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    j.metadata_json = "{\"k\":1}";
    j.created_at = now;
    j.expires_at = now + 3600 * 1000;
    return j;
}

static void claim_one(struct store *st, struct job *out)
{
    struct job *jobs;
    size_t n;
    assert_int_equal(store_work_claim(st, clock_now_ms(), 60000, 1, &jobs, &n), STORE_OK);
    assert_int_equal(n, 1);
    *out = jobs[0];
    free(jobs);
}

static void complete(struct store *st, const struct job *j, enum job_status to,
                     const char *filtered, bool unchanged)
{
    char event_id[IDS_MAX_LEN];
    ids_new(event_id, sizeof(event_id), "msg_", clock_now_ms());
    bool inbound = j->status == JOB_PROCESSING_INBOUND;
    struct store_step_result r = {
        .job_id = j->id,
        .from = j->status,
        .to = to,
        .step = inbound ? JOB_STEP_INBOUND : JOB_STEP_OUTBOUND,
        .filtered = filtered,
        .filtered_unchanged = unchanged,
        .result_json = "{\"decision\":\"pass\"}",
        .event_type = inbound ? JOB_EVENT_INBOUND_COMPLETE : JOB_EVENT_OUTBOUND_COMPLETE,
        .event_id = event_id,
        .now = clock_now_ms(),
    };
    assert_int_equal(store_work_complete(st, &r, 1), STORE_OK);
}

static void test_projects_and_keys(void **state)
{
    struct fixture *f = *state;
    int64_t id;
    assert_int_equal(store_project_create(f->s.st, "a", &id), STORE_CONSTRAINT);
    assert_int_equal(store_project_find(f->s.st, "a", &id), STORE_OK);
    assert_int_equal(id, f->project);
    assert_int_equal(store_project_find(f->s.st, "nope", &id), STORE_NOTFOUND);

    uint8_t hash[32];
    ids_sha256("clai_secret", 11, hash);
    assert_int_equal(store_key_create(f->s.st, f->project, hash, "clai_secr"), STORE_OK);
    int64_t owner = 0;
    assert_int_equal(store_key_lookup(f->s.st, hash, &owner), STORE_OK);
    assert_int_equal(owner, f->project);
    struct store_key_info *keys;
    size_t n;
    assert_int_equal(store_key_list(f->s.st, f->project, &keys, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].prefix, "clai_secr");
    free(keys);
    assert_int_equal(store_key_revoke(f->s.st, f->project, "clai_secr"), STORE_OK);
    assert_int_equal(store_key_lookup(f->s.st, hash, &owner), STORE_NOTFOUND);
    assert_int_equal(store_key_revoke(f->s.st, f->project, "clai_secr"), STORE_NOTFOUND);
}

static void test_policy_versions(void **state)
{
    struct fixture *f = *state;
    char *json;
    int64_t v;
    assert_int_equal(store_policy_get(f->s.st, f->project, &json, &v), STORE_OK);
    assert_null(json);
    assert_int_equal(v, 0);
    assert_int_equal(store_policy_set(f->s.st, f->project, "{\"inbound\":[]}", &v), STORE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(store_policy_set(f->s.st, f->project, "{\"outbound\":[]}", &v), STORE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_policy_version(f->s.st, f->project, &v), STORE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_policy_get(f->s.st, f->project, &json, &v), STORE_OK);
    assert_string_equal(json, "{\"outbound\":[]}");
    free(json);
    assert_int_equal(store_policy_version(f->s.st, f->other, &v), STORE_OK);
    assert_int_equal(v, 0);
}

static void test_job_round_trip_and_isolation(void **state)
{
    struct fixture *f = *state;
    struct job j = make_job(f->project, JOB_MODE_COMBINED, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_OK);
    assert_string_equal(got.id, j.id);
    assert_int_equal(got.status, JOB_PENDING);
    assert_int_equal(got.mode, JOB_MODE_COMBINED);
    assert_string_equal(got.message_input, "input text");
    assert_string_equal(got.message_output, "output text");
    assert_string_equal(got.metadata_json, "{\"k\":1}");
    assert_null(got.message);
    assert_null(got.filtered_input);
    assert_int_equal(got.completed_at, 0);
    job_clear(&got);
    assert_int_equal(store_job_get(f->s.st, f->other, j.id, &got), STORE_NOTFOUND);
}

static void test_idempotency_key(void **state)
{
    struct fixture *f = *state;
    int64_t now = clock_now_ms();
    struct job j = make_job(f->project, JOB_MODE_INPUT, now);
    j.idempotency_key = "key-1";
    j.request_hash = "abc";
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    struct job again = make_job(f->project, JOB_MODE_INPUT, now);
    again.idempotency_key = "key-1";
    again.request_hash = "abc";
    assert_int_equal(store_job_create(f->s.st, &again), STORE_CONSTRAINT);
    /* The failed create left nothing behind. */
    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, again.id, &got), STORE_NOTFOUND);
    /* The same key in another project is another key. */
    again.project_id = f->other;
    assert_int_equal(store_job_create(f->s.st, &again), STORE_OK);

    assert_int_equal(store_job_find_idempotent(f->s.st, f->project, "key-1", now - 1000, &got),
                     STORE_OK);
    assert_string_equal(got.id, j.id);
    assert_string_equal(got.request_hash, "abc");
    job_clear(&got);
    /* Outside the window it is not found. */
    assert_int_equal(store_job_find_idempotent(f->s.st, f->project, "key-1", now + 1, &got),
                     STORE_NOTFOUND);
}

static void test_list_newest_first_with_filters(void **state)
{
    struct fixture *f = *state;
    char ids[5][IDS_MAX_LEN];
    for (int i = 0; i < 5; i++) {
        struct job j =
            make_job(f->project, i < 2 ? JOB_MODE_INPUT_ONLY : JOB_MODE_INPUT, clock_now_ms());
        assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
        strcpy(ids[i], j.id);
    }
    struct store_job_summary *rows;
    size_t n;
    int64_t total;
    assert_int_equal(store_job_list(f->s.st, f->project, 0, 0, 3, &rows, &n, &total), STORE_OK);
    assert_int_equal(total, 5);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, ids[4]);
    assert_string_equal(rows[2].id, ids[2]);
    store_job_summaries_free(rows, n);
    assert_int_equal(store_job_list(f->s.st, f->project, 0, 3, 3, &rows, &n, &total), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[1].id, ids[0]);
    store_job_summaries_free(rows, n);

    /* Run the two inbound_only jobs to completion, then filter. */
    for (int k = 0; k < 5; k++) {
        struct job c;
        claim_one(f->s.st, &c);
        complete(f->s.st, &c, job_status_after_inbound(c.mode, false), c.message_input, true);
        job_clear(&c);
    }
    assert_int_equal(
        store_job_list(f->s.st, f->project, 1u << JOB_COMPLETED, 0, 10, &rows, &n, &total),
        STORE_OK);
    assert_int_equal(total, 2);
    store_job_summaries_free(rows, n);
    assert_int_equal(
        store_job_list(f->s.st, f->project, 1u << JOB_AWAITING_RESPONSE, 0, 10, &rows, &n, &total),
        STORE_OK);
    assert_int_equal(total, 3);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].metadata_json, "{\"k\":1}");
    store_job_summaries_free(rows, n);
    assert_int_equal(store_job_list(f->s.st, f->other, 0, 0, 10, &rows, &n, &total), STORE_OK);
    assert_int_equal(total, 0);
    store_job_summaries_free(rows, n);
}

/* Records one attempt, which must succeed. */
static void record(struct fixture *f, const struct store_attempt *a)
{
    size_t recorded = 0;
    assert_int_equal(store_event_record(f->s.st, a, 1, &recorded), STORE_OK);
    assert_int_equal(recorded, 1);
}

static void test_combined_job_steps_and_event_order(void **state)
{
    struct fixture *f = *state;
    struct job j = make_job(f->project, JOB_MODE_COMBINED, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);

    struct job c;
    claim_one(f->s.st, &c);
    assert_int_equal(c.status, JOB_PROCESSING_INBOUND);
    complete(f->s.st, &c, JOB_PROCESSING_OUTBOUND, "input [REDACTED:X]", false);
    job_clear(&c);
    claim_one(f->s.st, &c);
    assert_int_equal(c.status, JOB_PROCESSING_OUTBOUND);
    assert_string_equal(c.filtered_input, "input [REDACTED:X]");
    complete(f->s.st, &c, JOB_COMPLETED, "output text", true);
    job_clear(&c);

    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_OK);
    assert_int_equal(got.status, JOB_COMPLETED);
    assert_true(got.completed_at > 0);
    assert_string_equal(got.filtered_output, "output text"); /* stored once, read back */
    job_clear(&got);

    /* Two events, but only the first is deliverable until it is done. */
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(d[0].payload, JOB_EVENT_INBOUND_COMPLETE));
    assert_non_null(strstr(d[0].payload, "\"status\":\"processing_outbound\""));
    assert_non_null(strstr(d[0].payload, "input [REDACTED:X]"));
    int64_t seq = d[0].seq;
    store_deliveries_free(d, n);
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 0);

    struct store_attempt a = {.seq = seq,
                              .started_at = clock_now_ms(),
                              .duration_ms = 3,
                              .status_code = 500,
                              .next = DELIVERY_RETRYING,
                              .next_attempt_at = clock_now_ms() + 3600000};
    record(f, &a);
    /* Retrying later: the second event still waits behind it. */
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 0);
    struct store_delivery_state ds;
    assert_int_equal(store_delivery_state(f->s.st, j.id, &ds), STORE_OK);
    free(ds.url);

    /* Redelivery makes it due now. */
    size_t count;
    assert_int_equal(store_event_redeliver(f->s.st, f->project, j.id, clock_now_ms(), &count),
                     STORE_OK);
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].seq, seq);
    assert_int_equal(d[0].attempts, 1);
    store_deliveries_free(d, n);
    a.status_code = 200;
    a.next = DELIVERY_DELIVERED;
    record(f, &a);

    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(d[0].payload, JOB_EVENT_OUTBOUND_COMPLETE));
    assert_non_null(strstr(d[0].payload, "\"filtered_content\":\"output text\""));
    store_deliveries_free(d, n);
    assert_int_equal(store_event_redeliver(f->s.st, f->other, j.id, clock_now_ms(), &count),
                     STORE_NOTFOUND);
}

/* Creates a job of the mode, claims its first step into *c and makes a new
 * event id for that step. */
static void create_and_claim(struct fixture *f, enum job_mode mode, struct job *c,
                             char event_id[IDS_MAX_LEN])
{
    struct job j = make_job(f->project, mode, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    claim_one(f->s.st, c);
    ids_new(event_id, IDS_MAX_LEN, "msg_", clock_now_ms());
}

/* A body prepared by the step (job_event_body_after_step) is what the first
 * claim sends; a later claim rebuilds it from the stored job, and both are
 * byte for byte the same, so every attempt of an event carries one body. */
static void test_prepared_body_matches_rebuilt(void **state)
{
    struct fixture *f = *state;
    for (int unchanged = 0; unchanged < 2; unchanged++) {
        struct job c;
        char event_id[IDS_MAX_LEN];
        create_and_claim(f, JOB_MODE_INPUT, &c, event_id);
        struct store_step_result r = {
            .job_id = c.id,
            .from = c.status,
            .to = JOB_AWAITING_RESPONSE,
            .step = JOB_STEP_INBOUND,
            .filtered = unchanged ? c.message_input : "in\"put [REDACTED:EMAIL] ü",
            .filtered_unchanged = unchanged,
            .result_json = "{\"decision\":\"redact\",\"rules_triggered\":[{\"rule_id\":\"r\"}]}",
            .event_type = JOB_EVENT_INBOUND_COMPLETE,
            .event_id = event_id,
            .now = clock_now_ms(),
        };
        char *prepared = job_event_body_after_step(&c, &r);
        assert_non_null(prepared);
        r.event_body = prepared;
        r.webhook_url = c.webhook_url;
        r.webhook_secret = c.webhook_secret;
        assert_int_equal(store_work_complete(f->s.st, &r, 1), STORE_OK);

        struct store_delivery *d;
        size_t n;
        assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n),
                         STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].payload, prepared);
        assert_string_equal(d[0].url, c.webhook_url);
        assert_string_equal(d[0].secret, c.webhook_secret);
        struct store_attempt a = {.seq = d[0].seq,
                                  .started_at = clock_now_ms(),
                                  .duration_ms = 1,
                                  .status_code = 500,
                                  .next = DELIVERY_RETRYING,
                                  .next_attempt_at = clock_now_ms()};
        store_deliveries_free(d, n);
        record(f, &a);

        /* The retry's body comes from the database. */
        assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n),
                         STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].payload, prepared);
        assert_string_equal(d[0].secret, c.webhook_secret);
        a.seq = d[0].seq;
        a.next = DELIVERY_DELIVERED;
        a.status_code = 200;
        store_deliveries_free(d, n);
        record(f, &a);
        free(prepared);
        job_clear(&c);
    }

    /* And the first claim really takes the prepared body (a marker here),
     * without reading the job back. */
    struct job c;
    char event_id[IDS_MAX_LEN];
    create_and_claim(f, JOB_MODE_INPUT_ONLY, &c, event_id);
    struct store_step_result r = {
        .job_id = c.id,
        .from = c.status,
        .to = JOB_COMPLETED,
        .step = JOB_STEP_INBOUND,
        .filtered = c.message_input,
        .filtered_unchanged = true,
        .result_json = "{}",
        .event_type = JOB_EVENT_INBOUND_COMPLETE,
        .event_id = event_id,
        .now = clock_now_ms(),
        .event_body = "{\"marker\":1}",
        .webhook_url = "https://m.example/h",
        .webhook_secret = c.webhook_secret,
    };
    assert_int_equal(store_work_complete(f->s.st, &r, 1), STORE_OK);
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].payload, "{\"marker\":1}");
    assert_string_equal(d[0].url, "https://m.example/h");
    store_deliveries_free(d, n);
    job_clear(&c);
}

/* Completes the claimed step of c, its text unchanged, with body as the
 * event's prepared body. */
static void complete_with_body(struct store *st, const struct job *c, enum job_status to,
                               const char *event_id, const char *body)
{
    bool inbound = c->status == JOB_PROCESSING_INBOUND;
    struct store_step_result r = {
        .job_id = c->id,
        .from = c->status,
        .to = to,
        .step = inbound ? JOB_STEP_INBOUND : JOB_STEP_OUTBOUND,
        .filtered = inbound ? c->message_input : c->message_output,
        .filtered_unchanged = true,
        .result_json = "{}",
        .event_type = inbound ? JOB_EVENT_INBOUND_COMPLETE : JOB_EVENT_OUTBOUND_COMPLETE,
        .event_id = event_id,
        .now = clock_now_ms(),
        .event_body = body,
        .webhook_url = c->webhook_url,
        .webhook_secret = c->webhook_secret,
    };
    assert_int_equal(store_work_complete(st, &r, 1), STORE_OK);
}

/* Claims exactly one event and checks its id; returns its seq. */
static int64_t claim_event(struct fixture *f, const char *event_id, const char *payload)
{
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, event_id);
    if (payload)
        assert_string_equal(d[0].payload, payload);
    int64_t seq = d[0].seq;
    store_deliveries_free(d, n);
    return seq;
}

static void assert_nothing_due(struct fixture *f)
{
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void record_delivered(struct fixture *f, int64_t seq)
{
    struct store_attempt a = {.seq = seq,
                              .started_at = clock_now_ms(),
                              .duration_ms = 1,
                              .status_code = 200,
                              .next = DELIVERY_DELIVERED};
    record(f, &a);
}

/* More attempts than one writer task takes are recorded in several
 * transactions: all of them, and the events on both sides of each chunk
 * boundary move on. */
static void test_record_large_batch(void **state)
{
    struct fixture *f = *state;
    enum { N = 150 };
    struct job *jobs = calloc(N, sizeof(*jobs));
    for (int i = 0; i < N; i++) {
        jobs[i] = make_job(f->project, JOB_MODE_INPUT_ONLY, clock_now_ms());
        assert_int_equal(store_job_create(f->s.st, &jobs[i]), STORE_OK);
    }
    struct job *claimed;
    size_t n;
    assert_int_equal(store_work_claim(f->s.st, clock_now_ms(), 60000, N, &claimed, &n), STORE_OK);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++)
        complete(f->s.st, &claimed[i], JOB_COMPLETED, claimed[i].message_input, true);
    for (size_t i = 0; i < n; i++)
        job_clear(&claimed[i]);
    free(claimed);

    struct store_delivery *d;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 2 * N, NULL, &d, &n),
                     STORE_OK);
    assert_int_equal(n, N);
    struct store_attempt *a = calloc(N, sizeof(*a));
    for (size_t i = 0; i < n; i++)
        a[i] = (struct store_attempt){.seq = d[i].seq,
                                      .started_at = clock_now_ms(),
                                      .duration_ms = 1,
                                      .status_code = 200,
                                      .next = DELIVERY_DELIVERED};
    store_deliveries_free(d, n);
    size_t recorded = 0;
    assert_int_equal(store_event_record(f->s.st, a, N, &recorded), STORE_OK);
    assert_int_equal(recorded, N);
    free(a);

    assert_nothing_due(f);
    for (int i = 0; i < N; i++) {
        struct store_delivery_state ds;
        assert_int_equal(store_delivery_state(f->s.st, jobs[i].id, &ds), STORE_OK);
        assert_int_equal(ds.status, DELIVERY_DELIVERED);
        assert_int_equal(ds.attempts, 1);
        free(ds.url);
    }
    free(jobs);
}

/* A step's event with a prepared body is held for the dispatcher: claimed
 * from memory once (never again from the database while it is out), shown
 * as pending and due since it was made, left alone by redelivery, and due
 * from the database after a restart. A later event of the same job is not
 * held and waits behind it. */
static void test_held_events(void **state)
{
    struct fixture *f = *state;
    struct job c;
    char ev1[IDS_MAX_LEN], ev2[IDS_MAX_LEN];
    create_and_claim(f, JOB_MODE_COMBINED, &c, ev1);
    struct store_step_result r = {
        .job_id = c.id,
        .from = c.status,
        .to = JOB_PROCESSING_OUTBOUND,
        .step = JOB_STEP_INBOUND,
        .filtered = c.message_input,
        .filtered_unchanged = true,
        .result_json = "{}",
        .event_type = JOB_EVENT_INBOUND_COMPLETE,
        .event_id = ev1,
        .now = clock_now_ms(),
        .webhook_url = c.webhook_url,
        .webhook_secret = c.webhook_secret,
    };
    char *body = job_event_body_after_step(&c, &r);
    assert_non_null(body);
    r.event_body = body;
    assert_int_equal(store_work_complete(f->s.st, &r, 1), STORE_OK);

    struct store_delivery_state ds;
    assert_int_equal(store_delivery_state(f->s.st, c.id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_PENDING);
    assert_int_equal(ds.next_attempt_at, r.now);
    assert_int_equal(ds.attempts, 0);
    free(ds.url);
    job_clear(&c);

    /* The outbound step's event: not held, since the first is undelivered. */
    claim_one(f->s.st, &c);
    assert_int_equal(c.status, JOB_PROCESSING_OUTBOUND);
    ids_new(ev2, sizeof(ev2), "msg_", clock_now_ms());
    complete_with_body(f->s.st, &c, JOB_COMPLETED, ev2, "{\"marker\":2}");

    /* A restart before any claim: held rows are not due until recovery. */
    store_close(f->s.st);
    char err[256];
    f->s.st = store_open(f->s.path, NULL, err, sizeof(err));
    assert_non_null(f->s.st);
    assert_nothing_due(f);
    assert_int_equal(store_recover(f->s.st, clock_now_ms()), STORE_OK);
    int64_t seq = claim_event(f, ev1, body); /* rebuilt from the job: the same bytes */
    assert_nothing_due(f);                   /* the second waits behind it */
    record_delivered(f, seq);
    seq = claim_event(f, ev2, NULL);
    record_delivered(f, seq);
    assert_nothing_due(f);
    free(body);
    job_clear(&c);

    /* A fresh job's event comes from memory (the marker body) exactly once;
     * redelivery while it is held or out is refused and changes nothing;
     * once delivered, redelivery makes it due from the database, body
     * rebuilt from the job. */
    char ev3[IDS_MAX_LEN];
    create_and_claim(f, JOB_MODE_INPUT_ONLY, &c, ev3);
    complete_with_body(f->s.st, &c, JOB_COMPLETED, ev3, "{\"marker\":3}");
    size_t count;
    assert_int_equal(store_event_redeliver(f->s.st, f->project, c.id, clock_now_ms(), &count),
                     STORE_STATE);
    /* Its row says pending throughout; GET's status follows the hand-over. */
    assert_int_equal(store_delivery_state(f->s.st, c.id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_PENDING);
    assert_true(ds.next_attempt_at > 0);
    free(ds.url);
    seq = claim_event(f, ev3, "{\"marker\":3}");
    assert_int_equal(store_delivery_state(f->s.st, c.id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_DELIVERING);
    assert_int_equal(ds.next_attempt_at, 0);
    free(ds.url);
    assert_nothing_due(f);
    assert_int_equal(store_event_redeliver(f->s.st, f->project, c.id, clock_now_ms(), &count),
                     STORE_STATE);
    assert_nothing_due(f);
    record_delivered(f, seq);
    assert_int_equal(store_delivery_state(f->s.st, c.id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_DELIVERED);
    free(ds.url);
    assert_int_equal(store_event_redeliver(f->s.st, f->project, c.id, clock_now_ms(), &count),
                     STORE_OK);
    assert_int_equal(count, 1);
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, ev3);
    assert_non_null(strstr(d[0].payload, JOB_EVENT_INBOUND_COMPLETE));
    store_deliveries_free(d, n);
    job_clear(&c);
}

static bool room_unless_a(void *ud, const char *url)
{
    (*(int *)ud)++;
    return strcmp(url, "https://a.example/hook") != 0;
}

/* store_event_claim with room_unless_a, counting its questions in *asked. */
static int claim_unless_a(struct fixture *f, size_t max, size_t look_past, int *asked,
                          struct store_delivery **d, size_t *n)
{
    *asked = 0;
    struct store_claim_room room = {room_unless_a, asked, look_past};
    return store_event_claim(f->s.st, clock_now_ms(), 30000, max, &room, d, n);
}

/* Creates a job whose event is handed over in memory for url; its id goes
 * to job_id when that is not NULL. */
static void held_event_for(struct fixture *f, const char *url, char event_id[IDS_MAX_LEN],
                           char job_id[IDS_MAX_LEN])
{
    struct job c;
    create_and_claim(f, JOB_MODE_INPUT_ONLY, &c, event_id);
    char *own = c.webhook_url;
    c.webhook_url = (char *)url;
    complete_with_body(f->s.st, &c, JOB_COMPLETED, event_id, "{}");
    c.webhook_url = own;
    if (job_id)
        memcpy(job_id, c.id, IDS_MAX_LEN);
    job_clear(&c);
}

/* An event handed over in memory that the dispatcher could not start is
 * given back: it stops showing as delivering, is due from the database
 * when its lease would have ended (not before), leased then, with no
 * attempt counted. Without it the event waited for a restart. */
static void test_unclaimed_held_event_is_due_again(void **state)
{
    struct fixture *f = *state;
    char ev[IDS_MAX_LEN], job_id[IDS_MAX_LEN];
    held_event_for(f, "https://a.example/hook", ev, job_id);
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_false(d[0].leased);
    int64_t seq = d[0].seq;
    store_deliveries_free(d, n);
    struct store_delivery_state ds;
    assert_int_equal(store_delivery_state(f->s.st, job_id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_DELIVERING);
    free(ds.url);

    int64_t due = clock_now_ms() + 60000;
    assert_int_equal(store_event_unclaim(f->s.st, seq, due), STORE_OK);
    assert_int_equal(store_delivery_state(f->s.st, job_id, &ds), STORE_OK);
    assert_int_equal(ds.status, DELIVERY_PENDING);
    assert_int_equal(ds.next_attempt_at, due);
    assert_int_equal(ds.attempts, 0);
    free(ds.url);
    assert_nothing_due(f); /* not before its time */

    assert_int_equal(store_event_claim(f->s.st, due, 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, ev);
    assert_true(d[0].leased);
    assert_int_equal(d[0].attempts, 0);
    assert_non_null(strstr(d[0].payload, job_id)); /* rebuilt from the job */
    store_deliveries_free(d, n);
}

/* Claims (room for 10) exactly the events a and b, in that order, and
 * then finds nothing more due. */
static void claim_exactly(struct fixture *f, const char *a, const char *b)
{
    struct store_delivery *d;
    size_t n;
    assert_int_equal(store_event_claim(f->s.st, clock_now_ms(), 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].event_id, a);
    assert_string_equal(d[1].event_id, b);
    store_deliveries_free(d, n);
    assert_nothing_due(f);
}

/* An event handed over in memory whose receiver has no room stays queued,
 * in order, and the claim goes on to the events behind it; a claim that is
 * full leaves the rest as it was, and events queued later go behind. */
static void test_held_events_wait_for_room(void **state)
{
    struct fixture *f = *state;
    const char *a = "https://a.example/hook", *b = "https://b.example/hook";
    const char *urls[4] = {a, b, a, b};
    char ev[5][IDS_MAX_LEN];
    for (int i = 0; i < 4; i++)
        held_event_for(f, urls[i], ev[i], NULL);
    struct store_delivery *d;
    size_t n;
    int asked;
    assert_int_equal(claim_unless_a(f, 1, 64, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, 2); /* full after the first b */
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, ev[1]);
    assert_string_equal(d[0].url, b);
    assert_false(d[0].leased);
    store_deliveries_free(d, n);
    held_event_for(f, b, ev[4], NULL);
    assert_int_equal(claim_unless_a(f, 10, 64, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, 4);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].event_id, ev[3]);
    assert_string_equal(d[1].event_id, ev[4]);
    store_deliveries_free(d, n);
    claim_exactly(f, ev[0], ev[2]);
}

/* Creates a job for url whose event is stored only (not handed over in
 * memory), as retries and redeliveries are: claimed from the database. */
static void stored_event_for(struct fixture *f, const char *url, char event_id[IDS_MAX_LEN],
                             char job_id[IDS_MAX_LEN])
{
    struct job j = make_job(f->project, JOB_MODE_INPUT_ONLY, clock_now_ms());
    j.webhook_url = (char *)url;
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    struct job c;
    claim_one(f->s.st, &c);
    ids_new(event_id, IDS_MAX_LEN, "msg_", clock_now_ms());
    complete_with_body(f->s.st, &c, JOB_COMPLETED, event_id, NULL);
    if (job_id)
        memcpy(job_id, c.id, IDS_MAX_LEN);
    job_clear(&c);
}

/* The same for events claimed from the database: one whose receiver has
 * no room is not leased and stays due, and the claim goes on to the events
 * behind it until it was refused look_past times. */
static void test_stored_events_wait_for_room(void **state)
{
    struct fixture *f = *state;
    const char *a = "https://a.example/hook", *b = "https://b.example/hook";
    const char *urls[4] = {a, b, a, b};
    char ev[4][IDS_MAX_LEN], jobs[4][IDS_MAX_LEN];
    for (int i = 0; i < 4; i++)
        stored_event_for(f, urls[i], ev[i], jobs[i]);
    struct store_delivery *d;
    size_t n;
    int asked;
    assert_int_equal(claim_unless_a(f, 10, 64, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, 4);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].event_id, ev[1]);
    assert_string_equal(d[1].event_id, ev[3]);
    assert_string_equal(d[0].url, b);
    assert_true(d[0].leased);
    store_deliveries_free(d, n);
    /* In flight (leased): redelivering its job is refused. */
    size_t count;
    assert_int_equal(store_event_redeliver(f->s.st, f->project, jobs[1], clock_now_ms(), &count),
                     STORE_STATE);
    /* a's were not leased: due at once, in order. */
    claim_exactly(f, ev[0], ev[2]);

    /* The bound: 70 refused events ahead of one with room. */
    enum { REFUSED = 70 };
    char skip[REFUSED][IDS_MAX_LEN], last[IDS_MAX_LEN];
    for (int i = 0; i < REFUSED; i++)
        stored_event_for(f, a, skip[i], NULL);
    stored_event_for(f, b, last, NULL);
    assert_int_equal(claim_unless_a(f, 10, 64, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, 64);
    assert_int_equal(n, 0);
    assert_int_equal(claim_unless_a(f, 10, 0, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, 1); /* 0 counts as 1 */
    assert_int_equal(n, 0);
    assert_int_equal(claim_unless_a(f, 10, REFUSED + 1, &asked, &d, &n), STORE_OK);
    assert_int_equal(asked, REFUSED + 1);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_id, last);
    store_deliveries_free(d, n);
}

static void test_response_submission_states(void **state)
{
    struct fixture *f = *state;
    struct job j = make_job(f->project, JOB_MODE_INPUT, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    int64_t now = clock_now_ms();
    assert_int_equal(store_job_submit_response(f->s.st, f->project, j.id, "r", now), STORE_STATE);
    struct job c;
    claim_one(f->s.st, &c);
    complete(f->s.st, &c, JOB_AWAITING_RESPONSE, c.message_input, true);
    job_clear(&c);
    assert_int_equal(store_job_submit_response(f->s.st, f->other, j.id, "r", now), STORE_NOTFOUND);
    assert_int_equal(store_job_submit_response(f->s.st, f->project, j.id, "llm says", now),
                     STORE_OK);
    assert_int_equal(store_job_submit_response(f->s.st, f->project, j.id, "again", now),
                     STORE_STATE);
    claim_one(f->s.st, &c);
    assert_int_equal(c.status, JOB_PROCESSING_OUTBOUND);
    assert_string_equal(c.message_output, "llm says");
    job_clear(&c);
}

static void test_sweep_expires_and_deletes(void **state)
{
    struct fixture *f = *state;
    int64_t now = clock_now_ms();
    struct job j = make_job(f->project, JOB_MODE_INPUT, now - 10000);
    j.expires_at = now - 5000;
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    /* Expired jobs are not handed to workers. */
    struct job *jobs;
    size_t n;
    assert_int_equal(store_work_claim(f->s.st, now, 60000, 8, &jobs, &n), STORE_OK);
    assert_int_equal(n, 0);
    size_t expired, deleted;
    assert_int_equal(store_sweep(f->s.st, now, 3600000, &expired, &deleted), STORE_OK);
    assert_int_equal(expired, 1);
    assert_int_equal(deleted, 0);
    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_OK);
    assert_int_equal(got.status, JOB_EXPIRED);
    job_clear(&got);
    struct store_delivery *d;
    assert_int_equal(store_event_claim(f->s.st, now, 30000, 10, NULL, &d, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(d[0].payload, JOB_EVENT_EXPIRED));
    store_deliveries_free(d, n);
    /* Retention: gone (with its events) once expiry is retention_ms old. */
    assert_int_equal(store_sweep(f->s.st, now, 1000, &expired, &deleted), STORE_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_NOTFOUND);
}

static void test_recover_requeues_and_locks(void **state)
{
    struct fixture *f = *state;
    struct job j = make_job(f->project, JOB_MODE_LEGACY, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    /* A restart: the in-memory queue is gone with the process. */
    store_close(f->s.st);
    char err[256];
    f->s.st = store_open(f->s.path, NULL, err, sizeof(err));
    assert_non_null(f->s.st);
    struct job *jobs;
    size_t n;
    assert_int_equal(store_work_claim(f->s.st, clock_now_ms(), 60000, 8, &jobs, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_recover(f->s.st, clock_now_ms()), STORE_OK);
    assert_int_equal(store_work_claim(f->s.st, clock_now_ms(), 60000, 8, &jobs, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, j.id);
    job_clear(&jobs[0]);
    free(jobs);
    /* A second server on the same file is refused. */
    struct store *second = store_open(f->s.path, NULL, err, sizeof(err));
    assert_non_null(second);
    assert_int_equal(store_recover(second, clock_now_ms()), STORE_BUSY);
    store_close(second);
}

struct writer_arg {
    struct fixture *f;
    atomic_int done;
    atomic_int failed;
};

static void count_done(void *ud, int rc)
{
    struct writer_arg *a = ud;
    if (rc != STORE_OK)
        atomic_fetch_add(&a->failed, 1);
    atomic_fetch_add(&a->done, 1);
}

/* Waits until n async creates reported, and checks none failed. */
static void wait_all_done(struct writer_arg *a, int n)
{
    while (atomic_load(&a->done) < n)
        usleep(1000);
    assert_int_equal(atomic_load(&a->failed), 0);
}

/* The project of f holds exactly n jobs. */
static void assert_job_total(struct fixture *f, int64_t n)
{
    struct store_job_summary *rows;
    size_t got;
    int64_t total;
    assert_int_equal(store_job_list(f->s.st, f->project, 0, 0, 1, &rows, &got, &total), STORE_OK);
    assert_int_equal(total, n);
    store_job_summaries_free(rows, got);
}

static void test_async_creates_all_durable(void **state)
{
    struct fixture *f = *state;
    struct writer_arg a = {.f = f};
    enum { N = 500 };
    for (int i = 0; i < N; i++) {
        struct job j = make_job(f->project, JOB_MODE_INPUT_ONLY, clock_now_ms());
        assert_int_equal(store_job_create_async(f->s.st, &j, count_done, &a), STORE_OK);
    }
    wait_all_done(&a, N);
    /* Reopen: every acknowledged job is there. */
    store_close(f->s.st);
    char err[256];
    f->s.st = store_open(f->s.path, NULL, err, sizeof(err));
    assert_non_null(f->s.st);
    assert_job_total(f, N);
}

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* A job's first step gets it through memory (handed over at create); it
 * must be the job exactly as a read from the database returns it, and a
 * job whose hand-over copy is gone is read back instead. */
static void test_new_job_handed_over_as_stored(void **state)
{
    struct fixture *f = *state;
    struct writer_arg a = {.f = f};
    enum { N = 3 };
    char ids[N][IDS_MAX_LEN];
    for (int i = 0; i < N; i++) {
        struct job j =
            make_job(f->project, i == 1 ? JOB_MODE_LEGACY : JOB_MODE_COMBINED, clock_now_ms());
        j.metadata_json = i == 2 ? NULL : "{\"k\":1}";
        snprintf(ids[i], sizeof(ids[i]), "%s", j.id);
        assert_int_equal(store_job_create_async(f->s.st, &j, count_done, &a), STORE_OK);
    }
    wait_all_done(&a, N);
    struct job *jobs;
    size_t n;
    assert_int_equal(store_work_claim(f->s.st, clock_now_ms(), 60000, 10, &jobs, &n), STORE_OK);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        struct job db;
        assert_string_equal(jobs[i].id, ids[i]);
        assert_int_equal(store_job_get(f->s.st, f->project, jobs[i].id, &db), STORE_OK);
        assert_int_equal(jobs[i].status, job_status_on_claim(db.status, db.mode));
        assert_int_equal(jobs[i].project_id, db.project_id);
        assert_int_equal(jobs[i].mode, db.mode);
        assert_int_equal(jobs[i].created_at, db.created_at);
        assert_int_equal(jobs[i].expires_at, db.expires_at);
        assert_int_equal(jobs[i].completed_at, db.completed_at);
        assert_same_str(jobs[i].message, db.message);
        assert_same_str(jobs[i].message_input, db.message_input);
        assert_same_str(jobs[i].message_output, db.message_output);
        assert_same_str(jobs[i].webhook_url, db.webhook_url);
        assert_same_str(jobs[i].webhook_secret, db.webhook_secret);
        assert_same_str(jobs[i].metadata_json, db.metadata_json);
        assert_null(jobs[i].filtered_input);
        assert_null(jobs[i].inbound_result_json);
        assert_null(jobs[i].idempotency_key);
        job_clear(&db);
        job_clear(&jobs[i]);
    }
    free(jobs);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* A database at schema 1 (with the jobs_due index) is brought to the
 * current version on open, keeping its rows. */
static void test_schema_1_upgraded(void **state)
{
    struct fixture *f = *state;
    struct job j = make_job(f->project, JOB_MODE_INPUT, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    store_close(f->s.st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE INDEX jobs_due ON jobs(seq) WHERE status IN (0, 1, 3);"
                                  "PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    char err[256];
    f->s.st = store_open(f->s.path, NULL, err, sizeof(err));
    assert_non_null(f->s.st);
    assert_int_equal(sql_int(f->s.path, "PRAGMA user_version"), 2);
    assert_int_equal(
        sql_int(f->s.path, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs_due'"), 0);
    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_OK);
    job_clear(&got);
    /* The job is still due after a restart (found through jobs_by_expiry). */
    assert_int_equal(store_recover(f->s.st, clock_now_ms()), STORE_OK);
    struct job c;
    claim_one(f->s.st, &c);
    assert_string_equal(c.id, j.id);
    job_clear(&c);
}

/* Checkpoints run beside the writer, and the writer's own one after a group
 * lets the WAL start over: writing ~80 MB of jobs leaves a WAL file far
 * smaller than that (without the writer's checkpoint it would hold every
 * frame written, since concurrent checkpoints never reach the last one
 * while commits keep coming). */
static void test_wal_stays_bounded(void **state)
{
    struct fixture *f = *state;
    struct writer_arg a = {.f = f};
    enum { N = 5000, TEXT = 16 * 1024 };
    char *text = malloc(TEXT + 1);
    assert_non_null(text);
    memset(text, 'w', TEXT);
    text[TEXT] = '\0';
    for (int i = 0; i < N; i++) {
        struct job j = make_job(f->project, JOB_MODE_INPUT_ONLY, clock_now_ms());
        j.message_input = text;
        assert_int_equal(store_job_create_async(f->s.st, &j, count_done, &a), STORE_OK);
    }
    wait_all_done(&a, N);
    free(text);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->s.path);
    FILE *fp = fopen(wal, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    /* ~20,000 pages were written; the WAL may hold 4,000 plus a group's. */
    assert_true(size < 40L * 1024 * 1024);
    assert_job_total(f, N);
}

static void test_secrets_sealed_at_rest(void **state)
{
    struct fixture *f = *state;
    store_close(f->s.st);
    uint8_t key[SECRETBOX_KEY_LEN], other[SECRETBOX_KEY_LEN];
    memset(key, 7, sizeof(key));
    memset(other, 9, sizeof(other));
    struct secretbox *box = secretbox_new(key), *wrong = secretbox_new(other);
    struct store_options o = {.synchronous_full = true, .box = box};
    char err[256];
    f->s.st = store_open(f->s.path, &o, err, sizeof(err));
    assert_non_null(f->s.st);
    struct job j = make_job(f->project, JOB_MODE_INPUT, clock_now_ms());
    assert_int_equal(store_job_create(f->s.st, &j), STORE_OK);
    struct job got;
    assert_int_equal(store_job_get(f->s.st, f->project, j.id, &got), STORE_OK);
    assert_string_equal(got.webhook_secret, j.webhook_secret);
    job_clear(&got);

    /* On disk it is sealed. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->s.path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT webhook_secret FROM jobs WHERE id = ?1", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_text(s, 1, j.id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const char *raw = (const char *)sqlite3_column_text(s, 0);
    assert_true(secretbox_is_sealed(raw));
    assert_null(strstr(raw, "whsec_"));
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* Another key cannot open this database. */
    store_close(f->s.st);
    o.box = wrong;
    f->s.st = store_open(f->s.path, &o, err, sizeof(err));
    assert_null(f->s.st);
    assert_non_null(strstr(err, "secret key"));
    o.box = box;
    f->s.st = store_open(f->s.path, &o, err, sizeof(err));
    assert_non_null(f->s.st);
    store_close(f->s.st);
    f->s.st =
        store_open(f->s.path, NULL, err, sizeof(err)); /* teardown closes it before the boxes go */
    secretbox_free(box);
    secretbox_free(wrong);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_projects_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_round_trip_and_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_newest_first_with_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_combined_job_steps_and_event_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepared_body_matches_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_submission_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_expires_and_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_events_wait_for_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclaimed_held_event_is_due_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_events_wait_for_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_large_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_requeues_and_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_creates_all_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_sealed_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_job_handed_over_as_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_upgraded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
