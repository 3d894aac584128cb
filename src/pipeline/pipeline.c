#include "pipeline/pipeline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job/view.h"
#include "util/clock.h"
#include "util/ids.h"
#include "util/jsonfmt.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/metrics.h"

#define CLAIM_BATCH 32
#define IDLE_POLL_MS 500 /* safety net; normally woken by the store */

struct pipeline {
    struct store *st;
    struct policy_cache *pc;
    struct pipeline_options opt;
    pthread_mutex_t mu; /* guards gen, stopping */
    pthread_cond_t cv;
    uint64_t gen;       /* bumped by every wake */
    bool stopping;
    pthread_t *workers;
    int nworkers;
    pthread_t sweeper;
    bool sweeper_started;
};

/* What one step produced; the strings are owned here and outlive the
 * store_step_result that points at them until the batch is written. */
struct step_out {
    char event_id[IDS_MAX_LEN];
    char *filtered;
    char *result_json;
    char *error_json;
    char *event_body;
};

static void step_out_clear(struct step_out *o)
{
    free(o->filtered);
    free(o->result_json);
    free(o->error_json);
    free(o->event_body);
    memset(o, 0, sizeof(*o));
}

static void timed_wait(struct pipeline *p, uint64_t seen_gen, int64_t ms)
{
    struct timespec ts;
    clock_deadline(ms, &ts);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && p->gen == seen_gen) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0)
            break;
    }
    pthread_mutex_unlock(&p->mu);
}

static bool is_stopping(struct pipeline *p, uint64_t *gen)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stopping;
    if (gen)
        *gen = p->gen;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* Marks a step as failed: the job becomes failed and gets job.failed. */
static void fail_step(const char *code, const char *message, struct store_step_result *r,
                      struct step_out *o)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
    o->error_json = err ? json_dumps(err, JSON_COMPACT) : NULL;
    json_decref(err);
    r->to = JOB_FAILED;
    r->error_json = o->error_json;
    r->event_type = JOB_EVENT_FAILED;
    metrics_inc(METRIC_JOBS_FAILED);
}

static void run_step(struct pipeline *p, struct policy_scratch *scratch, const struct job *j,
                     struct store_step_result *r, struct step_out *o)
{
    int64_t now = clock_now_ms();
    enum job_step step = job_step_due(j->status, j->mode);
    bool inbound = step == JOB_STEP_INBOUND;
    memset(r, 0, sizeof(*r));
    r->job_id = j->id;
    r->from = j->status;
    r->step = step;
    r->now = now;
    ids_new(o->event_id, sizeof(o->event_id), "msg_", now);
    r->event_id = o->event_id;

    const char *text = inbound ? (j->mode == JOB_MODE_LEGACY ? j->message : j->message_input)
                               : j->message_output;
    enum policy_direction dir = !inbound                      ? POLICY_OUTBOUND
                                : j->mode == JOB_MODE_LEGACY ? POLICY_LEGACY
                                                             : POLICY_INBOUND;
    struct policy *pol = NULL;
    int64_t version = 0;
    if (step == JOB_STEP_NONE || !text) {
        fail_step("internal_error", "job has no content for its step", r, o);
        return;
    }
    if (policy_cache_get(p->pc, j->project_id, &pol, &version) != STORE_OK) {
        fail_step("policy_unavailable", "the project's policy could not be loaded", r, o);
        return;
    }
    struct policy_result res = {0};
    int64_t t0 = clock_mono_ns();
    int rc = policy_eval(pol, scratch, dir, text, strlen(text), &res);
    metrics_observe(METRIC_H_FILTER_SECONDS, (double)(clock_mono_ns() - t0) / 1e9);
    metrics_inc(METRIC_FILTER_EVALUATIONS);
    policy_release(pol);
    if (rc != 0) {
        fail_step("filter_failed", "the policy could not be evaluated", r, o);
        return;
    }
    json_t *rj = policy_result_to_json(&res, version);
    o->result_json = rj ? json_dumps(rj, JSONFMT_FLAGS) : NULL;
    json_decref(rj);
    if (res.filtered)
        o->filtered = strdup(res.filtered);
    bool blocked = res.decision == POLICY_BLOCK;
    policy_result_clear(&res);

    r->to = inbound ? job_status_after_inbound(j->mode, blocked) : job_status_after_outbound(j->mode);
    r->filtered = o->filtered;
    r->filtered_unchanged = o->filtered && strcmp(o->filtered, text) == 0;
    r->result_json = o->result_json;
    r->event_type = inbound ? JOB_EVENT_INBOUND_COMPLETE : JOB_EVENT_OUTBOUND_COMPLETE;
    if (!o->result_json || (!blocked && !o->filtered)) {
        step_out_clear(o);
        ids_new(o->event_id, sizeof(o->event_id), "msg_", now);
        r->filtered = r->result_json = NULL;
        r->filtered_unchanged = false;
        fail_step("internal_error", "out of memory", r, o);
        return;
    }
    if (r->to == JOB_COMPLETED)
        metrics_inc(METRIC_JOBS_COMPLETED);
}

static void *worker_main(void *arg)
{
    struct pipeline *p = arg;
    thread_set_background("pipeline");
    struct policy_scratch *scratch = policy_scratch_new();
    struct store_step_result results[CLAIM_BATCH];
    struct step_out outs[CLAIM_BATCH];
    memset(outs, 0, sizeof(outs));
    uint64_t gen;
    while (scratch && !is_stopping(p, &gen)) {
        struct job *jobs = NULL;
        size_t n = 0;
        int rc = store_work_claim(p->st, clock_now_ms(), p->opt.lease_ms, CLAIM_BATCH, &jobs, &n);
        if (rc != STORE_OK || n == 0) {
            timed_wait(p, gen, IDLE_POLL_MS);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            run_step(p, scratch, &jobs[i], &results[i], &outs[i]);
            /* The body is built here, where the job is at hand, so the
             * event's first delivery need not read the job back. */
            outs[i].event_body = job_event_body_after_step(&jobs[i], &results[i]);
            results[i].event_body = outs[i].event_body;
            results[i].webhook_url = jobs[i].webhook_url;
            results[i].webhook_secret = jobs[i].webhook_secret;
        }
        rc = store_work_complete(p->st, results, n);
        if (rc != STORE_OK)
            log_warn("pipeline", "could not store %zu results: %s (leases will expire and the "
                     "jobs run again)", n, store_strerror(rc));
        for (size_t i = 0; i < n; i++) {
            step_out_clear(&outs[i]);
            job_clear(&jobs[i]);
        }
        free(jobs);
    }
    if (!scratch)
        log_error("pipeline", "cannot allocate matcher scratch; worker exits");
    policy_scratch_free(scratch);
    return NULL;
}

static void *sweeper_main(void *arg)
{
    struct pipeline *p = arg;
    thread_set_background("sweeper");
    uint64_t gen;
    while (!is_stopping(p, &gen)) {
        size_t expired = 0, deleted = 0;
        int rc = store_sweep(p->st, clock_now_ms(), p->opt.retention_ms, &expired, &deleted);
        metrics_add(METRIC_JOBS_EXPIRED, expired);
        if (rc != STORE_OK)
            log_warn("pipeline", "sweep failed: %s", store_strerror(rc));
        else if (expired || deleted)
            log_info("pipeline", "expired %zu jobs, deleted %zu", expired, deleted);
        /* A full batch means more is waiting: go again at once. */
        if (expired < STORE_SWEEP_BATCH && deleted < STORE_SWEEP_BATCH) {
            /* Sleeps the whole interval: pipeline_wake's broadcasts are for
             * the workers and only end a wait here when stopping. */
            struct timespec deadline;
            clock_deadline(p->opt.sweep_interval_ms, &deadline);
            pthread_mutex_lock(&p->mu);
            while (!p->stopping && pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == 0)
                ;
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

struct pipeline *pipeline_start(struct store *st, struct policy_cache *pc,
                                const struct pipeline_options *o)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->st = st;
    p->pc = pc;
    p->opt = *o;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->workers = calloc((size_t)o->workers, sizeof(pthread_t));
    if (!p->workers)
        goto fail;
    for (int i = 0; i < o->workers; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0)
            goto fail;
        p->nworkers++;
    }
    if (pthread_create(&p->sweeper, NULL, sweeper_main, p) != 0)
        goto fail;
    p->sweeper_started = true;
    return p;
fail:
    log_error("pipeline", "cannot start threads");
    pipeline_stop(p);
    return NULL;
}

void pipeline_wake(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->gen++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pipeline_stop(struct pipeline *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    if (p->sweeper_started)
        pthread_join(p->sweeper, NULL);
    free(p->workers);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
