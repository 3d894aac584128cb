/* Internals shared by the SQLite backend's files. Not part of the store
 * interface: nothing outside src/store/ includes this. */
#ifndef COLLIE_STORE_SQLITE_INT_H
#define COLLIE_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"

/* A connection and its prepared statements, keyed by the address of the
 * static SQL text (each statement is a string constant in this backend). */
#define CONN_MAX_STMTS 64
struct conn {
    sqlite3 *db;
    int nstmts;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } stmts[CONN_MAX_STMTS];
};

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
    struct wtask *next;
};

/* Queues t for the writer. Returns STORE_OK or STORE_BUSY when closing. */
int store_submit(struct store *st, struct wtask *t);

/* Queues t and waits until its transaction committed; returns t's rc. */
int store_write(struct store *st, int (*fn)(struct conn *, struct wtask *), void *arg);

/* Borrows a read connection (blocks while all are in use) / returns it. */
struct conn *store_reader(struct store *st);
void store_reader_put(struct store *st, struct conn *c);

/* strdup of a column, NULL for SQL NULL. */
char *col_text(sqlite3_stmt *s, int i);

/* Binds a string, or NULL when s is NULL. SQLITE_TRANSIENT copies. */
int bind_text(sqlite3_stmt *s, int i, const char *v);

#endif
