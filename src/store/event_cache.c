/* Entries live in a ring of `capacity` slots, overwritten oldest first; an
 * open-addressing index (linear probing, at most half full) maps an id to
 * its slot. Removal uses backward-shift deletion, so the index never holds
 * tombstones and lookups stay short however long the server runs. */
#include "store/event_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"

struct entry {
    bool used;
    uint32_t hash;
    char id[IDS_MAX_LEN];
    char *body, *url, *secret;
};

struct event_cache {
    pthread_mutex_t mu;
    struct entry *ring;
    size_t cap, next, count;
    uint32_t *index; /* ring position + 1; 0 = empty */
    size_t mask;     /* index size - 1 (a power of two >= 2 * cap) */
};

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

struct event_cache *event_cache_new(size_t capacity)
{
    if (capacity == 0 || capacity > UINT32_MAX / 4)
        return NULL;
    struct event_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    size_t n = 1;
    while (n < 2 * capacity)
        n <<= 1;
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

static void entry_clear(struct entry *e)
{
    free(e->body);
    free(e->url);
    free(e->secret);
    e->body = e->url = e->secret = NULL;
    e->used = false;
}

void event_cache_free(struct event_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        entry_clear(&c->ring[i]);
    free(c->ring);
    free(c->index);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The index position holding id, or SIZE_MAX. */
static size_t find(const struct event_cache *c, const char *id, uint32_t h)
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
static void index_remove(struct event_cache *c, size_t i)
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

/* Removes the entry at index position i from index and ring, handing its
 * strings out when the pointers are given, freeing them otherwise. */
static void remove_at(struct event_cache *c, size_t i, char **body, char **url, char **secret)
{
    struct entry *e = &c->ring[c->index[i] - 1];
    index_remove(c, i);
    if (body) {
        *body = e->body;
        *url = e->url;
        *secret = e->secret;
        e->body = e->url = e->secret = NULL;
    }
    entry_clear(e);
    c->count--;
}

int event_cache_put(struct event_cache *c, const char *event_id, const char *body,
                    const char *url, const char *secret)
{
    if (strlen(event_id) >= IDS_MAX_LEN)
        return -1;
    char *b = strdup(body), *u = strdup(url), *s = strdup(secret);
    if (!b || !u || !s) {
        free(b);
        free(u);
        free(s);
        return -1;
    }
    uint32_t h = hash_id(event_id);
    pthread_mutex_lock(&c->mu);
    size_t i = find(c, event_id, h);
    if (i != SIZE_MAX)
        remove_at(c, i, NULL, NULL, NULL);
    struct entry *e = &c->ring[c->next];
    if (e->used) /* the oldest entry gives way */
        remove_at(c, find(c, e->id, e->hash), NULL, NULL, NULL);
    e->used = true;
    e->hash = h;
    snprintf(e->id, sizeof(e->id), "%s", event_id);
    e->body = b;
    e->url = u;
    e->secret = s;
    for (i = h & c->mask; c->index[i]; i = (i + 1) & c->mask)
        ;
    c->index[i] = (uint32_t)(c->next + 1);
    c->next = (c->next + 1) % c->cap;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

bool event_cache_take(struct event_cache *c, const char *event_id, char **body, char **url,
                      char **secret)
{
    pthread_mutex_lock(&c->mu);
    size_t i = find(c, event_id, hash_id(event_id));
    if (i != SIZE_MAX)
        remove_at(c, i, body, url, secret);
    pthread_mutex_unlock(&c->mu);
    return i != SIZE_MAX;
}

void event_cache_drop(struct event_cache *c, const char *event_id)
{
    pthread_mutex_lock(&c->mu);
    size_t i = find(c, event_id, hash_id(event_id));
    if (i != SIZE_MAX)
        remove_at(c, i, NULL, NULL, NULL);
    pthread_mutex_unlock(&c->mu);
}

size_t event_cache_count(struct event_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
