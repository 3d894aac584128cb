/* The bounded event-id map that carries prepared webhook bodies from the
 * pipeline to the first claim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/event_cache.h"

static void id_of(char *out, size_t cap, int i)
{
    snprintf(out, cap, "msg_%026d", i);
}

static void put(struct event_cache *c, int i)
{
    char id[40], body[40];
    id_of(id, sizeof(id), i);
    snprintf(body, sizeof(body), "{\"n\":%d}", i);
    assert_int_equal(event_cache_put(c, id, body, "https://r.example/h", "whsec_x"), 0);
}

/* Returns the body's number, or -1 when absent. */
static int take(struct event_cache *c, int i)
{
    char id[40];
    id_of(id, sizeof(id), i);
    char *body = NULL, *url = NULL, *secret = NULL;
    if (!event_cache_take(c, id, &body, &url, &secret))
        return -1;
    assert_string_equal(url, "https://r.example/h");
    assert_string_equal(secret, "whsec_x");
    int n = -1;
    assert_int_equal(sscanf(body, "{\"n\":%d}", &n), 1);
    free(body);
    free(url);
    free(secret);
    return n;
}

static void test_take_consumes(void **state)
{
    (void)state;
    struct event_cache *c = event_cache_new(8);
    assert_non_null(c);
    put(c, 1);
    put(c, 2);
    assert_int_equal(event_cache_count(c), 2);
    assert_int_equal(take(c, 2), 2);
    assert_int_equal(take(c, 2), -1); /* consumed by the first take */
    assert_int_equal(take(c, 3), -1); /* never put */
    assert_int_equal(take(c, 1), 1);
    assert_int_equal(event_cache_count(c), 0);
    event_cache_free(c);
}

static void test_oldest_evicted_when_full(void **state)
{
    (void)state;
    struct event_cache *c = event_cache_new(4);
    for (int i = 0; i < 6; i++)
        put(c, i);
    assert_int_equal(event_cache_count(c), 4);
    assert_int_equal(take(c, 0), -1);
    assert_int_equal(take(c, 1), -1);
    for (int i = 2; i < 6; i++)
        assert_int_equal(take(c, i), i);
    event_cache_free(c);
}

static void test_put_replaces_same_id(void **state)
{
    (void)state;
    struct event_cache *c = event_cache_new(4);
    put(c, 7);
    assert_int_equal(event_cache_put(c, "msg_00000000000000000000000007", "{\"n\":70}",
                                     "https://r.example/h", "whsec_x"),
                     0);
    assert_int_equal(event_cache_count(c), 1);
    assert_int_equal(take(c, 7), 70);
    event_cache_drop(c, "msg_00000000000000000000000007"); /* absent: no effect */
    event_cache_free(c);
}

/* A long run of puts, takes and drops in random order, checked against an
 * exact model: an entry is present until it is taken, dropped or replaced,
 * or until `capacity` further puts have cycled the ring over its slot.
 * Exercises collisions, ring wrap-around and backward-shift deletion. */
static void put_n(struct event_cache *c, int id, long long n)
{
    char s[40], body[40];
    id_of(s, sizeof(s), id);
    snprintf(body, sizeof(body), "{\"n\":%lld}", n);
    assert_int_equal(event_cache_put(c, s, body, "https://r.example/h", "whsec_x"), 0);
}

static void test_matches_model_under_churn(void **state)
{
    (void)state;
    enum { CAP = 64, IDS = 512, ROUNDS = 200000 };
    struct event_cache *c = event_cache_new(CAP);
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
            put_n(c, id, puts);
        } else if (op == 2) {
            assert_int_equal(take(c, id), present ? (int)put_at[id] : -1);
            put_at[id] = 0;
        } else {
            char s[40];
            id_of(s, sizeof(s), id);
            event_cache_drop(c, s);
            put_at[id] = 0;
        }
    }
    size_t expect = 0;
    for (int id = 0; id < IDS; id++)
        if (put_at[id] && puts - put_at[id] < CAP)
            expect++;
    assert_int_equal(event_cache_count(c), expect);
    assert_true(expect > 0);
    event_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_consumes),
        cmocka_unit_test(test_oldest_evicted_when_full),
        cmocka_unit_test(test_put_replaces_same_id),
        cmocka_unit_test(test_matches_model_under_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
