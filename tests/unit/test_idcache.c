/* The bounded id map that hands prepared work between threads through
 * memory (new jobs to their first step). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/idcache.h"

static int released; /* objects released by the cache */

static void release(void *obj)
{
    released++;
    free(obj);
}

static void id_of(char *out, size_t cap, int i)
{
    snprintf(out, cap, "msg_%026d", i);
}

static void put(struct idcache *c, int i, long long value)
{
    char id[40];
    id_of(id, sizeof(id), i);
    long long *v = malloc(sizeof(*v));
    assert_non_null(v);
    *v = value;
    assert_int_equal(idcache_put(c, id, v, sizeof(*v)), 0);
}

/* Returns the object's value, or -1 when absent. */
static long long take(struct idcache *c, int i)
{
    char id[40];
    id_of(id, sizeof(id), i);
    long long *v = idcache_take(c, id);
    if (!v)
        return -1;
    long long r = *v;
    free(v);
    return r;
}

static void test_take_consumes(void **state)
{
    (void)state;
    struct idcache *c = idcache_new(8, 1 << 20, release);
    assert_non_null(c);
    put(c, 1, 10);
    put(c, 2, 20);
    assert_int_equal(idcache_count(c), 2);
    assert_int_equal(take(c, 2), 20);
    assert_int_equal(take(c, 2), -1); /* consumed by the first take */
    assert_int_equal(take(c, 3), -1); /* never put */
    assert_int_equal(take(c, 1), 10);
    assert_int_equal(idcache_count(c), 0);
    idcache_free(c);
}

static void test_oldest_evicted_and_released(void **state)
{
    (void)state;
    released = 0;
    struct idcache *c = idcache_new(4, 1 << 20, release);
    for (int i = 0; i < 6; i++)
        put(c, i, i);
    assert_int_equal(idcache_count(c), 4);
    assert_int_equal(released, 2);
    assert_int_equal(take(c, 0), -1);
    assert_int_equal(take(c, 1), -1);
    assert_int_equal(take(c, 2), 2);
    idcache_free(c); /* releases the three left */
    assert_int_equal(released, 5);
}

static void test_put_replaces_and_drop_releases(void **state)
{
    (void)state;
    released = 0;
    struct idcache *c = idcache_new(4, 1 << 20, release);
    put(c, 7, 1);
    put(c, 7, 2);
    assert_int_equal(idcache_count(c), 1);
    assert_int_equal(released, 1);
    put(c, 8, 3);
    char id[40];
    id_of(id, sizeof(id), 8);
    idcache_drop(c, id);
    idcache_drop(c, id); /* absent: no effect */
    assert_int_equal(released, 2);
    assert_int_equal(take(c, 7), 2);
    /* An id too long to hold is refused and its object released. */
    char longid[200];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(idcache_put(c, longid, malloc(8), 8), -1);
    assert_int_equal(released, 3);
    idcache_free(c);
}

/* The byte budget evicts the oldest entries first, and an object larger
 * than the whole budget is not kept. */
static void test_byte_budget(void **state)
{
    (void)state;
    released = 0;
    struct idcache *c = idcache_new(100, 10 * sizeof(long long), release);
    for (int i = 0; i < 10; i++)
        put(c, i, i); /* 10 x 8 bytes: exactly the budget */
    assert_int_equal(idcache_count(c), 10);
    assert_int_equal(take(c, 3), 3); /* a hole among the oldest */
    put(c, 10, 10);                  /* fits in the hole: nothing evicted */
    assert_int_equal(released, 0);
    char id[40];
    id_of(id, sizeof(id), 11);
    long long *big = malloc(3 * sizeof(long long));
    assert_int_equal(idcache_put(c, id, big, 3 * sizeof(long long)), 0);
    /* 24 bytes needed: the three oldest (0, 1, 2) go, 4 onwards stay. */
    assert_int_equal(released, 3);
    assert_int_equal(take(c, 0), -1);
    assert_int_equal(take(c, 2), -1);
    assert_int_equal(take(c, 4), 4);
    assert_int_equal(take(c, 10), 10);
    char huge_id[40];
    id_of(huge_id, sizeof(huge_id), 12);
    assert_int_equal(idcache_put(c, huge_id, malloc(8), 11 * sizeof(long long)), -1);
    assert_int_equal(released, 4);
    idcache_free(c);
}

/* A long run of puts, takes and drops in random order, checked against an
 * exact model: an entry is present until it is taken, dropped or replaced,
 * or until `capacity` further puts have cycled the ring over its slot.
 * Exercises collisions, ring wrap-around and backward-shift deletion. */
static void test_matches_model_under_churn(void **state)
{
    (void)state;
    enum { CAP = 64, IDS = 512, ROUNDS = 200000 };
    struct idcache *c = idcache_new(CAP, 1 << 20, release);
    static long long put_at[IDS]; /* puts so far when id was put; 0 = absent */
    memset(put_at, 0, sizeof(put_at));
    long long puts = 0;
    unsigned r = 12345;
    for (int round = 0; round < ROUNDS; round++) {
        r = r * 1103515245u + 12345u;
        int id = (int)((r >> 8) % IDS);
        int op = (int)((r >> 4) % 4);
        bool present = put_at[id] && puts - put_at[id] < CAP;
        if (op < 2) {
            put_at[id] = ++puts;
            put(c, id, puts);
        } else if (op == 2) {
            assert_int_equal(take(c, id), present ? put_at[id] : -1);
            put_at[id] = 0;
        } else {
            char s[40];
            id_of(s, sizeof(s), id);
            idcache_drop(c, s);
            put_at[id] = 0;
        }
    }
    size_t expect = 0;
    for (int id = 0; id < IDS; id++)
        if (put_at[id] && puts - put_at[id] < CAP)
            expect++;
    assert_int_equal(idcache_count(c), expect);
    assert_true(expect > 0);
    idcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_consumes),
        cmocka_unit_test(test_oldest_evicted_and_released),
        cmocka_unit_test(test_put_replaces_and_drop_releases),
        cmocka_unit_test(test_byte_budget),
        cmocka_unit_test(test_matches_model_under_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
