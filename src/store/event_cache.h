/* Prepared deliveries of new webhook events, kept in memory between the
 * step that creates an event and the claim that first sends it.
 *
 * Why: without it the first claim of every event reads the job back from
 * the database, unseals its webhook secret and rebuilds the body from the
 * stored JSON — more CPU than sending the webhook. The pipeline worker that
 * made the event has all of it at hand, so it leaves the finished body here.
 *
 * A bounded map from event id to (body, URL, secret). Puts beyond the
 * capacity evict the oldest entry; an entry is consumed by its first take.
 * A miss is never an error: the caller rebuilds the delivery from the
 * database, which is also what every retry does. Thread-safe (one mutex). */
#ifndef COLLIE_STORE_EVENT_CACHE_H
#define COLLIE_STORE_EVENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>

struct event_cache;

/* A cache for up to capacity entries (> 0). NULL when memory ran out. */
struct event_cache *event_cache_new(size_t capacity);
/* Frees the cache and every entry. Accepts NULL. */
void event_cache_free(struct event_cache *c);

/* Stores copies of body, url and secret under event_id (an existing entry
 * with that id is replaced). Returns 0, or -1 when the copies could not be
 * made (nothing is cached then). */
int event_cache_put(struct event_cache *c, const char *event_id, const char *body,
                    const char *url, const char *secret);

/* Removes event_id's entry and hands its strings to the caller (free each).
 * Returns false, with the outputs untouched, when there is none. */
bool event_cache_take(struct event_cache *c, const char *event_id, char **body, char **url,
                      char **secret);

/* Removes event_id's entry if there is one. */
void event_cache_drop(struct event_cache *c, const char *event_id);

/* Entries held now. */
size_t event_cache_count(struct event_cache *c);

#endif
