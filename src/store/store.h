/* The store: everything Collie keeps durably, behind one interface so that
 * the API, pipeline and webhook code never see SQL. Backends: SQLite
 * (embedded default). A PostgreSQL backend plugs in behind the same calls.
 *
 * Threading: every function may be called from any thread. Writes are
 * serialized by the backend (SQLite: one writer thread that commits the
 * writes of many callers as one transaction, "group commit"); a function
 * returns only after its write is durable.
 *
 * Return codes: STORE_OK or a negative STORE_* class below. */
#ifndef COLLIE_STORE_STORE_H
#define COLLIE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job/job.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND = -1,   /* no such row (or not the caller's project) */
    STORE_CONSTRAINT = -2, /* unique key taken */
    STORE_STATE = -3,      /* row exists but is not in a state that allows this */
    STORE_BUSY = -4,       /* backend overloaded or shutting down */
    STORE_IO = -5,         /* backend failure; details were logged */
    STORE_NOMEM = -6,
};

const char *store_strerror(int rc);

struct store;

struct secretbox;

struct store_options {
    int read_connections;  /* pooled read connections (default 4) */
    int max_batch;         /* writes per group commit (default 512) */
    bool synchronous_full; /* fsync on every commit (default true) */
    /* Seals webhook secrets at rest (borrowed; must outlive the store).
     * NULL for tools that never read or write jobs. With a box, the store
     * refuses to open a database whose secrets were sealed with another
     * key. */
    const struct secretbox *box;
};

/* Opens (creating and migrating if needed) the store at url: a file path,
 * "sqlite:PATH". opts may be NULL for defaults. On failure returns NULL and
 * writes a reason into err. The caller owns the store; store_close accepts
 * NULL and waits for queued writes. */
struct store *store_open(const char *url, const struct store_options *opts, char *err,
                         size_t errlen);
void store_close(struct store *st);

/* The file an embedded database lives in: url without its "sqlite:" or
 * "sqlite://" prefix (a pointer into url), or NULL for a server database. */
const char *store_file_path(const char *url);

/* Takes over the work of a previous run of this node after a crash or
 * restart: queues every job whose step is due and makes in-flight
 * deliveries due again (their outcome is unknown, so they are re-sent:
 * delivery is at least once). Only the server calls this, never the
 * command-line tools. SQLite: also takes the database's server lock, and
 * returns STORE_BUSY when another server holds it. */
int store_recover(struct store *st, int64_t now);

/* Cheap round trip to the backend, for /readyz. */
int store_ping(struct store *st);

/* Called (from the writer thread, with the store's lock held: a hook must
 * only signal, never call the store) after any commit that made work or
 * events due, so the pipeline and dispatcher wake without polling. Setting
 * NULL hooks is a barrier: no old hook runs after it returns. */
typedef void (*store_wake_fn)(void *ud);
void store_set_wakeups(struct store *st, store_wake_fn work, store_wake_fn events, void *ud);

/* ---- projects, keys, policies ------------------------------------------ */

int store_project_create(struct store *st, const char *name, int64_t *out_id);
int store_project_find(struct store *st, const char *name, int64_t *out_id);

/* Stores a key by its SHA-256. prefix is a short, non-secret display form. */
int store_key_create(struct store *st, int64_t project_id, const uint8_t hash[32],
                     const char *prefix);
/* Finds the project of an unrevoked key by hash. */
int store_key_lookup(struct store *st, const uint8_t hash[32], int64_t *out_project);

struct store_key_info {
    char prefix[32];
    int64_t created_at;
    int64_t revoked_at;
};
/* Lists a project's keys; *out is malloc'ed, caller frees. */
int store_key_list(struct store *st, int64_t project_id, struct store_key_info **out, size_t *n);
/* Revokes the project's key whose prefix matches. */
int store_key_revoke(struct store *st, int64_t project_id, const char *prefix);

/* The project's policy document (malloc'ed, caller frees) and version; with
 * no policy set, *json is NULL and *version 0. */
int store_policy_get(struct store *st, int64_t project_id, char **json, int64_t *version);
/* Just the version (cheap): lets callers keep a compiled policy cached. */
int store_policy_version(struct store *st, int64_t project_id, int64_t *version);
/* Replaces the policy; the new version (previous + 1) goes to *out_version. */
int store_policy_set(struct store *st, int64_t project_id, const char *json, int64_t *out_version);

/* ---- jobs --------------------------------------------------------------- */

/* Completion of an asynchronous write, called on the store's writer thread
 * once the write is durable (rc STORE_OK) or has failed. Must not block. */
typedef void (*store_done_fn)(void *ud, int rc);

/* Inserts job (all fields copied) and makes its first step due, in one
 * transaction; calls done when durable. With job->idempotency_key set and
 * already used by the project within the idempotency window, the write
 * fails with STORE_CONSTRAINT. Returns STORE_OK when queued (done will be
 * called exactly once), or an error (done is never called). */
int store_job_create_async(struct store *st, const struct job *job, store_done_fn done, void *ud);

/* Synchronous form of the above. */
int store_job_create(struct store *st, const struct job *job);

/* The job the project created with this idempotency key at or after since
 * (epoch ms). out is filled (caller clears it). */
int store_job_find_idempotent(struct store *st, int64_t project_id, const char *key, int64_t since,
                              struct job *out);

/* Reads one job of the project. out is filled (caller clears it). */
int store_job_get(struct store *st, int64_t project_id, const char *job_id, struct job *out);

struct store_job_summary {
    char id[IDS_MAX_LEN];
    enum job_status status;
    int64_t created_at;
    int64_t completed_at;
    char *metadata_json; /* owned; freed by store_job_summaries_free */
};

/* One page of a project's jobs, newest first. statuses is a bit set of
 * (1u << enum job_status); 0 means all. *out is owned by the caller and
 * freed with store_job_summaries_free. */
int store_job_list(struct store *st, int64_t project_id, unsigned statuses, int64_t offset,
                   int64_t limit, struct store_job_summary **out, size_t *n, int64_t *total);
void store_job_summaries_free(struct store_job_summary *s, size_t n);

/* Records the LLM response of a job awaiting one and makes its outbound
 * step due. STORE_NOTFOUND, or STORE_STATE when not awaiting_response or
 * already expired at now. */
int store_job_submit_response(struct store *st, int64_t project_id, const char *job_id,
                              const char *response, int64_t now);

/* ---- pipeline work ------------------------------------------------------ */

/* Claims up to max jobs whose step is due, moving each to the status
 * job_status_on_claim gives and leasing it until now + lease_ms (a worker
 * that dies loses the lease and the job is claimed again). SQLite serves
 * one process, so it hands due jobs over in memory and writes nothing here:
 * the stored status stays pending until the step's result is written, and
 * a crash is covered by store_recover. *out is an array
 * of n jobs owned by the caller (job_clear each, then free). */
int store_work_claim(struct store *st, int64_t now, int64_t lease_ms, size_t max, struct job **out,
                     size_t *n);

/* The outcome of one step, written with its event in one transaction. */
struct store_step_result {
    const char *job_id;
    enum job_status from; /* status the job was claimed in */
    enum job_status to;   /* status after the step */
    enum job_step step;
    const char *filtered;    /* filtered text or NULL (blocked) */
    bool filtered_unchanged; /* filtered equals the step's input text */
    const char *result_json; /* the direction's result object */
    const char *error_json;  /* for failed jobs, else NULL */
    const char *event_type;  /* JOB_EVENT_*; its body is built from the job */
    const char *event_id;    /* "msg_…" */
    int64_t now;
    /* Optional, all three or none: the event's body exactly as
     * job_event_body_for would build it from the job after this step, and
     * the job's webhook target. A backend may keep them for the event's
     * first claim instead of rebuilding the body from the stored job. */
    const char *event_body;
    const char *webhook_url;
    const char *webhook_secret;
};

/* Applies step results, a few per writer task so that a group of 202s
 * waits for few of them (a job no longer in status 'from' — e.g. expired
 * meanwhile — is skipped). A failure undoes its task's results and stops
 * the tasks after it; the results not written go back to the work queue,
 * to run again. */
int store_work_complete(struct store *st, const struct store_step_result *r, size_t n);

/* Expires due jobs (each gets a job.expired event) and deletes jobs
 * retention_ms after their expiry, at most STORE_SWEEP_BATCH of each per
 * call (a full batch means more may be waiting). *expired / *deleted
 * receive the counts. The batch is small because requests committed in the
 * same group wait for it. */
#define STORE_SWEEP_BATCH 100
int store_sweep(struct store *st, int64_t now, int64_t retention_ms, size_t *expired,
                size_t *deleted);

/* ---- webhook events ----------------------------------------------------- */

enum delivery_status {
    DELIVERY_PENDING,
    DELIVERY_DELIVERING,
    DELIVERY_DELIVERED,
    DELIVERY_RETRYING,
    DELIVERY_FAILED,
};
const char *delivery_status_name(enum delivery_status s);

/* One event as claimed by the dispatcher. Strings owned; store_deliveries_free. */
struct store_delivery {
    int64_t seq; /* store's event row id */
    char event_id[IDS_MAX_LEN];
    char job_id[IDS_MAX_LEN];
    char *url;
    char *secret;  /* "whsec_…" */
    char *payload; /* the body, rebuilt from the job (job_event_body_for) */
    int attempts;  /* attempts made before this one */
    /* True when the claim was written (a lease): an event the caller does
     * not start is due again when the lease ends. False for one handed
     * over in memory (see store_event_claim), which the caller must start. */
    bool leased;
};

/* Says whether the caller can start an event for url now (its receiver
 * has room); see store_event_claim. */
typedef bool (*store_claim_room_fn)(void *ud, const char *url);

struct store_claim_room {
    store_claim_room_fn fn;
    void *ud;
    /* How many events due in the database fn refuses before the claim
     * stops looking at them (0 counts as 1). Every event handed over in
     * memory is asked. */
    size_t look_past;
};

/* Claims up to max due events: the oldest undelivered event of each job
 * whose next attempt time has come, marking them delivering and leasing
 * them until now + lease_ms. Per-job ordering follows from "oldest only".
 * SQLite serves one process, so it hands an event over in memory when its
 * step built the body and its job has no earlier undelivered event,
 * writing nothing here for it: the stored
 * event stays pending until its attempt is recorded, and a crash is
 * covered by store_recover.
 * room (may be NULL: every event has room) is asked about each candidate,
 * on the caller's thread, in order: first the events handed over in memory
 * (in queue order), then those due in the database (by next attempt time),
 * until room->look_past of the latter were refused. One without room is
 * not claimed and keeps its place for a later claim. The caller must count
 * a yes as taken until the claim returns; a yes is not a promise, as an
 * event that stopped being due meanwhile is dropped. Returned events are
 * leased false when handed over in memory, true when claimed from the
 * database. */
int store_event_claim(struct store *st, int64_t now, int64_t lease_ms, size_t max,
                      const struct store_claim_room *room, struct store_delivery **out, size_t *n);
void store_deliveries_free(struct store_delivery *d, size_t n);

/* Gives back an event that store_event_claim handed over in memory (leased
 * false) and that the caller could not start, for a reason of its own
 * (memory, curl): it is due in the database from due_at on, as a leased
 * event is when its lease ends, and no longer shows as delivering. No
 * attempt is counted. */
int store_event_unclaim(struct store *st, int64_t seq, int64_t due_at);

/* The outcome of one attempt. */
struct store_attempt {
    int64_t seq;
    int64_t started_at;
    int64_t duration_ms;
    int status_code;           /* HTTP status, 0 when no response */
    const char *error;         /* NULL on a response */
    enum delivery_status next; /* DELIVERED, RETRYING or FAILED */
    int64_t next_attempt_at;   /* when RETRYING */
};

/* Records attempts and moves their events on. Large batches are written in
 * several transactions, in order; on failure *recorded says how many of
 * the first attempts were recorded (the rest were not). */
int store_event_record(struct store *st, const struct store_attempt *a, size_t n, size_t *recorded);

/* Latest event's delivery state of a job, for GET. STORE_NOTFOUND when the
 * job has no event yet. Strings owned by the caller (free url). */
struct store_delivery_state {
    char *url;
    enum delivery_status status;
    int attempts;
    int response_code; /* 0 = none */
    int64_t delivered_at;
    int64_t next_attempt_at;
};
int store_delivery_state(struct store *st, const char *job_id, struct store_delivery_state *out);

/* Makes every event of the job due again now (new attempts, same ids).
 * STORE_STATE while one of its events is in flight or about to be (handed
 * to the dispatcher): an earlier event made due now could overtake it. */
int store_event_redeliver(struct store *st, int64_t project_id, const char *job_id, int64_t now,
                          size_t *count);

#endif
