#include "util/i64set.h"

#include <stdlib.h>

#define MIN_SLOTS 16

struct i64set {
    int64_t *slots; /* 0 = empty */
    size_t mask;    /* slots - 1; slots is a power of two */
    size_t n;
};

/* splitmix64's finaliser: row ids are sequential, and linear probing needs
 * neighbouring keys spread over the table. */
static size_t slot_of(const struct i64set *s, int64_t k)
{
    uint64_t x = (uint64_t)k;
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return (size_t)x & s->mask;
}

struct i64set *i64set_new(void)
{
    struct i64set *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->slots = calloc(MIN_SLOTS, sizeof(*s->slots));
    if (!s->slots) {
        free(s);
        return NULL;
    }
    s->mask = MIN_SLOTS - 1;
    return s;
}

void i64set_free(struct i64set *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s);
}

/* The slot holding k, or the empty slot ending its run. */
static size_t probe(const struct i64set *s, int64_t k)
{
    size_t i = slot_of(s, k);
    while (s->slots[i] != 0 && s->slots[i] != k)
        i = (i + 1) & s->mask;
    return i;
}

static int grow(struct i64set *s)
{
    size_t cap = (s->mask + 1) * 2;
    int64_t *old = s->slots, *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    size_t old_cap = s->mask + 1;
    s->slots = slots;
    s->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != 0)
            s->slots[probe(s, old[i])] = old[i];
    free(old);
    return 0;
}

int i64set_add(struct i64set *s, int64_t k)
{
    if (k == 0)
        return -1;
    size_t i = probe(s, k);
    if (s->slots[i] == k)
        return 0;
    /* At most half full, so that runs stay short. */
    if ((s->n + 1) * 2 > s->mask + 1) {
        if (grow(s) != 0)
            return -1;
        i = probe(s, k);
    }
    s->slots[i] = k;
    s->n++;
    return 0;
}

bool i64set_remove(struct i64set *s, int64_t k)
{
    if (k == 0)
        return false;
    size_t i = probe(s, k);
    if (s->slots[i] != k)
        return false;
    s->slots[i] = 0;
    s->n--;
    /* Shift back the keys after the hole that can no longer be reached:
     * those whose home slot is not cyclically within (hole, j]. */
    for (size_t j = (i + 1) & s->mask; s->slots[j] != 0; j = (j + 1) & s->mask) {
        size_t home = slot_of(s, s->slots[j]);
        bool reachable = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!reachable) {
            s->slots[i] = s->slots[j];
            s->slots[j] = 0;
            i = j;
        }
    }
    return true;
}

bool i64set_has(const struct i64set *s, int64_t k)
{
    return k != 0 && s->slots[probe(s, k)] == k;
}

size_t i64set_count(const struct i64set *s)
{
    return s->n;
}
