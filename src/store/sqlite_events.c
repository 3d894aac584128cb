/* SQLite backend: webhook events and their delivery attempts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/view.h"
#include "store/sqlite_int.h"

const char *delivery_status_name(enum delivery_status s)
{
    static const char *const names[] = {"pending", "delivering", "delivered", "retrying", "failed"};
    return (unsigned)s <= DELIVERY_FAILED ? names[s] : "unknown";
}

int sqlite_event_insert(struct conn *c, const char *event_id, const char *job_id, const char *type,
                        enum job_status status_after, int64_t now, int64_t due_at)
{
    sqlite3_stmt *s = conn_stmt(c, "INSERT INTO events(event_id, job_id, type, status_after,"
                                   " created_at, status, next_attempt_at)"
                                   " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, event_id);
    bind_text(s, 2, job_id);
    bind_text(s, 3, type);
    sqlite3_bind_int(s, 4, (int)status_after);
    sqlite3_bind_int64(s, 5, now);
    sqlite3_bind_int64(s, 6, due_at);
    int rc = sqlite3_step(s);
    return rc == SQLITE_DONE ? STORE_OK : sqlite_fail(c, "insert event", rc);
}

int sqlite_event_pending_for(struct conn *c, const char *job_id, bool *pending)
{
    sqlite3_stmt *s = conn_stmt(c, "SELECT 1 FROM events WHERE job_id = ?1"
                                   " AND status IN (0, 1, 3) LIMIT 1");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, job_id);
    int64_t one;
    int rc = sqlite_step_int64(c, s, "pending events", &one);
    *pending = rc == STORE_OK;
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static void deliveries_free_strings(struct store_delivery *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d[i].url);
        free(d[i].secret);
        free(d[i].payload);
        d[i].url = d[i].secret = d[i].payload = NULL;
    }
}

void store_deliveries_free(struct store_delivery *d, size_t n)
{
    if (d)
        deliveries_free_strings(d, n);
    free(d);
}

/* What a claim takes from an event row besides the delivery; the body is
 * built after the commit, off the writer thread. */
struct claimed {
    char type[32];
    enum job_status status_after;
    int64_t created_at;
};

struct claim_args {
    int64_t now, lease_ms;
    size_t max;
    struct store_delivery *d;
    struct claimed *meta;
    size_t n;
};

/* Only the oldest undelivered event of a job is eligible: that is what
 * keeps each job's events in order. A delivering event whose lease ran out
 * has next_attempt_at = lease end, so it becomes due again; a held one is
 * never due here. CROSS JOIN keeps events as the outer loop (the due
 * index gives the order); the job only lends its URL to the room check. */
static const char due_events_sql[] =
    "SELECT e.seq, e.event_id, e.job_id, e.type, e.status_after, e.created_at, e.attempts,"
    " j.webhook_url"
    " FROM events e CROSS JOIN jobs j ON j.id = e.job_id"
    " WHERE e.status IN (0, 1, 3) AND e.next_attempt_at <= ?1"
    " AND e.seq = (SELECT min(seq) FROM events e2 WHERE e2.job_id = e.job_id"
    "              AND e2.status IN (0, 1, 3))"
    " ORDER BY e.next_attempt_at LIMIT ?2";

/* Picks the due events to claim, on a read connection and the caller's
 * thread (where room may run), so that a claim costs the writer only the
 * updates of the events picked. */
static int due_pick(struct store *st, struct claim_args *a, const struct store_claim_room *room)
{
    store_claim_room_fn fn = room ? room->fn : NULL;
    size_t look_past = fn && room->look_past ? room->look_past : 1, refused = 0;
    size_t scan = a->max + (fn ? look_past : 0);
    if (scan < a->max) /* overflow */
        scan = SIZE_MAX;
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, due_events_sql);
    int rc = STORE_IO;
    if (s) {
        sqlite3_bind_int64(s, 1, a->now);
        sqlite3_bind_int64(s, 2, scan > INT64_MAX ? INT64_MAX : (sqlite3_int64)scan);
        int r = SQLITE_DONE;
        while (a->n < a->max && (r = sqlite3_step(s)) == SQLITE_ROW) {
            const char *url = (const char *)sqlite3_column_text(s, 7);
            if (fn && !fn(room->ud, url)) {
                if (++refused == look_past)
                    break;
                continue;
            }
            struct store_delivery *d = &a->d[a->n];
            struct claimed *m = &a->meta[a->n];
            d->seq = sqlite3_column_int64(s, 0);
            snprintf(d->event_id, sizeof(d->event_id), "%s",
                     (const char *)sqlite3_column_text(s, 1));
            snprintf(d->job_id, sizeof(d->job_id), "%s", (const char *)sqlite3_column_text(s, 2));
            snprintf(m->type, sizeof(m->type), "%s", (const char *)sqlite3_column_text(s, 3));
            m->status_after = (enum job_status)sqlite3_column_int(s, 4);
            m->created_at = sqlite3_column_int64(s, 5);
            d->attempts = sqlite3_column_int(s, 6);
            d->leased = true;
            a->n++;
        }
        bool stopped = a->n == a->max || refused == look_past;
        rc = stopped || r == SQLITE_DONE ? STORE_OK : sqlite_fail(c, "due events", r);
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    return rc;
}

/* Leases the picked events. Each is checked again, in the transaction:
 * one that is no longer due, or no longer its job's oldest undelivered
 * event (a redelivery or the sweep got there first), is dropped. */
static int event_claim_fn(struct conn *c, struct wtask *t)
{
    struct claim_args *a = t->arg;
    int64_t lease = a->now + a->lease_ms;
    size_t kept = 0;
    for (size_t i = 0; i < a->n; i++) {
        sqlite3_stmt *u = conn_stmt(c, "UPDATE events SET status = 1, next_attempt_at = ?2,"
                                       " lease_until = ?2 WHERE seq = ?1"
                                       " AND status IN (0, 1, 3) AND next_attempt_at <= ?3"
                                       " AND seq = (SELECT min(seq) FROM events e2"
                                       "            WHERE e2.job_id = ?4"
                                       "            AND e2.status IN (0, 1, 3))");
        if (!u)
            return STORE_IO;
        sqlite3_bind_int64(u, 1, a->d[i].seq);
        sqlite3_bind_int64(u, 2, lease);
        sqlite3_bind_int64(u, 3, a->now);
        bind_text(u, 4, a->d[i].job_id);
        int r = sqlite3_step(u);
        sqlite3_reset(u);
        if (r != SQLITE_DONE)
            return sqlite_fail(c, "claim event", r);
        if (sqlite3_changes(c->db) == 1) {
            a->d[kept] = a->d[i];
            a->meta[kept] = a->meta[i];
            kept++;
        }
    }
    a->n = kept;
    return STORE_OK;
}

/* Gives each event claimed from the database its body and target, rebuilt
 * from the job (on the caller's thread: the writer only did the claim). */
static int build_bodies(struct store *st, struct claim_args *a)
{
    int rc = STORE_OK;
    struct conn *c = NULL;
    for (size_t i = 0; i < a->n && rc == STORE_OK; i++) {
        struct store_delivery *d = &a->d[i];
        if (!c)
            c = store_reader(st);
        sqlite3_stmt *s = conn_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs j WHERE id = ?1");
        if (!s) {
            rc = STORE_IO;
            break;
        }
        bind_text(s, 1, d->job_id);
        struct job j;
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW && (rc = job_from_row(c, s, 0, &j)) == STORE_OK) {
            d->payload = job_event_body_for(&j, a->meta[i].type, a->meta[i].status_after,
                                            a->meta[i].created_at);
            d->url = j.webhook_url;
            d->secret = j.webhook_secret;
            j.webhook_url = j.webhook_secret = NULL; /* moved into d */
            job_clear(&j);
            if (!d->payload)
                rc = STORE_NOMEM;
        } else if (r != SQLITE_ROW) {
            rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "event job", r);
        }
        sqlite3_reset(s);
    }
    if (c)
        store_reader_put(st, c);
    return rc;
}

int store_event_claim(struct store *st, int64_t now, int64_t lease_ms, size_t max,
                      const struct store_claim_room *room, struct store_delivery **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct store_delivery *d = calloc(max ? max : 1, sizeof(*d));
    if (!d)
        return STORE_NOMEM;
    size_t held = sqlite_held_pop(st, d, max, room ? room->fn : NULL, room ? room->ud : NULL);
    int rc = STORE_OK;
    if (held < max) {
        struct claim_args a = {.now = now, .lease_ms = lease_ms, .max = max - held};
        a.d = d + held;
        a.meta = calloc(a.max, sizeof(*a.meta));
        rc = a.meta ? due_pick(st, &a, room) : STORE_NOMEM;
        if (rc == STORE_OK && a.n > 0)
            rc = store_write_background(st, event_claim_fn, &a);
        if (rc == STORE_OK && a.n > 0)
            rc = build_bodies(st, &a); /* a failure leaves the events leased: retried later */
        free(a.meta);
        if (rc != STORE_OK)
            deliveries_free_strings(a.d, a.n);
        else
            held += a.n;
    }
    /* Held events are handed out even when the database part failed: they
     * are ours, and nothing else would send them before a restart. */
    if (held == 0) {
        free(d);
        return rc;
    }
    *out = d;
    *n = held;
    return STORE_OK;
}

struct unclaim_args {
    int64_t seq, due_at;
};

/* Only a pending row: a held event's row stays pending while it is out. */
static int event_unclaim_fn(struct conn *c, struct wtask *t)
{
    const struct unclaim_args *a = t->arg;
    sqlite3_stmt *u = conn_stmt(c, "UPDATE events SET next_attempt_at = ?2"
                                   " WHERE seq = ?1 AND status = 0");
    if (!u)
        return STORE_IO;
    sqlite3_bind_int64(u, 1, a->seq);
    sqlite3_bind_int64(u, 2, a->due_at);
    int r = sqlite3_step(u);
    sqlite3_reset(u);
    return r == SQLITE_DONE ? STORE_OK : sqlite_fail(c, "unclaim event", r);
}

int store_event_unclaim(struct store *st, int64_t seq, int64_t due_at)
{
    struct unclaim_args a = {seq, due_at};
    int rc = store_write_background(st, event_unclaim_fn, &a);
    if (rc == STORE_OK) {
        pthread_mutex_lock(&st->out_mu);
        i64set_remove(st->out, seq);
        pthread_mutex_unlock(&st->out_mu);
    }
    return rc;
}

static int event_record_fn(struct conn *c, struct wtask *t)
{
    const struct wchunk *ch = t->arg;
    const struct store_attempt *all = ch->items;
    for (size_t i = 0; i < ch->n; i++) {
        const struct store_attempt *a = &all[i];
        sqlite3_stmt *s = conn_stmt(c, "INSERT INTO attempts(event_seq, started_at, duration_ms,"
                                       " status_code, error) VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!s)
            return STORE_IO;
        sqlite3_bind_int64(s, 1, a->seq);
        sqlite3_bind_int64(s, 2, a->started_at);
        sqlite3_bind_int64(s, 3, a->duration_ms);
        sqlite3_bind_int(s, 4, a->status_code);
        bind_text(s, 5, a->error);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            /* The event may have been deleted by retention meanwhile. */
            if ((rc & 0xff) == SQLITE_CONSTRAINT)
                continue;
            return sqlite_fail(c, "record attempt", rc);
        }
        int64_t finished = a->started_at + a->duration_ms;
        s = conn_stmt(c, "UPDATE events SET status = ?2, attempts = attempts + 1,"
                         " response_code = ?3, last_error = ?4, lease_until = 0,"
                         " delivered_at = CASE WHEN ?2 = 2 THEN ?5 ELSE delivered_at END,"
                         " next_attempt_at = CASE WHEN ?2 = 3 THEN ?6 ELSE ?5 END"
                         " WHERE seq = ?1");
        if (!s)
            return STORE_IO;
        sqlite3_bind_int64(s, 1, a->seq);
        sqlite3_bind_int(s, 2, (int)a->next);
        sqlite3_bind_int(s, 3, a->status_code);
        bind_text(s, 4, a->error);
        sqlite3_bind_int64(s, 5, finished);
        sqlite3_bind_int64(s, 6, a->next_attempt_at);
        if ((rc = sqlite3_step(s)) != SQLITE_DONE)
            return sqlite_fail(c, "update event", rc);
        /* A delivered or failed event frees the job's next one. */
        if (a->next != DELIVERY_RETRYING)
            t->wake_events = true;
    }
    return STORE_OK;
}

/* Attempts per writer task: at ~10 µs of writing each, a chunk adds
 * ~0.15 ms to the group of 202s that carries it (writer_take). */
#define RECORD_CHUNK 16

int store_event_record(struct store *st, const struct store_attempt *a, size_t n, size_t *recorded)
{
    int rc;
    *recorded = store_write_chunks(st, event_record_fn, a, sizeof(*a), n, RECORD_CHUNK, &rc);
    pthread_mutex_lock(&st->out_mu);
    for (size_t i = 0; i < *recorded; i++)
        i64set_remove(st->out, a[i].seq);
    pthread_mutex_unlock(&st->out_mu);
    return rc;
}

int store_delivery_state(struct store *st, const char *job_id, struct store_delivery_state *out)
{
    memset(out, 0, sizeof(*out));
    struct conn *c = store_reader(st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT j.webhook_url, e.status, e.attempts, e.response_code,"
                                   " e.delivered_at, CASE WHEN e.next_attempt_at = ?2"
                                   " THEN e.created_at ELSE e.next_attempt_at END,"
                                   " e.next_attempt_at = ?2, e.seq FROM events e"
                                   " JOIN jobs j ON j.id = e.job_id WHERE e.job_id = ?1"
                                   " ORDER BY e.seq DESC LIMIT 1");
    int rc = STORE_IO;
    if (s) {
        bind_text(s, 1, job_id);
        sqlite3_bind_int64(s, 2, EVENT_HELD); /* held: due since it was made */
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            out->url = col_text(s, 0);
            out->status = (enum delivery_status)sqlite3_column_int(s, 1);
            out->attempts = sqlite3_column_int(s, 2);
            out->response_code = sqlite3_column_int(s, 3);
            out->delivered_at = sqlite3_column_int64(s, 4);
            /* A held event's row says pending until its attempt is
             * recorded; once handed to the dispatcher it is in flight. */
            if (out->status == DELIVERY_PENDING && sqlite3_column_int(s, 6)) {
                pthread_mutex_lock(&st->out_mu);
                if (i64set_has(st->out, sqlite3_column_int64(s, 7)))
                    out->status = DELIVERY_DELIVERING;
                pthread_mutex_unlock(&st->out_mu);
            }
            /* Only a waiting event has a meaningful next attempt time; a
             * delivering one holds its lease end there. */
            if (out->status == DELIVERY_PENDING || out->status == DELIVERY_RETRYING)
                out->next_attempt_at = sqlite3_column_int64(s, 5);
            rc = out->url ? STORE_OK : STORE_NOMEM;
        } else {
            rc = r == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "delivery state", r);
        }
        sqlite3_reset(s);
    }
    store_reader_put(st, c);
    return rc;
}

struct redeliver_args {
    int64_t project_id;
    const char *job_id;
    int64_t now;
    size_t count;
};

static int redeliver_fn(struct conn *c, struct wtask *t)
{
    struct redeliver_args *a = t->arg;
    sqlite3_stmt *s = conn_stmt(c, "SELECT 1 FROM jobs WHERE id = ?1 AND project_id = ?2");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    sqlite3_bind_int64(s, 2, a->project_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? STORE_NOTFOUND : sqlite_fail(c, "redeliver", rc);
    /* An event in flight (leased) or held for the dispatcher is being sent,
     * or about to be, ahead of any earlier event made due here: that
     * would break the job's order, so the redelivery is refused. */
    s = conn_stmt(c, "SELECT 1 FROM events WHERE job_id = ?1 AND (next_attempt_at = ?2"
                     " OR (status = 1 AND lease_until > ?3)) LIMIT 1");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    sqlite3_bind_int64(s, 2, EVENT_HELD);
    sqlite3_bind_int64(s, 3, a->now);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return STORE_STATE;
    if (rc != SQLITE_DONE)
        return sqlite_fail(c, "redeliver", rc);
    /* Finished events go back to pending and waiting ones are due now
     * (none is held: that was refused above). */
    s = conn_stmt(c, "UPDATE events SET status = CASE WHEN status IN (2, 4) THEN 0"
                     " ELSE status END, next_attempt_at = ?2, lease_until = 0"
                     " WHERE job_id = ?1 AND status IN (0, 2, 3, 4)");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    sqlite3_bind_int64(s, 2, a->now);
    if ((rc = sqlite3_step(s)) != SQLITE_DONE)
        return sqlite_fail(c, "redeliver", rc);
    a->count = (size_t)sqlite3_changes(c->db);
    s = conn_stmt(c, "SELECT count(*) FROM events WHERE job_id = ?1");
    if (!s)
        return STORE_IO;
    bind_text(s, 1, a->job_id);
    if (sqlite3_step(s) == SQLITE_ROW && a->count == 0 && sqlite3_column_int64(s, 0) > 0)
        a->count = (size_t)sqlite3_column_int64(s, 0); /* all already queued */
    sqlite3_reset(s);
    t->wake_events = true;
    return STORE_OK;
}

int store_event_redeliver(struct store *st, int64_t project_id, const char *job_id, int64_t now,
                          size_t *count)
{
    struct redeliver_args a = {.project_id = project_id, .job_id = job_id, .now = now};
    int rc = store_write(st, redeliver_fn, &a);
    if (count)
        *count = a.count;
    return rc;
}
