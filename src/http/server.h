/* The HTTP server: GNU libmicrohttpd in an epoll thread pool, a small
 * router, capped request bodies and deferred replies.
 *
 * A handler runs on an MHD thread once the whole body has arrived. It either
 * replies before returning (http_reply_*), or calls http_request_suspend and
 * replies later from any thread (e.g. the store's writer thread after a
 * group commit) — the connection holds no thread meanwhile. Every request
 * gets exactly one reply; a handler that returns without one and without
 * suspending gets a 500. */
#ifndef COLLIE_HTTP_SERVER_H
#define COLLIE_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct http_server;
struct http_request;

typedef void (*http_handler_fn)(struct http_request *rq);

/* pattern: a path whose segments are literals or "{}" (one non-empty
 * segment, readable with http_request_param). */
struct http_route {
    const char *method;
    const char *pattern;
    http_handler_fn fn;
};

struct http_options {
    const char *host;          /* listen address (numeric or name) */
    int port;                  /* 0 picks a free port */
    int threads;               /* MHD thread pool size */
    size_t max_body_bytes;     /* larger bodies get 413 */
    unsigned connection_limit; /* concurrent connections */
    unsigned timeout_s;        /* idle connection timeout */
};

/* Starts listening. routes must outlive the server; app is handed to
 * handlers via http_request_app. NULL on failure with err filled. */
struct http_server *http_server_start(const struct http_options *o, const struct http_route *routes,
                                      size_t nroutes, void *app, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);

/* Starts shutting down: from now on every request is answered 503
 * unavailable (Retry-After: 1) and its connection closed; requests already
 * handed to their handler still get their replies. Any thread; accepts
 * NULL. */
void http_server_drain(struct http_server *s);

/* Stops accepting and closes every connection, after waiting (up to 10 s)
 * for suspended requests to get their replies: keep the threads that
 * answer them running until this returns. Accepts NULL. */
void http_server_stop(struct http_server *s);

/* ---- request accessors (valid until the reply is sent) ------------------ */

void *http_request_app(struct http_request *rq);
const char *http_request_method(struct http_request *rq);
const char *http_request_path(struct http_request *rq);
/* Header value or NULL; names are case-insensitive. */
const char *http_request_header(struct http_request *rq, const char *name);
/* Query argument or NULL (the first, when it is given more than once). */
const char *http_request_query(struct http_request *rq, const char *name);
/* How many times the query gives name. */
int http_request_query_count(struct http_request *rq, const char *name);
/* The i-th "{}" segment of the matched route (0-based), or NULL. */
const char *http_request_param(struct http_request *rq, int i);
/* The raw body and its length (NUL-terminated for convenience). A body
 * over max_body_bytes never reaches a handler: the server answers 413. */
const char *http_request_body(struct http_request *rq, size_t *len);

/* Per-request application value, freed with free_fn (may be NULL) when the
 * request ends. */
void http_request_set_data(struct http_request *rq, void *data, void (*free_fn)(void *));
void *http_request_data(struct http_request *rq);

/* ---- replies ------------------------------------------------------------ */

/* Detaches the connection from its thread until a reply is made. Call
 * before handing the request to another thread. Returns false when the
 * server is shutting down: the caller must then reply at once itself. */
bool http_request_suspend(struct http_request *rq);

/* Replies with a JSON body (serialised compactly; the reference is stolen).
 * Thread-safe after http_request_suspend. */
void http_reply_json(struct http_request *rq, unsigned status, json_t *body);

/* Replies {"error":{"code","message","field"?}}; field may be NULL. */
void http_reply_error(struct http_request *rq, unsigned status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 503 unavailable, "the server is shutting down", with Retry-After: 1 and
 * the connection closed: every answer a request gets because the server
 * is stopping. */
void http_reply_shutting_down(struct http_request *rq);

/* Replies with JSON text already serialised (ownership of the malloc'ed
 * text passes to the reply; NULL answers 500). Thread-safe after
 * http_request_suspend; cheap enough for the store's writer thread. */
void http_reply_json_text(struct http_request *rq, unsigned status, char *text);

/* Replies with an arbitrary body (copied). */
void http_reply_raw(struct http_request *rq, unsigned status, const char *content_type,
                    const char *data, size_t len);

/* Adds a header to the reply about to be made (call before http_reply_*);
 * copied. */
void http_reply_add_header(struct http_request *rq, const char *name, const char *value);

#endif
