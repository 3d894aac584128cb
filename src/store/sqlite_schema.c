/* The SQLite schema and its migrations. Each migration runs once, in order,
 * tracked by PRAGMA user_version. Status columns hold the numeric values of
 * enum job_status and enum delivery_status: those enums are append-only. */
#include <stdio.h>

#include "store/sqlite_int.h"

static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE projects ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  policy_json TEXT,"
    "  policy_version INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id),"
    "  hash BLOB NOT NULL UNIQUE,"
    "  prefix TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0);"
    /* seq gives insertion order ("newest first") independent of clock ties. */
    "CREATE TABLE jobs ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id),"
    "  status INTEGER NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  message TEXT, message_input TEXT, message_output TEXT,"
    "  webhook_url TEXT NOT NULL,"
    "  webhook_secret TEXT NOT NULL,"
    "  metadata TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  completed_at INTEGER NOT NULL DEFAULT 0,"
    "  filtered_input TEXT, filtered_output TEXT,"
    "  inbound_result TEXT, outbound_result TEXT, error TEXT,"
    /* Bit 1: filtered_input equals the input; bit 2: the same for output.
     * Most texts pass unchanged, and one copy is half the bytes to write. */
    "  filtered_same INTEGER NOT NULL DEFAULT 0);"
    /* Not on status: it changes at every step, and each change would move
     * the entry. Listing is by project, newest first (the rowid, seq). */
    "CREATE INDEX jobs_by_project ON jobs(project_id);"
    "CREATE INDEX jobs_due ON jobs(seq) WHERE status IN (0, 1, 3);"
    "CREATE INDEX jobs_by_expiry ON jobs(expires_at);"
    "CREATE TABLE idempotency ("
    "  project_id INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  job_id TEXT NOT NULL,"
    "  request_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, key));"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_id TEXT NOT NULL,"
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    /* No body is stored: it is rebuilt from the job at each attempt (the job
     * is immutable in everything an event shows), which keeps event rows
     * small, so claiming and recording them rewrites few pages. */
    "  type TEXT NOT NULL,"
    "  status_after INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  response_code INTEGER NOT NULL DEFAULT 0,"
    "  delivered_at INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT);"
    "CREATE INDEX events_by_job ON events(job_id, seq);"
    "CREATE INDEX events_due ON events(next_attempt_at) WHERE status IN (0, 1, 3);"
    "CREATE TABLE attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,"
    "  started_at INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  status_code INTEGER NOT NULL,"
    "  error TEXT);"
    "CREATE INDEX attempts_by_event ON attempts(event_seq);"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 2: jobs_due cost an index insert at every create and a delete at
     * every step, for one query at startup (store_recover), which can
     * walk jobs_by_expiry instead: only unexpired jobs can be due. */
    "DROP INDEX jobs_due;",
};

int sqlite_schema_migrate(struct conn *c, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);

    int n = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (version > n) {
        snprintf(err, errlen, "database schema version %d is newer than this collie (%d)", version,
                 n);
        return STORE_IO;
    }
    for (int v = version; v < n; v++) {
        char *msg = NULL;
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", v + 1);
        /* BEGIN IMMEDIATE: two processes opening a new database at once must
         * not both migrate. */
        if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        int cur = 0;
        if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            cur = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        if (cur > v) { /* someone else migrated meanwhile */
            sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
            v = cur - 1;
            continue;
        }
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(c->db, bump, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(c->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        continue;
    fail:
        snprintf(err, errlen, "migration %d failed: %s", v + 1, msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return STORE_IO;
    }
    return STORE_OK;
}
