/* SQLite backend: projects, API keys and policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"
#include "util/clock.h"

struct project_args {
    const char *name;
    int64_t id;
};

static int project_create_fn(struct conn *c, struct wtask *t)
{
    struct project_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "INSERT INTO projects(name, created_at) VALUES (?1, ?2)");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->name);
    sqlite3_bind_int64(s, 2, clock_now_ms());
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "create project", rc);
    a->id = sqlite3_last_insert_rowid(c->db);
    return STORE_OK;
}

int store_project_create(struct store *st, const char *name, int64_t *out_id)
{
    struct project_args a = {.name = name};
    int rc = store_write(st, project_create_fn, &a);
    if (rc == STORE_OK && out_id)
        *out_id = a.id;
    return rc;
}

int store_project_find(struct store *st, const char *name, int64_t *out_id)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT id FROM projects WHERE name = ?1");
    int rc = STORE_IO;
    if (s) {
        bind_text(s, 1, name);
        rc = sqlite_step_int64(c, s, "find project", out_id);
    }
    store_reader_put(st, c);
    return rc;
}

struct key_args {
    int64_t project_id;
    const uint8_t *hash;
    const char *prefix;
};

static int key_create_fn(struct conn *c, struct wtask *t)
{
    struct key_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "INSERT INTO api_keys(project_id, hash, prefix, created_at)"
                                   " VALUES (?1, ?2, ?3, ?4)");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->project_id);
    sqlite3_bind_blob(s, 2, a->hash, 32, SQLITE_TRANSIENT);
    bind_text(s, 3, a->prefix);
    sqlite3_bind_int64(s, 4, clock_now_ms());
    int rc = sqlite3_step(s);
    return rc == SQLITE_DONE ? STORE_OK : sqlite_fail(c, "create key", rc);
}

int store_key_create(struct store *st, int64_t project_id, const uint8_t hash[32],
                     const char *prefix)
{
    struct key_args a = {.project_id = project_id, .hash = hash, .prefix = prefix};
    return store_write(st, key_create_fn, &a);
}

int store_key_lookup(struct store *st, const uint8_t hash[32], int64_t *out_project)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s =
        conn_stmt(c, "SELECT project_id FROM api_keys WHERE hash = ?1 AND revoked_at = 0");
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        rc = sqlite_step_int64(c, s, "lookup key", out_project);
    }
    store_reader_put(st, c);
    return rc;
}

int store_key_list(struct store *st, int64_t project_id, struct store_key_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT prefix, created_at, revoked_at FROM api_keys"
                                   " WHERE project_id = ?1 ORDER BY id");
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_int64(s, 1, project_id);
        size_t cap = 0;
        int r;
        rc = STORE_OK;
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                struct store_key_info *p = realloc(*out, cap * sizeof(**out));
                if (!p) {
                    rc = STORE_NOMEM;
                    break;
                }
                *out = p;
            }
            struct store_key_info *k = &(*out)[(*n)++];
            snprintf(k->prefix, sizeof(k->prefix), "%s", (const char *)sqlite3_column_text(s, 0));
            k->created_at = sqlite3_column_int64(s, 1);
            k->revoked_at = sqlite3_column_int64(s, 2);
        }
        if (rc == STORE_OK && r != SQLITE_DONE)
            rc = sqlite_fail(c, "list keys", r);
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    if (rc != STORE_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

struct revoke_args {
    int64_t project_id;
    const char *prefix;
};

static int key_revoke_fn(struct conn *c, struct wtask *t)
{
    struct revoke_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "UPDATE api_keys SET revoked_at = ?3"
                                   " WHERE project_id = ?1 AND prefix = ?2 AND revoked_at = 0");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->project_id);
    bind_text(s, 2, a->prefix);
    sqlite3_bind_int64(s, 3, clock_now_ms());
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "revoke key", rc);
    return sqlite3_changes(c->db) > 0 ? STORE_OK : STORE_NOTFOUND;
}

int store_key_revoke(struct store *st, int64_t project_id, const char *prefix)
{
    struct revoke_args a = {.project_id = project_id, .prefix = prefix};
    return store_write(st, key_revoke_fn, &a);
}

int store_policy_get(struct store *st, int64_t project_id, char **json, int64_t *version)
{
    *json = NULL;
    *version = 0;
    struct conn *c = store_reader(st);
    sqlite3_stmt *s =
        conn_stmt(c, "SELECT policy_json, policy_version FROM projects WHERE id = ?1");
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_int64(s, 1, project_id);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            *json = col_text(s, 0);
            *version = sqlite3_column_int64(s, 1);
            rc = STORE_OK;
        } else {
            rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "get policy", r);
        }
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    return rc;
}

int store_policy_version(struct store *st, int64_t project_id, int64_t *version)
{
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT policy_version FROM projects WHERE id = ?1");
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_int64(s, 1, project_id);
        rc = sqlite_step_int64(c, s, "policy version", version);
    }
    store_reader_put(st, c);
    return rc;
}

struct policy_args {
    int64_t project_id;
    const char *json;
    int64_t version;
};

static int policy_set_fn(struct conn *c, struct wtask *t)
{
    struct policy_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "UPDATE projects SET policy_json = ?2,"
                                   " policy_version = policy_version + 1 WHERE id = ?1"
                                   " RETURNING policy_version");
    if (!s)
        return STORE_IO;
    sqlite3_bind_int64(s, 1, a->project_id);
    bind_text(s, 2, a->json);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        a->version = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return STORE_OK;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "set policy", rc);
}

int store_policy_set(struct store *st, int64_t project_id, const char *json, int64_t *out_version)
{
    struct policy_args a = {.project_id = project_id, .json = json};
    int rc = store_write(st, policy_set_fn, &a);
    if (rc == STORE_OK && out_version)
        *out_version = a.version;
    return rc;
}
