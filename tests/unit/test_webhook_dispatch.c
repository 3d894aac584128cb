/* The dispatcher end to end, in process: the real SQLite store in a temp
 * directory, the real curl loop, and a small HTTP/1.1 receiver on 127.0.0.1
 * (plain sockets, one thread per connection, keep-alive) that answers each
 * path according to a plan and records what it got. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "curl_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "job/job.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/ids.h"
#include "webhook/address.h"
#include "webhook/dispatch.h"
#include "webhook/sign.h"

/* ---- the receiver --------------------------------------------------------- */

#define MAX_RECS 256
#define MAX_CONNS 128
#define HDR_MAX 8192

struct rec {
    char path[128];
    char id[IDS_MAX_LEN];
    char ts[32];
    char sig[256];
    char ctype[64];
    char agent[64];
    char *body;
    size_t body_len;
    int answered;
};

/* A plan answers the n-th request (0-based) to a path. */
struct plan {
    const char *prefix;
    int codes[8]; /* the last non-zero entry repeats */
    int delay_ms; /* before answering */
    size_t body_bytes;
    bool cut_headers; /* close the connection in the middle of the headers */
};

struct rx {
    int fd;
    int port;
    pthread_t acceptor;
    atomic_bool stop;
    pthread_mutex_t mu;
    struct rec recs[MAX_RECS];
    size_t nrecs;
    pthread_t conn_threads[MAX_CONNS];
    size_t nconns;
    const struct plan *plans;
    size_t nplans;
};

static const char *hdr_find(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    out[0] = '\0';
    return NULL;
}

static int answer_for(struct rx *r, const char *path, size_t n, const struct plan **pp)
{
    for (size_t i = 0; i < r->nplans; i++) {
        const struct plan *p = &r->plans[i];
        if (strncmp(path, p->prefix, strlen(p->prefix)) == 0) {
            *pp = p;
            size_t k = 0;
            while (k < n && k + 1 < 8 && p->codes[k + 1])
                k++;
            return p->codes[k];
        }
    }
    *pp = NULL;
    return 200;
}

static bool read_more(int fd, char *buf, size_t *len, size_t cap, struct rx *r)
{
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 50);
        if (pr == 0)
            continue;
        if (pr < 0 || *len >= cap)
            return false;
        ssize_t got = read(fd, buf + *len, cap - *len);
        if (got <= 0)
            return false;
        *len += (size_t)got;
        return true;
    }
    return false;
}

struct conn_arg {
    struct rx *r;
    int fd;
};

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct rx *r = ca->r;
    int fd = ca->fd;
    free(ca);
    size_t cap = HDR_MAX + (1 << 20);
    char *buf = malloc(cap);
    size_t len = 0;
    while (buf) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4)))
            if (!read_more(fd, buf, &len, cap, r))
                goto out;
        size_t head_len = (size_t)(end - buf) + 4;
        char head[HDR_MAX], tmp[32];
        size_t hl = head_len < sizeof(head) ? head_len : sizeof(head) - 1;
        memcpy(head, buf, hl);
        head[hl] = '\0';
        size_t body_len =
            (size_t)atol(hdr_find(head, "content-length", tmp, sizeof(tmp)) ? tmp : "0");
        while (len < head_len + body_len)
            if (!read_more(fd, buf, &len, cap, r))
                goto out;

        struct rec rc;
        memset(&rc, 0, sizeof(rc));
        sscanf(head, "POST %127s", rc.path);
        hdr_find(head, "webhook-id", rc.id, sizeof(rc.id));
        hdr_find(head, "webhook-timestamp", rc.ts, sizeof(rc.ts));
        hdr_find(head, "webhook-signature", rc.sig, sizeof(rc.sig));
        hdr_find(head, "content-type", rc.ctype, sizeof(rc.ctype));
        hdr_find(head, "user-agent", rc.agent, sizeof(rc.agent));
        rc.body = malloc(body_len + 1);
        if (rc.body) {
            memcpy(rc.body, buf + head_len, body_len);
            rc.body[body_len] = '\0';
        }
        rc.body_len = body_len;

        const struct plan *p;
        pthread_mutex_lock(&r->mu);
        size_t n = 0;
        for (size_t i = 0; i < r->nrecs; i++)
            n += strcmp(r->recs[i].path, rc.path) == 0;
        rc.answered = answer_for(r, rc.path, n, &p);
        if (r->nrecs < MAX_RECS)
            r->recs[r->nrecs++] = rc;
        else
            free(rc.body);
        pthread_mutex_unlock(&r->mu);

        /* Sleep in slices so that rx_stop does not wait for a slow plan. */
        for (int slept = 0; p && slept < p->delay_ms && !atomic_load(&r->stop); slept += 10)
            usleep(10000);
        if (p && p->cut_headers) {
            static const char cut[] = "HTTP/1.1 200 OK\r\ncontent-le";
            send(fd, cut, sizeof(cut) - 1, MSG_NOSIGNAL);
            goto out;
        }
        size_t extra = p ? p->body_bytes : 0;
        char resp[256];
        int rl =
            snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\ncontent-length: %zu\r\n%s\r\n",
                     rc.answered, extra + 2, rc.answered == 302 ? "location: /elsewhere\r\n" : "");
        if (send(fd, resp, (size_t)rl, MSG_NOSIGNAL) < 0)
            goto out;
        char chunk[4096];
        memset(chunk, 'x', sizeof(chunk));
        for (size_t sent = 0; sent < extra;) {
            size_t k = extra - sent < sizeof(chunk) ? extra - sent : sizeof(chunk);
            ssize_t w = send(fd, chunk, k, MSG_NOSIGNAL);
            if (w <= 0)
                goto out; /* the client hung up: expected past its cap */
            sent += (size_t)w;
        }
        if (send(fd, "ok", 2, MSG_NOSIGNAL) < 0)
            goto out;
        memmove(buf, buf + head_len + body_len, len - head_len - body_len);
        len -= head_len + body_len;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct rx *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        pthread_mutex_lock(&r->mu);
        if (r->nconns == MAX_CONNS) {
            pthread_mutex_unlock(&r->mu);
            close(c);
            continue;
        }
        struct conn_arg *ca = malloc(sizeof(*ca));
        if (ca) {
            ca->r = r;
            ca->fd = c;
        }
        if (!ca || pthread_create(&r->conn_threads[r->nconns], NULL, conn_main, ca) != 0) {
            free(ca);
            close(c);
        } else {
            r->nconns++;
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static struct rx *rx_start(const struct plan *plans, size_t nplans)
{
    struct rx *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    pthread_mutex_init(&r->mu, NULL);
    r->plans = plans;
    r->nplans = nplans;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(r->fd, 128), 0);
    socklen_t al = sizeof(a);
    getsockname(r->fd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->acceptor, NULL, acceptor_main, r), 0);
    return r;
}

static void rx_stop(struct rx *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->acceptor, NULL);
    for (size_t i = 0; i < r->nconns; i++)
        pthread_join(r->conn_threads[i], NULL);
    close(r->fd);
    for (size_t i = 0; i < r->nrecs; i++)
        free(r->recs[i].body);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Copies the records for paths starting with prefix into out. */
static size_t rx_on(struct rx *r, const char *prefix, struct rec *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nrecs && n < cap; i++)
        if (strncmp(r->recs[i].path, prefix, strlen(prefix)) == 0)
            out[n++] = r->recs[i]; /* shallow: bodies stay owned by rx */
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- the store and the dispatcher ---------------------------------------- */

struct env {
    char dir[64];
    char db[96];
    struct store *st;
    struct webhook_dispatcher *d;
    int64_t project;
    struct rx *rx;
    pthread_mutex_t hook_mu; /* makes detaching the wake hook a barrier */
    struct webhook_dispatcher *hook_target;
};

static void on_events_due(void *ud)
{
    struct env *e = ud;
    pthread_mutex_lock(&e->hook_mu);
    webhook_dispatcher_wake(e->hook_target);
    pthread_mutex_unlock(&e->hook_mu);
}

typedef int (*addr_check_fn)(const struct sockaddr *, size_t, char *, size_t);

static void env_start_dispatcher(struct env *e, const struct webhook_options *o)
{
    e->d = webhook_dispatcher_start(e->st, o);
    assert_non_null(e->d);
    e->hook_target = e->d;
    store_set_wakeups(e->st, NULL, on_events_due, e);
}

/* With o NULL the dispatcher is not started (env_start_dispatcher). */
static struct env *env_start_opts(const struct plan *plans, size_t nplans,
                                  const struct webhook_options *o)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    pthread_mutex_init(&e->hook_mu, NULL);
    snprintf(e->dir, sizeof(e->dir), "/tmp/collie-whtest-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->db, sizeof(e->db), "%s/t.db", e->dir);
    char err[256];
    struct store_options so = {.read_connections = 2, .max_batch = 64, .synchronous_full = false};
    e->st = store_open(e->db, &so, err, sizeof(err));
    if (!e->st)
        fail_msg("store_open: %s", err);
    assert_int_equal(store_project_create(e->st, "p", &e->project), STORE_OK);
    e->rx = rx_start(plans, nplans);
    if (o)
        env_start_dispatcher(e, o);
    return e;
}

static struct env *env_start_checked(const struct plan *plans, size_t nplans, const char *schedule,
                                     bool allow_private, int64_t timeout_ms, size_t max_response,
                                     addr_check_fn check)
{
    struct webhook_options o;
    webhook_options_default(&o);
    assert_int_equal(webhook_schedule_parse(schedule, &o.schedule), 0);
    o.allow_http = o.allow_private = allow_private; /* as --dev sets both */
    o.timeout_ms = timeout_ms;
    o.max_response_bytes = max_response;
    o.addr_check = check;
    return env_start_opts(plans, nplans, &o);
}

static struct env *env_start(const struct plan *plans, size_t nplans, const char *schedule,
                             bool allow_private, int64_t timeout_ms, size_t max_response)
{
    return env_start_checked(plans, nplans, schedule, allow_private, timeout_ms, max_response,
                             NULL);
}

/* Detaches the wake hook, then stops the dispatcher: the order main.c must
 * follow too, or the store's writer may wake a freed dispatcher. */
static void env_stop_dispatcher(struct env *e)
{
    pthread_mutex_lock(&e->hook_mu);
    e->hook_target = NULL;
    pthread_mutex_unlock(&e->hook_mu);
    webhook_dispatcher_stop(e->d);
    e->d = NULL;
}

static void env_stop(struct env *e)
{
    env_stop_dispatcher(e);
    store_set_wakeups(e->st, NULL, NULL, NULL);
    store_close(e->st);
    rx_stop(e->rx);
    char path[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", e->db, suffix[i]);
        unlink(path);
    }
    rmdir(e->dir);
    pthread_mutex_destroy(&e->hook_mu);
    free(e);
}

/* Creates a job posting to url and drives it through the store so that it
 * has n_events (1 or 2) events, in order. Writes the job id and secret.
 * With held, each step hands its event body over, as the pipeline does,
 * so that the store can pass the event to the dispatcher in memory. */
static void make_job_as(struct env *e, const char *url, int n_events, bool held, char *job_id,
                        char *secret)
{
    struct job j;
    memset(&j, 0, sizeof(j));
    int64_t now = clock_now_ms();
    assert_int_equal(ids_new(j.id, sizeof(j.id), "job_", now), 0);
    assert_int_equal(webhook_secret_new(secret, WEBHOOK_SECRET_LEN), 0);
    j.project_id = e->project;
    j.status = JOB_PENDING;
    j.mode = n_events == 2 ? JOB_MODE_COMBINED : JOB_MODE_LEGACY;
    j.message = j.mode == JOB_MODE_LEGACY ? "hello" : NULL;
    j.message_input = j.mode == JOB_MODE_COMBINED ? "in" : NULL;
    j.message_output = j.mode == JOB_MODE_COMBINED ? "out" : NULL;
    j.webhook_url = (char *)url;
    j.webhook_secret = secret;
    j.created_at = now;
    j.expires_at = now + 3600 * 1000;
    assert_int_equal(store_job_create(e->st, &j), STORE_OK);
    strcpy(job_id, j.id);

    for (int k = 0; k < n_events; k++) {
        struct job *claimed = NULL;
        size_t n = 0;
        assert_int_equal(store_work_claim(e->st, clock_now_ms(), 60000, 8, &claimed, &n), STORE_OK);
        assert_int_equal(n, 1);
        bool inbound = claimed[0].status == JOB_PROCESSING_INBOUND;
        char event_id[IDS_MAX_LEN];
        assert_int_equal(ids_new(event_id, sizeof(event_id), "msg_", clock_now_ms()), 0);
        struct store_step_result r = {
            .job_id = job_id,
            .from = claimed[0].status,
            .to = inbound ? job_status_after_inbound(claimed[0].mode, false)
                          : job_status_after_outbound(claimed[0].mode),
            .step = inbound ? JOB_STEP_INBOUND : JOB_STEP_OUTBOUND,
            .filtered = "f",
            .result_json = "{}",
            .event_type = inbound ? JOB_EVENT_INBOUND_COMPLETE : JOB_EVENT_OUTBOUND_COMPLETE,
            .event_id = event_id,
            .now = clock_now_ms(),
            .event_body = held ? "{\"held\":true}" : NULL,
            .webhook_url = held ? url : NULL,
            .webhook_secret = held ? secret : NULL,
        };
        assert_int_equal(store_work_complete(e->st, &r, 1), STORE_OK);
        job_clear(&claimed[0]);
        free(claimed);
    }
}

static void make_job(struct env *e, const char *url, int n_events, char *job_id, char *secret)
{
    make_job_as(e, url, n_events, false, job_id, secret);
}

/* Waits (up to 10 s) until the job's latest event reaches status want. */
static struct store_delivery_state wait_state(struct env *e, const char *job_id,
                                              enum delivery_status want, int want_attempts)
{
    struct store_delivery_state s;
    memset(&s, 0, sizeof(s));
    int64_t deadline = clock_now_ms() + 10000;
    for (;;) {
        int rc = store_delivery_state(e->st, job_id, &s);
        if (rc == STORE_OK && s.status == want &&
            (want_attempts < 0 || s.attempts == want_attempts))
            return s;
        if (clock_now_ms() > deadline)
            fail_msg("%s: delivery state %s/%d, want %s/%d", job_id,
                     rc == STORE_OK ? delivery_status_name(s.status) : "none",
                     rc == STORE_OK ? s.attempts : -1, delivery_status_name(want), want_attempts);
        free(s.url);
        memset(&s, 0, sizeof(s));
        usleep(20000);
    }
}

static void url_for(struct env *e, const char *path, char *out)
{
    snprintf(out, 256, "http://127.0.0.1:%d%s", e->rx->port, path);
}

/* Makes a one-event job for url and waits for its first attempt to be
 * delivered with a 200. */
static void expect_delivered_first_time(struct env *e, const char *url)
{
    char job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_DELIVERED, 1);
    assert_int_equal(s.response_code, 200);
    free(s.url);
}

#define ATTEMPT_ERR_MAX 512

/* Reads the recorded attempt errors of the job's events, oldest first,
 * straight from the database (the store has no reader for them). */
static size_t attempt_errors(struct env *e, const char *job_id, char out[][ATTEMPT_ERR_MAX],
                             size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    size_t n = 0;
    assert_int_equal(sqlite3_open_v2(e->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT coalesce(a.error, '') FROM attempts a JOIN events "
                                        "ev ON ev.seq = a.event_seq WHERE ev.job_id = ?1 "
                                        "ORDER BY a.id",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, job_id, -1, SQLITE_STATIC);
    while (n < cap && sqlite3_step(q) == SQLITE_ROW)
        snprintf(out[n++], ATTEMPT_ERR_MAX, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static size_t rx_connections(struct rx *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->nconns;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_delivers_signed_event(void **state)
{
    (void)state;
    struct env *e = env_start(NULL, 0, "50ms,50ms,50ms", true, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/ok", url);
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_DELIVERED, 1);
    assert_int_equal(s.response_code, 200);
    assert_true(s.delivered_at > 0);
    free(s.url);

    struct rec recs[4];
    assert_int_equal(rx_on(e->rx, "/ok", recs, 4), 1);
    assert_int_equal(strncmp(recs[0].id, "msg_", 4), 0);
    assert_string_equal(recs[0].ctype, "application/json");
    assert_string_equal(recs[0].agent, "Collie-Webhooks/1");
    int64_t ts = atoll(recs[0].ts);
    assert_true(llabs(ts - clock_now_ms() / 1000) < 60);
    assert_non_null(strstr(recs[0].body, job_id));
    assert_int_equal(
        webhook_verify(secret, recs[0].id, ts, recs[0].body, recs[0].body_len, recs[0].sig), 1);
    env_stop(e);
}

static void test_retries_then_delivers(void **state)
{
    (void)state;
    const struct plan plans[] = {{.prefix = "/flaky", .codes = {500, 429, 200}}};
    struct env *e = env_start(plans, 1, "50ms,50ms,50ms", true, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/flaky", url);
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_DELIVERED, 3);
    assert_int_equal(s.response_code, 200);
    free(s.url);
    struct rec recs[8];
    assert_int_equal(rx_on(e->rx, "/flaky", recs, 8), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(recs[i].id, recs[0].id); /* stable across retries */
        assert_int_equal(webhook_verify(secret, recs[i].id, atoll(recs[i].ts), recs[i].body,
                                        recs[i].body_len, recs[i].sig),
                         1);
    }
    env_stop(e);
}

static void test_gone_exhaustion_redirect(void **state)
{
    (void)state;
    const struct plan plans[] = {
        {.prefix = "/gone", .codes = {410}},
        {.prefix = "/down", .codes = {500}},
        {.prefix = "/moved", .codes = {302}},
    };
    struct env *e = env_start(plans, 3, "20ms,20ms,20ms", true, 2000, 65536);
    char url[256], gone[IDS_MAX_LEN], down[IDS_MAX_LEN], moved[IDS_MAX_LEN],
        secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/gone", url);
    make_job(e, url, 1, gone, secret);
    url_for(e, "/down", url);
    make_job(e, url, 1, down, secret);
    url_for(e, "/moved", url);
    make_job(e, url, 1, moved, secret);

    struct store_delivery_state s = wait_state(e, gone, DELIVERY_FAILED, 1);
    assert_int_equal(s.response_code, 410);
    free(s.url);
    s = wait_state(e, down, DELIVERY_FAILED, 4); /* 1 + schedule length */
    assert_int_equal(s.response_code, 500);
    free(s.url);
    s = wait_state(e, moved, DELIVERY_FAILED, 4);
    assert_int_equal(s.response_code, 302);
    free(s.url);
    usleep(200000); /* nothing more arrives */
    struct rec recs[16];
    assert_int_equal(rx_on(e->rx, "/gone", recs, 16), 1);
    assert_int_equal(rx_on(e->rx, "/down", recs, 16), 4);
    assert_int_equal(rx_on(e->rx, "/moved", recs, 16), 4);
    assert_int_equal(rx_on(e->rx, "/elsewhere", recs, 16), 0);
    env_stop(e);
}

/* A receiver that closes the connection inside its headers has not
 * answered: curl reports the status line's code and no error, and that
 * used to count as delivered. */
static void test_cut_headers_are_no_response(void **state)
{
    (void)state;
    const struct plan plans[] = {{.prefix = "/cut", .codes = {200}, .cut_headers = true}};
    struct env *e = env_start(plans, 1, "20ms,20ms,20ms", true, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/cut", url);
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_FAILED, 4);
    assert_int_equal(s.response_code, 0);
    free(s.url);
    struct rec recs[16];
    assert_true(rx_on(e->rx, "/cut", recs, 16) >= 4);
    env_stop(e);
}

static void test_per_job_order(void **state)
{
    (void)state;
    /* The first event fails twice; the second must wait for it. */
    const struct plan plans[] = {{.prefix = "/order", .codes = {500, 500, 200}}};
    struct env *e = env_start(plans, 1, "50ms,50ms,50ms", true, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/order", url);
    make_job(e, url, 2, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_DELIVERED, 1);
    free(s.url);
    struct rec recs[8];
    assert_int_equal(rx_on(e->rx, "/order", recs, 8), 4);
    for (int i = 0; i < 3; i++)
        assert_non_null(strstr(recs[i].body, JOB_EVENT_INBOUND_COMPLETE));
    assert_non_null(strstr(recs[3].body, JOB_EVENT_OUTBOUND_COMPLETE));
    assert_string_not_equal(recs[3].id, recs[0].id);
    env_stop(e);
}

static void test_timeout_and_unreachable(void **state)
{
    (void)state;
    const struct plan plans[] = {{.prefix = "/slow", .codes = {200}, .delay_ms = 1500}};
    struct env *e = env_start(plans, 1, "20ms", true, 300, 65536);
    char url[256], slow[IDS_MAX_LEN], nobody[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/slow", url);
    make_job(e, url, 1, slow, secret);
    make_job(e, "http://127.0.0.1:1/nobody", 1, nobody, secret);
    struct store_delivery_state s = wait_state(e, slow, DELIVERY_FAILED, 2);
    assert_int_equal(s.response_code, 0); /* no usable response */
    free(s.url);
    s = wait_state(e, nobody, DELIVERY_FAILED, 2);
    assert_int_equal(s.response_code, 0);
    free(s.url);
    env_stop(e);
}

static void test_response_cap(void **state)
{
    (void)state;
    /* A 2xx with a body far past the cap still counts as delivered. */
    const struct plan plans[] = {{.prefix = "/big", .codes = {200}, .body_bytes = 1 << 20}};
    struct env *e = env_start(plans, 1, "20ms", true, 2000, 1024);
    char url[256];
    url_for(e, "/big", url);
    expect_delivered_first_time(e, url);
    env_stop(e);
}

static void test_https_only_without_allow_private(void **state)
{
    (void)state;
    struct env *e = env_start(NULL, 0, "20ms,20ms", false, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/plain", url);
    make_job(e, url, 1, job_id, secret);
    /* Refused without a request, once: no retry can fix the scheme. */
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_FAILED, 1);
    assert_int_equal(s.response_code, 0);
    free(s.url);
    struct rec recs[2];
    assert_int_equal(rx_on(e->rx, "/plain", recs, 2), 0);
    env_stop(e);
}

static void test_refuses_literal_private_targets(void **state)
{
    (void)state;
    /* Literal refused hosts fail at once: no DNS answer can change them. */
    struct env *e = env_start(NULL, 0, "20ms,20ms", false, 2000, 65536);
    const struct {
        const char *fmt;
        const char *reason;
    } cases[] = {
        {"https://127.0.0.1:%d/lit", "refused: 127.0.0.1 is a loopback address"},
        {"https://2130706433:%d/dec", "refused: 127.0.0.1 is a loopback address"},
        {"https://[::ffff:127.0.0.1]:%d/mapped",
         "refused: ::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address"},
        {"https://169.254.169.254:%d/latest/meta-data",
         "refused: 169.254.169.254 is a cloud metadata address"},
        {"https://[::1]:%d/v6", "refused: ::1 is a loopback address"},
    };
    enum { NC = sizeof(cases) / sizeof(cases[0]) };
    char url[256], ids[NC][IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    for (size_t i = 0; i < NC; i++) {
        snprintf(url, sizeof(url), cases[i].fmt, e->rx->port);
        make_job(e, url, 1, ids[i], secret);
    }
    for (size_t i = 0; i < NC; i++) {
        struct store_delivery_state s = wait_state(e, ids[i], DELIVERY_FAILED, 1);
        assert_int_equal(s.response_code, 0);
        free(s.url);
        char errs[4][ATTEMPT_ERR_MAX];
        assert_int_equal(attempt_errors(e, ids[i], errs, 4), 1);
        assert_string_equal(errs[0], cases[i].reason);
    }
    usleep(100000);
    assert_int_equal(rx_connections(e->rx), 0); /* not even a TCP handshake */
    env_stop(e);
}

static void test_refuses_name_resolving_to_loopback(void **state)
{
    (void)state;
    /* "localhost" is a name: curl resolves it (to 127.0.0.1 and ::1), and
     * the connect-time check refuses each address before any socket exists.
     * A refusal after resolving is retried per the schedule. */
    struct env *e = env_start(NULL, 0, "20ms,20ms", false, 2000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    snprintf(url, sizeof(url), "https://localhost:%d/name", e->rx->port);
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_FAILED, 3);
    assert_int_equal(s.response_code, 0);
    free(s.url);
    char errs[4][ATTEMPT_ERR_MAX];
    assert_int_equal(attempt_errors(e, job_id, errs, 4), 3);
    for (int i = 0; i < 3; i++) {
        if (strncmp(errs[i], "refused: webhook host resolves to a forbidden address: ",
                    strlen("refused: webhook host resolves to a forbidden address: ")) != 0 ||
            !strstr(errs[i], "is a loopback address"))
            fail_msg("attempt %d error: %s", i + 1, errs[i]);
    }
    usleep(100000);
    assert_int_equal(rx_connections(e->rx), 0);
    struct rec recs[2];
    assert_int_equal(rx_on(e->rx, "/name", recs, 2), 0);
    env_stop(e);
}

/* Pretends 127.0.0.1 is public (tests have no public address to deliver
 * to) and applies the real policy to everything else. */
static int check_all_but_127_0_0_1(const struct sockaddr *sa, size_t len, char *reason, size_t cap)
{
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        if (in.sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            return 0;
    }
    return webhook_addr_check(sa, len, reason, cap);
}

static void test_connects_to_allowed_address(void **state)
{
    (void)state;
    /* localhost resolves to ::1 (refused) and 127.0.0.1 (allowed here): the
     * socket for the allowed one is opened and connected. The receiver
     * speaks plain HTTP, so the TLS handshake then stalls until the timeout;
     * what counts is that a connection arrived and the error is not a
     * refusal. The literal 127.0.0.1 shows that the create-time style
     * pre-check applies the same policy as the socket. */
    struct env *e = env_start_checked(NULL, 0, "20ms", false, 300, 65536, check_all_but_127_0_0_1);
    char url[256], ids[2][IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    snprintf(url, sizeof(url), "https://localhost:%d/tls", e->rx->port);
    make_job(e, url, 1, ids[0], secret);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/tls-literal", e->rx->port);
    make_job(e, url, 1, ids[1], secret);
    for (int j = 0; j < 2; j++) {
        struct store_delivery_state s = wait_state(e, ids[j], DELIVERY_FAILED, 2);
        free(s.url);
        char errs[4][ATTEMPT_ERR_MAX];
        assert_int_equal(attempt_errors(e, ids[j], errs, 4), 2);
        for (int i = 0; i < 2; i++)
            if (strstr(errs[i], "refused"))
                fail_msg("job %d attempt %d error: %s", j, i + 1, errs[i]);
    }
    assert_true(rx_connections(e->rx) >= 2);
    env_stop(e);
}

/* http:// delivery is its own switch (--allow-http-webhooks), not a part
 * of allowing private targets: with it alone, an http:// URL to an allowed
 * address is delivered. Before, the API accepted such a URL and the
 * dispatcher refused it at its first attempt. */
static void test_allow_http_alone_delivers_http(void **state)
{
    (void)state;
    struct webhook_options o;
    webhook_options_default(&o);
    assert_int_equal(webhook_schedule_parse("20ms", &o.schedule), 0);
    o.allow_http = true;
    o.addr_check = check_all_but_127_0_0_1;
    struct env *e = env_start_opts(NULL, 0, &o);
    char url[256];
    url_for(e, "/http-only", url);
    expect_delivered_first_time(e, url);
    env_stop(e);
}

static void test_allow_private_delivers_to_localhost(void **state)
{
    (void)state;
    struct env *e = env_start(NULL, 0, "20ms", true, 2000, 65536);
    char url[256];
    snprintf(url, sizeof(url), "http://localhost:%d/dev", e->rx->port);
    expect_delivered_first_time(e, url);
    env_stop(e);
}

static void test_many_in_flight(void **state)
{
    (void)state;
    struct env *e = env_start(NULL, 0, "50ms", true, 5000, 65536);
    enum { SEQ = 10, N = 40 };
    char url[256], ids[N][IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    /* One after another: keep-alive reuses one connection. */
    for (int i = 0; i < SEQ; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/seq/%d", e->rx->port, i);
        make_job(e, url, 1, ids[i], secret);
        struct store_delivery_state s = wait_state(e, ids[i], DELIVERY_DELIVERED, 1);
        free(s.url);
    }
    pthread_mutex_lock(&e->rx->mu);
    size_t conns = e->rx->nconns;
    pthread_mutex_unlock(&e->rx->mu);
    assert_true(conns <= 2);
    /* A burst: all delivered, in parallel. */
    for (int i = 0; i < N; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/many/%d", e->rx->port, i);
        make_job(e, url, 1, ids[i], secret);
    }
    for (int i = 0; i < N; i++) {
        struct store_delivery_state s = wait_state(e, ids[i], DELIVERY_DELIVERED, 1);
        free(s.url);
    }
    env_stop(e);
}

static void test_stop_with_attempts_in_flight(void **state)
{
    (void)state;
    const struct plan plans[] = {{.prefix = "/hang", .codes = {200}, .delay_ms = 3000}};
    struct env *e = env_start(plans, 1, "20ms", true, 10000, 65536);
    char url[256], job_id[IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    url_for(e, "/hang", url);
    make_job(e, url, 1, job_id, secret);
    struct store_delivery_state s = wait_state(e, job_id, DELIVERY_DELIVERING, 0);
    free(s.url);
    int64_t t0 = clock_mono_ns();
    env_stop_dispatcher(e); /* must not wait for the receiver */
    assert_true(clock_mono_ns() - t0 < INT64_C(2000) * 1000000);
    env_stop(e); /* ASan's leak check covers the abandoned attempt */
}

static int64_t process_cpu_ms(void)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With every slot taken by an attempt the receiver holds, the dispatcher
 * sleeps until one finishes. It used to spin on its overdue claim time for
 * as long as the slots stayed full (a core's worth of CPU). */
static void test_idle_while_slots_full(void **state)
{
    (void)state;
    const struct plan plans[] = {{.prefix = "/held", .codes = {200}, .delay_ms = 2000}};
    struct webhook_options o;
    webhook_options_default(&o);
    assert_int_equal(webhook_schedule_parse("50ms", &o.schedule), 0);
    o.allow_http = o.allow_private = true;
    o.timeout_ms = 10000;
    o.max_in_flight = 2;
    struct env *e = env_start_opts(plans, 1, &o);
    enum { N = 3 };
    char url[256], ids[N][IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    for (int i = 0; i < N; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/held/%d", e->rx->port, i);
        make_job(e, url, 1, ids[i], secret);
    }
    size_t delivering = 0;
    for (int64_t until = clock_now_ms() + 5000; delivering < 2 && clock_now_ms() < until;) {
        usleep(10000);
        pthread_mutex_lock(&e->rx->mu);
        delivering = e->rx->nrecs;
        pthread_mutex_unlock(&e->rx->mu);
    }
    assert_int_equal(delivering, 2);
    /* Past the claim interval (250 ms), well before the receiver answers. */
    int64_t cpu0 = process_cpu_ms();
    usleep(1000000);
    int64_t used = process_cpu_ms() - cpu0;
    assert_true(used < 250);
    /* A freed slot still brings the third event in. */
    for (int i = 0; i < N; i++) {
        struct store_delivery_state s = wait_state(e, ids[i], DELIVERY_DELIVERED, 1);
        free(s.url);
    }
    env_stop(e);
}

/* A receiver that holds its requests gets max_per_receiver attempts at a
 * time, however many of its events are due; the other slots go on to other
 * receivers. Before that bound the held receiver took every slot and the
 * other receiver's events waited for its answers. Both kinds of event:
 * handed over in memory (held) and claimed from the database (retries,
 * redeliveries). */
static void busy_receiver_leaves_room(bool held)
{
    const struct plan plans[] = {{.prefix = "/slow", .codes = {200}, .delay_ms = 1500}};
    struct webhook_options o;
    webhook_options_default(&o);
    assert_int_equal(webhook_schedule_parse("50ms", &o.schedule), 0);
    o.allow_http = o.allow_private = true;
    o.timeout_ms = 10000;
    o.max_in_flight = 4;
    o.max_per_receiver = 2;
    /* All of the slow receiver's events are there before the dispatcher
     * starts, so that its first claim brings more than it has room for. */
    struct env *e = env_start_opts(plans, 1, NULL);
    enum { SLOW = 6, FAST = 2 };
    char url[256], slow[SLOW][IDS_MAX_LEN], fast[FAST][IDS_MAX_LEN], secret[WEBHOOK_SECRET_LEN];
    for (int i = 0; i < SLOW; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow/%d", e->rx->port, i);
        make_job_as(e, url, 1, held, slow[i], secret);
    }
    env_start_dispatcher(e, &o);
    struct rec recs[MAX_RECS];
    for (int64_t until = clock_now_ms() + 5000;
         rx_on(e->rx, "/slow", recs, MAX_RECS) < 2 && clock_now_ms() < until;)
        usleep(10000);
    /* Another receiver: same server, another host name. */
    for (int i = 0; i < FAST; i++) {
        snprintf(url, sizeof(url), "http://localhost:%d/fast/%d", e->rx->port, i);
        make_job_as(e, url, 1, held, fast[i], secret);
    }
    for (int i = 0; i < FAST; i++) {
        struct store_delivery_state s = wait_state(e, fast[i], DELIVERY_DELIVERED, 1);
        free(s.url);
    }
    /* Delivered while the slow receiver still holds its first two. */
    assert_int_equal(rx_on(e->rx, "/slow", recs, MAX_RECS), 2);
    for (int i = 0; i < SLOW; i++) {
        struct store_delivery_state s;
        assert_int_equal(store_delivery_state(e->st, slow[i], &s), STORE_OK);
        assert_int_not_equal(s.status, DELIVERY_DELIVERED);
        free(s.url);
    }
    /* And the slow receiver's events all go, two at a time. */
    for (int i = 0; i < SLOW; i++) {
        struct store_delivery_state s = wait_state(e, slow[i], DELIVERY_DELIVERED, 1);
        free(s.url);
    }
    pthread_mutex_lock(&e->rx->mu);
    size_t conns = e->rx->nconns;
    pthread_mutex_unlock(&e->rx->mu);
    assert_true(conns <= 2 + FAST);
    env_stop(e);
}

static void test_busy_receiver_leaves_room(void **state)
{
    (void)state;
    busy_receiver_leaves_room(true);
}

static void test_busy_receiver_leaves_room_stored(void **state)
{
    (void)state;
    busy_receiver_leaves_room(false);
}

static void test_null_and_defaults(void **state)
{
    (void)state;
    webhook_dispatcher_wake(NULL);
    webhook_dispatcher_stop(NULL);
    struct webhook_options o;
    webhook_options_default(&o);
    assert_int_equal(o.timeout_ms, 15000);
    assert_int_equal(o.max_in_flight, 1000);
    assert_int_equal(o.max_response_bytes, 64 * 1024);
    assert_int_equal(o.jitter_pct, 20);
    assert_false(o.allow_http);
    assert_false(o.allow_private);
    assert_int_equal(o.schedule.n, 7);
    assert_null(webhook_dispatcher_start(NULL, &o));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_and_defaults),
        cmocka_unit_test(test_delivers_signed_event),
        cmocka_unit_test(test_retries_then_delivers),
        cmocka_unit_test(test_gone_exhaustion_redirect),
        cmocka_unit_test(test_cut_headers_are_no_response),
        cmocka_unit_test(test_per_job_order),
        cmocka_unit_test(test_timeout_and_unreachable),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_https_only_without_allow_private),
        cmocka_unit_test(test_refuses_literal_private_targets),
        cmocka_unit_test(test_refuses_name_resolving_to_loopback),
        cmocka_unit_test(test_connects_to_allowed_address),
        cmocka_unit_test(test_allow_private_delivers_to_localhost),
        cmocka_unit_test(test_allow_http_alone_delivers_http),
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_stop_with_attempts_in_flight),
        cmocka_unit_test(test_idle_while_slots_full),
        cmocka_unit_test(test_busy_receiver_leaves_room),
        cmocka_unit_test(test_busy_receiver_leaves_room_stored),
    };
    return cmocka_run_group_tests(tests, curl_group_setup, curl_group_teardown);
}
