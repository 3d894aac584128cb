/* The HTTP API: one file per resource (jobs.c, policy.c, filter.c, ops.c),
 * the shared request checks in common.c, and the route table in routes.c. */
#ifndef COLLIE_API_API_H
#define COLLIE_API_API_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http/server.h"
#include "pipeline/policy_cache.h"
#include "store/store.h"

struct idem_table;
struct scratch_pool;

/* One project may have this many requests waiting for the compiler thread
 * (or compiling), so that one key holder cannot take every place in its
 * queue; API_SLOW_PROJECTS is room for every project that can. */
#define API_SLOW_PER_PROJECT 4
#define API_SLOW_PROJECTS 64

/* Everything a handler may use; owned by main, outlives the HTTP server. */
struct app {
    const struct config *cfg;
    struct store *st;
    struct policy_cache *policies;
    struct idem_table *idem;
    struct scratch_pool *scratch;
    struct taskq *slow; /* compiles policies off the HTTP threads (util/taskq.h) */
    /* The requests each project has queued or running on slow (at most
     * API_SLOW_PER_PROJECT); guarded by slow_mu. */
    pthread_mutex_t slow_mu;
    struct api_slow_share {
        int64_t project;
        int n;
    } slow_share[API_SLOW_PROJECTS];
};

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* ---- shared checks (common.c): each replies itself on failure ---------- */

/* Authenticates the Bearer key; sets *project. false = 401 already sent. */
bool api_auth_or_reply(struct http_request *rq, int64_t *project);

/* Checks Content-Type and size and parses the body as a JSON object.
 * Returns a new reference, or NULL when a 4xx was already sent. */
json_t *api_json_body_or_reply(struct http_request *rq);

/* Hands rq, of project, to the compiler thread (app->slow): suspends it and
 * queues fn(ud), which must reply (also when called cancelled). true =
 * queued: fn owns ud now. false = not queued (shutting down, the queue is
 * full, or the project has API_SLOW_PER_PROJECT there already): a 503 was
 * sent and ud is still the caller's. */
bool api_queue_slow_or_reply(struct http_request *rq, int64_t project,
                             void (*fn)(void *ud, bool cancelled), void *ud);

/* Both of the above, for handlers that need nothing in between. */
json_t *api_auth_json_or_reply(struct http_request *rq, int64_t *project);

/* Reads an optional string member: *out = NULL when absent or null.
 * Replies 422 (naming the field) for a wrong type, an embedded NUL or more
 * than max_bytes; returns false then. */
bool api_string_or_reply(struct http_request *rq, json_t *obj, const char *name, size_t max_bytes,
                         const char **out, size_t *len);

/* Replies for a store failure: 503 when busy, 500 otherwise (no details). */
void api_reply_store_error(struct http_request *rq, int rc);

/* ---- API keys (keys.c) ---------------------------------------------------- */

#define API_KEY_PREFIX "clai_"
#define API_KEY_HEX 48 /* 24 random bytes */
#define API_KEY_LEN (sizeof(API_KEY_PREFIX) - 1 + API_KEY_HEX)

/* Creates a key for the project and writes it (NUL-terminated) into out,
 * which must hold API_KEY_LEN + 1 bytes. STORE_* code. */
int api_key_create(struct store *st, int64_t project_id, char *out);

/* SHA-256 of a well-formed key; false when key is malformed. */
bool api_key_hash(const char *key, uint8_t hash[32]);

/* Whether v, or any value inside it at any depth (jansson's parser bounds
 * the depth), satisfies pred. */
bool api_json_any(json_t *v, bool (*pred)(json_t *));

/* ---- idempotency (idempotency.c) ------------------------------------------ */

struct idem_table *idem_table_new(void);
void idem_table_free(struct idem_table *t);
enum idem_begin_result { IDEM_BEGUN, IDEM_IN_FLIGHT, IDEM_NOMEM };
/* Marks (project, key) as in flight: IDEM_BEGUN, or IDEM_IN_FLIGHT when it
 * already is, or IDEM_NOMEM (nothing marked). */
enum idem_begin_result idem_begin(struct idem_table *t, int64_t project, const char *key);
void idem_end(struct idem_table *t, int64_t project, const char *key);

/* ---- matcher scratch for HTTP threads (filter.c) ----------------------------- */

struct scratch_pool *scratch_pool_new(void);
void scratch_pool_free(struct scratch_pool *sp);

/* ---- handlers --------------------------------------------------------------- */

void api_jobs_create(struct http_request *rq);
void api_jobs_list(struct http_request *rq);
void api_jobs_get(struct http_request *rq);
void api_jobs_response(struct http_request *rq);
void api_jobs_redeliver(struct http_request *rq);
void api_policy_get(struct http_request *rq);
void api_policy_put(struct http_request *rq);
void api_filter(struct http_request *rq);
void api_healthz(struct http_request *rq);
void api_readyz(struct http_request *rq);
void api_metrics(struct http_request *rq);

#endif
