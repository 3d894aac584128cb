/* SQLite backend: the group-commit writer thread and what lives with it:
 * the queue of writes, the in-memory queues it fills when a transaction
 * commits (due jobs, held events), and checkpoints.
 *
 * Why one writer thread: SQLite allows one writer at a time, and a durable
 * commit costs one fsync. Funnelling every write through one thread that
 * commits whatever is queued as a single transaction turns N fsyncs into
 * one, and removes SQLITE_BUSY between our own writers. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/thread.h"

static int idq_push(struct idq *q, const char *id)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        char(*n)[IDS_MAX_LEN] = malloc(cap * sizeof(*n));
        if (!n)
            return -1;
        for (size_t i = 0; i < q->len; i++)
            memcpy(n[i], q->ids[(q->head + i) % q->cap], IDS_MAX_LEN);
        free(q->ids);
        q->ids = n;
        q->cap = cap;
        q->head = 0;
    }
    snprintf(q->ids[(q->head + q->len) % q->cap], IDS_MAX_LEN, "%s", id);
    q->len++;
    return 0;
}

static int idq_pop(struct idq *q, char *out)
{
    if (q->len == 0)
        return -1;
    memcpy(out, q->ids[q->head], IDS_MAX_LEN);
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return 0;
}

/* ---- held events ------------------------------------------------------ */

struct held_event {
    struct held_event *next;
    struct store_delivery d;
    size_t bytes;
};

struct held_event *sqlite_held_new(struct store *st, const char *event_id, const char *job_id,
                                   const char *body, const char *url, const char *secret)
{
    size_t bytes = sizeof(struct held_event) + strlen(body) + strlen(url) + strlen(secret) + 3;
    /* Only the writer thread adds, so the check and the add do not race
     * with another add; a concurrent pop only makes the check stricter. */
    if (atomic_load(&st->held_n) >= HANDOVER_ENTRIES ||
        atomic_load(&st->held_bytes) + bytes > HANDOVER_BYTES)
        return NULL;
    struct held_event *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    snprintf(h->d.event_id, sizeof(h->d.event_id), "%s", event_id);
    snprintf(h->d.job_id, sizeof(h->d.job_id), "%s", job_id);
    h->d.payload = strdup(body);
    h->d.url = strdup(url);
    h->d.secret = strdup(secret);
    h->bytes = bytes;
    if (!h->d.payload || !h->d.url || !h->d.secret) {
        free(h->d.payload);
        free(h->d.url);
        free(h->d.secret);
        free(h);
        return NULL;
    }
    atomic_fetch_add(&st->held_n, 1);
    atomic_fetch_add(&st->held_bytes, bytes);
    return h;
}

static void held_release(struct store *st, struct held_event *h)
{
    atomic_fetch_sub(&st->held_n, 1);
    atomic_fetch_sub(&st->held_bytes, h->bytes);
    free(h);
}

void sqlite_held_free(struct store *st, struct held_event *h)
{
    if (!h)
        return;
    free(h->d.payload);
    free(h->d.url);
    free(h->d.secret);
    held_release(st, h);
}

void sqlite_held_stage(struct conn *c, struct held_event *h, int64_t seq)
{
    struct store *st = c->owner;
    h->d.seq = seq;
    h->next = NULL;
    if (st->staged_ev_last)
        st->staged_ev_last->next = h;
    else
        st->staged_ev = h;
    st->staged_ev_last = h;
}

/* Frees the events staged after `keep` (a rolled-back task's), or all of
 * them when keep is NULL. */
static void held_unstage(struct store *st, struct held_event *keep)
{
    struct held_event *h = keep ? keep->next : st->staged_ev;
    while (h) {
        struct held_event *next = h->next;
        sqlite_held_free(st, h);
        h = next;
    }
    if (keep)
        keep->next = NULL;
    else
        st->staged_ev = NULL;
    st->staged_ev_last = keep;
}

size_t sqlite_held_pop(struct store *st, struct store_delivery *out, size_t max,
                       store_claim_room_fn room, void *room_ud)
{
    /* The queue is taken out whole, so that room runs without st->mu (the
     * lock every request's write takes); what stays goes back in front of
     * whatever the writer queued meanwhile, which keeps the order. */
    pthread_mutex_lock(&st->mu);
    struct held_event *h = st->held_head, *last = st->held_tail;
    st->held_head = st->held_tail = NULL;
    pthread_mutex_unlock(&st->mu);

    size_t n = 0;
    struct held_event *kept = NULL, **link = &kept, *kept_tail = NULL;
    while (h) {
        struct held_event *next = h->next;
        if (n == max) {
            *link = h; /* the rest stays as it is */
            kept_tail = last;
            break;
        }
        if (room && !room(room_ud, h->d.url)) {
            *link = h;
            link = &h->next;
            kept_tail = h;
        } else {
            out[n++] = h->d; /* the strings move to out */
            held_release(st, h);
        }
        h = next;
    }
    if (kept_tail) {
        pthread_mutex_lock(&st->mu);
        kept_tail->next = st->held_head;
        if (!st->held_head)
            st->held_tail = kept_tail;
        st->held_head = kept;
        pthread_mutex_unlock(&st->mu);
    }
    /* Out of memory here only costs the "delivering" a GET would show. */
    pthread_mutex_lock(&st->out_mu);
    for (size_t i = 0; i < n; i++)
        i64set_add(st->out, out[i].seq);
    pthread_mutex_unlock(&st->out_mu);
    return n;
}

/* ---- checkpoints ------------------------------------------------------ */

/* SQLite's automatic checkpoint runs inside the commit that takes the WAL
 * past 1,000 pages, on the writer thread: every request of that group waits
 * while pages are copied into the database file and the file is synced.
 * Measured, that made most of the group commits over 10 ms. Instead:
 *  - a checkpointer thread, on its own connection, copies pages while the
 *    writer goes on (a PASSIVE checkpoint takes no lock the writer needs);
 *  - under a steady stream of commits such a checkpoint never reaches the
 *    last frame, and only one that does lets the next transaction start the
 *    WAL over; so past CKPT_WRITER_FRAMES the writer checkpoints itself,
 *    after it has answered its group, with only the frames written since
 *    the last concurrent pass left to copy. That bounds the WAL file. */
#define CKPT_FRAMES 1000
#define CKPT_WRITER_FRAMES 4000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct store *st = arg;
    thread_set_name("store-ckpt");
    pthread_mutex_lock(&st->ckpt_mu);
    for (;;) {
        while (!st->ckpt_wanted && !st->ckpt_stop)
            pthread_cond_wait(&st->ckpt_cv, &st->ckpt_mu);
        if (st->ckpt_stop)
            break;
        st->ckpt_wanted = false;
        pthread_mutex_unlock(&st->ckpt_mu);
        int rc =
            sqlite3_wal_checkpoint_v2(st->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store", "checkpoint: %s", sqlite3_errmsg(st->ckpt.db));
        pthread_mutex_lock(&st->ckpt_mu);
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    return NULL;
}

/* Writer thread, after a group was answered. The checkpoint thread runs
 * for as long as the writer does (sqlite_writer_start/stop). */
static void ckpt_after_commit(struct store *st)
{
    if (st->wal_frames >= CKPT_WRITER_FRAMES) {
        /* SQLITE_BUSY: the checkpointer is at it; the next commit retries. */
        sqlite3_wal_checkpoint_v2(st->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (st->wal_frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_wanted = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
    }
}

/* ---- the writer ------------------------------------------------------- */

static void run_batch(struct store *st, struct wtask *batch, int n)
{
    struct conn *c = &st->writer;
    int64_t t0 = clock_mono_ns();
    st->staged.len = 0;
    st->staged.head = 0;
    st->staged_ev = st->staged_ev_last = NULL;
    int rc = conn_exec(c, "BEGIN IMMEDIATE");
    if (rc == STORE_OK) {
        for (struct wtask *t = batch; t; t = t->next) {
            size_t staged_before = st->staged.len;
            struct held_event *staged_ev_before = st->staged_ev_last;
            sqlite3_stmt *sp = conn_stmt(c, "SAVEPOINT task");
            if (!sp || sqlite3_step(sp) != SQLITE_DONE) {
                t->rc = STORE_IO;
                continue;
            }
            t->rc = t->after && t->after->rc != STORE_OK ? t->after->rc : t->fn(c, t);
            if (t->rc < 0) {
                sqlite3_step(conn_stmt(c, "ROLLBACK TO task"));
                t->wake_work = t->wake_events = false;
                st->staged.len = staged_before;
                held_unstage(st, staged_ev_before);
            }
            sqlite3_step(conn_stmt(c, "RELEASE task"));
        }
        rc = conn_exec(c, "COMMIT");
        if (rc != STORE_OK)
            conn_exec(c, "ROLLBACK");
    }
    if (rc != STORE_OK)
        held_unstage(st, NULL);
    bool wake_work = false, wake_events = false;
    for (struct wtask *t = batch; t; t = t->next) {
        if (rc != STORE_OK)
            t->rc = rc;
        wake_work |= t->wake_work;
        wake_events |= t->wake_events;
    }
    if (rc == STORE_OK) {
        st->groups++;
        metrics_inc(METRIC_STORE_COMMITS);
        metrics_add(METRIC_STORE_BATCHED_WRITES, (uint64_t)n);
        metrics_observe(METRIC_H_STORE_COMMIT_SECONDS, (double)(clock_mono_ns() - t0) / 1e9);
    }

    /* Async completions run first, outside the lock: they may resume HTTP
     * connections. Then sync waiters are released. */
    pthread_mutex_lock(&st->mu);
    if (rc == STORE_OK) {
        char id[IDS_MAX_LEN];
        while (idq_pop(&st->staged, id) == 0) {
            if (idq_push(&st->workq, id) != 0)
                log_error("store", "out of memory queueing job %s (it runs after a restart)", id);
        }
        if (st->staged_ev) {
            if (st->held_tail)
                st->held_tail->next = st->staged_ev;
            else
                st->held_head = st->staged_ev;
            st->held_tail = st->staged_ev_last;
            st->staged_ev = st->staged_ev_last = NULL;
        }
    }
    struct wtask *t = batch;
    while (t) {
        struct wtask *next = t->next;
        if (t->done) {
            pthread_mutex_unlock(&st->mu);
            t->done(t->ud, t->rc);
            if (t->free_fn)
                t->free_fn(t);
            pthread_mutex_lock(&st->mu);
        } else {
            t->finished = true;
        }
        t = next;
    }
    pthread_cond_broadcast(&st->done_cv);
    /* Under the lock, so that store_set_wakeups(NULL…) guarantees no hook
     * runs afterwards (the hooks only signal; they never call the store). */
    if (wake_work && st->wake_work)
        st->wake_work(st->wake_ud);
    if (wake_events && st->wake_events)
        st->wake_events(st->wake_ud);
    pthread_mutex_unlock(&st->mu);
    if (rc == STORE_OK)
        ckpt_after_commit(st);
}

/* Takes the next group off the queue (st->mu held, queue not empty).
 * Every request waiting for its 202 waits for the whole group, so while
 * requests are queued a group takes at most one background task, the
 * oldest: background tasks are bounded in size (a pipeline batch, a chunk
 * of recorded attempts: store_write_chain), which bounds what a request
 * waits for beyond its own commit, and background work still advances by
 * one task every group. With no request queued a group takes everything. */
static struct wtask *writer_take(struct store *st, int *n_out)
{
    bool any_fg = false;
    for (struct wtask *t = st->head; t && !any_fg; t = t->next)
        any_fg = !t->background;
    int bg_left = any_fg ? 1 : st->max_batch;
    struct wtask *batch = NULL, **bt = &batch;
    struct wtask **link = &st->head;
    struct wtask *last_kept = NULL;
    int n = 0;
    while (*link && n < st->max_batch) {
        struct wtask *t = *link;
        if (t->background && bg_left == 0) {
            last_kept = t;
            link = &t->next;
            continue;
        }
        bg_left -= t->background;
        *link = t->next; /* unlink into the batch */
        t->next = NULL;
        *bt = t;
        bt = &t->next;
        n++;
    }
    /* The tail is the last task still queued. */
    if (!*link)
        st->tail = last_kept;
    *n_out = n;
    return batch;
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    thread_set_name("store-writer");
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->stopping)
            pthread_cond_wait(&st->work_cv, &st->mu);
        if (!st->head)
            break; /* stopping and drained */
        int n;
        struct wtask *batch = writer_take(st, &n);
        pthread_mutex_unlock(&st->mu);
        run_batch(st, batch, n);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

void sqlite_stage_job(struct conn *c, const char *job_id)
{
    if (idq_push(&c->owner->staged, job_id) != 0)
        log_error("store", "out of memory queueing job %s (it runs after a restart)", job_id);
}

void sqlite_requeue_jobs(struct store *st, const char *const *ids, size_t n)
{
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < n; i++)
        idq_push(&st->workq, ids[i]);
    pthread_mutex_unlock(&st->mu);
}

size_t sqlite_pop_jobs(struct store *st, char (*out)[IDS_MAX_LEN], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&st->mu);
    while (n < max && idq_pop(&st->workq, out[n]) == 0)
        n++;
    pthread_mutex_unlock(&st->mu);
    return n;
}

int store_submit(struct store *st, struct wtask *t)
{
    t->next = NULL;
    t->finished = false;
    t->wake_work = t->wake_events = false;
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->mu);
        return STORE_BUSY;
    }
    if (st->tail)
        st->tail->next = t;
    else
        st->head = t;
    st->tail = t;
    pthread_cond_signal(&st->work_cv);
    pthread_mutex_unlock(&st->mu);
    return STORE_OK;
}

/* Queues t[0..n) in order and waits for each one queued. Returns how many
 * committed, a prefix of t when the tasks are chained (wtask.after); *rc is
 * STORE_OK when all did, else the first failure's code. */
static size_t write_tasks(struct store *st, struct wtask *t, size_t n, int *rc)
{
    size_t queued = 0;
    *rc = STORE_OK;
    while (queued < n && (*rc = store_submit(st, &t[queued])) == STORE_OK)
        queued++;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < queued; i++)
        while (!t[i].finished)
            pthread_cond_wait(&st->done_cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
    size_t committed = 0;
    while (committed < queued && t[committed].rc == STORE_OK)
        committed++;
    if (committed < queued)
        *rc = t[committed].rc;
    return committed;
}

static int write_sync(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg,
                      bool background)
{
    struct wtask t = {.fn = fn, .arg = arg, .background = background};
    int rc;
    write_tasks(st, &t, 1, &rc);
    return rc;
}

size_t store_write_chain(struct store *st, struct wtask *t, size_t n, int *rc)
{
    for (size_t i = 0; i < n; i++) {
        t[i].background = true;
        t[i].done = NULL;
        t[i].after = i > 0 ? &t[i - 1] : NULL;
    }
    return write_tasks(st, t, n, rc);
}

size_t store_write_chunks(struct store *st, int (*fn)(struct conn *, struct wtask *),
                          const void *items, size_t item_size, size_t n, size_t per, int *rc)
{
    size_t chunks = (n + per - 1) / per;
    *rc = STORE_OK;
    if (chunks == 0)
        return 0;
    struct wtask *t = calloc(chunks, sizeof(*t));
    struct wchunk *c = calloc(chunks, sizeof(*c));
    if (!t || !c) {
        free(t);
        free(c);
        *rc = STORE_NOMEM;
        return 0;
    }
    for (size_t i = 0; i < chunks; i++) {
        c[i].items = (const char *)items + i * per * item_size;
        c[i].n = i + 1 < chunks ? per : n - i * per;
        t[i].fn = fn;
        t[i].arg = &c[i];
    }
    size_t done = store_write_chain(st, t, chunks, rc);
    free(t);
    free(c);
    return done == chunks ? n : done * per;
}

int store_write(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg)
{
    return write_sync(st, fn, arg, false);
}

int store_write_background(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg)
{
    return write_sync(st, fn, arg, true);
}

/* ---- start and stop ---------------------------------------------------- */

int sqlite_writer_start(struct store *st, const char *path, bool sync_full, char *err,
                        size_t errlen)
{
    sqlite3_wal_hook(st->writer.db, wal_hook, st); /* replaces the automatic checkpoint */
    if (sqlite_conn_open(&st->ckpt, path, false, sync_full, err, errlen) != STORE_OK)
        return STORE_IO;
    st->ckpt.owner = st;
    if (pthread_create(&st->ckpt_thread, NULL, ckpt_main, st) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        return STORE_IO;
    }
    st->ckpt_started = true;
    if (pthread_create(&st->thread, NULL, writer_main, st) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        return STORE_IO;
    }
    st->thread_started = true;
    return STORE_OK;
}

void sqlite_writer_stop(struct store *st)
{
    if (st->thread_started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = true;
        pthread_cond_signal(&st->work_cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        st->thread_started = false;
    }
    if (st->ckpt_started) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_stop = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
        pthread_join(st->ckpt_thread, NULL);
        st->ckpt_started = false;
    }
    if (st->ckpt.db)
        sqlite_conn_close(&st->ckpt);
    free(st->staged.ids);
    free(st->workq.ids);
    st->staged.ids = st->workq.ids = NULL;
    while (st->held_head) {
        struct held_event *h = st->held_head;
        st->held_head = h->next;
        sqlite_held_free(st, h); /* still held in the database: due after a restart */
    }
    st->held_tail = NULL;
}
