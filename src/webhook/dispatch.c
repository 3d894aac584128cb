/* The webhook dispatcher: one thread, one curl multi handle.
 *
 * Loop: drive curl, collect finished attempts, record them in the store
 * (store_event_record), claim more due events when woken (or every
 * CLAIM_INTERVAL_MS as a safety net), start them, sleep in curl_multi_poll.
 *
 * Every attempt is one easy handle; connections live in the multi handle's
 * pool, so consecutive events to the same receiver reuse a connection. The
 * event is never held in memory beyond starting its attempt: curl copies the
 * URL and the body (CURLOPT_COPYPOSTFIELDS), and the outcome needs only the
 * store's sequence number.
 *
 * Address policy (SSRF), when targets are not allowed to be private: a URL
 * whose host is a literal refused address fails at once, without a request.
 * A host name is resolved by curl as usual, and every address curl is about
 * to connect to passes through on_open_socket, which refuses it there (see
 * the comment on that function for why this is "connecting to the address
 * that was checked"). */
#include "webhook/dispatch.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>

#include <curl/curl.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/metrics.h"
#include "util/strhash.h"
#include "webhook/address.h"
#include "webhook/outcome.h"
#include "webhook/sign.h"

#define MOD "webhook"

#define CLAIM_INTERVAL_MS 250
/* A claimed event stays ours for timeout + LEASE_GRACE_MS: long enough that
 * no other node re-claims it while our attempt may still be running. */
#define LEASE_GRACE_MS 30000
/* Besides curl's CURLOPT_TIMEOUT_MS we end any attempt still running at
 * timeout + DEADLINE_GRACE_MS ourselves: a backstop that keeps every attempt
 * inside its lease whatever state curl holds it in (e.g. queued for a
 * connection under CURLMOPT_MAX_HOST_CONNECTIONS). */
#define DEADLINE_GRACE_MS 1000
/* Per receiver (webhook_options.max_per_receiver): enough parallelism for a
 * busy receiver (at 20 ms per response, 256 connections carry ~8,000
 * events/s: bench/README.md), few enough not to flood a small one. */
#define RECEIVER_SLOTS 256
#define RECEIVER_BUCKETS 1024
/* How many events due in the database, of receivers without room, a claim
 * looks past to find others'. Most claims (one follows every batch of
 * finished attempts) look past a few, so that they cost little more than
 * the events they take: looking past thousands halved delivery from a
 * backlog to one receiver. Once per CLAIM_INTERVAL_MS a claim looks past
 * CLAIM_LOOK_PAST_DEEP per free slot, so that other receivers' events wait
 * at most about that long behind a busy receiver's. */
#define CLAIM_LOOK_PAST 64
#define CLAIM_LOOK_PAST_DEEP 4
#define ERR_LEN 512
#define USER_AGENT_HEADER "user-agent: Collie-Webhooks/1"
#define NS_PER_MS INT64_C(1000000)
#define TIMEOUT_MAX_MS (INT64_C(3600) * 1000)

/* ---- receivers ----------------------------------------------------------
 *
 * A receiver (a webhook URL's scheme, host and port) gets at most
 * max_per_receiver connections, and an event is started for it only while
 * it has fewer attempts than that in flight. The claim asks (the room
 * callback of store_event_claim): an event without room is not claimed and
 * keeps its place, in the store's in-memory queue (most new events) or due
 * in the database (retries, redeliveries, the rest), and comes with a later
 * claim. Without that bound a receiver with a flood of events took every
 * slot, most of them waiting inside curl for a connection while their
 * timeout ran, and every other receiver waited for its answers. */

struct receiver {
    struct receiver *next; /* hash chain */
    size_t in_flight;
    size_t admitted; /* said yes to by claim_room in the claim under way */
    char key[];      /* "scheme://host:port" */
};

/* One attempt in flight. Lives on the in-flight list in start order, so the
 * head always has the earliest deadline. */
struct xfer {
    struct xfer *prev, *next;
    struct webhook_dispatcher *d;
    struct receiver *rcv; /* NULL when its URL has no receiver key */
    CURL *easy;
    struct curl_slist *headers;
    int64_t seq;
    char event_id[IDS_MAX_LEN];
    int attempt;        /* 1-based, this one included */
    int64_t started_at; /* epoch ms */
    int64_t started_ns; /* monotonic */
    int64_t deadline_ns;
    size_t received;    /* response body bytes read */
    bool capped;        /* the body went past max_response_bytes; we stopped reading */
    bool headers_ended; /* the final response's header block ended (on_header) */
    /* Set by on_open_socket: the first address refused, how many were, and
     * how many sockets were opened to allowed addresses. */
    char refused[WEBHOOK_ADDR_REASON_LEN];
    int n_refused;
    int n_opened;
    char errbuf[CURL_ERROR_SIZE];
};

/* An attempt that finished (or was refused) and awaits store_event_record. */
struct finished {
    struct store_attempt a; /* a.error is set only when building the batch */
    char error[ERR_LEN];    /* "" = no error */
};

struct webhook_dispatcher {
    struct store *st;
    struct webhook_options o;
    int64_t lease_ms;
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_bool wake;

    /* Owned by the dispatcher thread (and by stop, after the join). */
    struct xfer *head, *tail;
    size_t in_flight;
    struct finished *done;
    size_t ndone, done_cap;
    struct store_attempt *batch; /* scratch, done_cap entries */
    int64_t record_retry_ns;     /* after a failed record: not before this */
    /* Finished easy handles, reset and kept for the next attempts: making a
     * handle allocates its buffers anew, which cost more CPU than the
     * request itself at thousands of attempts a second. */
    CURL **idle;
    size_t nidle;
    int last_claim_rc;     /* to log store trouble once, not 4×/s */
    int64_t deep_claim_ns; /* when a claim next looks past many (monotonic) */
    /* The receivers claim_room said yes to in the claim under way (distinct;
     * at most one per event claimed, so max_in_flight entries). */
    struct receiver **admitting;
    size_t nadmitting;
    struct receiver *receivers[RECEIVER_BUCKETS];
    /* The last URL looked up and its receiver key: a receiver's events
     * mostly share one URL, so most lookups parse nothing. */
    char *last_url;
    char last_key[512];
};

void webhook_options_default(struct webhook_options *o)
{
    memset(o, 0, sizeof(*o));
    webhook_schedule_default(&o->schedule);
    o->timeout_ms = 15000;
    o->max_in_flight = 1000;
    o->max_per_receiver = RECEIVER_SLOTS;
    o->max_response_bytes = 64 * 1024;
    o->jitter_pct = 20;
    o->allow_http = false;
    o->allow_private = false;
    o->addr_check = NULL; /* webhook_addr_check */
}

/* Writes url's receiver key ("scheme://host:port", scheme and host in
 * lower case, the scheme's port when none is given) into key. Returns
 * false when curl cannot parse url (such an event is refused anyway). */
static bool receiver_key(const char *url, char *key, size_t cap)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        int len = snprintf(key, cap, "%s://%s:%s", scheme, host, port);
        ok = len > 0 && (size_t)len < cap;
        for (char *c = key; ok && *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

static size_t receiver_bucket(const char *key)
{
    return strhash(key) % RECEIVER_BUCKETS;
}

/* The receiver of url, made when new. NULL when url has no key or memory
 * is short: such an event goes on without the per-receiver bound. */
static struct receiver *receiver_of(struct webhook_dispatcher *d, const char *url)
{
    if (!url)
        return NULL;
    if (!d->last_url || strcmp(d->last_url, url) != 0) {
        free(d->last_url);
        d->last_url = NULL;
        if (!receiver_key(url, d->last_key, sizeof(d->last_key)))
            return NULL;
        d->last_url = strdup(url); /* NULL: not remembered, which costs a parse */
    }
    struct receiver **slot = &d->receivers[receiver_bucket(d->last_key)];
    for (struct receiver *r = *slot; r; r = r->next)
        if (strcmp(r->key, d->last_key) == 0)
            return r;
    size_t klen = strlen(d->last_key) + 1;
    struct receiver *r = calloc(1, sizeof(*r) + klen);
    if (!r)
        return NULL;
    memcpy(r->key, d->last_key, klen);
    r->next = *slot;
    *slot = r;
    return r;
}

/* Frees r when nothing refers to it any more. */
static void receiver_drop_if_idle(struct webhook_dispatcher *d, struct receiver *r)
{
    if (!r || r->in_flight > 0 || r->admitted > 0)
        return;
    struct receiver **slot = &d->receivers[receiver_bucket(r->key)];
    while (*slot != r)
        slot = &(*slot)->next;
    *slot = r->next;
    free(r);
}

static bool receiver_has_room(const struct webhook_dispatcher *d, const struct receiver *r)
{
    return !r || r->in_flight + r->admitted < d->o.max_per_receiver;
}

/* store_event_claim's room callback, on this thread (the claim is a
 * synchronous call). Each yes counts as admitted until the claim is over,
 * so that several events of one claim do not take the same room. A yes is
 * not a promise: the store may drop an event it said yes to (one a
 * redelivery or the sweep changed meanwhile), so claim_and_start clears
 * the counts when the claim is over rather than one per event started. */
static bool claim_room(void *ud, const char *url)
{
    struct webhook_dispatcher *d = ud;
    struct receiver *r = receiver_of(d, url);
    bool room = receiver_has_room(d, r);
    if (room && r && r->admitted == 0) {
        if (d->nadmitting == d->o.max_in_flight)
            room = false; /* cannot happen: a claim takes at most that many */
        else
            d->admitting[d->nadmitting++] = r;
    }
    if (room && r)
        r->admitted++;
    receiver_drop_if_idle(d, r);
    return room;
}

/* Ends a claim's admissions: started events count as in flight now. */
static void claim_room_end(struct webhook_dispatcher *d)
{
    for (size_t i = 0; i < d->nadmitting; i++) {
        d->admitting[i]->admitted = 0;
        receiver_drop_if_idle(d, d->admitting[i]);
    }
    d->nadmitting = 0;
}

/* ---- finished attempts ---------------------------------------------------- */

/* Appends a finished attempt. There is always room: done_cap is
 * max_in_flight and every finished attempt occupied a slot (free_slots); the
 * check only guards that reasoning. NULL means the attempt goes unrecorded
 * and its event comes back when the lease ends. */
static struct finished *finished_add(struct webhook_dispatcher *d, int64_t seq)
{
    if (d->ndone >= d->done_cap) {
        log_error(MOD, "finished-attempt list full; attempt left to its lease");
        return NULL;
    }
    struct finished *f = &d->done[d->ndone++];
    memset(f, 0, sizeof(*f));
    f->a.seq = seq;
    return f;
}

/* Decides the event's next state and counts it. */
static void finished_outcome(struct webhook_dispatcher *d, struct finished *f, const char *event_id,
                             int attempt, int status_code, int64_t retry_after_s, bool permanent)
{
    int64_t now = clock_now_ms();
    if (permanent) {
        f->a.next = DELIVERY_FAILED;
        f->a.next_attempt_at = 0;
    } else {
        f->a.next = webhook_outcome(&d->o.schedule, d->o.jitter_pct, attempt, status_code,
                                    retry_after_s, now, &f->a.next_attempt_at);
    }
    metrics_inc(METRIC_WEBHOOK_ATTEMPTS);
    switch (f->a.next) {
    case DELIVERY_DELIVERED:
        metrics_inc(METRIC_WEBHOOK_DELIVERED);
        log_debug(MOD, "%s delivered (attempt %d, status %d)", event_id, attempt, status_code);
        break;
    case DELIVERY_RETRYING:
        log_debug(MOD, "%s attempt %d failed (status %d%s%s), retry in %" PRId64 " ms", event_id,
                  attempt, status_code, f->error[0] ? ": " : "", f->error,
                  f->a.next_attempt_at - now);
        break;
    default:
        metrics_inc(METRIC_WEBHOOK_FAILED);
        log_warn(MOD, "%s failed for good after attempt %d (status %d%s%s)", event_id, attempt,
                 status_code, f->error[0] ? ": " : "", f->error);
        break;
    }
}

/* Records every finished attempt in one store call. Returns true when some
 * event reached a final state, which may have made the next event of its
 * job due. */
static bool record_finished(struct webhook_dispatcher *d)
{
    for (size_t i = 0; i < d->ndone; i++) {
        d->batch[i] = d->done[i].a;
        d->batch[i].error = d->done[i].error[0] ? d->done[i].error : NULL;
    }
    size_t recorded;
    int rc = store_event_record(d->st, d->batch, d->ndone, &recorded);
    bool released = false;
    for (size_t i = 0; i < recorded; i++)
        released |= d->done[i].a.next != DELIVERY_RETRYING;
    if (rc == STORE_OK) {
        d->ndone = 0;
        return released;
    }

    /* Keep the ones not recorded for the next pass, except attempts whose
     * lease has run out: their events are due again anyway and may be
     * someone else's now. */
    log_warn(MOD, "recording %zu attempts failed: %s; will retry", d->ndone - recorded,
             store_strerror(rc));
    int64_t now = clock_now_ms();
    size_t kept = 0;
    for (size_t i = recorded; i < d->ndone; i++)
        if (d->done[i].a.started_at + d->lease_ms > now)
            d->done[kept++] = d->done[i];
    d->ndone = kept;
    d->record_retry_ns = clock_mono_ns() + CLAIM_INTERVAL_MS * NS_PER_MS;
    return released;
}

/* ---- transfers ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    (void)ptr;
    /* Nobody reads the body; we only bound how much a receiver can make us
     * download. Returning short aborts the transfer (CURLE_WRITE_ERROR), and
     * the status line we already have still decides the attempt. */
    if (n > x->d->o.max_response_bytes - x->received) {
        x->capped = true;
        return 0;
    }
    x->received += n;
    return n;
}

/* Notes the end of a response's header block (its empty line). A status
 * line starts a new response (after a 1xx), whose block must end too. A
 * receiver that closes the connection inside its headers gets a status
 * code from curl and no error, and that is not a response. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0)
        x->headers_ended = false;
    else if ((n == 2 && line[0] == '\r' && line[1] == '\n') || (n == 1 && line[0] == '\n'))
        x->headers_ended = true;
    return n;
}

static void xfer_free(struct webhook_dispatcher *d, struct xfer *x)
{
    if (!x)
        return;
    if (x->easy) {
        curl_multi_remove_handle(d->multi, x->easy);
        if (d->idle && d->nidle < d->o.max_in_flight) {
            curl_easy_reset(x->easy); /* every option is set again per attempt */
            d->idle[d->nidle++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
    }
    curl_slist_free_all(x->headers);
    free(x);
}

static void xfer_unlink(struct webhook_dispatcher *d, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        d->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        d->tail = x->prev;
    x->prev = x->next = NULL;
    d->in_flight--;
    if (x->rcv) {
        x->rcv->in_flight--;
        receiver_drop_if_idle(d, x->rcv);
        x->rcv = NULL;
    }
}

/* Refuses an event without contacting the receiver: the attempt is recorded
 * with the reason and the event fails for good, as no retry could fix it. */
static void refuse(struct webhook_dispatcher *d, const struct store_delivery *dl, const char *why)
{
    struct finished *f = finished_add(d, dl->seq);
    if (!f)
        return;
    f->a.started_at = clock_now_ms();
    snprintf(f->error, sizeof(f->error), "%s", why);
    finished_outcome(d, f, dl->event_id, dl->attempts + 1, 0, 0, true);
}

/* Returns true when the URL may be attempted, else false with the reason
 * in why. Without allow_private this also refuses a host that is a literal
 * refused address: no DNS answer can change it, so it fails at once (the
 * same rule the API applies with a 422 at create time). Host names, and
 * "localhost", are left to on_open_socket. */
static bool check_url(const struct webhook_dispatcher *d, const char *url, char *why, size_t cap)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (!u)
        return true; /* out of memory: curl and on_open_socket still judge it */
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, cap, "refused: the webhook URL is not a valid absolute URL");
        goto done;
    }
    if (strcasecmp(scheme, "https") != 0 && !(d->o.allow_http && strcasecmp(scheme, "http") == 0)) {
        snprintf(why, cap, "%s",
                 d->o.allow_http ? "refused: the webhook URL must use http or https"
                                 : "refused: the webhook URL must use https (http:// is "
                                   "allowed only when insecure webhooks are enabled, e.g. "
                                   "dev mode)");
        goto done;
    }
    struct sockaddr_storage ss;
    size_t len;
    char reason[WEBHOOK_ADDR_REASON_LEN];
    if (!d->o.allow_private && webhook_host_literal(host, &ss, &len) &&
        d->o.addr_check((const struct sockaddr *)&ss, len, reason, sizeof(reason)) != 0) {
        snprintf(why, cap, "refused: %s", reason);
        goto done;
    }
    ok = true;
done:
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* curl calls this instead of socket(2) for every connection it opens, with
 * the very address the socket is about to connect to — after its own
 * resolution, for each address it tries (happy eyeballs included). So the
 * address checked here *is* the address connected to: a DNS answer that
 * changes between a check and the connect (rebinding) has nothing to slip
 * through, which is what pinning a checked lookup with CURLOPT_RESOLVE would
 * give, without a blocking lookup on this thread (curl keeps resolving
 * asynchronously). Refusing returns CURL_SOCKET_BAD: curl moves on to the
 * host's next address, or ends the attempt with CURLE_COULDNT_CONNECT.
 *
 * Reused connections do not come through here, and need not: curl reuses a
 * pooled connection only for the same scheme, host and port, it was
 * checked when it was opened, and every handle of this dispatcher runs
 * under the same policy (proxies are off, so the peer is the receiver). */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct xfer *x = ud;
    char why[WEBHOOK_ADDR_REASON_LEN];
    int rc = -1;
    if (purpose == CURLSOCKTYPE_IPCXN)
        rc = x->d->o.addr_check(&addr->addr, addr->addrlen, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "curl asked for a socket of unexpected purpose %d",
                 (int)purpose);
    if (rc != 0) {
        if (x->n_refused++ == 0)
            snprintf(x->refused, sizeof(x->refused), "%s", why);
        return CURL_SOCKET_BAD;
    }
    x->n_opened++;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Builds and starts one attempt. Returns 0, or -1 when it could not be
 * started for a local reason (memory, curl); the event is then left to its
 * lease, which makes it due again, so a local fault costs no attempt (the
 * caller gives one handed over in memory such a lease). */
static int xfer_start(struct webhook_dispatcher *d, struct receiver *rcv,
                      const struct store_delivery *dl)
{
    char sig[WEBHOOK_SIGNATURE_LEN];
    char line[64 + WEBHOOK_SIGNATURE_LEN];
    struct xfer *x = NULL;
    size_t body_len = dl->payload ? strlen(dl->payload) : 0;
    int64_t now = clock_now_ms();
    int64_t ts = now / 1000;

    char why[ERR_LEN];
    if (!check_url(d, dl->url, why, sizeof(why))) {
        refuse(d, dl, why);
        return 0;
    }
    /* Signed afresh for each attempt: the timestamp is this attempt's. */
    if (webhook_sign(dl->secret, dl->event_id, ts, dl->payload ? dl->payload : "", body_len, sig,
                     sizeof(sig)) != 0) {
        refuse(d, dl, "refused: the job's webhook secret is malformed");
        return 0;
    }

    x = calloc(1, sizeof(*x));
    if (!x)
        goto fail;
    x->d = d;
    x->seq = dl->seq;
    snprintf(x->event_id, sizeof(x->event_id), "%s", dl->event_id);
    x->attempt = dl->attempts + 1;
    x->started_at = now;
    x->started_ns = clock_mono_ns();
    x->deadline_ns = x->started_ns + (d->o.timeout_ms + DEADLINE_GRACE_MS) * NS_PER_MS;

    const char *fixed[] = {
        "content-type: application/json", USER_AGENT_HEADER,
        "Expect:", /* no 100-continue round trip for larger bodies */
    };
    struct curl_slist *h;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (!(h = curl_slist_append(x->headers, fixed[i])))
            goto fail;
        x->headers = h;
    }
    snprintf(line, sizeof(line), "webhook-id: %s", dl->event_id);
    if (!(h = curl_slist_append(x->headers, line)))
        goto fail;
    x->headers = h;
    snprintf(line, sizeof(line), "webhook-timestamp: %" PRId64, ts);
    if (!(h = curl_slist_append(x->headers, line)))
        goto fail;
    x->headers = h;
    snprintf(line, sizeof(line), "webhook-signature: %s", sig);
    if (!(h = curl_slist_append(x->headers, line)))
        goto fail;
    x->headers = h;

    x->easy = d->nidle > 0 ? d->idle[--d->nidle] : curl_easy_init();
    if (!x->easy)
        goto fail;
    CURL *e = x->easy;
    bool bad = false;
    bad |= curl_easy_setopt(e, CURLOPT_URL, dl->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, d->o.allow_http ? "http,https" : "https") !=
           CURLE_OK;
    /* A redirect is a failed attempt, never a hop to somewhere else. */
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    /* No proxy from the environment: deliveries go where the URL says, and
     * the peer on_open_socket checks is the receiver, not a proxy. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    if (!d->o.allow_private) {
        bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x) != CURLE_OK;
    }
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, dl->payload ? dl->payload : "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->o.timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
    if (bad)
        goto fail;
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK)
        goto fail;

    x->prev = d->tail;
    if (d->tail)
        d->tail->next = x;
    else
        d->head = x;
    d->tail = x;
    d->in_flight++;
    if (rcv) {
        x->rcv = rcv;
        rcv->in_flight++;
    }
    return 0;

fail:
    log_error(MOD, "%s: could not start a delivery attempt; retrying after its lease",
              dl->event_id);
    if (x && x->easy) {
        curl_easy_cleanup(x->easy); /* never added to the multi handle */
        x->easy = NULL;
    }
    xfer_free(d, x);
    return -1;
}

/* The attempt error when on_open_socket refused an address and no
 * connection came about. A refusal is an ordinary failed attempt and is
 * retried per the schedule: the host's DNS may be corrected (see
 * docs/webhooks.md). */
static void refused_error(const struct xfer *x, char *out, size_t cap)
{
    char more[64] = "", also[CURL_ERROR_SIZE + 48] = "";
    if (x->n_refused > 1)
        snprintf(more, sizeof(more), " (and %d more address%s refused)", x->n_refused - 1,
                 x->n_refused > 2 ? "es" : "");
    if (x->n_opened > 0)
        snprintf(also, sizeof(also), "; the allowed addresses failed: %s",
                 x->errbuf[0] ? x->errbuf : "could not connect");
    snprintf(out, cap, "refused: webhook host resolves to a forbidden address: %s%s%s", x->refused,
             more, also);
}

/* Turns a finished (or timed-out) transfer into a finished attempt and frees
 * it. own_error overrides curl's message (our own deadline). */
static void xfer_finish(struct webhook_dispatcher *d, struct xfer *x, CURLcode res,
                        const char *own_error)
{
    long code = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
        retry_after = 0;

    /* Only a complete response counts, or one we cut short ourselves. A
     * status line followed by a stalled body is a timeout, not a 2xx; one
     * whose headers were cut off is not a response. */
    bool responded = !own_error && x->headers_ended &&
                     (res == CURLE_OK || (res == CURLE_WRITE_ERROR && x->capped));
    int64_t dur_ns = clock_mono_ns() - x->started_ns;

    struct finished *f = finished_add(d, x->seq);
    if (!f) {
        xfer_unlink(d, x);
        xfer_free(d, x);
        return;
    }
    f->a.started_at = x->started_at;
    f->a.duration_ms = dur_ns / NS_PER_MS;
    f->a.status_code = x->headers_ended ? (int)code : 0; /* none: not a response */
    if (own_error)
        snprintf(f->error, sizeof(f->error), "%s", own_error);
    else if (!responded && x->n_refused > 0 && res == CURLE_COULDNT_CONNECT)
        refused_error(x, f->error, sizeof(f->error));
    else if (!responded && res == CURLE_OK)
        snprintf(f->error, sizeof(f->error), "the connection closed inside the response headers");
    else if (!responded)
        snprintf(f->error, sizeof(f->error), "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
    metrics_observe(METRIC_H_WEBHOOK_SECONDS, (double)dur_ns / 1e9);
    finished_outcome(d, f, x->event_id, x->attempt, responded ? (int)code : 0, (int64_t)retry_after,
                     false);

    xfer_unlink(d, x);
    xfer_free(d, x);
}

static void collect_done(struct webhook_dispatcher *d)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        /* m is invalid once the handle is removed; read the result first. */
        CURLcode res = m->data.result;
        if (priv)
            xfer_finish(d, (struct xfer *)priv, res, NULL);
    }
}

/* Ends attempts past our own deadline (see DEADLINE_GRACE_MS). */
static void expire_overdue(struct webhook_dispatcher *d, int64_t now_ns)
{
    char msg[96];
    while (d->head && d->head->deadline_ns <= now_ns) {
        snprintf(msg, sizeof(msg), "timed out after %" PRId64 " ms (dispatcher deadline)",
                 d->o.timeout_ms);
        xfer_finish(d, d->head, CURLE_OPERATION_TIMEDOUT, msg);
    }
}

/* ---- the loop ------------------------------------------------------------- */

static size_t free_slots(const struct webhook_dispatcher *d)
{
    size_t used = d->in_flight + d->ndone;
    return used >= d->o.max_in_flight ? 0 : d->o.max_in_flight - used;
}

/* Claims and starts due events. Returns true when the claim filled every
 * free slot, i.e. more events may be waiting. */
static bool claim_and_start(struct webhook_dispatcher *d, size_t slots)
{
    struct store_delivery *dl = NULL;
    size_t n = 0;
    struct store_claim_room room = {claim_room, d, CLAIM_LOOK_PAST};
    int64_t now_ns = clock_mono_ns();
    if (now_ns >= d->deep_claim_ns) {
        size_t deep = slots * CLAIM_LOOK_PAST_DEEP;
        room.look_past = deep > room.look_past ? deep : room.look_past;
        d->deep_claim_ns = now_ns + CLAIM_INTERVAL_MS * NS_PER_MS;
    }
    int rc = store_event_claim(d->st, clock_now_ms(), d->lease_ms, slots, &room, &dl, &n);
    if (rc != STORE_OK) {
        claim_room_end(d);
        if (rc != d->last_claim_rc)
            log_warn(MOD, "claiming events failed: %s", store_strerror(rc));
        d->last_claim_rc = rc;
        return false;
    }
    if (d->last_claim_rc != STORE_OK)
        log_info(MOD, "claiming events works again");
    d->last_claim_rc = STORE_OK;
    /* The store returns at most `slots`; the bound keeps the finished-attempt
     * array (sized max_in_flight) from overflowing even if it did not. Any
     * excess stays leased and comes back when the lease ends. */
    for (size_t i = 0; i < n && i < slots; i++) {
        struct receiver *r = receiver_of(d, dl[i].url);
        if (xfer_start(d, r, &dl[i]) != 0 && !dl[i].leased) {
            /* Held events have no lease that would bring them back. */
            int urc = store_event_unclaim(d->st, dl[i].seq, clock_now_ms() + d->lease_ms);
            if (urc != STORE_OK)
                log_error(MOD, "%s: could not give the event back (%s); it is sent after a restart",
                          dl[i].event_id, store_strerror(urc));
        }
        receiver_drop_if_idle(d, r);
    }
    claim_room_end(d);
    store_deliveries_free(dl, n);
    return n > 0 && n >= slots;
}

static void *dispatcher_main(void *arg)
{
    struct webhook_dispatcher *d = arg;
    thread_set_background("webhook");
    bool want_claim = true; /* events may have been waiting before we started */
    int64_t next_claim_ns = 0;

    while (!atomic_load(&d->stop)) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(d->multi, &running);
        if (mc != CURLM_OK)
            log_error(MOD, "curl_multi_perform: %s", curl_multi_strerror(mc));
        collect_done(d);
        int64_t now_ns = clock_mono_ns();
        expire_overdue(d, now_ns);

        if (d->ndone > 0 && now_ns >= d->record_retry_ns && record_finished(d))
            want_claim = true;

        if (atomic_exchange(&d->wake, false))
            want_claim = true;
        now_ns = clock_mono_ns();
        if (now_ns >= next_claim_ns)
            want_claim = true;
        size_t slots = free_slots(d);
        if (want_claim && slots > 0) {
            want_claim = claim_and_start(d, slots);
            next_claim_ns = clock_mono_ns() + CLAIM_INTERVAL_MS * NS_PER_MS;
            now_ns = clock_mono_ns();
        }

        /* With every slot taken, the claim time is no reason to wake: only
         * a finishing attempt frees a slot, and that wakes us (its socket,
         * curl's timeout or its deadline). Counting an overdue claim time
         * here made the loop spin for as long as the slots stayed full. */
        int64_t wait_ns = CLAIM_INTERVAL_MS * NS_PER_MS;
        if (free_slots(d) > 0)
            wait_ns = want_claim ? 0 : next_claim_ns - now_ns;
        if (d->head && d->head->deadline_ns - now_ns < wait_ns)
            wait_ns = d->head->deadline_ns - now_ns;
        if (d->ndone > 0 && d->record_retry_ns - now_ns < wait_ns)
            wait_ns = d->record_retry_ns - now_ns;
        int wait_ms = wait_ns <= 0 ? 0 : (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
        if (wait_ms > CLAIM_INTERVAL_MS)
            wait_ms = CLAIM_INTERVAL_MS;
        mc = curl_multi_poll(d->multi, NULL, 0, wait_ms, NULL);
        if (mc != CURLM_OK)
            log_error(MOD, "curl_multi_poll: %s", curl_multi_strerror(mc));
    }

    /* Attempts that already finished are worth one last try to record; the
     * ones still in flight are abandoned (their leases expire). */
    if (d->ndone > 0)
        record_finished(d);
    return NULL;
}

/* ---- life cycle ----------------------------------------------------------- */

static void dispatcher_free(struct webhook_dispatcher *d)
{
    if (!d)
        return;
    while (d->head) {
        struct xfer *x = d->head;
        xfer_unlink(d, x);
        xfer_free(d, x);
    }
    for (size_t b = 0; b < RECEIVER_BUCKETS; b++) {
        while (d->receivers[b]) {
            struct receiver *r = d->receivers[b];
            d->receivers[b] = r->next;
            free(r);
        }
    }
    free(d->last_url);
    for (size_t i = 0; i < d->nidle; i++)
        curl_easy_cleanup(d->idle[i]);
    free(d->idle);
    if (d->multi)
        curl_multi_cleanup(d->multi);
    free(d->done);
    free(d->batch);
    free(d->admitting);
    free(d);
}

struct webhook_dispatcher *webhook_dispatcher_start(struct store *st,
                                                    const struct webhook_options *o)
{
    struct webhook_dispatcher *d = NULL;
    if (!st || !o)
        goto fail;
    d = calloc(1, sizeof(*d));
    if (!d)
        goto fail;
    d->st = st;
    d->o = *o;
    if (d->o.timeout_ms <= 0)
        d->o.timeout_ms = 15000;
    if (d->o.timeout_ms > TIMEOUT_MAX_MS)
        d->o.timeout_ms = TIMEOUT_MAX_MS; /* keeps the deadline arithmetic far from overflow */
    if (d->o.max_in_flight == 0)
        d->o.max_in_flight = 1000;
    if (d->o.max_per_receiver == 0)
        d->o.max_per_receiver = RECEIVER_SLOTS;
    if (d->o.max_per_receiver > LONG_MAX)
        d->o.max_per_receiver = LONG_MAX;
    if (d->o.jitter_pct < 0)
        d->o.jitter_pct = 0;
    if (d->o.jitter_pct > 100)
        d->o.jitter_pct = 100;
    if (!d->o.addr_check)
        d->o.addr_check = webhook_addr_check;
    d->lease_ms = d->o.timeout_ms + DEADLINE_GRACE_MS + LEASE_GRACE_MS;
    atomic_init(&d->stop, false);
    atomic_init(&d->wake, false);

    d->done_cap = d->o.max_in_flight;
    d->done = calloc(d->done_cap, sizeof(*d->done));
    d->batch = calloc(d->done_cap, sizeof(*d->batch));
    d->admitting = calloc(d->done_cap, sizeof(*d->admitting));
    d->idle = calloc(d->o.max_in_flight, sizeof(*d->idle));
    if (!d->done || !d->batch || !d->admitting || !d->idle)
        goto fail;

    d->multi = curl_multi_init();
    if (!d->multi)
        goto fail;
    if (curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)d->o.max_per_receiver) !=
        CURLM_OK)
        goto fail;

    if (pthread_create(&d->thread, NULL, dispatcher_main, d) != 0)
        goto fail;
    d->thread_started = true;
    log_info(MOD,
             "dispatcher started (timeout %" PRId64
             " ms, %zu in flight, %zu per receiver, %zu retries%s)",
             d->o.timeout_ms, d->o.max_in_flight, d->o.max_per_receiver, d->o.schedule.n,
             d->o.allow_private ? ", insecure targets allowed" : "");
    return d;

fail:
    log_error(MOD, "could not start the dispatcher");
    dispatcher_free(d);
    return NULL;
}

void webhook_dispatcher_wake(struct webhook_dispatcher *d)
{
    if (!d)
        return;
    /* Many wakes between two passes collapse into one claim. */
    if (!atomic_exchange(&d->wake, true))
        curl_multi_wakeup(d->multi);
}

void webhook_dispatcher_stop(struct webhook_dispatcher *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    curl_multi_wakeup(d->multi);
    if (d->thread_started)
        pthread_join(d->thread, NULL);
    if (d->in_flight > 0)
        log_info(MOD, "dispatcher stopped; %zu attempts abandoned to their leases", d->in_flight);
    dispatcher_free(d);
}
