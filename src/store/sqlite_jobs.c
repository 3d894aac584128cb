/* SQLite backend: jobs, their work items and the sweeper. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"
#include "util/idcache.h"
#include "util/log.h"
#include "util/secretbox.h"

int job_from_row(struct conn *c, sqlite3_stmt *s, int b, struct job *j)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", (const char *)sqlite3_column_text(s, b + 0));
    j->project_id = sqlite3_column_int64(s, b + 1);
    j->status = (enum job_status)sqlite3_column_int(s, b + 2);
    j->mode = (enum job_mode)sqlite3_column_int(s, b + 3);
    j->message = col_text(s, b + 4);
    j->message_input = col_text(s, b + 5);
    j->message_output = col_text(s, b + 6);
    j->webhook_url = col_text(s, b + 7);
    j->webhook_secret = col_text(s, b + 8);
    const struct secretbox *box = sqlite_box(c->owner);
    if (box && j->webhook_secret && secretbox_is_sealed(j->webhook_secret)) {
        char *plain = secretbox_open(box, j->webhook_secret);
        if (!plain) {
            log_error("store", "webhook secret of %s does not open with this key", j->id);
            job_clear(j);
            return STORE_IO;
        }
        free(j->webhook_secret);
        j->webhook_secret = plain;
    }
    j->metadata_json = col_text(s, b + 9);
    j->created_at = sqlite3_column_int64(s, b + 10);
    j->expires_at = sqlite3_column_int64(s, b + 11);
    j->completed_at = sqlite3_column_int64(s, b + 12);
    j->filtered_input = col_text(s, b + 13);
    j->filtered_output = col_text(s, b + 14);
    j->inbound_result_json = col_text(s, b + 15);
    j->outbound_result_json = col_text(s, b + 16);
    j->error_json = col_text(s, b + 17);
    int same = sqlite3_column_int(s, b + 18);
    const char *input = j->message ? j->message : j->message_input;
    if ((same & 1) && !j->filtered_input && input)
        j->filtered_input = strdup(input);
    if ((same & 2) && !j->filtered_output && j->message_output)
        j->filtered_output = strdup(j->message_output);
    if (!j->webhook_url || !j->webhook_secret || ((same & 1) && !j->filtered_input) ||
        ((same & 2) && !j->filtered_output)) {
        job_clear(j);
        return STORE_NOMEM;
    }
    return STORE_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- create ------------------------------------------------------------- */

/* What the insert needs: the job and its webhook secret as stored (sealed
 * when the store has a secret box). Sealing happens on the caller's thread,
 * not the writer's, which every create in the process waits for. */
struct create_args {
    const struct job *job;
    char *secret_at_rest; /* owned; NULL = store job->webhook_secret as is */
};

static int create_args_init(struct create_args *a, struct store *st, const struct job *j)
{
    const struct secretbox *box = sqlite_box(st);
    a->job = j;
    a->secret_at_rest = box ? secretbox_seal(box, j->webhook_secret) : NULL;
    return box && !a->secret_at_rest ? STORE_NOMEM : STORE_OK;
}

/* An asynchronous create owns a deep copy of the job. */
struct create_task {
    struct wtask task;
    struct job job;
    struct create_args args;
};

static int job_create_fn(struct conn *c, struct wtask *t)
{
    const struct create_args *a = t->arg;
    const struct job *j = a->job;
    int rc;
    if (j->idempotency_key) {
        /* A key older than the window may be reused: replace its row. */
        sqlite3_stmt *s = conn_stmt(
            c, "INSERT INTO idempotency(project_id, key, job_id, request_hash, created_at)"
               " VALUES (?1, ?2, ?3, ?4, ?5)"
               " ON CONFLICT(project_id, key) DO UPDATE SET job_id = excluded.job_id,"
               " request_hash = excluded.request_hash, created_at = excluded.created_at"
               " WHERE idempotency.created_at < ?6");
        if (!s)
            return STORE_IO;
        sqlite3_bind_int64(s, 1, j->project_id);
        bind_text(s, 2, j->idempotency_key);
        bind_text(s, 3, j->id);
        bind_text(s, 4, j->request_hash ? j->request_hash : "");
        sqlite3_bind_int64(s, 5, j->created_at);
        sqlite3_bind_int64(s, 6, j->created_at - 24LL * 3600 * 1000);
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            return sqlite_fail(c, "idempotency key", rc);
        if (sqlite3_changes(c->db) == 0)
            return STORE_CONSTRAINT;
    }
    sqlite3_stmt *s = conn_stmt(
        c, "INSERT INTO jobs(id, project_id, status, mode, message, message_input,"
           " message_output, webhook_url, webhook_secret, metadata, created_at, expires_at)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, j->id);
    sqlite3_bind_int64(s, 2, j->project_id);
    sqlite3_bind_int(s, 3, (int)j->status);
    sqlite3_bind_int(s, 4, (int)j->mode);
    bind_text(s, 5, j->message);
    bind_text(s, 6, j->message_input);
    bind_text(s, 7, j->message_output);
    bind_text(s, 8, j->webhook_url);
    bind_text(s, 9, a->secret_at_rest ? a->secret_at_rest : j->webhook_secret);
    bind_text(s, 10, j->metadata_json);
    sqlite3_bind_int64(s, 11, j->created_at);
    sqlite3_bind_int64(s, 12, j->expires_at);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "insert job", rc);
    sqlite_stage_job(c, j->id);
    t->wake_work = true;
    return STORE_OK;
}

static void create_task_free(struct wtask *t)
{
    struct create_task *ct = (struct create_task *)t;
    job_clear(&ct->job);
    free(ct->args.secret_at_rest);
    free(ct);
}

static int job_copy(struct job *dst, const struct job *src)
{
    *dst = *src;
    dst->message = dup_or_null(src->message);
    dst->message_input = dup_or_null(src->message_input);
    dst->message_output = dup_or_null(src->message_output);
    dst->webhook_url = dup_or_null(src->webhook_url);
    dst->webhook_secret = dup_or_null(src->webhook_secret);
    dst->metadata_json = dup_or_null(src->metadata_json);
    dst->filtered_input = dst->filtered_output = NULL;
    dst->inbound_result_json = dst->outbound_result_json = dst->error_json = NULL;
    dst->idempotency_key = dup_or_null(src->idempotency_key);
    dst->request_hash = dup_or_null(src->request_hash);
    if ((src->message && !dst->message) || (src->message_input && !dst->message_input) ||
        (src->message_output && !dst->message_output) || !dst->webhook_url ||
        !dst->webhook_secret || (src->metadata_json && !dst->metadata_json) ||
        (src->idempotency_key && !dst->idempotency_key) ||
        (src->request_hash && !dst->request_hash)) {
        job_clear(dst);
        return STORE_NOMEM;
    }
    return STORE_OK;
}

void sqlite_job_free(void *job)
{
    job_clear(job);
    free(job);
}

static size_t len_or_0(const char *s)
{
    return s ? strlen(s) : 0;
}

/* What a job copy holds in memory, roughly: the struct and its texts. */
static size_t job_bytes(const struct job *j)
{
    return sizeof(*j) + len_or_0(j->message) + len_or_0(j->message_input) +
           len_or_0(j->message_output) + len_or_0(j->webhook_url) + len_or_0(j->webhook_secret) +
           len_or_0(j->metadata_json);
}

/* Leaves a copy of a job being created in new_jobs for its first step.
 * Put before the insert is queued: the commit wakes the pipeline, which
 * could otherwise look before the put. A create that fails leaves an entry
 * nothing asks for, which the cache's bound retires. */
static void hand_over_new_job(struct store *st, const struct job *job)
{
    struct job *copy = calloc(1, sizeof(*copy));
    if (!copy)
        return;
    if (job_copy(copy, job) != STORE_OK) {
        free(copy);
        return; /* the first step reads the job back instead */
    }
    /* As job_from_row would return it: the request bookkeeping is not. */
    free(copy->idempotency_key);
    free(copy->request_hash);
    copy->idempotency_key = copy->request_hash = NULL;
    idcache_put(sqlite_new_jobs(st), copy->id, copy, job_bytes(copy));
}

int store_job_create_async(struct store *st, const struct job *job, store_done_fn done, void *ud)
{
    struct create_task *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return STORE_NOMEM;
    if (job_copy(&ct->job, job) != STORE_OK) {
        free(ct);
        return STORE_NOMEM;
    }
    if (create_args_init(&ct->args, st, &ct->job) != STORE_OK) {
        job_clear(&ct->job);
        free(ct);
        return STORE_NOMEM;
    }
    if (job->status == JOB_PENDING)
        hand_over_new_job(st, job);
    ct->task.fn = job_create_fn;
    ct->task.arg = &ct->args;
    ct->task.done = done;
    ct->task.ud = ud;
    ct->task.free_fn = create_task_free;
    int rc = store_submit(st, &ct->task);
    if (rc != STORE_OK)
        create_task_free(&ct->task);
    return rc;
}

int store_job_create(struct store *st, const struct job *job)
{
    struct create_args a;
    if (create_args_init(&a, st, job) != STORE_OK)
        return STORE_NOMEM;
    int rc = store_write(st, job_create_fn, &a);
    free(a.secret_at_rest);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

int store_job_find_idempotent(struct store *st, int64_t project_id, const char *key, int64_t since,
                              struct job *out)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT " JOB_COLUMNS ", i.request_hash FROM idempotency i"
                                   " JOIN jobs j ON j.id = i.job_id"
                                   " WHERE i.project_id = ?1 AND i.key = ?2"
                                   " AND i.created_at >= ?3");
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_int64(s, 1, project_id);
        bind_text(s, 2, key);
        sqlite3_bind_int64(s, 3, since);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            rc = job_from_row(c, s, 0, out);
            if (rc == STORE_OK) {
                out->request_hash = col_text(s, JOB_NCOLUMNS);
                out->idempotency_key = strdup(key);
            }
        } else {
            rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "find idempotent", r);
        }
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    return rc;
}

int store_job_get(struct store *st, int64_t project_id, const char *job_id, struct job *out)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s =
        conn_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs j WHERE id = ?1 AND project_id = ?2");
    int rc = STORE_IO;
    if (s) {
        bind_text(s, 1, job_id);
        sqlite3_bind_int64(s, 2, project_id);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            rc = job_from_row(c, s, 0, out);
        else
            rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "get job", r);
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    return rc;
}

void store_job_summaries_free(struct store_job_summary *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].metadata_json);
    free(s);
}

int store_job_list(struct store *st, int64_t project_id, unsigned statuses, int64_t offset,
                   int64_t limit, struct store_job_summary **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    if (statuses == 0)
        statuses = (1u << JOB_STATUS_COUNT) - 1;
    struct conn *c = store_reader(st);
    int rc = STORE_IO;
    /* The count and the page are read in one transaction, so from one
     * snapshot: otherwise a job changing status between them made total
     * disagree with the page (seen: total 3 over a 2-job list). */
    bool in_txn = conn_exec(c, "BEGIN") == STORE_OK;
    if (!in_txn)
        goto out;
    /* The status set is a bit mask tested in SQL so one prepared statement
     * serves every filter. */
    sqlite3_stmt *s = conn_stmt(c, "SELECT count(*) FROM jobs WHERE project_id = ?1"
                                   " AND ((1 << status) & ?2) != 0");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, project_id);
    sqlite3_bind_int64(s, 2, statuses);
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = sqlite_fail(c, "count jobs", sqlite3_errcode(c->db));
        sqlite3_reset(s);
        goto out;
    }
    *total = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);

    s = conn_stmt(c, "SELECT id, status, created_at, completed_at, metadata FROM jobs"
                     " WHERE project_id = ?1 AND ((1 << status) & ?2) != 0"
                     " ORDER BY seq DESC LIMIT ?3 OFFSET ?4");
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, project_id);
    sqlite3_bind_int64(s, 2, statuses);
    sqlite3_bind_int64(s, 3, limit);
    sqlite3_bind_int64(s, 4, offset);
    *out = calloc((size_t)(limit > 0 ? limit : 1), sizeof(**out));
    if (!*out) {
        rc = STORE_NOMEM;
        goto out;
    }
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && *n < (size_t)limit) {
        struct store_job_summary *js = &(*out)[(*n)++];
        snprintf(js->id, sizeof(js->id), "%s", (const char *)sqlite3_column_text(s, 0));
        js->status = (enum job_status)sqlite3_column_int(s, 1);
        js->created_at = sqlite3_column_int64(s, 2);
        js->completed_at = sqlite3_column_int64(s, 3);
        js->metadata_json = col_text(s, 4);
    }
    sqlite3_reset(s);
    rc = (r == SQLITE_DONE || r == SQLITE_ROW) ? STORE_OK : sqlite_fail(c, "list jobs", r);
out:
    /* A reader left inside a transaction would hold its snapshot, and
     * with it every checkpoint, for as long as it sat in the pool. */
    if (in_txn && conn_exec(c, "COMMIT") != STORE_OK) {
        conn_exec(c, "ROLLBACK");
        if (rc == STORE_OK)
            rc = STORE_IO;
    }
    store_reader_put(st, c);
    if (rc != STORE_OK) {
        store_job_summaries_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- response submission ------------------------------------------------ */

struct response_args {
    int64_t project_id;
    const char *job_id;
    const char *response;
    int64_t now;
};

static int submit_response_fn(struct conn *c, struct wtask *t)
{
    struct response_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "UPDATE jobs SET message_output = ?3, status = ?5"
                                   " WHERE id = ?1 AND project_id = ?2"
                                   " AND status = ?6 AND expires_at > ?4");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    sqlite3_bind_int64(s, 2, a->project_id);
    bind_text(s, 3, a->response);
    sqlite3_bind_int64(s, 4, a->now);
    sqlite3_bind_int(s, 5, JOB_PROCESSING_OUTBOUND);
    sqlite3_bind_int(s, 6, JOB_AWAITING_RESPONSE);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "submit response", rc);
    if (sqlite3_changes(c->db) > 0) {
        sqlite_stage_job(c, a->job_id);
        t->wake_work = true;
        return STORE_OK;
    }
    s = conn_stmt(c, "SELECT 1 FROM jobs WHERE id = ?1 AND project_id = ?2");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    sqlite3_bind_int64(s, 2, a->project_id);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_STATE : STORE_NOTFOUND;
}

int store_job_submit_response(struct store *st, int64_t project_id, const char *job_id,
                              const char *response, int64_t now)
{
    struct response_args a = {project_id, job_id, response, now};
    return store_write(st, submit_response_fn, &a);
}

/* ---- pipeline work ------------------------------------------------------ */

int store_work_claim(struct store *st, int64_t now, int64_t lease_ms, size_t max, struct job **out,
                     size_t *n)
{
    (void)lease_ms; /* one server per SQLite file: the process itself is the lease */
    *out = NULL;
    *n = 0;
    char(*ids)[IDS_MAX_LEN] = malloc((max ? max : 1) * sizeof(*ids));
    struct job *jobs = calloc(max ? max : 1, sizeof(*jobs));
    if (!ids || !jobs) {
        free(ids);
        free(jobs);
        return STORE_NOMEM;
    }
    size_t nids = sqlite_pop_jobs(st, ids, max), got = 0;
    int rc = STORE_OK;
    if (nids > 0) {
        struct conn *c = NULL;
        for (size_t i = 0; i < nids; i++) {
            /* A job new since it was created is pending until this step's
             * result is written, unless it expired (the sweeper only
             * touches jobs past expires_at). */
            struct job *fresh = idcache_take(sqlite_new_jobs(st), ids[i]);
            if (fresh && fresh->status == JOB_PENDING && fresh->expires_at > now) {
                jobs[got] = *fresh;
                free(fresh);
                jobs[got].status = job_status_on_claim(jobs[got].status, jobs[got].mode);
                got++;
                continue;
            }
            if (fresh)
                sqlite_job_free(fresh);
            if (!c)
                c = store_reader(st);
            /* A queued job may have expired or moved on meanwhile. */
            sqlite3_stmt *s = conn_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs j WHERE id = ?1"
                                           " AND status IN (0, 1, 3) AND expires_at > ?2");
            if (!s) {
                rc = STORE_IO;
                break;
            }
            bind_text(s, 1, ids[i]);
            sqlite3_bind_int64(s, 2, now);
            int r = sqlite3_step(s);
            if (r == SQLITE_ROW && job_from_row(c, s, 0, &jobs[got]) == STORE_OK) {
                jobs[got].status = job_status_on_claim(jobs[got].status, jobs[got].mode);
                got++;
            } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
                rc = sqlite_fail(c, "claim job", r);
            }
            sqlite3_reset(s);
        }
        if (c)
            store_reader_put(st, c);
    }
    free(ids);
    if (got == 0) {
        free(jobs);
        return rc;
    }
    *out = jobs;
    *n = got;
    return STORE_OK;
}

/* Stores the step's event, held for the dispatcher when it can be (see
 * EVENT_HELD in sqlite_int.h). */
static int step_event(struct conn *c, const struct store_step_result *r)
{
    struct held_event *h = NULL;
    if (r->event_body && r->webhook_url && r->webhook_secret) {
        bool earlier = true;
        int rc = sqlite_event_pending_for(c, r->job_id, &earlier);
        if (rc != STORE_OK)
            return rc;
        if (!earlier)
            h = sqlite_held_new(c->owner, r->event_id, r->job_id, r->event_body, r->webhook_url,
                                r->webhook_secret);
    }
    int rc = sqlite_event_insert(c, r->event_id, r->job_id, r->event_type, r->to, r->now,
                                 h ? EVENT_HELD : r->now);
    if (rc != STORE_OK) {
        sqlite_held_free(c->owner, h);
        return rc;
    }
    if (h)
        sqlite_held_stage(c, h, sqlite3_last_insert_rowid(c->db));
    return STORE_OK;
}

static int step_apply(struct conn *c, const struct store_step_result *r, struct wtask *t)
{
    bool inbound = r->step == JOB_STEP_INBOUND;
    /* The claim was not written (see sqlite_stage_job), so the stored status
     * is still pending for a job's first step. */
    const char *sql_in = "UPDATE jobs SET status = ?2, filtered_input = ?4, inbound_result = ?5,"
                         " error = ?6, completed_at = ?7, filtered_same = filtered_same | ?8"
                         " WHERE id = ?1 AND status IN (0, ?3)";
    const char *sql_out = "UPDATE jobs SET status = ?2, filtered_output = ?4,"
                          " outbound_result = ?5, error = ?6, completed_at = ?7,"
                          " filtered_same = filtered_same | ?8 WHERE id = ?1 AND status IN (0, ?3)";
    sqlite3_stmt *s = conn_stmt(c, inbound ? sql_in : sql_out);
    if (!s)
        return STORE_IO;
    bind_text(s, 1, r->job_id);
    sqlite3_bind_int(s, 2, (int)r->to);
    sqlite3_bind_int(s, 3, (int)r->from);
    bind_text(s, 4, r->filtered_unchanged ? NULL : r->filtered);
    bind_text(s, 5, r->result_json);
    bind_text(s, 6, r->error_json);
    sqlite3_bind_int64(s, 7, job_status_terminal(r->to) ? r->now : 0);
    sqlite3_bind_int(s, 8, r->filtered_unchanged ? (inbound ? 1 : 2) : 0);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "complete step", rc);
    if (sqlite3_changes(c->db) == 0)
        return STORE_STATE; /* expired or taken over meanwhile */
    if (r->event_type) {
        rc = step_event(c, r);
        if (rc != STORE_OK)
            return rc;
        t->wake_events = true;
    }
    if (job_step_due(r->to, JOB_MODE_COMBINED) != JOB_STEP_NONE) {
        sqlite_stage_job(c, r->job_id);
        t->wake_work = true;
    }
    return STORE_OK;
}

static int work_complete_fn(struct conn *c, struct wtask *t)
{
    const struct wchunk *ch = t->arg;
    const struct store_step_result *r = ch->items;
    for (size_t i = 0; i < ch->n; i++) {
        /* A stale step (the job expired or moved on) changes nothing and is
         * skipped; any other failure fails the whole chunk and those after
         * it, which the caller re-queues. */
        int rc = step_apply(c, &r[i], t);
        if (rc != STORE_OK && rc != STORE_STATE) {
            log_warn("store", "step of %s not applied: %s", r[i].job_id, store_strerror(rc));
            return rc;
        }
    }
    return STORE_OK;
}

/* Results per writer task: a step's row and event cost ~30 µs of writing,
 * so a chunk adds ~0.1 ms to the group of 202s that carries it
 * (writer_take); with no request waiting, the chunks share one commit. */
#define RESULT_CHUNK 4

int store_work_complete(struct store *st, const struct store_step_result *r, size_t n)
{
    int rc;
    size_t done = store_write_chunks(st, work_complete_fn, r, sizeof(*r), n, RESULT_CHUNK, &rc);
    /* What was not written is still due (a rerun makes new event ids). */
    for (size_t i = done; i < n; i++)
        sqlite_requeue_jobs(st, &r[i].job_id, 1);
    return rc;
}

/* ---- sweeper ------------------------------------------------------------ */

struct sweep_args {
    int64_t now, retention_ms;
    size_t expired, deleted;
};

static int sweep_fn(struct conn *c, struct wtask *t)
{
    struct sweep_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "SELECT id FROM jobs WHERE expires_at <= ?1"
                                   " AND status NOT IN (4, 5, 6) LIMIT ?2");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->now);
    sqlite3_bind_int(s, 2, STORE_SWEEP_BATCH);
    char(*ids)[IDS_MAX_LEN] = malloc(STORE_SWEEP_BATCH * sizeof(*ids));
    if (!ids) {
        sqlite3_reset(s);
        return STORE_NOMEM;
    }
    size_t n = 0;
    while (n < STORE_SWEEP_BATCH && sqlite3_step(s) == SQLITE_ROW)
        snprintf(ids[n++], IDS_MAX_LEN, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *u = conn_stmt(c, "UPDATE jobs SET status = 6, completed_at = ?2"
                                       " WHERE id = ?1");
        char event_id[IDS_MAX_LEN];
        if (!u || ids_new(event_id, sizeof(event_id), "msg_", a->now) != 0) {
            rc = STORE_IO;
            break;
        }
        bind_text(u, 1, ids[i]);
        sqlite3_bind_int64(u, 2, a->now);
        if (sqlite3_step(u) != SQLITE_DONE) {
            rc = sqlite_fail(c, "expire job", sqlite3_errcode(c->db));
            break;
        }
        rc = sqlite_event_insert(c, event_id, ids[i], JOB_EVENT_EXPIRED, JOB_EXPIRED, a->now,
                                 a->now);
        t->wake_events = true;
        a->expired++;
    }
    free(ids);
    if (rc != STORE_OK)
        return rc;

    /* Retention: content goes away retention_ms after expiry. Events and
     * attempts follow by ON DELETE CASCADE. */
    s = conn_stmt(c, "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs"
                     " WHERE expires_at <= ?1 LIMIT ?2)");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->now - a->retention_ms);
    sqlite3_bind_int(s, 2, STORE_SWEEP_BATCH);
    if (sqlite3_step(s) != SQLITE_DONE)
        return sqlite_fail(c, "delete jobs", sqlite3_errcode(c->db));
    a->deleted = (size_t)sqlite3_changes(c->db);
    s = conn_stmt(c, "DELETE FROM idempotency WHERE created_at < ?1");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->now - 24LL * 3600 * 1000);
    if (sqlite3_step(s) != SQLITE_DONE)
        return sqlite_fail(c, "delete idempotency keys", sqlite3_errcode(c->db));
    return STORE_OK;
}

int store_sweep(struct store *st, int64_t now, int64_t retention_ms, size_t *expired,
                size_t *deleted)
{
    struct sweep_args a = {.now = now, .retention_ms = retention_ms};
    int rc = store_write_background(st, sweep_fn, &a);
    if (expired)
        *expired = a.expired;
    if (deleted)
        *deleted = a.deleted;
    return rc;
}
