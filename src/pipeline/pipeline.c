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
#include "util/taskq.h"

#define CLAIM_BATCH 32
#define IDLE_POLL_MS 500 /* safety net; normally woken by the store */

/* A claimed job set aside while its project's policy compiles. */
struct parked {
    struct parked *next;
    struct job job;
};

struct pipeline {
    struct store *st;
    struct policy_cache *pc;
    struct pipeline_options opt;
    pthread_mutex_t mu; /* guards gen, stopping, waiting, ready */
    pthread_cond_t cv;
    uint64_t gen; /* bumped by every wake */
    bool stopping;
    /* Jobs whose policy the compiler thread is compiling, and jobs whose
     * compile has finished, in the order they were claimed; the projects
     * with a compile queued or running (one each: few, as the compiler's
     * queue is bounded). */
    struct parked *waiting, **waiting_end, *ready;
    int64_t *compiling;
    size_t ncompiling, compiling_cap;
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

static void run_step(struct policy *pol, int64_t version, struct policy_scratch *scratch,
                     const struct job *j, struct store_step_result *r, struct step_out *o)
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

    const char *text =
        inbound ? (j->mode == JOB_MODE_LEGACY ? j->message : j->message_input) : j->message_output;
    enum policy_direction dir = !inbound                     ? POLICY_OUTBOUND
                                : j->mode == JOB_MODE_LEGACY ? POLICY_LEGACY
                                                             : POLICY_INBOUND;
    if (step == JOB_STEP_NONE || !text) {
        fail_step("internal_error", "job has no content for its step", r, o);
        return;
    }
    if (!pol) {
        fail_step("policy_unavailable", "the project's policy could not be loaded", r, o);
        return;
    }
    struct policy_result res = {0};
    int64_t t0 = clock_mono_ns();
    int rc = policy_eval(pol, scratch, dir, text, strlen(text), &res);
    metrics_observe(METRIC_H_FILTER_SECONDS, (double)(clock_mono_ns() - t0) / 1e9);
    metrics_inc(METRIC_FILTER_EVALUATIONS);
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

    r->to =
        inbound ? job_status_after_inbound(j->mode, blocked) : job_status_after_outbound(j->mode);
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

/* ---- compiling off the workers -------------------------------------------
 *
 * A policy compiles in up to tens of seconds (100,000 keywords: ~24 s). A
 * worker that did it held up every job of its claimed batch, whatever
 * their project; two such workers held up all filtering. So a job whose
 * project's policy is not compiled is parked, its policy compiles on the
 * compiler thread (util/taskq), and the worker goes on with the rest. When
 * the compile is done the project's parked jobs are ready and the next
 * free worker takes them. */

struct compile_task {
    struct pipeline *p;
    int64_t project_id;
};

static void compile_task(void *ud, bool cancelled)
{
    struct compile_task *t = ud;
    struct pipeline *p = t->p;
    if (cancelled) { /* stopping: the jobs stay parked, dropped at stop */
        free(t);
        return;
    }
    struct policy *pol = NULL;
    int64_t version;
    /* A failure is met again, and reported, by the worker. */
    if (policy_cache_get(p->pc, t->project_id, &pol, &version) == STORE_OK)
        policy_release(pol);
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->ncompiling; i++) {
        if (p->compiling[i] == t->project_id) {
            p->compiling[i] = p->compiling[--p->ncompiling];
            break;
        }
    }
    struct parked **from = &p->waiting, **to = &p->ready;
    while (*to)
        to = &(*to)->next;
    while (*from) {
        struct parked *k = *from;
        if (k->job.project_id == t->project_id) {
            *from = k->next;
            k->next = NULL;
            *to = k;
            to = &k->next;
        } else {
            from = &k->next;
        }
    }
    p->waiting_end = from;
    p->gen++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    free(t);
}

/* Parks *j (moved out: *j is left empty) until its project's policy is
 * compiled. false when it cannot be, and the caller compiles. */
static bool park(struct pipeline *p, struct job *j)
{
    struct parked *k = malloc(sizeof(*k));
    if (!k)
        return false;
    pthread_mutex_lock(&p->mu);
    bool compiling = p->stopping; /* then nothing runs it again: dropped at stop */
    for (size_t i = 0; i < p->ncompiling && !compiling; i++)
        compiling = p->compiling[i] == j->project_id;
    if (!compiling && p->ncompiling == p->compiling_cap) {
        size_t cap = p->compiling_cap ? 2 * p->compiling_cap : 8;
        int64_t *grown = realloc(p->compiling, cap * sizeof(*grown));
        if (grown) {
            p->compiling = grown;
            p->compiling_cap = cap;
        }
    }
    if (!compiling && p->ncompiling < p->compiling_cap) {
        struct compile_task *t = malloc(sizeof(*t));
        if (t) {
            *t = (struct compile_task){p, j->project_id};
            /* before waiting PUTs: jobs are held up by this one */
            compiling = taskq_submit_first(p->opt.compiler, compile_task, t);
            if (compiling)
                p->compiling[p->ncompiling++] = j->project_id;
            else
                free(t);
        }
    }
    if (compiling) {
        k->job = *j;
        k->next = NULL;
        *p->waiting_end = k;
        p->waiting_end = &k->next;
        memset(j, 0, sizeof(*j));
    }
    pthread_mutex_unlock(&p->mu);
    if (!compiling)
        free(k);
    return compiling;
}

/* Takes up to max ready jobs; *n of them. NULL when there are none. */
static struct job *take_ready(struct pipeline *p, size_t max, size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&p->mu);
    size_t have = 0;
    for (struct parked *k = p->ready; k && have < max; k = k->next)
        have++;
    struct job *jobs = have ? malloc(have * sizeof(*jobs)) : NULL;
    for (; jobs && *n < have; (*n)++) {
        struct parked *k = p->ready;
        p->ready = k->next;
        jobs[*n] = k->job;
        free(k);
    }
    pthread_mutex_unlock(&p->mu);
    return jobs;
}

static void parked_free(struct parked *k)
{
    while (k) {
        struct parked *next = k->next;
        job_clear(&k->job);
        free(k);
        k = next;
    }
}

/* The policy for j's project, a new reference (NULL when it cannot be
 * had: the step fails). From the cache; else, when may_park, j is parked
 * (returns false: j was moved out); else compiled here. */
static bool policy_for(struct pipeline *p, struct job *j, bool may_park, struct policy **pol,
                       int64_t *version)
{
    *pol = NULL;
    *version = 0;
    may_park = may_park && p->opt.compiler;
    int rc = may_park ? policy_cache_peek(p->pc, j->project_id, pol, version)
                      : policy_cache_get(p->pc, j->project_id, pol, version);
    if (rc != STORE_OK || *pol)
        return true;
    if (park(p, j))
        return false;
    policy_cache_get(p->pc, j->project_id, pol, version);
    return true;
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
        size_t n = 0;
        /* Jobs whose policy was compiled for them come first: they were
         * claimed earlier. Their policy is in the cache now (or failed). */
        struct job *jobs = take_ready(p, CLAIM_BATCH, &n);
        bool may_park = !jobs;
        if (!jobs) {
            int rc =
                store_work_claim(p->st, clock_now_ms(), p->opt.lease_ms, CLAIM_BATCH, &jobs, &n);
            if (rc != STORE_OK || n == 0) {
                timed_wait(p, gen, IDLE_POLL_MS);
                continue;
            }
        }
        size_t m = 0; /* results[0..m) are of jobs[i] not parked */
        for (size_t i = 0; i < n; i++) {
            struct policy *pol;
            int64_t version;
            if (!policy_for(p, &jobs[i], may_park, &pol, &version))
                continue;
            run_step(pol, version, scratch, &jobs[i], &results[m], &outs[m]);
            policy_release(pol);
            /* The body is built here, where the job is at hand, so the
             * event's first delivery need not read the job back. */
            outs[m].event_body = job_event_body_after_step(&jobs[i], &results[m]);
            results[m].event_body = outs[m].event_body;
            results[m].webhook_url = jobs[i].webhook_url;
            results[m].webhook_secret = jobs[i].webhook_secret;
            m++;
        }
        int rc = m ? store_work_complete(p->st, results, m) : STORE_OK;
        if (rc != STORE_OK)
            log_warn("pipeline",
                     "could not store %zu results: %s (leases will expire and the "
                     "jobs run again)",
                     m, store_strerror(rc));
        for (size_t i = 0; i < m; i++)
            step_out_clear(&outs[i]);
        for (size_t i = 0; i < n; i++)
            job_clear(&jobs[i]);
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
    p->waiting_end = &p->waiting;
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
    /* Parked jobs are claims that were never completed: SQLite's recovery
     * hands them out again at the next start (a lease, elsewhere). */
    parked_free(p->waiting);
    parked_free(p->ready);
    free(p->compiling);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
