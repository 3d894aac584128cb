/* Policy documents: validation errors (rule, field, reason), defaults,
 * normalised form, legacy fallback, reference counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

static struct policy *compile_str(const char *doc, struct policy_error *err)
{
    return policy_compile(doc, strlen(doc), err);
}

/* Asserts that doc is refused, naming rule_id and a field containing
 * field_part, with a message containing msg_part. */
static void expect_error(const char *doc, const char *rule_id, const char *field_part,
                         const char *msg_part)
{
    struct policy_error err;
    struct policy *p = compile_str(doc, &err);
    if (p) {
        policy_release(p);
        fail_msg("accepted: %s", doc);
    }
    if (strcmp(err.rule_id, rule_id) != 0 || !strstr(err.field, field_part) ||
        !strstr(err.message, msg_part))
        fail_msg("doc %s\n got rule_id=%s field=%s message=%s", doc, err.rule_id, err.field,
                 err.message);
}

static void test_default_policy(void **state)
{
    struct policy_error err;
    struct policy *p = compile_str(policy_default_json(), &err);
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p, POLICY_INBOUND), 3);
    assert_int_equal(policy_rule_count(p, POLICY_OUTBOUND), 2);
    assert_int_equal(policy_rule_count(p, POLICY_LEGACY), 3); /* falls back to inbound */
    json_t *j = policy_to_json(p);
    json_t *in = json_object_get(j, "inbound");
    assert_string_equal(json_string_value(json_object_get(json_array_get(in, 0), "type")),
                        "prompt_injection");
    json_t *pii = json_array_get(in, 2);
    assert_int_equal(json_array_size(json_object_get(pii, "entities")), 2);
    json_t *outpii = json_array_get(json_object_get(j, "outbound"), 1);
    assert_int_equal(json_array_size(json_object_get(outpii, "entities")), 6);
    assert_null(json_object_get(j, "legacy"));
    json_decref(j);
    policy_release(p);
}

static void test_normalised_defaults(void **state)
{
    struct policy_error err;
    struct policy *p =
        compile_str("{\"inbound\":[{\"id\":\"k\",\"type\":\"keywords\",\"action\":\"block\","
                    "\"keywords\":[\"a\"]},{\"id\":\"r\",\"type\":\"regex\",\"action\":\"flag\","
                    "\"pattern\":\"x+\",\"description\":\"xs\"},"
                    "{\"id\":\"i\",\"type\":\"prompt_injection\",\"action\":\"flag\"}]}",
                    &err);
    assert_non_null(p);
    json_t *j = policy_to_json(p);
    json_t *in = json_object_get(j, "inbound");
    json_t *k = json_array_get(in, 0);
    assert_true(json_is_false(json_object_get(k, "case_sensitive")));
    assert_true(json_is_true(json_object_get(k, "whole_word")));
    json_t *r = json_array_get(in, 1);
    assert_true(json_is_true(json_object_get(r, "case_sensitive")));
    assert_string_equal(json_string_value(json_object_get(r, "description")), "xs");
    json_t *i = json_array_get(in, 2);
    assert_true(json_number_value(json_object_get(i, "threshold")) == 0.5);
    assert_int_equal(json_array_size(json_object_get(j, "outbound")), 0);
    /* the normalised form compiles to the same thing */
    char *s = json_dumps(j, 0);
    struct policy *p2 = compile_str(s, &err);
    assert_non_null(p2);
    json_t *j2 = policy_to_json(p2);
    assert_true(json_equal(j, j2));
    free(s);
    json_decref(j);
    json_decref(j2);
    policy_release(p2);
    policy_release(p);
}

static void test_legacy(void **state)
{
    struct policy_error err;
    struct policy *p = compile_str(
        "{\"inbound\":[],\"legacy\":[{\"id\":\"len\",\"type\":\"length\",\"action\":\"block\","
        "\"max_chars\":3}]}",
        &err);
    assert_non_null(p);
    assert_int_equal(policy_rule_count(p, POLICY_INBOUND), 0);
    assert_int_equal(policy_rule_count(p, POLICY_LEGACY), 1);
    json_t *j = policy_to_json(p);
    assert_non_null(json_object_get(j, "legacy"));
    json_decref(j);
    policy_release(p);
}

static void test_document_errors(void **state)
{
    expect_error("{", "", "", "invalid JSON");
    expect_error("[]", "", "", "must be a JSON object");
    expect_error("{\"inbond\":[]}", "", "inbond", "unknown field");
    expect_error("{\"inbound\":{}}", "", "inbound", "must be an array");
    expect_error("{\"inbound\":[1]}", "#0", "inbound[0]", "must be an object");
    expect_error("{\"inbound\":[],\"inbound\":[]}", "", "", "invalid JSON");
    expect_error("{\"inbound\":[{\"a\\u0000b\":1}]}", "", "", "member names must not contain NUL");
}

/* A NUL in any string of a rule is the rule's error, naming the field: the
 * parser used to refuse it as "invalid JSON", naming a library flag, and
 * C-string comparisons would otherwise stop at it ("flag\0x" is not
 * "flag"). The rule is named by its id, or by its index when the id
 * holds the NUL. */
static void test_nul_in_rule_strings(void **state)
{
    const char *kw = "{\"inbound\":[{\"id\":\"kw\",\"type\":\"keywords\",\"action\":\"flag\"";
    char doc[512];
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\",\"b\\u0000c\"]}]}", kw);
    expect_error(doc, "kw", "inbound[0].keywords[1]", "must not contain NUL");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\"],\"description\":\"x\\u0000\"}]}", kw);
    expect_error(doc, "kw", "inbound[0].description", "must not contain NUL");
    expect_error("{\"outbound\":[{\"id\":\"r\",\"type\":\"regex\",\"action\":\"flag\\u0000x\","
                 "\"pattern\":\"a\"}]}",
                 "r", "outbound[0].action", "must not contain NUL");
    expect_error("{\"outbound\":[{\"id\":\"r\",\"type\":\"regex\",\"action\":\"flag\","
                 "\"pattern\":\"a\\u0000\"}]}",
                 "r", "outbound[0].pattern", "must not contain NUL");
    expect_error("{\"legacy\":[{\"id\":\"r\\u0000\",\"type\":\"secrets\",\"action\":\"flag\"}]}",
                 "#0", "legacy[0].id", "must not contain NUL");
}

/* null for a list is an empty list, as a missing one is. */
static void test_null_list_is_empty(void **state)
{
    (void)state;
    struct policy_error err;
    const char *doc = "{\"inbound\":null,\"outbound\":null}";
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    assert_non_null(p);
    json_t *j = policy_to_json(p);
    assert_int_equal(json_array_size(json_object_get(j, "inbound")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "outbound")), 0);
    json_decref(j);
    policy_release(p);
}

static void test_rule_errors(void **state)
{
    expect_error("{\"inbound\":[{\"type\":\"secrets\",\"action\":\"flag\"}]}", "#0",
                 "inbound[0].id", "required");
    expect_error("{\"inbound\":[{\"id\":7,\"type\":\"secrets\",\"action\":\"flag\"}]}", "#0",
                 "inbound[0].id", "string");
    expect_error("{\"inbound\":[{\"id\":\"a b\",\"type\":\"secrets\",\"action\":\"flag\"}]}", "#0",
                 "id", "may only contain");
    expect_error("{\"outbound\":[{\"id\":\"s\",\"type\":\"secrets\",\"action\":\"flag\"},"
                 "{\"id\":\"s\",\"type\":\"pii\",\"action\":\"flag\"}]}",
                 "s", "outbound[1].id", "duplicate");
    expect_error("{\"inbound\":[{\"id\":\"x\",\"type\":\"magic\",\"action\":\"flag\"}]}", "x",
                 "inbound[0].type", "unknown type");
    expect_error("{\"inbound\":[{\"id\":\"x\",\"type\":\"secrets\",\"action\":\"delete\"}]}", "x",
                 "inbound[0].action", "unknown action");
    expect_error("{\"inbound\":[{\"id\":\"x\",\"type\":\"secrets\"}]}", "x", "action", "required");
    expect_error("{\"inbound\":[{\"id\":\"x\",\"type\":\"secrets\",\"action\":\"flag\","
                 "\"entities\":[\"email\"]}]}",
                 "x", "inbound[0].entities", "unknown field");
    expect_error("{\"inbound\":[{\"id\":\"x\",\"type\":\"secrets\",\"action\":\"flag\","
                 "\"description\":5}]}",
                 "x", "description", "string");
}

static void test_keyword_errors(void **state)
{
    const char *pre = "{\"inbound\":[{\"id\":\"kw\",\"type\":\"keywords\",\"action\":\"block\"";
    char doc[512];
    snprintf(doc, sizeof(doc), "%s}]}", pre);
    expect_error(doc, "kw", "inbound[0].keywords", "required");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[]}]}", pre);
    expect_error(doc, "kw", "keywords", "must not be empty");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":\"a\"}]}", pre);
    expect_error(doc, "kw", "keywords", "array");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\",3]}]}", pre);
    expect_error(doc, "kw", "keywords[1]", "string");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\",\"\"]}]}", pre);
    expect_error(doc, "kw", "keywords[1]", "empty");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\"],\"case_sensitive\":\"yes\"}]}", pre);
    expect_error(doc, "kw", "case_sensitive", "boolean");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\"],\"whole_word\":1}]}", pre);
    expect_error(doc, "kw", "whole_word", "boolean");
    snprintf(doc, sizeof(doc), "%s,\"keywords\":[\"a\"],\"pattern\":\"a\"}]}", pre);
    expect_error(doc, "kw", "pattern", "unknown field");
}

static void test_regex_errors(void **state)
{
    const char *pre = "{\"inbound\":[{\"id\":\"re\",\"type\":\"regex\",\"action\":\"flag\"";
    char doc[512];
    snprintf(doc, sizeof(doc), "%s,\"pattern\":\"ab(c\"}]}", pre);
    expect_error(doc, "re", "inbound[0].pattern", "index 2");
    snprintf(doc, sizeof(doc), "%s,\"pattern\":\"(a)\\\\1\"}]}", pre);
    expect_error(doc, "re", "pattern", "Back-reference");
    snprintf(doc, sizeof(doc), "%s,\"pattern\":\"foo(?=bar)\"}]}", pre);
    expect_error(doc, "re", "pattern", "invalid regex");
    snprintf(doc, sizeof(doc), "%s,\"pattern\":\"a*\"}]}", pre);
    expect_error(doc, "re", "pattern", "empty");
    snprintf(doc, sizeof(doc), "%s,\"pattern\":\"\"}]}", pre);
    expect_error(doc, "re", "pattern", "must not be empty");
    snprintf(doc, sizeof(doc), "%s,\"pattern\":[\"a\"]}]}", pre);
    expect_error(doc, "re", "pattern", "string");
    snprintf(doc, sizeof(doc), "%s}]}", pre);
    expect_error(doc, "re", "pattern", "required");
    /* the error names the right rule when an earlier one is fine */
    expect_error("{\"outbound\":[{\"id\":\"ok\",\"type\":\"regex\",\"action\":\"flag\","
                 "\"pattern\":\"fine\"},{\"id\":\"bad\",\"type\":\"regex\",\"action\":\"flag\","
                 "\"pattern\":\"[z-a]\"}]}",
                 "bad", "outbound[1].pattern", "invalid regex");
}

static void test_other_type_errors(void **state)
{
    expect_error("{\"inbound\":[{\"id\":\"p\",\"type\":\"pii\",\"action\":\"redact\","
                 "\"entities\":[\"email\",\"passport\"]}]}",
                 "p", "entities[1]", "unknown entity");
    expect_error("{\"inbound\":[{\"id\":\"p\",\"type\":\"pii\",\"action\":\"redact\","
                 "\"entities\":[]}]}",
                 "p", "entities", "empty");
    expect_error("{\"inbound\":[{\"id\":\"p\",\"type\":\"pii\",\"action\":\"redact\","
                 "\"entities\":\"email\"}]}",
                 "p", "entities", "array");
    expect_error("{\"inbound\":[{\"id\":\"i\",\"type\":\"prompt_injection\",\"action\":\"flag\","
                 "\"threshold\":1.5}]}",
                 "i", "threshold", "between 0 and 1");
    expect_error("{\"inbound\":[{\"id\":\"i\",\"type\":\"prompt_injection\",\"action\":\"flag\","
                 "\"threshold\":\"high\"}]}",
                 "i", "threshold", "number");
    expect_error("{\"inbound\":[{\"id\":\"l\",\"type\":\"length\",\"action\":\"block\"}]}", "l",
                 "max_chars", "required");
    expect_error("{\"inbound\":[{\"id\":\"l\",\"type\":\"length\",\"action\":\"block\","
                 "\"max_chars\":0}]}",
                 "l", "max_chars", "at least 1");
    expect_error("{\"inbound\":[{\"id\":\"l\",\"type\":\"length\",\"action\":\"block\","
                 "\"max_chars\":2.5}]}",
                 "l", "max_chars", "integer");
}

static void test_same_id_other_direction(void **state)
{
    struct policy_error err;
    struct policy *p = compile_str("{\"inbound\":[{\"id\":\"s\",\"type\":\"secrets\","
                                   "\"action\":\"flag\"}],\"outbound\":[{\"id\":\"s\","
                                   "\"type\":\"secrets\",\"action\":\"flag\"}]}",
                                   &err);
    assert_non_null(p);
    policy_release(p);
}

static void test_refcount(void **state)
{
    struct policy_error err;
    struct policy *p = compile_str(policy_default_json(), &err);
    assert_non_null(p);
    policy_retain(p);
    policy_release(p);
    assert_int_equal(policy_rule_count(p, POLICY_OUTBOUND), 2); /* still alive */
    policy_release(p);
    policy_release(NULL);
    policy_scratch_free(NULL);
    struct policy_result r = {0};
    policy_result_clear(&r);
}

static void test_many_keywords_compile(void **state)
{
    /* 10,000 keywords, some with non-ASCII letters (the Unicode-folding path) */
    json_t *kw = json_array();
    char buf[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(buf, sizeof(buf), i % 100 == 0 ? "wört%05d" : "term%05d", i);
        json_array_append_new(kw, json_string(buf));
    }
    json_t *doc = json_pack("{s:[{s:s,s:s,s:s,s:o}]}", "inbound", "id", "big", "type", "keywords",
                            "action", "flag", "keywords", kw);
    char *s = json_dumps(doc, 0);
    struct policy_error err;
    struct policy *p = compile_str(s, &err);
    assert_non_null(p);
    struct policy_scratch *sc = policy_scratch_new();
    struct policy_result r;
    const char *text = "see TERM09999 and WÖRT00100 but not term1";
    assert_int_equal(policy_eval(p, sc, POLICY_INBOUND, text, strlen(text), &r), 0);
    assert_int_equal(r.decision, POLICY_FLAG);
    json_t *m = json_object_get(json_array_get(r.rules_triggered, 0), "matches");
    assert_int_equal(json_array_size(m), 2);
    policy_result_clear(&r);
    policy_scratch_free(sc);
    policy_release(p);
    free(s);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_normalised_defaults),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_document_errors),
        cmocka_unit_test(test_nul_in_rule_strings),
        cmocka_unit_test(test_null_list_is_empty),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_keyword_errors),
        cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_other_type_errors),
        cmocka_unit_test(test_same_id_other_direction),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_many_keywords_compile),
    };
    return cmocka_run_group_tests_name("policy_parse", tests, NULL, NULL);
}
