/* SQLite backend: connection handling, the group-commit writer thread and
 * the read-connection pool. The SQL of each resource lives beside this file
 * (sqlite_projects.c, sqlite_jobs.c, sqlite_events.c), the schema in
 * sqlite_schema.c.
 *
 * Why one writer thread: SQLite allows one writer at a time, and a durable
 * commit costs one fsync. Funnelling every write through one thread that
 * commits whatever is queued as a single transaction turns N fsyncs into
 * one, and removes SQLITE_BUSY between our own writers. */
#include "store/sqlite_int.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/idcache.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/secretbox.h"
#include "util/thread.h"

int sqlite_schema_migrate(struct conn *c, char *err, size_t errlen);

/* A growable FIFO of job ids (ring buffer). */
struct idq {
    char (*ids)[IDS_MAX_LEN];
    size_t head, len, cap;
};

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

struct store {
    struct conn writer;
    struct idq staged;       /* writer thread only: ids made due by the batch */
    struct idq workq;        /* guarded by mu: due jobs, in order */
    pthread_t thread;
    /* Checkpoints (see "checkpoints" below). wal_frames: writer thread. */
    struct conn ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started;
    pthread_mutex_t ckpt_mu; /* guards ckpt_wanted, ckpt_stop */
    pthread_cond_t ckpt_cv;
    bool ckpt_wanted, ckpt_stop;
    int wal_frames;
    pthread_mutex_t mu;      /* guards the queue, stopping, finished flags */
    pthread_cond_t work_cv;  /* writer waits for tasks */
    pthread_cond_t done_cv;  /* sync callers wait for their task */
    struct wtask *head, *tail;
    bool stopping;
    bool bg_turn; /* writer_take: the next group takes background tasks */
    bool thread_started;
    int max_batch;

    /* Read pool. */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct conn *readers;
    bool *reader_busy;
    int nreaders;

    const struct secretbox *box;
    /* Handed over through memory (util/idcache.h), see sqlite_int.h. */
    struct idcache *new_jobs;
    /* Held events (see sqlite_int.h): staged by the writer's current batch
     * (writer thread only), and queued for the dispatcher (guarded by mu).
     * The counters include both and are what bounds them. */
    struct held_event *staged_ev, *staged_ev_last;
    struct held_event *held_head, *held_tail;
    atomic_size_t held_n, held_bytes;
    char *path;
    int lock_fd; /* held by the serving process: one server per database file */
    store_wake_fn wake_work, wake_events;
    void *wake_ud;
};

int sqlite_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_CONSTRAINT:
        return STORE_CONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_NOMEM:
        return STORE_NOMEM;
    default:
        return STORE_IO;
    }
}

int sqlite_fail(struct conn *c, const char *what, int rc)
{
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        log_error("store", "%s: %s (%d)", what, sqlite3_errmsg(c->db), rc);
    return sqlite_rc(rc);
}

sqlite3_stmt *conn_stmt(struct conn *c, const char *sql)
{
    for (int i = 0; i < c->nstmts; i++) {
        if (c->stmts[i].sql == sql) {
            sqlite3_stmt *s = c->stmts[i].stmt;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return s;
        }
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        log_error("store", "prepare failed: %s: %s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    if (c->nstmts < CONN_MAX_STMTS) {
        c->stmts[c->nstmts].sql = sql;
        c->stmts[c->nstmts].stmt = s;
        c->nstmts++;
    } else {
        /* Programming error: raise CONN_MAX_STMTS. Leaking one statement is
         * better than using a finalized one. */
        log_error("store", "statement cache full");
    }
    return s;
}

int conn_exec(struct conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : sqlite_fail(c, sql, rc);
}

int sqlite_step_int64(struct conn *c, sqlite3_stmt *s, const char *what, int64_t *out)
{
    int r = sqlite3_step(s);
    int rc;
    if (r == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = STORE_OK;
    } else {
        rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, what, r);
    }
    sqlite3_reset(s);
    return rc;
}

char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

static int conn_open(struct conn *c, const char *path, bool reader, bool sync_full, char *err,
                     size_t errlen)
{
    memset(c, 0, sizeof(*c));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_IO;
    }
    /* Other processes (the CLI) may write while the server runs. */
    sqlite3_busy_timeout(c->db, 10000);
    const char *pragmas = reader ? "PRAGMA query_only=1; PRAGMA foreign_keys=ON;"
                                 : (sync_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                                " PRAGMA foreign_keys=ON;"
                                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                                " PRAGMA foreign_keys=ON;");
    char *msg = NULL;
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_IO;
    }
    return STORE_OK;
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        sqlite3_finalize(c->stmts[i].stmt);
    c->nstmts = 0;
    sqlite3_close(c->db);
    c->db = NULL;
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

size_t sqlite_held_pop(struct store *st, struct store_delivery *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&st->mu);
    while (n < max && st->held_head) {
        struct held_event *h = st->held_head;
        st->held_head = h->next;
        if (!st->held_head)
            st->held_tail = NULL;
        out[n++] = h->d; /* the strings move to out */
        held_release(st, h);
    }
    pthread_mutex_unlock(&st->mu);
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
        int rc = sqlite3_wal_checkpoint_v2(st->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                           NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store", "checkpoint: %s", sqlite3_errmsg(st->ckpt.db));
        pthread_mutex_lock(&st->ckpt_mu);
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    return NULL;
}

/* Writer thread, after a group was answered. */
static void ckpt_after_commit(struct store *st)
{
    if (st->wal_frames >= CKPT_WRITER_FRAMES || !st->ckpt_started) {
        /* SQLITE_BUSY: the checkpointer is at it; the next commit retries. */
        if (st->wal_frames >= CKPT_FRAMES)
            sqlite3_wal_checkpoint_v2(st->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return;
    }
    if (st->wal_frames >= CKPT_FRAMES) {
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
            t->rc = t->fn(c, t);
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
 * Background tasks carry many rows each (a pipeline batch, a few hundred
 * recorded attempts: milliseconds of writing), and the requests committed
 * with them would wait that long for their 202. So when requests are
 * queued, every other group leaves the background tasks for the next one:
 * requests commit without them at least half the time, and background
 * work never waits more than one group. */
static struct wtask *writer_take(struct store *st, int *n_out)
{
    bool any_fg = false;
    for (struct wtask *t = st->head; t && !any_fg; t = t->next)
        any_fg = !t->background;
    bool skip_bg = any_fg && !st->bg_turn;
    st->bg_turn = skip_bg; /* after skipping, their turn comes */
    struct wtask *batch = NULL, **bt = &batch;
    struct wtask **link = &st->head;
    struct wtask *last_kept = NULL;
    int n = 0;
    while (*link && n < st->max_batch) {
        struct wtask *t = *link;
        if (skip_bg && t->background) {
            last_kept = t;
            link = &t->next;
            continue;
        }
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

static int write_sync(struct store *st, struct wtask *tp)
{
    struct wtask t = *tp;
    int rc = store_submit(st, &t);
    if (rc != STORE_OK)
        return rc;
    pthread_mutex_lock(&st->mu);
    while (!t.finished)
        pthread_cond_wait(&st->done_cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
    return t.rc;
}

int store_write(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg)
{
    return write_sync(st, &(struct wtask){.fn = fn, .arg = arg});
}

int store_write_background(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg)
{
    return write_sync(st, &(struct wtask){.fn = fn, .arg = arg, .background = true});
}

/* ---- readers ------------------------------------------------------------ */

struct conn *store_reader(struct store *st)
{
    pthread_mutex_lock(&st->pool_mu);
    for (;;) {
        for (int i = 0; i < st->nreaders; i++) {
            if (!st->reader_busy[i]) {
                st->reader_busy[i] = true;
                pthread_mutex_unlock(&st->pool_mu);
                return &st->readers[i];
            }
        }
        pthread_cond_wait(&st->pool_cv, &st->pool_mu);
    }
}

void store_reader_put(struct store *st, struct conn *c)
{
    pthread_mutex_lock(&st->pool_mu);
    st->reader_busy[c - st->readers] = false;
    pthread_cond_signal(&st->pool_cv);
    pthread_mutex_unlock(&st->pool_mu);
}

/* ---- lifecycle ---------------------------------------------------------- */

const struct secretbox *sqlite_box(const struct store *st)
{
    return st->box;
}

struct idcache *sqlite_new_jobs(const struct store *st)
{
    return st->new_jobs;
}


/* A sealed known value proves that the key opening the database is the one
 * that sealed its secrets; otherwise a wrong key would only show later, as
 * webhooks failing for good. The first keyed open stores it. */
static int check_box(struct conn *c, const struct secretbox *box, char *err, size_t errlen)
{
    static const char probe[] = "collie secret check";
    sqlite3_stmt *s = conn_stmt(c, "SELECT value FROM meta WHERE name = 'secret_check'");
    if (!s)
        return STORE_IO;
    int r = sqlite3_step(s);
    char *sealed = r == SQLITE_ROW ? col_text(s, 0) : NULL;
    sqlite3_reset(s);
    if (r == SQLITE_ROW) {
        char *plain = sealed ? secretbox_open(box, sealed) : NULL;
        bool ok = plain && strcmp(plain, probe) == 0;
        free(plain);
        free(sealed);
        if (!ok) {
            snprintf(err, errlen, "the secret key (COLLIE_SECRET_KEY or the .key file beside the "
                                  "database) is not the one this database was created with");
            return STORE_IO;
        }
        return STORE_OK;
    }
    sealed = secretbox_seal(box, probe);
    s = conn_stmt(c, "INSERT INTO meta(name, value) VALUES ('secret_check', ?1)");
    int rc = sealed && s ? STORE_OK : STORE_IO;
    if (rc == STORE_OK) {
        bind_text(s, 1, sealed);
        rc = sqlite3_step(s) == SQLITE_DONE ? STORE_OK : STORE_IO;
        sqlite3_reset(s);
    }
    free(sealed);
    if (rc != STORE_OK)
        snprintf(err, errlen, "cannot record the secret check: %s", sqlite3_errmsg(c->db));
    return rc;
}

const char *store_file_path(const char *url)
{
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return NULL;
    if (strncmp(url, "sqlite://", 9) == 0)
        return url + 9;
    if (strncmp(url, "sqlite:", 7) == 0)
        return url + 7;
    return url;
}

struct store *store_open(const char *url, const struct store_options *opts, char *err,
                         size_t errlen)
{
    struct store_options o = {.read_connections = 4, .max_batch = 512, .synchronous_full = true};
    if (opts) {
        o.box = opts->box;
        if (opts->read_connections > 0)
            o.read_connections = opts->read_connections;
        if (opts->max_batch > 0)
            o.max_batch = opts->max_batch;
        o.synchronous_full = opts->synchronous_full;
    }
    const char *path = store_file_path(url);
    if (!path) {
        snprintf(err, errlen, "PostgreSQL is not supported by this build yet");
        return NULL;
    }
    if (!*path) {
        snprintf(err, errlen, "empty database path");
        return NULL;
    }

    struct store *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->ckpt_mu, NULL);
    pthread_cond_init(&st->ckpt_cv, NULL);
    pthread_cond_init(&st->work_cv, NULL);
    pthread_cond_init(&st->done_cv, NULL);
    pthread_mutex_init(&st->pool_mu, NULL);
    pthread_cond_init(&st->pool_cv, NULL);
    st->max_batch = o.max_batch;
    st->lock_fd = -1;
    st->path = strdup(path);
    st->new_jobs = idcache_new(HANDOVER_ENTRIES, HANDOVER_BYTES, sqlite_job_free);
    if (!st->path || !st->new_jobs) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    if (conn_open(&st->writer, path, false, o.synchronous_full, err, errlen) != STORE_OK)
        goto fail;
    st->writer.owner = st;
    if (sqlite_schema_migrate(&st->writer, err, errlen) != STORE_OK)
        goto fail;
    sqlite3_wal_hook(st->writer.db, wal_hook, st); /* replaces the automatic checkpoint */
    st->box = o.box;
    if (st->box && check_box(&st->writer, st->box, err, errlen) != STORE_OK)
        goto fail;

    st->readers = calloc((size_t)o.read_connections, sizeof(*st->readers));
    st->reader_busy = calloc((size_t)o.read_connections, sizeof(bool));
    if (!st->readers || !st->reader_busy) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < o.read_connections; i++) {
        if (conn_open(&st->readers[i], path, true, false, err, errlen) != STORE_OK)
            goto fail;
        st->readers[i].owner = st;
        st->nreaders++;
    }
    if (conn_open(&st->ckpt, path, false, o.synchronous_full, err, errlen) != STORE_OK)
        goto fail;
    st->ckpt.owner = st;
    if (pthread_create(&st->ckpt_thread, NULL, ckpt_main, st) != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        goto fail;
    }
    st->ckpt_started = true;
    if (pthread_create(&st->thread, NULL, writer_main, st) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        goto fail;
    }
    st->thread_started = true;
    return st;

fail:
    store_close(st);
    return NULL;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->thread_started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = true;
        pthread_cond_signal(&st->work_cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
    }
    if (st->ckpt_started) {
        pthread_mutex_lock(&st->ckpt_mu);
        st->ckpt_stop = true;
        pthread_cond_signal(&st->ckpt_cv);
        pthread_mutex_unlock(&st->ckpt_mu);
        pthread_join(st->ckpt_thread, NULL);
    }
    if (st->ckpt.db)
        conn_close(&st->ckpt);
    for (int i = 0; i < st->nreaders; i++)
        conn_close(&st->readers[i]);
    free(st->readers);
    free(st->reader_busy);
    if (st->writer.db)
        conn_close(&st->writer);
    free(st->staged.ids);
    free(st->workq.ids);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->path);
    idcache_free(st->new_jobs);
    while (st->held_head) {
        struct held_event *h = st->held_head;
        st->held_head = h->next;
        sqlite_held_free(st, h); /* still held in the database: due after a restart */
    }
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->ckpt_mu);
    pthread_cond_destroy(&st->ckpt_cv);
    pthread_cond_destroy(&st->work_cv);
    pthread_cond_destroy(&st->done_cv);
    pthread_mutex_destroy(&st->pool_mu);
    pthread_cond_destroy(&st->pool_cv);
    free(st);
}

void store_set_wakeups(struct store *st, store_wake_fn work, store_wake_fn events, void *ud)
{
    /* Set before the pipeline starts; the writer only reads these. */
    pthread_mutex_lock(&st->mu);
    st->wake_work = work;
    st->wake_events = events;
    st->wake_ud = ud;
    pthread_mutex_unlock(&st->mu);
}

int store_ping(struct store *st)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT 1");
    int rc = s && sqlite3_step(s) == SQLITE_ROW ? STORE_OK : STORE_IO;
    if (s)
        sqlite3_reset(s);
    store_reader_put(st, c);
    return rc;
}

static int recover_fn(struct conn *c, struct wtask *t)
{
    int64_t now = *(int64_t *)t->arg;
    /* Only unexpired jobs can be due; the index keeps a restart from
     * reading every row a long retention has kept. */
    sqlite3_stmt *s = conn_stmt(c, "SELECT id FROM jobs INDEXED BY jobs_by_expiry"
                                   " WHERE expires_at > ?1 AND status IN (0, 1, 3) ORDER BY seq");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, now);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        sqlite_stage_job(c, (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    if (r != SQLITE_DONE)
        return sqlite_fail(c, "recover jobs", r);
    s = conn_stmt(c, "UPDATE events SET status = 0, next_attempt_at = ?1, lease_until = 0"
                     " WHERE status = 1");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, now);
    if (sqlite3_step(s) != SQLITE_DONE)
        return sqlite_fail(c, "recover events", sqlite3_errcode(c->db));
    /* Held events: the queue that held them is gone with the process. */
    s = conn_stmt(c, "UPDATE events SET next_attempt_at = ?1"
                     " WHERE status IN (0, 1, 3) AND next_attempt_at = ?2");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, EVENT_HELD);
    if (sqlite3_step(s) != SQLITE_DONE)
        return sqlite_fail(c, "recover held events", sqlite3_errcode(c->db));
    t->wake_work = t->wake_events = true;
    return STORE_OK;
}

int store_recover(struct store *st, int64_t now)
{
    /* The work queue lives in this process (sqlite_stage_job), so a second
     * server on the same file would run every job twice: refuse it. */
    char lock_path[4096];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", st->path);
    st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("store", "another collie server is using %s (lock %s)", st->path, lock_path);
        return STORE_BUSY;
    }
    return store_write(st, recover_fn, &now);
}

const char *store_strerror(int rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_NOTFOUND:
        return "not found";
    case STORE_CONSTRAINT:
        return "already exists";
    case STORE_STATE:
        return "not in a state that allows this";
    case STORE_BUSY:
        return "store busy";
    case STORE_IO:
        return "store failure";
    case STORE_NOMEM:
        return "out of memory";
    default:
        return "unknown store error";
    }
}
