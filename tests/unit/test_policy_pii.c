/* PII detectors: formats, checksums and the hard negatives around them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy_spans.h"

#define PII(entity)                                                                                \
    "{\"id\":\"p\",\"type\":\"pii\",\"action\":\"flag\",\"entities\":[\"" entity "\"]}"
#define PII_ALL "{\"id\":\"p\",\"type\":\"pii\",\"action\":\"flag\"}"

static void test_email(void **state)
{
    assert_string_equal(spans(PII("email"), "write to ana.b+x@mail.example.co.uk today"),
                        "email:ana.b+x@mail.example.co.uk");
    assert_string_equal(spans(PII("email"), "<bob@example.org>, carol@example.net."),
                        "email:bob@example.org|email:carol@example.net");
    assert_string_equal(spans(PII("email"), "git clone git@github.com:org/repo.git"), "");
    assert_string_equal(spans(PII("email"), "user@host and @handle and a@b"), "");
}

static void test_phone(void **state)
{
    assert_string_equal(spans(PII("phone"), "call +44 20 7946 0958 now"), "phone:+44 20 7946 0958");
    assert_string_equal(spans(PII("phone"), "office (415) 555-2671."), "phone:(415) 555-2671");
    assert_string_equal(spans(PII("phone"), "or 415.555.2671"), "phone:415.555.2671");
    assert_string_equal(spans(PII("phone"), "+33 1 42 68 53 00"), "phone:+33 1 42 68 53 00");
    assert_string_equal(spans(PII("phone"), "ring 020 7946 0958"), "phone:020 7946 0958");
    /* dates, versions, ISBNs, grouped codes */
    assert_string_equal(spans(PII("phone"), "on 2024-03-15 at 10:30"), "");
    assert_string_equal(spans(PII("phone"), "ISBN 978-3-16-148410-0"), "");
    assert_string_equal(spans(PII("phone"), "IBAN ES91 2100 0418 4502 0005 1332"), "");
    assert_string_equal(spans(PII("phone"), "SSN 123-45-6789"), "");
}

static void test_credit_card(void **state)
{
    assert_string_equal(spans(PII("credit_card"), "card 4111 1111 1111 1111 exp 09/27"),
                        "credit_card:4111 1111 1111 1111");
    assert_string_equal(spans(PII("credit_card"), "amex 3782-822463-10005."),
                        "credit_card:3782-822463-10005");
    assert_string_equal(spans(PII("credit_card"), "plain 5555555555554444"),
                        "credit_card:5555555555554444");
    /* a number before the card is not part of it */
    assert_string_equal(spans(PII("credit_card"), "ref 12 4111 1111 1111 1111"),
                        "credit_card:4111 1111 1111 1111");
    /* Luhn fails */
    assert_string_equal(spans(PII("credit_card"), "order 4111 1111 1111 1112"), "");
    /* Luhn passes but no issuer starts with 1 or 0 */
    assert_string_equal(spans(PII("credit_card"), "id 1000 0000 0000 0008"), "");
    /* mixed separators are not a card layout */
    assert_string_equal(spans(PII("credit_card"), "4111-1111 1111-1111"), "");
    assert_string_equal(spans(PII("credit_card"), "pi 3.14159265358979323"), "");
}

static void test_iban(void **state)
{
    assert_string_equal(spans(PII("iban"), "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX"),
                        "iban:DE89 3704 0044 0532 0130 00");
    assert_string_equal(spans(PII("iban"), "to GB82WEST12345698765432."),
                        "iban:GB82WEST12345698765432");
    /* one digit off: mod-97 fails */
    assert_string_equal(spans(PII("iban"), "DE89 3704 0044 0532 0130 01"), "");
    /* wrong length for the country */
    assert_string_equal(spans(PII("iban"), "DE89370400440532013"), "");
    /* unknown country */
    assert_string_equal(spans(PII("iban"), "ZZ12345678901234567890"), "");
}

static void test_ssn(void **state)
{
    assert_string_equal(spans(PII("us_ssn"), "SSN 123-45-6789."), "us_ssn:123-45-6789");
    assert_string_equal(spans(PII("us_ssn"), "ssn 078 05 1120"), "us_ssn:078 05 1120");
    assert_string_equal(spans(PII("us_ssn"), "000-12-3456 666-12-3456 900-12-3456 999-12-3456"),
                        "");
    assert_string_equal(spans(PII("us_ssn"), "123-00-4567 123-45-0000"), "");
    assert_string_equal(spans(PII("us_ssn"), "ISBN 978-123-45-6789"), "");
    assert_string_equal(spans(PII("us_ssn"), "phone 415-555-2671"), "");
}

static void test_ip(void **state)
{
    assert_string_equal(spans(PII("ip_address"), "host 192.168.1.20, gw 10.0.0.1."),
                        "ip_address:192.168.1.20|ip_address:10.0.0.1");
    assert_string_equal(
        spans(PII("ip_address"), "v6 2001:db8::1 and ::1 and fe80::1ff:fe23:4567:890a"),
        "ip_address:2001:db8::1|ip_address:::1|ip_address:fe80::1ff:fe23:4567:890a");
    assert_string_equal(spans(PII("ip_address"), "999.1.1.1 1.3.6.1.4.1.343 version 2.4.1.1"), "");
    assert_string_equal(spans(PII("ip_address"), "std::vector Foo::bar 12:30:45 00:1A:2B:3C:4D:5E"),
                        "");
    assert_string_equal(spans(PII("ip_address"), "cafe::babe"), "");
}

static void test_entities_filter(void **state)
{
    const char *text = "mail a@example.com, card 4111111111111111";
    assert_string_equal(spans(PII("credit_card"), text), "credit_card:4111111111111111");
    assert_string_equal(spans(PII_ALL, text), "email:a@example.com|credit_card:4111111111111111");
}

static void test_unicode_offsets(void **state)
{
    /* offsets count code points: "Zoë" is 3, the email starts at 9 */
    struct policy_error err;
    const char *doc = "{\"outbound\":[" PII_ALL "]}";
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    struct policy_scratch *s = policy_scratch_new();
    struct policy_result r;
    const char *text = "Zo\xc3\xab mail zo@example.com \xe2\x9c\x93";
    assert_int_equal(policy_eval(p, s, POLICY_OUTBOUND, text, strlen(text), &r), 0);
    json_t *m = json_array_get(json_object_get(json_array_get(r.rules_triggered, 0), "matches"), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "start")), 9);
    assert_int_equal(json_integer_value(json_object_get(m, "end")), 23);
    policy_result_clear(&r);
    policy_scratch_free(s);
    policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_credit_card),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ssn),
        cmocka_unit_test(test_ip),
        cmocka_unit_test(test_entities_filter),
        cmocka_unit_test(test_unicode_offsets),
    };
    return cmocka_run_group_tests_name("policy_pii", tests, NULL, NULL);
}
