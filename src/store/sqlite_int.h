/* Internals shared by the SQLite backend's files. Not part of the store
 * interface: nothing outside src/store/ includes this. */
#ifndef COLLIE_STORE_SQLITE_INT_H
#define COLLIE_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"
#include "util/i64set.h"

/* A connection and its prepared statements, keyed by the address of the
 * static SQL text (each statement is a string constant in this backend). */
#define CONN_MAX_STMTS 64
struct conn {
    sqlite3 *db;
    struct store *owner;
    int nstmts;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } stmts[CONN_MAX_STMTS];
};

/* The SQLite store. Its fields are shared by sqlite.c (connections,
 * readers, life cycle) and sqlite_writer.c (the writer thread and the
 * queues it fills); the resource files use the functions below. */
/* A growable FIFO of job ids (ring buffer). */
struct idq {
    char (*ids)[IDS_MAX_LEN];
    size_t head, len, cap;
};

struct store {
    struct conn writer;
    struct idq staged; /* writer thread only: ids made due by the batch */
    struct idq workq;  /* guarded by mu: due jobs, in order */
    pthread_t thread;
    /* Checkpoints (sqlite_writer.c). wal_frames: writer thread. */
    struct conn ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started;
    pthread_mutex_t ckpt_mu; /* guards ckpt_wanted, ckpt_stop */
    pthread_cond_t ckpt_cv;
    bool ckpt_wanted, ckpt_stop;
    int wal_frames;
    pthread_mutex_t mu;     /* guards the queue, stopping, finished flags */
    pthread_cond_t work_cv; /* writer waits for tasks */
    pthread_cond_t done_cv; /* sync callers wait for their task */
    struct wtask *head, *tail;
    bool stopping;
    bool thread_started;
    int max_batch;
    uint64_t groups; /* transactions committed; writer thread only */

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
    /* Seqs of held events handed to the dispatcher whose attempt is not
     * recorded yet: their rows still say pending, but they are being
     * delivered (store_delivery_state). Guarded by out_mu. */
    pthread_mutex_t out_mu;
    struct i64set *out;
    char *path;
    int lock_fd; /* held by the serving process: one server per database file */
    store_wake_fn wake_work, wake_events;
    void *wake_ud;
};

/* Opens a connection configured as a reader (query only) or a writer (WAL,
 * synchronous FULL or NORMAL); on failure a reason goes into err. */
int sqlite_conn_open(struct conn *c, const char *path, bool reader, bool sync_full, char *err,
                     size_t errlen);
void sqlite_conn_close(struct conn *c);

/* Creates or upgrades the schema (sqlite_schema.c); a reason goes into err. */
int sqlite_schema_migrate(struct conn *c, char *err, size_t errlen);

/* Starts the writer and checkpoint threads (the writer connection is open
 * and migrated) / stops them, waiting for queued writes, and frees the
 * queues. Stop accepts a store whose threads never started. */
int sqlite_writer_start(struct store *st, const char *path, bool sync_full, char *err,
                        size_t errlen);
void sqlite_writer_stop(struct store *st);

/* Returns the prepared, reset and unbound statement for sql, preparing it on
 * first use. NULL on error (logged). The connection owns it. */
sqlite3_stmt *conn_stmt(struct conn *c, const char *sql);

/* Maps a SQLite result code onto the store's error classes. */
int sqlite_rc(int rc);

/* Logs the connection's last error with context and returns STORE_IO or the
 * matching class. */
int sqlite_fail(struct conn *c, const char *what, int rc);

/* Runs sql (no parameters, no rows) on c. */
int conn_exec(struct conn *c, const char *sql);

/* A unit of write work. fn runs on the writer thread inside the group's
 * transaction (in its own savepoint) and returns a STORE_* code; a negative
 * code rolls back just this task. fn may set wake_work / wake_events. */
struct wtask {
    int (*fn)(struct conn *c, struct wtask *t);
    void *arg;
    int rc;
    bool wake_work;
    bool wake_events;
    /* Completion: async tasks have done (and are freed by free_fn after it
     * runs); sync tasks have done == NULL and a waiter on finished. */
    store_done_fn done;
    void *ud;
    void (*free_fn)(struct wtask *t);
    bool finished;
    /* Work nobody waits on over HTTP (pipeline results, deliveries, the
     * sweeper): see writer_take in sqlite_writer.c. */
    bool background;
    /* When set, t runs only if `after` (queued before it) committed;
     * otherwise t fails with after's code. store_write_chain sets it. */
    const struct wtask *after;
    struct wtask *next;
};

/* Queues t for the writer. Returns STORE_OK or STORE_BUSY when closing. */
int store_submit(struct store *st, struct wtask *t);

/* Background work too large for one group (see writer_take): queues the n
 * tasks t[0..n) (fn, arg set by the caller) in order, each to run only if
 * the one before it committed, and waits for all of them. Returns how many
 * committed, always a prefix of t; *rc is STORE_OK when all did, else the
 * first failure's code. */
size_t store_write_chain(struct store *st, struct wtask *t, size_t n, int *rc);

/* One chunk of a caller's array: the arg of a store_write_chunks task. */
struct wchunk {
    const void *items; /* the chunk's first item */
    size_t n;
};

/* Background work on the n items at items (item_size bytes each), as a
 * store_write_chain of tasks running fn on at most `per` items each (t->arg
 * is a struct wchunk). Returns how many items committed, always a prefix
 * of the array; *rc as for store_write_chain (STORE_NOMEM and 0 when the
 * tasks cannot be made). */
size_t store_write_chunks(struct store *st, int (*fn)(struct conn *, struct wtask *),
                          const void *items, size_t item_size, size_t n, size_t per, int *rc);

/* Queues t and waits until its transaction committed; returns t's rc. */
int store_write(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg);
/* The same for background work (wtask.background). */
int store_write_background(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg);

/* Borrows a read connection (blocks while all are in use) / returns it. */
struct conn *store_reader(struct store *st);
void store_reader_put(struct store *st, struct conn *c);

/* The work queue. This backend is used by one server process, so the jobs
 * whose step is due are handed to the pipeline through memory instead of
 * being claimed with a write: a task stages the ids it made due, and they
 * join the queue only if its transaction commits. After a restart,
 * store_recover queues every job still due, which is what a lease would
 * have achieved. Writer thread only. */
void sqlite_stage_job(struct conn *c, const char *job_id);

/* Queues ids directly (any thread), e.g. to retry steps whose results could
 * not be written. */
void sqlite_requeue_jobs(struct store *st, const char *const *ids, size_t n);

/* Pops up to max due job ids into out; returns how many. */
size_t sqlite_pop_jobs(struct store *st, char (*out)[IDS_MAX_LEN], size_t max);

/* The columns job_from_row reads, for a query that names the jobs table j. */
#define JOB_COLUMNS                                                                                \
    "j.id, j.project_id, j.status, j.mode, j.message, j.message_input, j.message_output,"          \
    " j.webhook_url, j.webhook_secret, j.metadata, j.created_at, j.expires_at, j.completed_at,"    \
    " j.filtered_input, j.filtered_output, j.inbound_result, j.outbound_result, j.error,"          \
    " j.filtered_same"
#define JOB_NCOLUMNS 19

/* Fills j from JOB_COLUMNS starting at column base, unsealing the webhook
 * secret. STORE_OK, NOMEM, or IO when a sealed secret does not open. */
int job_from_row(struct conn *c, sqlite3_stmt *s, int base, struct job *j);

/* The store's secret box, or NULL (secrets stored as given). */
const struct secretbox *sqlite_box(const struct store *st);

/* What the thread that creates a job already holds, handed to the thread
 * that consumes it next so it need not read it back: new_jobs maps a job id
 * to the struct job as created (plaintext secret), for the job's first step
 * (store_work_claim). It may miss (evicted, or never put); the pipeline
 * then reads the job from the database, as it does for every later step.
 * The bounds keep memory flat when processing falls behind, whatever the
 * message sizes (a job may carry megabytes); held events share them. */
#define HANDOVER_ENTRIES 8192
#define HANDOVER_BYTES (64u << 20)
struct idcache *sqlite_new_jobs(const struct store *st);
void sqlite_job_free(void *job); /* job_clear + free */

/* Held events: new events handed to the dispatcher through memory, so that
 * its claim of them writes nothing and reads nothing back. An event is held
 * when its step built the body and its job has no earlier undelivered event
 * (per-job order needs nothing else then). Its row is stored pending with
 * next_attempt_at = EVENT_HELD, which the database claim never finds due,
 * and it joins an in-process queue when its transaction commits;
 * store_event_claim takes from that queue first. The row stays pending
 * until its attempt is recorded; after a restart store_recover makes held
 * rows due, as it does for leased ones. Past HANDOVER_ENTRIES/BYTES events
 * are stored due and claimed from the database. */
#define EVENT_HELD INT64_MAX
struct held_event;
/* Writer thread. A node with copies of the strings, counted against the
 * bounds; NULL when the queue is full or memory is short (then store the
 * event due, not held). */
struct held_event *sqlite_held_new(struct store *st, const char *event_id, const char *job_id,
                                   const char *body, const char *url, const char *secret);
/* Writer thread. Stages h (owned from here) as the event row seq: it joins
 * the queue if the task and its transaction commit, else it is freed. */
void sqlite_held_stage(struct conn *c, struct held_event *h, int64_t seq);
/* Frees a node that was not staged. Accepts NULL. */
void sqlite_held_free(struct store *st, struct held_event *h);
/* Moves up to max queued events for which room (NULL: always) says yes
 * into out, in queue order (attempts 0; strings owned by the caller, as
 * store_event_claim hands them out); the others keep their places. Any
 * thread. */
size_t sqlite_held_pop(struct store *st, struct store_delivery *out, size_t max,
                       store_claim_room_fn room, void *room_ud);

/* Inserts an event created at now for job_id, due at due_at (now, or
 * EVENT_HELD); status_after is the job's status right after the step the
 * event reports. */
int sqlite_event_insert(struct conn *c, const char *event_id, const char *job_id, const char *type,
                        enum job_status status_after, int64_t now, int64_t due_at);

/* True when job_id has an event not yet delivered or failed (writer). */
int sqlite_event_pending_for(struct conn *c, const char *job_id, bool *pending);

/* Steps s (prepared and bound by the caller) for a single row and puts its
 * first column in *out: STORE_OK, NOTFOUND for no row, or the error
 * (logged as `what`). Resets s. */
int sqlite_step_int64(struct conn *c, sqlite3_stmt *s, const char *what, int64_t *out);

/* strdup of a column, NULL for SQL NULL. */
char *col_text(sqlite3_stmt *s, int i);

/* Binds a string, or NULL when s is NULL. SQLITE_TRANSIENT copies. */
int bind_text(sqlite3_stmt *s, int i, const char *v);

#endif
