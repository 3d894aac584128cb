/* Entries live in a ring of `capacity` slots, overwritten oldest first; an
 * open-addressing index (linear probing, at most half full) maps an id to
 * its slot. Removal uses backward-shift deletion, so the index never holds
 * tombstones and lookups stay short however long the server runs. */
#include "util/idcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/strhash.h"

struct entry {
    void *obj; /* NULL = slot free */
    size_t bytes;
    uint32_t hash;
    char id[IDS_MAX_LEN];
};

struct idcache {
    pthread_mutex_t mu;
    void (*free_obj)(void *obj);
    struct entry *ring;
    size_t cap, next, count;
    size_t bytes, max_bytes;
    uint32_t *index; /* ring position + 1; 0 = empty */
    size_t mask;     /* index size - 1 (a power of two >= 2 * cap) */
};

struct idcache *idcache_new(size_t capacity, size_t max_bytes, void (*free_obj)(void *obj))
{
    if (capacity == 0 || capacity > UINT32_MAX / 4 || !free_obj)
        return NULL;
    struct idcache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    size_t n = 1;
    while (n < 2 * capacity)
        n <<= 1;
    c->free_obj = free_obj;
    c->max_bytes = max_bytes;
    c->cap = capacity;
    c->mask = n - 1;
    c->ring = calloc(capacity, sizeof(*c->ring));
    c->index = calloc(n, sizeof(*c->index));
    if (!c->ring || !c->index) {
        free(c->ring);
        free(c->index);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void idcache_free(struct idcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        if (c->ring[i].obj)
            c->free_obj(c->ring[i].obj);
    free(c->ring);
    free(c->index);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The index position holding id, or SIZE_MAX. */
static size_t find(const struct idcache *c, const char *id, uint32_t h)
{
    for (size_t i = h & c->mask; c->index[i]; i = (i + 1) & c->mask) {
        const struct entry *e = &c->ring[c->index[i] - 1];
        if (e->hash == h && strcmp(e->id, id) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* Empties index position i and shifts later members of its probe run back,
 * so that every entry stays reachable from its home position. */
static void index_remove(struct idcache *c, size_t i)
{
    size_t j = i;
    for (;;) {
        c->index[i] = 0;
        for (;;) {
            j = (j + 1) & c->mask;
            if (!c->index[j])
                return;
            size_t home = c->ring[c->index[j] - 1].hash & c->mask;
            /* Stays put when its home lies cyclically in (i, j]. */
            bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays)
                break;
        }
        c->index[i] = c->index[j];
        i = j;
    }
}

/* Unlinks the entry at index position i and returns its object. */
static void *remove_at(struct idcache *c, size_t i)
{
    struct entry *e = &c->ring[c->index[i] - 1];
    void *obj = e->obj;
    index_remove(c, i);
    e->obj = NULL;
    c->count--;
    c->bytes -= e->bytes;
    return obj;
}

/* Releases entries, oldest first, until `need` more bytes fit. In ring
 * order the oldest entry is at or after `next`. Under the lock: this only
 * runs when a backlog has filled the byte budget. */
static void evict_for(struct idcache *c, size_t need)
{
    for (size_t k = 0; k < c->cap && c->bytes + need > c->max_bytes; k++) {
        struct entry *e = &c->ring[(c->next + k) % c->cap];
        if (e->obj)
            c->free_obj(remove_at(c, find(c, e->id, e->hash)));
    }
}

int idcache_put(struct idcache *c, const char *id, void *obj, size_t bytes)
{
    if (strlen(id) >= IDS_MAX_LEN || bytes > c->max_bytes) {
        c->free_obj(obj);
        return -1;
    }
    void *old = NULL, *evicted = NULL;
    uint32_t h = strhash(id);
    pthread_mutex_lock(&c->mu);
    size_t i = find(c, id, h);
    if (i != SIZE_MAX)
        old = remove_at(c, i);
    struct entry *e = &c->ring[c->next];
    if (e->obj) /* the oldest entry gives way */
        evicted = remove_at(c, find(c, e->id, e->hash));
    if (c->bytes + bytes > c->max_bytes)
        evict_for(c, bytes);
    e->obj = obj;
    e->bytes = bytes;
    c->bytes += bytes;
    e->hash = h;
    snprintf(e->id, sizeof(e->id), "%s", id);
    for (i = h & c->mask; c->index[i]; i = (i + 1) & c->mask)
        ;
    c->index[i] = (uint32_t)(c->next + 1);
    c->next = (c->next + 1) % c->cap;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    /* Released outside the lock: freeing is the slow part. */
    if (old)
        c->free_obj(old);
    if (evicted)
        c->free_obj(evicted);
    return 0;
}

void *idcache_take(struct idcache *c, const char *id)
{
    uint32_t h = strhash(id);
    pthread_mutex_lock(&c->mu);
    size_t i = find(c, id, h);
    void *obj = i != SIZE_MAX ? remove_at(c, i) : NULL;
    pthread_mutex_unlock(&c->mu);
    return obj;
}

void idcache_drop(struct idcache *c, const char *id)
{
    void *obj = idcache_take(c, id);
    if (obj)
        c->free_obj(obj);
}

size_t idcache_count(struct idcache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
