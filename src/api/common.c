#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "util/clock.h"
#include "util/jsonparse.h"
#include "util/log.h"
#include "util/taskq.h"

/* Keys found recently, per HTTP thread (no lock). A lookup is a SQLite
 * read, ~4 µs of the ~50 µs a create costs on its thread, and a client
 * sends the same key every time. Only found keys are kept: an unknown key
 * always reaches the store. A key revoked by `collie key revoke` (another
 * process) stops working within AUTH_CACHE_TTL_MS. */
#define AUTH_CACHE_SLOTS 8
#define AUTH_CACHE_TTL_NS (INT64_C(1000) * 1000 * 1000)
static _Thread_local struct {
    uint8_t hash[32];
    int64_t project;
    int64_t until_ns;
} auth_cache[AUTH_CACHE_SLOTS];

static int key_lookup_cached(struct store *st, const uint8_t hash[32], int64_t *project)
{
    int64_t now = clock_mono_ns();
    unsigned slot = hash[0] % AUTH_CACHE_SLOTS; /* hash bytes are uniform */
    if (auth_cache[slot].until_ns > now && memcmp(auth_cache[slot].hash, hash, 32) == 0) {
        *project = auth_cache[slot].project;
        return STORE_OK;
    }
    int rc = store_key_lookup(st, hash, project);
    if (rc == STORE_OK) {
        memcpy(auth_cache[slot].hash, hash, 32);
        auth_cache[slot].project = *project;
        auth_cache[slot].until_ns = now + AUTH_CACHE_TTL_NS;
    }
    return rc;
}

/* A 401 says which scheme would do (RFC 9110: it must). */
static void reply_unauthorized(struct http_request *rq, const char *why)
{
    http_reply_add_header(rq, "WWW-Authenticate", "Bearer");
    http_reply_error(rq, 401, "unauthorized", NULL, "%s", why);
}

bool api_auth_or_reply(struct http_request *rq, int64_t *project)
{
    struct app *app = http_request_app(rq);
    const char *h = http_request_header(rq, "Authorization");
    if (!h) {
        reply_unauthorized(rq, "missing Authorization header (expected 'Bearer clai_…')");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        reply_unauthorized(rq, "Authorization must use the Bearer scheme with an API key");
        return false;
    }
    const char *key = h + 7;
    while (*key == ' ' || *key == '\t')
        key++;
    /* Whitespace around a header's value is not part of it (RFC 9110). */
    size_t len = strlen(key);
    while (len > 0 && (key[len - 1] == ' ' || key[len - 1] == '\t'))
        len--;
    char trimmed[API_KEY_LEN + 1] = "";
    if (len <= API_KEY_LEN) {
        memcpy(trimmed, key, len);
        trimmed[len] = '\0';
    }
    uint8_t hash[32];
    if (!api_key_hash(trimmed, hash)) {
        reply_unauthorized(rq, "malformed API key");
        return false;
    }
    /* Looking up by SHA-256 of the key means the comparison time depends on
     * the hash, not on the secret: nothing about the key leaks by timing. */
    int rc = key_lookup_cached(app->st, hash, project);
    if (rc == STORE_NOTFOUND) {
        reply_unauthorized(rq, "unknown or revoked API key");
        return false;
    }
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        return false;
    }
    return true;
}

/* application/json, with optional parameters; a charset must be UTF-8. */
static bool is_json_content_type(const char *ct)
{
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    const char *rest = ct + n;
    while (*rest == ' ')
        rest++;
    if (*rest == '\0')
        return true;
    if (*rest != ';')
        return false;
    const char *cs = strcasestr(rest, "charset=");
    if (!cs)
        return true;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
}

bool api_json_any(json_t *v, bool (*pred)(json_t *))
{
    if (pred(v))
        return true;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e)
        {
            if (api_json_any(e, pred))
                return true;
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e)
        {
            if (api_json_any(e, pred))
                return true;
        }
    }
    return false;
}

/* A number outside the 64-bit integers. */
static bool out_of_range(json_t *v)
{
    return json_is_real(v) && !(fabs(json_real_value(v)) < 0x1p63);
}

/* The first member of obj holding such a number; NULL if none does. */
static const char *member_out_of_range(json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (api_json_any(v, out_of_range))
            return key;
    }
    return NULL;
}

/* Answers a body jansson could not read. Valid JSON it refuses (an integer
 * beyond 64 bits, a NUL in a key) is a 422 like other values out of range,
 * naming the member where it can: parsed again with integers as reals,
 * the member holding one too large for an integer. */
static void reply_unparsed(struct http_request *rq, const char *body, size_t len,
                           const json_error_t *err)
{
    enum json_error_code code = json_error_code(err);
    if (code == json_error_numeric_overflow) {
        json_error_t again;
        json_t *v = json_loadb(body, len,
                               JSON_ALLOW_NUL | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &again);
        const char *field = json_is_object(v) ? member_out_of_range(v) : NULL;
        if (field)
            http_reply_error(rq, 422, "validation_error", field,
                             "%s holds a number out of range (line %d, column %d)", field,
                             err->line, err->column);
        else
            http_reply_error(rq, 422, "validation_error", NULL,
                             "a number is out of range (line %d, column %d)", err->line,
                             err->column);
        json_decref(v);
    } else if (code == json_error_null_byte_in_key) {
        http_reply_error(rq, 422, "validation_error", NULL,
                         "member names must not contain NUL characters (line %d, column %d)",
                         err->line, err->column);
    } else {
        http_reply_error(rq, 400, "invalid_json", NULL,
                         "body is not valid JSON: %s (line %d, column %d)", err->text, err->line,
                         err->column);
    }
}

json_t *api_json_body_or_reply(struct http_request *rq)
{
    const char *ct = http_request_header(rq, "Content-Type");
    if (!ct || !is_json_content_type(ct)) {
        http_reply_error(rq, 415, "unsupported_media_type", NULL,
                         "Content-Type must be application/json (got %s)", ct ? ct : "none");
        return NULL;
    }
    size_t len;
    const char *body = http_request_body(rq, &len);
    json_error_t err;
    /* NULs are allowed by the parser so that validation can name the field
     * holding one (a 422) instead of failing the whole body. Duplicate keys
     * are refused: two readers could otherwise see two different requests.
     * Any value is taken, so that a bare 5 is "not an object", not "not
     * JSON" (JSONPARSE_FLAGS). */
    json_t *v = jsonparse_load(body, len, &err);
    if (!v) {
        reply_unparsed(rq, body, len, &err);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_reply_error(rq, 400, "invalid_request", NULL, "body must be a JSON object");
        return NULL;
    }
    return v;
}

json_t *api_auth_json_or_reply(struct http_request *rq, int64_t *project)
{
    return api_auth_or_reply(rq, project) ? api_json_body_or_reply(rq) : NULL;
}

bool api_string_or_reply(struct http_request *rq, json_t *obj, const char *name, size_t max_bytes,
                         const char **out, size_t *len)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (len)
        *len = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        http_reply_error(rq, 422, "validation_error", name, "%s must be a string", name);
        return false;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (jsonparse_string_has_nul(v)) {
        http_reply_error(rq, 422, "validation_error", name, "%s must not contain NUL characters",
                         name);
        return false;
    }
    if (n > max_bytes) {
        http_reply_error(rq, 422, "validation_error", name, "%s is %zu bytes; the limit is %zu",
                         name, n, max_bytes);
        return false;
    }
    *out = s;
    if (len)
        *len = n;
    return true;
}

void api_reply_store_error(struct http_request *rq, int rc)
{
    if (rc == STORE_BUSY) {
        http_reply_add_header(rq, "Retry-After", "1");
        http_reply_error(rq, 503, "unavailable", NULL, "the server is busy; retry shortly");
        return;
    }
    log_error("api", "%s %s: store error: %s", http_request_method(rq), http_request_path(rq),
              store_strerror(rc));
    http_reply_error(rq, 500, "internal_error", NULL, "internal error");
}

/* Adds delta to project's count in app->slow_share; false (nothing
 * changed) when an increment would pass API_SLOW_PER_PROJECT or find no
 * room in the table. */
static bool slow_share_add(struct app *app, int64_t project, int delta)
{
    bool ok = false;
    pthread_mutex_lock(&app->slow_mu);
    struct api_slow_share *free_slot = NULL, *mine = NULL;
    for (int i = 0; i < API_SLOW_PROJECTS; i++) {
        struct api_slow_share *e = &app->slow_share[i];
        if (e->n > 0 && e->project == project)
            mine = e;
        else if (e->n == 0 && !free_slot)
            free_slot = e;
    }
    if (delta < 0 && mine) {
        mine->n += delta;
        ok = true;
    } else if (delta > 0 && (mine ? mine->n + delta <= API_SLOW_PER_PROJECT : free_slot != NULL)) {
        if (!mine) {
            mine = free_slot;
            *mine = (struct api_slow_share){.project = project};
        }
        mine->n += delta;
        ok = true;
    }
    pthread_mutex_unlock(&app->slow_mu);
    return ok;
}

/* A request queued by api_queue_slow_or_reply: its task, and the share it
 * gives back when the task has run. */
struct slow_task {
    struct app *app;
    int64_t project;
    void (*fn)(void *ud, bool cancelled);
    void *ud;
};

static void slow_task_run(void *ud, bool cancelled)
{
    struct slow_task t = *(struct slow_task *)ud;
    free(ud);
    t.fn(t.ud, cancelled);
    slow_share_add(t.app, t.project, -1);
}

bool api_queue_slow_or_reply(struct http_request *rq, int64_t project,
                             void (*fn)(void *ud, bool cancelled), void *ud)
{
    if (!http_request_suspend(rq)) {
        http_reply_shutting_down(rq);
        return false;
    }
    struct app *app = http_request_app(rq);
    const char *why = "too many policies are waiting to be compiled; retry shortly";
    struct slow_task *t = malloc(sizeof(*t));
    if (t && slow_share_add(app, project, 1)) {
        *t = (struct slow_task){app, project, fn, ud};
        if (taskq_submit(app->slow, project, slow_task_run, t))
            return true;
        slow_share_add(app, project, -1);
    } else if (t) {
        why = "this project already has the most policies waiting to be compiled that one "
              "project may have; retry shortly";
    }
    free(t);
    http_reply_add_header(rq, "Retry-After", "1");
    http_reply_error(rq, 503, "unavailable", NULL, "%s", why);
    return false;
}
