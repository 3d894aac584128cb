/* A set of nonzero 64-bit keys, for in-memory bookkeeping such as which
 * stored rows another thread is working on. Open addressing with linear
 * probing; removal shifts the run back, so there are no tombstones and
 * lookups stay short however many adds and removes it sees. Not
 * thread-safe: callers lock. */
#ifndef COLLIE_UTIL_I64SET_H
#define COLLIE_UTIL_I64SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct i64set;

/* An empty set; NULL when memory ran out. */
struct i64set *i64set_new(void);
/* Accepts NULL. */
void i64set_free(struct i64set *s);

/* Adds k (nonzero; adding a member again is a no-op). 0, or -1 when k is 0
 * or memory ran out (the set is unchanged then). */
int i64set_add(struct i64set *s, int64_t k);
/* Removes k; false when it was not a member. */
bool i64set_remove(struct i64set *s, int64_t k);
bool i64set_has(const struct i64set *s, int64_t k);
size_t i64set_count(const struct i64set *s);

#endif
