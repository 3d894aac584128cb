/* The retry schedule: parsing, the default, jitter bounds, exhaustion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "webhook/schedule.h"

#define S 1000
#define M (60 * S)
#define H (60 * M)

static void test_default(void **state)
{
    (void)state;
    struct webhook_schedule s;
    webhook_schedule_default(&s);
    const int64_t want[] = {5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H};
    assert_int_equal(s.n, 7);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.delay_ms[i], want[i]);
    assert_int_equal(webhook_schedule_max_delay(&s), 10 * H);
}

static void test_parse_good(void **state)
{
    (void)state;
    struct webhook_schedule s;
    assert_int_equal(webhook_schedule_parse("200ms,1s,5m,2h", &s), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.delay_ms[0], 200);
    assert_int_equal(s.delay_ms[1], 1 * S);
    assert_int_equal(s.delay_ms[2], 5 * M);
    assert_int_equal(s.delay_ms[3], 2 * H);

    assert_int_equal(webhook_schedule_parse("50ms", &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.delay_ms[0], 50);

    /* Blanks around items are tolerated; zero is a valid delay. */
    assert_int_equal(webhook_schedule_parse(" 5s , 0ms,\t10m ", &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.delay_ms[0], 5 * S);
    assert_int_equal(s.delay_ms[1], 0);
    assert_int_equal(s.delay_ms[2], 10 * M);

    /* The largest allowed item, and exactly WEBHOOK_SCHEDULE_MAX items. */
    assert_int_equal(webhook_schedule_parse("720h", &s), 0);
    assert_int_equal(s.delay_ms[0], WEBHOOK_SCHEDULE_DELAY_MAX_MS);
    char buf[WEBHOOK_SCHEDULE_MAX * 8] = "";
    for (int i = 0; i < WEBHOOK_SCHEDULE_MAX; i++)
        strcat(buf, i ? ",1s" : "1s");
    assert_int_equal(webhook_schedule_parse(buf, &s), 0);
    assert_int_equal(s.n, WEBHOOK_SCHEDULE_MAX);
}

static void test_parse_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        ",",
        "1s,",
        ",1s",
        "1s,,2s",
        "1s, ,2s",
        "5",  /* no unit */
        "5x", /* unknown unit */
        "5sec",
        "5S",  /* units are lower case */
        "5 s", /* no blank inside an item */
        "s",
        "-1s",
        "+1s",
        "1.5s",
        "0x10s",
        "721h",                  /* over 30 days */
        "2592000001ms",          /* 30 days + 1 ms */
        "99999999999999999999h", /* overflows int64 */
        "9223372036854775807ms",
        "9223372036854775808ms",
        "1s;2s",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct webhook_schedule s;
        webhook_schedule_default(&s);
        if (webhook_schedule_parse(bad[i], &s) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        /* A failed parse leaves the schedule as it was. */
        assert_int_equal(s.n, 7);
        assert_int_equal(s.delay_ms[0], 5 * S);
    }
    struct webhook_schedule s;
    assert_int_equal(webhook_schedule_parse(NULL, &s), -1);

    /* One item too many. */
    char buf[(WEBHOOK_SCHEDULE_MAX + 1) * 8] = "";
    for (int i = 0; i <= WEBHOOK_SCHEDULE_MAX; i++)
        strcat(buf, i ? ",1s" : "1s");
    assert_int_equal(webhook_schedule_parse(buf, &s), -1);
}

static void test_delay_no_jitter_and_exhaustion(void **state)
{
    (void)state;
    struct webhook_schedule s;
    assert_int_equal(webhook_schedule_parse("100ms,2s,3m", &s), 0);
    assert_int_equal(webhook_schedule_delay(&s, 1, 0), 100);
    assert_int_equal(webhook_schedule_delay(&s, 2, 0), 2 * S);
    assert_int_equal(webhook_schedule_delay(&s, 3, 0), 3 * M);
    /* Attempt 1 + 3 retries = 4 attempts; a 4th retry does not exist. */
    assert_int_equal(webhook_schedule_delay(&s, 4, 0), -1);
    assert_int_equal(webhook_schedule_delay(&s, 4, 20), -1);
    assert_int_equal(webhook_schedule_delay(&s, 100, 0), -1);
    assert_int_equal(webhook_schedule_delay(&s, 0, 0), -1);
    assert_int_equal(webhook_schedule_delay(&s, -1, 0), -1);
    assert_int_equal(webhook_schedule_delay(NULL, 1, 0), -1);
    /* Negative jitter means none. */
    assert_int_equal(webhook_schedule_delay(&s, 2, -5), 2 * S);

    struct webhook_schedule d;
    webhook_schedule_default(&d);
    assert_int_equal(webhook_schedule_delay(&d, 7, 0), 10 * H);
    assert_int_equal(webhook_schedule_delay(&d, 8, 0), -1);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    struct webhook_schedule s;
    assert_int_equal(webhook_schedule_parse("1s,10h,0ms,7ms", &s), 0);

    /* 1 s ± 20 %: every draw within [800, 1200], and the draws spread over
     * the range rather than sitting on one value. */
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    double sum = 0;
    const int draws = 20000;
    for (int i = 0; i < draws; i++) {
        int64_t v = webhook_schedule_delay(&s, 1, 20);
        assert_in_range(v, 800, 1200);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += (double)v;
    }
    assert_true(lo < 820);
    assert_true(hi > 1180);
    double mean = sum / draws;
    assert_true(mean > 990 && mean < 1010);

    /* Large delays: 10 h ± 50 %. */
    for (int i = 0; i < 2000; i++)
        assert_in_range(webhook_schedule_delay(&s, 2, 50), 5 * H, 15 * H);
    /* Zero stays zero; a tiny delay stays within its (integer) bounds. */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(webhook_schedule_delay(&s, 3, 20), 0);
        assert_in_range(webhook_schedule_delay(&s, 4, 50), 4, 10);
    }
    /* Jitter over 100 % is clamped to 100 %: never negative. */
    for (int i = 0; i < 2000; i++)
        assert_in_range(webhook_schedule_delay(&s, 1, 500), 0, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),       cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),     cmocka_unit_test(test_delay_no_jitter_and_exhaustion),
        cmocka_unit_test(test_jitter_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
