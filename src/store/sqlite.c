/* SQLite backend: connections, the read-connection pool, opening, closing
 * and recovery. The writer thread is in sqlite_writer.c, the SQL of each
 * resource beside this file (sqlite_projects.c, sqlite_jobs.c,
 * sqlite_events.c), the schema in sqlite_schema.c. */
#include "store/sqlite_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/idcache.h"
#include "util/log.h"
#include "util/secretbox.h"

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

int sqlite_conn_open(struct conn *c, const char *path, bool reader, bool sync_full, char *err,
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
    const char *pragmas = reader
                              ? "PRAGMA query_only=1; PRAGMA foreign_keys=ON;"
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

void sqlite_conn_close(struct conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        sqlite3_finalize(c->stmts[i].stmt);
    c->nstmts = 0;
    sqlite3_close(c->db);
    c->db = NULL;
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
            snprintf(err, errlen,
                     "the secret key (COLLIE_SECRET_KEY or the .key file beside the "
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
    pthread_mutex_init(&st->out_mu, NULL);
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
    st->out = i64set_new();
    if (!st->path || !st->new_jobs || !st->out) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    if (sqlite_conn_open(&st->writer, path, false, o.synchronous_full, err, errlen) != STORE_OK)
        goto fail;
    st->writer.owner = st;
    if (sqlite_schema_migrate(&st->writer, err, errlen) != STORE_OK)
        goto fail;
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
        if (sqlite_conn_open(&st->readers[i], path, true, false, err, errlen) != STORE_OK)
            goto fail;
        st->readers[i].owner = st;
        st->nreaders++;
    }
    if (sqlite_writer_start(st, path, o.synchronous_full, err, errlen) != STORE_OK)
        goto fail;
    return st;

fail:
    store_close(st);
    return NULL;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite_writer_stop(st);
    for (int i = 0; i < st->nreaders; i++)
        sqlite_conn_close(&st->readers[i]);
    free(st->readers);
    free(st->reader_busy);
    if (st->writer.db)
        sqlite_conn_close(&st->writer);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->path);
    idcache_free(st->new_jobs);
    i64set_free(st->out);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->out_mu);
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
