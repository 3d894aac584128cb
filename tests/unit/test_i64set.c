/* The set of row ids the SQLite store keeps for events handed out in
 * memory: membership after adds, removes and growth, checked against a
 * plain array over many random operations (removal shifts runs back, the
 * part that is easy to get wrong). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "util/i64set.h"

static void test_basics(void **state)
{
    (void)state;
    struct i64set *s = i64set_new();
    assert_non_null(s);
    assert_false(i64set_has(s, 7));
    assert_int_equal(i64set_add(s, 7), 0);
    assert_int_equal(i64set_add(s, 7), 0); /* again: no-op */
    assert_int_equal(i64set_count(s), 1);
    assert_true(i64set_has(s, 7));
    assert_int_equal(i64set_add(s, 0), -1); /* 0 marks empty slots */
    assert_false(i64set_has(s, 0));
    assert_false(i64set_remove(s, 0));
    assert_false(i64set_remove(s, 8));
    assert_true(i64set_remove(s, 7));
    assert_false(i64set_remove(s, 7));
    assert_int_equal(i64set_count(s), 0);
    assert_int_equal(i64set_add(s, INT64_MIN), 0);
    assert_int_equal(i64set_add(s, INT64_MAX), 0);
    assert_int_equal(i64set_add(s, -1), 0);
    assert_true(i64set_has(s, INT64_MIN) && i64set_has(s, INT64_MAX) && i64set_has(s, -1));
    i64set_free(s);
    i64set_free(NULL);
}

/* Random adds and removes over a small key range (so that runs collide
 * and wrap around the table), mirrored in a plain array. */
static void test_against_model(void **state)
{
    (void)state;
    enum { KEYS = 600, OPS = 200000 };
    bool model[KEYS + 1] = {false};
    size_t count = 0;
    struct i64set *s = i64set_new();
    assert_non_null(s);
    srand(20261123);
    for (int op = 0; op < OPS; op++) {
        int64_t k = 1 + rand() % KEYS;
        /* Phases that fill, then drain, then mix: growth and long runs. */
        int phase = (op / 20000) % 3;
        bool add = phase == 0 ? rand() % 4 != 0 : phase == 1 ? rand() % 4 == 0 : rand() % 2;
        if (add) {
            assert_int_equal(i64set_add(s, k), 0);
            count += !model[k];
            model[k] = true;
        } else {
            assert_int_equal(i64set_remove(s, k), model[k]);
            count -= model[k];
            model[k] = false;
        }
        if (op % 997 == 0)
            for (int64_t q = 1; q <= KEYS; q++)
                assert_int_equal(i64set_has(s, q), model[q]);
        assert_int_equal(i64set_count(s), count);
    }
    for (int64_t q = 1; q <= KEYS; q++)
        assert_int_equal(i64set_has(s, q), model[q]);
    i64set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
