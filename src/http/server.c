/* libmicrohttpd glue: request contexts, body accumulation, routing, and the
 * suspend/resume handshake for replies made on other threads. */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"
#include "util/jsonfmt.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/utf8.h"

#define MAX_PARAMS 2
#define MAX_PARAM_LEN 128
#define MAX_EXTRA_HEADERS 4
/* Headers beyond this get a JSON 431. libmicrohttpd's own buffer (below) is
 * larger, so that our answer, not its HTML page, is what a client sees for
 * any header size up to that buffer. The buffer is no larger than that:
 * libmicrohttpd zeroes the whole of it after every request, and at 128 KiB
 * that memset was ~5% of the server's CPU under load. */
#define MAX_HEADER_BYTES (32 * 1024)
#define CONNECTION_MEMORY (64 * 1024)

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_route *routes;
    size_t nroutes;
    void *app;
    size_t max_body;
    int port;
    pthread_mutex_t mu; /* guards nsuspended, stopping */
    pthread_cond_t cv;
    int nsuspended; /* requests waiting for a reply from another thread */
    bool stopping;
    atomic_bool draining; /* http_server_drain: new requests get 503 */
};

enum rq_state {
    RQ_READING,   /* body still arriving */
    RQ_HANDLING,  /* handler running on an MHD thread */
    RQ_SUSPENDED, /* handler returned; reply will come from elsewhere */
    RQ_REPLIED,   /* a response is ready to queue */
    RQ_SENT,
};

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    int64_t received_ns; /* clock_mono_ns() when the headers were in */
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    bool headers_too_large;
    const struct http_route *route;
    char params[MAX_PARAMS][MAX_PARAM_LEN];
    pthread_mutex_t mu; /* guards state and resp across threads */
    enum rq_state state;
    bool suspended;      /* currently suspended, waiting for a reply */
    bool ever_suspended; /* the handler handed the request to another thread */
    unsigned status;
    struct MHD_Response *resp;
    char *extra[MAX_EXTRA_HEADERS][2];
    int nextra;
    void *data;
    void (*data_free)(void *);
};

/* ---- accessors ------------------------------------------------------------ */

void *http_request_app(struct http_request *rq)
{
    return rq->srv->app;
}

const char *http_request_method(struct http_request *rq)
{
    return rq->method;
}

const char *http_request_path(struct http_request *rq)
{
    return rq->path;
}

const char *http_request_header(struct http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(struct http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_count {
    const char *name;
    int n;
};

static enum MHD_Result count_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    (void)value;
    struct query_count *q = cls;
    q->n += strcmp(key, q->name) == 0;
    return MHD_YES;
}

int http_request_query_count(struct http_request *rq, const char *name)
{
    struct query_count q = {name, 0};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, count_query, &q);
    return q.n;
}

const char *http_request_param(struct http_request *rq, int i)
{
    return i >= 0 && i < MAX_PARAMS ? rq->params[i] : NULL;
}

const char *http_request_body(struct http_request *rq, size_t *len)
{
    *len = rq->body_len;
    return rq->body ? rq->body : "";
}

void http_request_set_data(struct http_request *rq, void *data, void (*free_fn)(void *))
{
    rq->data = data;
    rq->data_free = free_fn;
}

void *http_request_data(struct http_request *rq)
{
    return rq->data;
}

/* ---- replies ---------------------------------------------------------------- */

bool http_request_suspend(struct http_request *rq)
{
    struct http_server *srv = rq->srv;
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        return false;
    }
    srv->nsuspended++;
    pthread_mutex_unlock(&srv->mu);
    pthread_mutex_lock(&rq->mu);
    rq->suspended = true;
    rq->ever_suspended = true;
    MHD_suspend_connection(rq->conn);
    pthread_mutex_unlock(&rq->mu);
    return true;
}

void http_reply_add_header(struct http_request *rq, const char *name, const char *value)
{
    if (rq->nextra >= MAX_EXTRA_HEADERS)
        return;
    rq->extra[rq->nextra][0] = strdup(name);
    rq->extra[rq->nextra][1] = strdup(value);
    rq->nextra++;
}

static void reply_set(struct http_request *rq, unsigned status, struct MHD_Response *resp)
{
    pthread_mutex_lock(&rq->mu);
    if (rq->resp || !resp) { /* a second reply is a bug; keep the first */
        if (resp)
            MHD_destroy_response(resp);
        pthread_mutex_unlock(&rq->mu);
        return;
    }
    for (int i = 0; i < rq->nextra; i++) {
        if (rq->extra[i][0] && rq->extra[i][1])
            MHD_add_response_header(resp, rq->extra[i][0], rq->extra[i][1]);
    }
    rq->status = status;
    rq->resp = resp;
    /* Read now: once resumed, the request may be finished and freed on its
     * MHD thread before this function returns. */
    double seconds = (double)(clock_mono_ns() - rq->received_ns) / 1e9;
    bool resume = rq->suspended;
    rq->suspended = false;
    if (rq->state == RQ_SUSPENDED || rq->state == RQ_HANDLING)
        rq->state = RQ_REPLIED;
    /* Resuming under the lock: the access handler cannot run for this
     * connection until MHD processes the resume, and then sees REPLIED. */
    if (resume)
        MHD_resume_connection(rq->conn);
    pthread_mutex_unlock(&rq->mu);

    metrics_inc(METRIC_HTTP_REQUESTS);
    metrics_observe(METRIC_H_HTTP_REQUEST_SECONDS, seconds);
    if (status >= 500)
        metrics_inc(METRIC_HTTP_ERRORS_5XX);
    else if (status >= 400)
        metrics_inc(METRIC_HTTP_ERRORS_4XX);
}

void http_reply_raw(struct http_request *rq, unsigned status, const char *content_type,
                    const char *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (resp && content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    reply_set(rq, status, resp);
}

void http_reply_json(struct http_request *rq, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSONFMT_FLAGS) : NULL;
    json_decref(body);
    http_reply_json_text(rq, status, text);
}

void http_reply_json_text(struct http_request *rq, unsigned status, char *text)
{
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        http_reply_raw(rq, 500, "application/json; charset=utf-8", oom, sizeof(oom) - 1);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    reply_set(rq, status, resp);
}

void http_reply_error(struct http_request *rq, unsigned status, const char *code, const char *field,
                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Messages quote client input, and a cut at a byte limit can split a
     * character: jansson refuses invalid UTF-8, which made these a 500. */
    utf8_scrub(msg);
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (err && field)
        json_object_set_new(err, "field", json_string(field));
    http_reply_json(rq, status, json_pack("{s:o}", "error", err));
}

/* ---- routing ------------------------------------------------------------------ */

/* Matches path against pattern, capturing "{}" segments. */
static bool route_match(const char *pattern, const char *path, char params[][MAX_PARAM_LEN])
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len == 0 || np >= MAX_PARAMS)
                return false;
            /* A longer segment still matches (so that a wrong method is a
             * 405 and a missing key a 401), captured as "": no id is that
             * long, so the handler finds nothing by it. */
            if (params) {
                if (len >= MAX_PARAM_LEN)
                    len = 0;
                memcpy(params[np], s, len);
                params[np][len] = '\0';
            }
            np++;
            s += len;
            p += 2;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return false;
        }
    }
    return *p == '\0' && *s == '\0';
}

void http_reply_shutting_down(struct http_request *rq)
{
    http_reply_add_header(rq, "Retry-After", "1");
    http_reply_add_header(rq, MHD_HTTP_HEADER_CONNECTION, "close");
    http_reply_error(rq, 503, "unavailable", NULL, "the server is shutting down");
}

static void reply_too_large(struct http_request *rq)
{
    http_reply_error(rq, 413, "payload_too_large", NULL, "request body exceeds %zu bytes",
                     rq->srv->max_body);
}

static void dispatch(struct http_request *rq)
{
    struct http_server *srv = rq->srv;
    if (rq->headers_too_large) {
        http_reply_error(rq, 431, "invalid_request", NULL, "request headers exceed %d bytes",
                         MAX_HEADER_BYTES);
        return;
    }
    if (rq->too_large) {
        reply_too_large(rq);
        return;
    }
    if (atomic_load(&srv->draining)) {
        http_reply_shutting_down(rq);
        return;
    }
    char allow[128] = "";
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct http_route *r = &srv->routes[i];
        if (!route_match(r->pattern, rq->path, NULL))
            continue;
        /* HEAD is GET without the body (RFC 9110 9.3.2), which
         * libmicrohttpd leaves out itself. */
        bool head_as_get = strcmp(rq->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
        if (head_as_get || strcmp(r->method, rq->method) == 0) {
            route_match(r->pattern, rq->path, rq->params);
            rq->route = r;
            r->fn(rq);
            return;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s%s", used ? ", " : "", r->method,
                 strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
    }
    if (allow[0]) {
        http_reply_add_header(rq, MHD_HTTP_HEADER_ALLOW, allow);
        http_reply_error(rq, 405, "method_not_allowed", NULL,
                         "method %s is not allowed here; allowed: %s", rq->method, allow);
    } else {
        http_reply_error(rq, 404, "not_found", NULL, "no such endpoint: %s %s", rq->method,
                         rq->path);
    }
}

/* ---- MHD callbacks ---------------------------------------------------------------- */

static bool body_append(struct http_request *rq, const char *data, size_t len)
{
    if (rq->too_large)
        return true;
    if (rq->body_len + len > rq->srv->max_body) {
        rq->too_large = true;
        free(rq->body);
        rq->body = NULL;
        rq->body_len = rq->body_cap = 0;
        return true;
    }
    if (rq->body_len + len + 1 > rq->body_cap) {
        size_t cap = rq->body_cap ? rq->body_cap : 4096;
        while (cap < rq->body_len + len + 1)
            cap *= 2;
        char *b = realloc(rq->body, cap);
        if (!b)
            return false;
        rq->body = b;
        rq->body_cap = cap;
    }
    memcpy(rq->body + rq->body_len, data, len);
    rq->body_len += len;
    rq->body[rq->body_len] = '\0';
    return true;
}

/* Headers whose repetition would let two readers see two requests: the
 * framing (RFC 9112 makes a repeated Content-Length an error, and a proxy
 * that read the other one would find a second request in the body), the
 * host, and the ones the API acts on, where we would silently pick one. */
static const char *const once_headers[] = {
    MHD_HTTP_HEADER_CONTENT_LENGTH, MHD_HTTP_HEADER_TRANSFER_ENCODING, MHD_HTTP_HEADER_HOST,
    MHD_HTTP_HEADER_AUTHORIZATION,  MHD_HTTP_HEADER_CONTENT_TYPE,      "Idempotency-Key",
};
enum { ONCE_CL, ONCE_TE, ONCE_HOST, NONCE = sizeof(once_headers) / sizeof(once_headers[0]) };

/* What on_request learns from a request's headers before its body. */
struct header_scan {
    size_t bytes;
    int seen[NONCE]; /* how often each of once_headers came */
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct header_scan *h = cls;
    h->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    for (size_t i = 0; i < NONCE; i++)
        if (strcasecmp(key, once_headers[i]) == 0)
            h->seen[i]++;
    return MHD_YES;
}

/* Why a request's headers are refused (a 400), or NULL. */
static const char *headers_problem(const struct header_scan *h, const char *version, char *buf,
                                   size_t cap)
{
    for (size_t i = 0; i < NONCE; i++)
        if (h->seen[i] > 1) {
            snprintf(buf, cap, "more than one %s header", once_headers[i]);
            return buf;
        }
    if (h->seen[ONCE_CL] && h->seen[ONCE_TE])
        return "a request cannot have both Content-Length and Transfer-Encoding";
    if (!h->seen[ONCE_HOST] && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}

/* Hands the reply made for rq (state RQ_REPLIED) to libmicrohttpd. */
static enum MHD_Result queue_reply(struct MHD_Connection *conn, struct http_request *rq)
{
    pthread_mutex_lock(&rq->mu);
    struct MHD_Response *resp = rq->resp;
    rq->resp = NULL;
    rq->state = RQ_SENT;
    pthread_mutex_unlock(&rq->mu);
    enum MHD_Result r = MHD_queue_response(conn, rq->status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Refuses a request on its headers, before any of the body is read: a
 * declared length over the cap (why NULL), framing or headers that two
 * readers could take for different requests, or a transfer coding other
 * than chunked (libmicrohttpd would read such a body until the client
 * closed); why says what is wrong.
 * libmicrohttpd then sends no "100 Continue" and closes the connection
 * afterwards. Every other request is answered only once its body is
 * complete (DESIGN.md: replying early closes the connection), and so is a
 * chunked body that crosses the cap: libmicrohttpd takes no reply while a
 * body is arriving, so the rest is read and discarded. */
static enum MHD_Result refuse_on_headers(struct MHD_Connection *conn, struct http_request *rq,
                                         const char *why)
{
    pthread_mutex_lock(&rq->mu);
    rq->state = RQ_HANDLING;
    pthread_mutex_unlock(&rq->mu);
    if (why) {
        http_reply_add_header(rq, MHD_HTTP_HEADER_CONNECTION, "close");
        http_reply_error(rq, 400, "invalid_request", NULL, "%s", why);
    } else {
        reply_too_large(rq);
    }
    return queue_reply(conn, rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct http_request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        rq->srv = srv;
        rq->conn = conn;
        rq->method = method;
        rq->path = url;
        rq->received_ns = clock_mono_ns();
        pthread_mutex_init(&rq->mu, NULL);
        rq->state = RQ_READING;
        *con_cls = rq;
        /* A declared length over the cap is refused without reading it. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->max_body)
            rq->too_large = true;
        struct header_scan scan = {0};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &scan);
        if (scan.bytes > MAX_HEADER_BYTES) {
            rq->headers_too_large = true;
            return MHD_YES;
        }
        char why[160];
        const char *problem = headers_problem(&scan, version, why, sizeof(why));
        if (problem)
            return refuse_on_headers(conn, rq, problem);
        const char *te =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (te && strcasecmp(te, "chunked") != 0) {
            snprintf(why, sizeof(why),
                     "Transfer-Encoding '%.64s' is not supported: send the body with "
                     "Content-Length, or chunked",
                     te);
            return refuse_on_headers(conn, rq, why);
        }
        if (rq->too_large)
            return refuse_on_headers(conn, rq, NULL);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        bool ok = body_append(rq, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }

    pthread_mutex_lock(&rq->mu);
    enum rq_state st = rq->state;
    pthread_mutex_unlock(&rq->mu);
    if (st == RQ_READING) {
        pthread_mutex_lock(&rq->mu);
        rq->state = RQ_HANDLING;
        pthread_mutex_unlock(&rq->mu);
        dispatch(rq);
        pthread_mutex_lock(&rq->mu);
        if (rq->ever_suspended) {
            /* Even when the reply already came, the connection is suspended
             * now: MHD calls again once resumed, and the reply goes out then. */
            if (rq->state == RQ_HANDLING)
                rq->state = RQ_SUSPENDED;
            pthread_mutex_unlock(&rq->mu);
            return MHD_YES;
        }
        if (rq->state == RQ_HANDLING) {
            pthread_mutex_unlock(&rq->mu);
            log_error("http", "%s %s: handler made no reply", method, url);
            http_reply_error(rq, 500, "internal_error", NULL, "internal error");
            pthread_mutex_lock(&rq->mu);
        }
        st = rq->state;
        pthread_mutex_unlock(&rq->mu);
        if (st != RQ_REPLIED)
            return MHD_YES; /* suspended: MHD calls again after resume */
    }
    if (st == RQ_REPLIED)
        return queue_reply(conn, rq);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_request *rq = *con_cls;
    if (!rq)
        return;
    /* A reply made on another thread resumes the connection while holding
     * rq->mu; wait for it to let go before the request is freed. */
    pthread_mutex_lock(&rq->mu);
    pthread_mutex_unlock(&rq->mu);
    if (rq->ever_suspended) { /* resumed: MHD is done with it */
        struct http_server *srv = rq->srv;
        pthread_mutex_lock(&srv->mu);
        srv->nsuspended--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    }
    if (rq->resp)
        MHD_destroy_response(rq->resp);
    if (rq->data_free)
        rq->data_free(rq->data);
    for (int i = 0; i < rq->nextra; i++) {
        free(rq->extra[i][0]);
        free(rq->extra[i][1]);
    }
    free(rq->body);
    pthread_mutex_destroy(&rq->mu);
    free(rq);
    *con_cls = NULL;
}

/* URL decoding for the path and query arguments: libmicrohttpd's, except
 * that "%00" stays as written. A decoded NUL would end the C string there,
 * so "/v1/jobs/ID%00x" would be read as "/v1/jobs/ID" and "page=1%00x" as
 * "page=1"; kept literal, they are simply not a route or not a number. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
    char *out = uri;
    char *seg = uri;
    for (;;) {
        char *nul = strstr(seg, "%00");
        if (nul)
            *nul = '\0';
        size_t n = MHD_http_unescape(seg);
        memmove(out, seg, n);
        out += n;
        if (!nul)
            break;
        memcpy(out, "%00", 3);
        out += 3;
        seg = nul + 3;
    }
    *out = '\0';
    return (size_t)(out - uri);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("http", "%s", line);
}

struct http_server *http_server_start(const struct http_options *o, const struct http_route *routes,
                                      size_t nroutes, void *app, char *err, size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", o->host, gai_strerror(gai));
        return NULL;
    }
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->app = app;
    srv->max_body = o->max_body_bytes;

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads > 0 ? o->threads : 2),
        MHD_OPTION_CONNECTION_LIMIT, o->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_UNESCAPE_CALLBACK,
        on_unescape, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not permitted)", o->host,
                 o->port);
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->cv);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : o->port;
    return srv;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_drain(struct http_server *s)
{
    if (s)
        atomic_store(&s->draining, true);
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    /* libmicrohttpd must not be stopped with suspended connections: refuse
     * new suspensions, then wait for the outstanding replies to go out. */
    struct timespec deadline;
    clock_deadline(10000, &deadline);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    while (s->nsuspended > 0) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0) {
            log_error("http", "%d requests still waiting for a reply at shutdown", s->nsuspended);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
