/* What follows an attempt: 2xx, 410, retries, exhaustion, Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "webhook/outcome.h"

#define NOW INT64_C(1700000000000)

static struct webhook_schedule sched(void)
{
    struct webhook_schedule s;
    assert_int_equal(webhook_schedule_parse("100ms,1s,10s", &s), 0);
    return s;
}

static void test_success(void **state)
{
    (void)state;
    struct webhook_schedule s = sched();
    int64_t at = -1;
    const int ok[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(webhook_outcome(&s, 0, 1, ok[i], 0, NOW, &at), DELIVERY_DELIVERED);
        assert_int_equal(at, 0);
    }
    /* Success on the last allowed attempt still counts. */
    assert_int_equal(webhook_outcome(&s, 0, 4, 200, 0, NOW, &at), DELIVERY_DELIVERED);
}

static void test_gone_stops(void **state)
{
    (void)state;
    struct webhook_schedule s = sched();
    int64_t at = -1;
    assert_int_equal(webhook_outcome(&s, 0, 1, 410, 0, NOW, &at), DELIVERY_FAILED);
    assert_int_equal(at, 0);
}

static void test_retry_then_exhaust(void **state)
{
    (void)state;
    struct webhook_schedule s = sched();
    int64_t at;
    /* No response (connect error, timeout), 3xx, 4xx, 5xx all retry. */
    const int codes[] = {0, 199, 301, 302, 304, 400, 404, 409, 500, 502};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_int_equal(webhook_outcome(&s, 0, 1, codes[i], 0, NOW, &at), DELIVERY_RETRYING);
        assert_int_equal(at, NOW + 100);
    }
    /* The retry number is the count of attempts made so far. */
    assert_int_equal(webhook_outcome(&s, 0, 2, 500, 0, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 1000);
    assert_int_equal(webhook_outcome(&s, 0, 3, 500, 0, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 10000);
    /* 3 retries = 4 attempts; the 4th failure is final. */
    assert_int_equal(webhook_outcome(&s, 0, 4, 500, 0, NOW, &at), DELIVERY_FAILED);
    assert_int_equal(at, 0);
    assert_int_equal(webhook_outcome(&s, 0, 4, 0, 0, NOW, &at), DELIVERY_FAILED);
}

static void test_retry_jittered(void **state)
{
    (void)state;
    struct webhook_schedule s = sched();
    int64_t at;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(webhook_outcome(&s, 20, 2, 503, 0, NOW, &at), DELIVERY_RETRYING);
        assert_in_range(at, NOW + 800, NOW + 1200);
    }
}

static void test_retry_after(void **state)
{
    (void)state;
    struct webhook_schedule s = sched();
    int64_t at;
    /* Longer than the schedule's delay: honoured. */
    assert_int_equal(webhook_outcome(&s, 0, 1, 429, 5, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 5000);
    assert_int_equal(webhook_outcome(&s, 0, 1, 503, 5, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 5000);
    /* Shorter than the schedule's delay: the schedule wins. */
    assert_int_equal(webhook_outcome(&s, 0, 3, 429, 1, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 10000);
    /* Capped at the largest delay of the schedule (10 s). */
    assert_int_equal(webhook_outcome(&s, 0, 1, 429, 3600, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 10000);
    assert_int_equal(webhook_outcome(&s, 0, 1, 503, INT64_MAX, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 10000);
    /* Ignored on other statuses. */
    assert_int_equal(webhook_outcome(&s, 0, 1, 500, 5, NOW, &at), DELIVERY_RETRYING);
    assert_int_equal(at, NOW + 100);
    /* It never adds attempts. */
    assert_int_equal(webhook_outcome(&s, 0, 4, 429, 5, NOW, &at), DELIVERY_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_gone_stops),
        cmocka_unit_test(test_retry_then_exhaust),
        cmocka_unit_test(test_retry_jittered),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
