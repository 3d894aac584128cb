/* Secret detectors: provider token formats, PEM blocks, JWTs and the
 * entropy check of generic assignments. Tokens below are synthetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy_spans.h"

#define SEC "{\"id\":\"s\",\"type\":\"secrets\",\"action\":\"redact\"}"

static void test_provider_tokens(void **state)
{
    assert_string_equal(spans(SEC, "key AKIAIOSFODNN7EXAMPLE here"),
                        "aws_access_key:AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(spans(SEC, "t=ghp_R2d2C3poLuke7Leia9Han5Chewie1Yoda4Ob1"),
                        "github_token:ghp_R2d2C3poLuke7Leia9Han5Chewie1Yoda4Ob1");
    assert_string_equal(spans(SEC, "glpat-Zx8Qw3Er5Ty7Ui9Op1As"),
                        "gitlab_token:glpat-Zx8Qw3Er5Ty7Ui9Op1As");
    assert_string_equal(spans(SEC, "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
                        "slack_token:xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
    assert_string_equal(spans(SEC, "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc."),
                        "stripe_key:sk_live_4eC39HqLyjWDarjtT1zdp7dc");
    assert_string_equal(spans(SEC, "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
                        "openai_key:sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z");
    assert_string_equal(
        spans(SEC, "key sk-ant-api03-Qw3rTy6uIo9pAs2dFg5hJk8lZx1cVb4nMq7wEr0tYu3iOp6aSd9f end"),
        "anthropic_key:sk-ant-api03-Qw3rTy6uIo9pAs2dFg5hJk8lZx1cVb4nMq7wEr0tYu3iOp6aSd9f");
}

static void test_not_tokens(void **state)
{
    assert_string_equal(spans(SEC, "Use sk-... keys; ghp_ marks GitHub tokens; xoxo!"), "");
    assert_string_equal(spans(SEC, "publishable pk_live_4eC39HqLyjWDarjtT1zdp7dc is public"), "");
    assert_string_equal(spans(SEC, "sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"), "");
    assert_string_equal(spans(SEC, "sk_live_aaaaaaaaaaaaaaaaaaaa is a dummy"), "");
}

static void test_pem(void **state)
{
    const char *key = "before -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAbCd+/==\n"
                      "-----END RSA PRIVATE KEY----- after";
    assert_string_equal(spans(SEC, key), "private_key:-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n"
                                         "AbCd+/==\n-----END RSA PRIVATE KEY-----");
    /* truncated: header and body are still redacted */
    assert_string_equal(spans(SEC, "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg"),
                        "private_key:-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg");
    assert_string_equal(spans(SEC, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
                        "");
}

static void test_jwt(void **state)
{
    const char *jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_"
                      "XgL0n3I9PlFUP0THsR8U";
    char text[256];
    snprintf(text, sizeof(text), "Authorization: Bearer %s\n", jwt);
    char want[256];
    snprintf(want, sizeof(want), "jwt:%s", jwt);
    assert_string_equal(spans(SEC, text), want);
    assert_string_equal(spans(SEC, "the JWT has three parts: eyJ.eyJ.sig"), "");
}

static void test_generic_assignment(void **state)
{
    assert_string_equal(spans(SEC, "password=Tr0ub4dor&3xKq"), "generic_secret:Tr0ub4dor&3xKq");
    assert_string_equal(spans(SEC, "{\"client_secret\": \"9fQ2mX7pL4vR8sT1\"}"),
                        "generic_secret:9fQ2mX7pL4vR8sT1");
    assert_string_equal(spans(SEC, "DB_PASSWORD: 'h7Gk2Lp9Qz4W'"), "generic_secret:h7Gk2Lp9Qz4W");
    /* placeholders, references and low-entropy values */
    assert_string_equal(spans(SEC, "password=changeme123"), "");
    assert_string_equal(spans(SEC, "api_key = os.environ[\"API_KEY\"]"), "");
    assert_string_equal(spans(SEC, "token: \"********\""), "");
    assert_string_equal(spans(SEC, "api_key: YOUR_API_KEY"), "");
    assert_string_equal(spans(SEC, "client_secret=xxxxxxxxxxxxxxxx"), "");
    assert_string_equal(spans(SEC, "password = aaaaaaaaaa"), "");
    assert_string_equal(spans(SEC, "if password == confirm_password:"), "");
    assert_string_equal(spans(SEC, "password_hash = \"abc\""), "");
}

static void test_redaction_keeps_name(void **state)
{
    struct policy_error err;
    const char *doc = "{\"inbound\":[" SEC "]}";
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    struct policy_scratch *s = policy_scratch_new();
    struct policy_result r;
    const char *text = "export API_KEY=Zq8#Lm4@Xr2!Pw6 && run";
    assert_int_equal(policy_eval(p, s, POLICY_INBOUND, text, strlen(text), &r), 0);
    assert_string_equal(r.filtered, "export API_KEY=[REDACTED:SECRET] && run");
    policy_result_clear(&r);
    policy_scratch_free(s);
    policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_tokens),
        cmocka_unit_test(test_not_tokens),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_generic_assignment),
        cmocka_unit_test(test_redaction_keeps_name),
    };
    return cmocka_run_group_tests_name("policy_secrets", tests, NULL, NULL);
}
