/* A bounded, thread-safe map from an id string to an object it owns, for
 * handing work from one thread to another through memory while the
 * database stays the record: the producer puts what it already has, the
 * consumer takes it instead of reading it back, and a miss (never put,
 * evicted, or already taken) means "read it back", never an error.
 *
 * Two bounds, on entries and on bytes (as the putter counts them): a put
 * that would pass either evicts the oldest entries. An entry is consumed by
 * its first take. One mutex; every call is O(1) on average (an eviction by
 * bytes walks the ring past free slots). */
#ifndef COLLIE_UTIL_IDCACHE_H
#define COLLIE_UTIL_IDCACHE_H

#include <stdbool.h>
#include <stddef.h>

struct idcache;

/* A cache for up to capacity entries (> 0) holding up to max_bytes, whose
 * objects are released with free_obj when evicted, replaced, dropped or
 * left at idcache_free. NULL when memory ran out. */
struct idcache *idcache_new(size_t capacity, size_t max_bytes, void (*free_obj)(void *obj));
/* Frees the cache and every object still in it. Accepts NULL. */
void idcache_free(struct idcache *c);

/* Stores obj, which counts as `bytes`, under id, taking ownership; an entry
 * with the same id is replaced. Returns 0, or -1 when id is too long or
 * bytes alone exceed max_bytes (obj is released then). */
int idcache_put(struct idcache *c, const char *id, void *obj, size_t bytes);

/* Removes id's entry and returns its object, now the caller's; NULL when
 * there is none. */
void *idcache_take(struct idcache *c, const char *id);

/* Removes and releases id's entry if there is one. */
void idcache_drop(struct idcache *c, const char *id);

/* Entries held now. */
size_t idcache_count(struct idcache *c);

#endif
