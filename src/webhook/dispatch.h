/* The webhook dispatcher: one thread driving libcurl's multi interface.
 * It claims due events from the store (oldest undelivered per job, which
 * keeps per-job order), signs each attempt afresh, POSTs it, records the
 * attempt, and marks the event delivered or schedules its retry.
 *
 * libcurl: the process must call curl_global_init(CURL_GLOBAL_DEFAULT) once
 * (main.c does) before webhook_dispatcher_start; this module never calls
 * it, since it is not thread-safe and is process-wide. */
#ifndef COLLIE_WEBHOOK_DISPATCH_H
#define COLLIE_WEBHOOK_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "store/store.h"
#include "webhook/schedule.h"

struct webhook_options {
    struct webhook_schedule schedule;
    int64_t timeout_ms;   /* per attempt (default 15000) */
    size_t max_in_flight; /* concurrent deliveries (default 1000) */
    /* Connections to one receiver (scheme, host and port), and the attempts
     * in flight to it below which new events for it are started (default
     * 256): see "receivers" in dispatch.c. */
    size_t max_per_receiver;
    size_t max_response_bytes; /* response body bytes read (default 64 KiB) */
    int jitter_pct;            /* ± percent applied to retry delays (default 20) */
    bool allow_http;           /* deliver to http:// URLs too (dev mode) */
    bool allow_private;        /* allow loopback/private targets (dev mode) */
    /* The connect-time address policy used when !allow_private; NULL (the
     * default) means webhook_addr_check. Same contract as that function.
     * A seam for tests, which have no public address to deliver to. */
    int (*addr_check)(const struct sockaddr *sa, size_t len, char *reason, size_t cap);
};
/* Only https:// URLs are delivered to, and http:// ones with allow_http;
 * any other scheme is refused without a request (the attempt is recorded
 * with the reason and the event fails for good). Without allow_private:
 *  - a URL whose host is a literal address that webhook/address.h refuses
 *    fails the same way, at once;
 *  - every address curl connects to, whatever a host name resolved to, is
 *    checked at the socket (webhook_addr_check); a refused one is never
 *    connected to, and the attempt fails with "refused: webhook host
 *    resolves to a forbidden address: …" and is retried per the schedule.
 * With allow_private, every address is allowed. */

/* Fills o with the defaults above and the default schedule. */
void webhook_options_default(struct webhook_options *o);

struct webhook_dispatcher;

/* Starts the dispatcher thread. The store must outlive it. o is copied.
 * Returns NULL on failure; the caller owns the dispatcher and ends it with
 * webhook_dispatcher_stop. Each claimed event is leased for
 * timeout_ms + 31 s, so an attempt never outlives its lease. */
struct webhook_dispatcher *webhook_dispatcher_start(struct store *st,
                                                    const struct webhook_options *o);

/* Wakes the dispatcher to claim new events now (any thread; cheap; many
 * wakes collapse into one claim). Accepts NULL. Must not run concurrently
 * with or after webhook_dispatcher_stop: detach the store's wakeup hook
 * (store_set_wakeups) before stopping. */
void webhook_dispatcher_wake(struct webhook_dispatcher *d);

/* Stops the thread; in-flight attempts are abandoned and their leases
 * expire, so they are retried after a restart. Accepts NULL. */
void webhook_dispatcher_stop(struct webhook_dispatcher *d);

#endif
