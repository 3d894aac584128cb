/* Evaluation: decision order, redaction and merging, code-point offsets,
 * keyword options (case, whole word, Unicode folding), regex and length
 * rules, the result JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy_spans.h"

struct fixture {
    struct policy *p;
    struct policy_scratch *s;
    struct policy_result r;
};

static struct fixture fx;

static void eval_doc(const char *doc, enum policy_direction dir, const char *text)
{
    struct policy_error err;
    policy_result_clear(&fx.r);
    policy_release(fx.p);
    fx.p = policy_compile(doc, strlen(doc), &err);
    if (!fx.p)
        fail_msg("compile: %s %s %s", err.rule_id, err.field, err.message);
    if (!fx.s)
        fx.s = policy_scratch_new();
    assert_int_equal(policy_eval(fx.p, fx.s, dir, text, strlen(text), &fx.r), 0);
}

static int teardown(void **state)
{
    policy_result_clear(&fx.r);
    policy_release(fx.p);
    policy_scratch_free(fx.s);
    memset(&fx, 0, sizeof(fx));
    return 0;
}

static json_t *rule_result(const char *id)
{
    return triggered_by(&fx.r, "rule_id", id);
}

static void assert_match(const char *id, size_t k, long long start, long long end)
{
    json_t *t = rule_result(id);
    assert_non_null(t);
    json_t *m = json_array_get(json_object_get(t, "matches"), k);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "start")), start);
    assert_int_equal(json_integer_value(json_object_get(m, "end")), end);
}

/* list is one string literal: "\"a\",\"b\"" */
#define KW(id, action, extra, list)                                                                \
    "{\"id\":\"" id "\",\"type\":\"keywords\",\"action\":\"" action "\",\"keywords\":[" list       \
    "]" extra "}"

static void test_pass_copies_text(void **state)
{
    eval_doc("{\"inbound\":[" KW("k", "block", "", "\"forbidden\"") "]}", POLICY_INBOUND,
             "all good here");
    assert_int_equal(fx.r.decision, POLICY_PASS);
    assert_int_equal(fx.r.rules_evaluated, 1);
    assert_int_equal(json_array_size(fx.r.rules_triggered), 0);
    assert_string_equal(fx.r.filtered, "all good here");
    assert_int_equal(fx.r.filtered_len, 13);
    assert_true(fx.r.latency_ms >= 0.0);
}

static void test_decision_order(void **state)
{
    const char *doc = "{\"inbound\":[" KW("f", "flag", "", "\"alpha\"") "," KW(
        "r", "redact", "", "\"beta\"") "," KW("b", "block", "", "\"gamma\"") "]}";
    eval_doc(doc, POLICY_INBOUND, "alpha");
    assert_int_equal(fx.r.decision, POLICY_FLAG);
    assert_string_equal(fx.r.filtered, "alpha");
    eval_doc(doc, POLICY_INBOUND, "alpha beta");
    assert_int_equal(fx.r.decision, POLICY_REDACT);
    /* flag matches are reported but not redacted */
    assert_string_equal(fx.r.filtered, "alpha [REDACTED:r]");
    eval_doc(doc, POLICY_INBOUND, "alpha beta gamma");
    assert_int_equal(fx.r.decision, POLICY_BLOCK);
    assert_null(fx.r.filtered);
    assert_int_equal(json_array_size(fx.r.rules_triggered), 3);
    /* rules_triggered follows rule order */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(fx.r.rules_triggered, 0), "rule_id")),
        "f");
}

static void test_codepoint_offsets(void **state)
{
    /* "żółw 🐢 secret": ż ó ł are 2 bytes, the turtle 4 bytes */
    eval_doc("{\"outbound\":[" KW("k", "redact", "", "\"secret\"") "]}", POLICY_OUTBOUND,
             "\xc5\xbc\xc3\xb3\xc5\x82w \xf0\x9f\x90\xa2 secret!");
    assert_match("k", 0, 7, 13);
    assert_string_equal(fx.r.filtered, "\xc5\xbc\xc3\xb3\xc5\x82w \xf0\x9f\x90\xa2 [REDACTED:k]!");
}

static void test_overlaps_merge(void **state)
{
    /* two redact rules overlapping, and overlapping keywords in one rule */
    eval_doc("{\"inbound\":[" KW("a", "redact", ",\"whole_word\":false",
                                 "\"new york\",\"york city\"") "," KW("b", "redact",
                                                                      ",\"whole_word\":false",
                                                                      "\"city hall\"") "]}",
             POLICY_INBOUND, "Meet at New York City Hall today");
    assert_int_equal(fx.r.decision, POLICY_REDACT);
    assert_string_equal(fx.r.filtered, "Meet at [REDACTED:a] today");
    /* per rule, overlapping spans are reported merged */
    assert_match("a", 0, 8, 21);
    assert_match("b", 0, 17, 26);
}

static void test_adjacent_not_merged(void **state)
{
    eval_doc("{\"inbound\":[" KW("a", "redact", ",\"whole_word\":false", "\"ab\",\"cd\"") "]}",
             POLICY_INBOUND, "abcd");
    assert_string_equal(fx.r.filtered, "[REDACTED:a][REDACTED:a]");
}

static void test_whole_word_and_case(void **state)
{
    const char *doc = "{\"inbound\":[" KW("k", "redact", "", "\"cat\",\"C++\"") "]}";
    eval_doc(doc, POLICY_INBOUND, "concatenate CAT, cat's cats C++ code");
    assert_string_equal(fx.r.filtered,
                        "concatenate [REDACTED:k], [REDACTED:k]'s cats [REDACTED:k] code");
    eval_doc("{\"inbound\":[" KW("k", "redact", ",\"whole_word\":false", "\"cat\"") "]}",
             POLICY_INBOUND, "concatenate Cat");
    assert_string_equal(fx.r.filtered, "con[REDACTED:k]enate [REDACTED:k]");
    eval_doc("{\"inbound\":[" KW("k", "redact", ",\"case_sensitive\":true", "\"Cat\"") "]}",
             POLICY_INBOUND, "cat Cat CAT");
    assert_string_equal(fx.r.filtered, "cat [REDACTED:k] CAT");
    /* a letter outside ASCII is part of the word */
    eval_doc(doc, POLICY_INBOUND, "caté cat");
    assert_match("k", 0, 5, 8);
}

static void test_keywords_with_or_without_detectors(void **state)
{
    /* Up to 4,000 keywords are compiled into one database with the
     * detectors' literals, more (or without detectors) into one of their
     * own; the matches must not depend on which. */
    const char *words = "\"cat\",\"C++\",\"acme corp\",\"stra\xc3\x9f"
                        "e\",\"\xc3\xa9"
                        "cole\"";
    const char *text = "concatenate CAT, cat's cats C++ code; ACME Corp at STRA\xc3\x9f"
                       "E 1 by the \xc3\x89"
                       "COLE, password=Xk9#mQ2!vL7p";
    const char *want = "concatenate [REDACTED:k], [REDACTED:k]'s cats [REDACTED:k] code; "
                       "[REDACTED:k] at [REDACTED:k] 1 by the [REDACTED:k], password=";
    for (int secrets = 0; secrets < 2; secrets++) {
        for (int many = 0; many < 2; many++) {
            /* many: 5,000 more keywords that do not occur in the text */
            size_t cap = 128 * 1024, o = 0;
            char *doc = malloc(cap);
            o += (size_t)snprintf(doc + o, cap - o, "{\"inbound\":[%s",
                                  secrets ? "{\"id\":\"s\",\"type\":\"secrets\","
                                            "\"action\":\"redact\"},"
                                          : "");
            o += (size_t)snprintf(doc + o, cap - o,
                                  "{\"id\":\"k\",\"type\":\"keywords\",\"action\":"
                                  "\"redact\",\"keywords\":[%s",
                                  words);
            for (int i = 0; many && i < 5000; i++)
                o += (size_t)snprintf(doc + o, cap - o, ",\"qzx%04dvw\"", i);
            snprintf(doc + o, cap - o, "]}]}");
            eval_doc(doc, POLICY_INBOUND, text);
            free(doc);
            assert_int_equal(strncmp(fx.r.filtered, want, strlen(want)), 0);
            assert_string_equal(fx.r.filtered + strlen(want),
                                secrets ? "[REDACTED:SECRET]" : "Xk9#mQ2!vL7p");
        }
    }
}

static void test_unicode_case_folding(void **state)
{
    const char *doc = "{\"inbound\":[" KW("k", "redact", "",
                                          "\"\xc3\xa4rger\",\"stra\xc3\x9f"
                                          "e\","
                                          "\"\xc3\x89"
                                          "cole\",\"\xd0\xbc\xd0\xb8\xd1\x80\"") "]}";
    /* ÄRGER, STRAßE, école, МИР */
    eval_doc(doc, POLICY_INBOUND,
             "\xc3\x84RGER in der STRA\xc3\x9f"
             "E, l'\xc3\xa9"
             "cole, \xd0\x9c\xd0\x98\xd0\xa0.");
    assert_string_equal(fx.r.filtered,
                        "[REDACTED:k] in der [REDACTED:k], l'[REDACTED:k], [REDACTED:k].");
    /* whole word still applies on the Unicode path */
    eval_doc(doc, POLICY_INBOUND, "\xc3\xa4rgerlich");
    assert_int_equal(fx.r.decision, POLICY_PASS);
}

static void test_regex_rule(void **state)
{
    const char *doc = "{\"outbound\":[{\"id\":\"order\",\"type\":\"regex\",\"action\":\"redact\","
                      "\"pattern\":\"ORD-[0-9]{4,8}\"}]}";
    eval_doc(doc, POLICY_OUTBOUND, "Orders ORD-1234 and ord-5678 and ORD-123456789.");
    /* case-sensitive by default; the longest match per end wins, merged */
    assert_string_equal(fx.r.filtered,
                        "Orders [REDACTED:order] and ord-5678 and [REDACTED:order]9.");
    doc = "{\"outbound\":[{\"id\":\"order\",\"type\":\"regex\",\"action\":\"flag\","
          "\"pattern\":\"ord-\\\\d+\",\"case_sensitive\":false}]}";
    eval_doc(doc, POLICY_OUTBOUND, "\xc3\xa9 ORD-12 ord-3");
    assert_int_equal(fx.r.decision, POLICY_FLAG);
    assert_match("order", 0, 2, 8);
    assert_match("order", 1, 9, 14);
    /* unbounded pattern: start found by scanning from the beginning */
    doc = "{\"outbound\":[{\"id\":\"q\",\"type\":\"regex\",\"action\":\"redact\","
          "\"pattern\":\"<q>.*</q>\"}]}";
    eval_doc(doc, POLICY_OUTBOUND, "a <q>one</q> b");
    assert_string_equal(fx.r.filtered, "a [REDACTED:q] b");
}

static void test_length_rule(void **state)
{
    const char *doc = "{\"inbound\":[{\"id\":\"len\",\"type\":\"length\",\"action\":\"redact\","
                      "\"max_chars\":5}]}";
    eval_doc(doc, POLICY_INBOUND,
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* 5 chars, 10 bytes */
    assert_int_equal(fx.r.decision, POLICY_PASS);
    eval_doc(doc, POLICY_INBOUND, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9xyz");
    assert_int_equal(fx.r.decision, POLICY_REDACT);
    assert_match("len", 0, 5, 8);
    assert_string_equal(fx.r.filtered, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9[REDACTED:len]");
}

static void test_legacy_fallback(void **state)
{
    eval_doc("{\"inbound\":[" KW("k", "block", "", "\"x\"") "]}", POLICY_LEGACY, "x");
    assert_int_equal(fx.r.decision, POLICY_BLOCK);
    eval_doc("{\"inbound\":[" KW("k", "block", "", "\"x\"") "],\"legacy\":[]}", POLICY_LEGACY, "x");
    assert_int_equal(fx.r.decision, POLICY_PASS);
    assert_int_equal(fx.r.rules_evaluated, 0);
}

static void test_empty_text_and_policy(void **state)
{
    eval_doc("{}", POLICY_OUTBOUND, "");
    assert_int_equal(fx.r.decision, POLICY_PASS);
    assert_string_equal(fx.r.filtered, "");
    eval_doc(policy_default_json(), POLICY_OUTBOUND, "");
    assert_int_equal(fx.r.decision, POLICY_PASS);
}

static void test_result_json(void **state)
{
    eval_doc("{\"inbound\":[{\"id\":\"p\",\"type\":\"pii\",\"action\":\"redact\","
             "\"entities\":[\"email\"]}]}",
             POLICY_INBOUND, "write to ana@example.org please");
    assert_string_equal(fx.r.filtered, "write to [REDACTED:EMAIL] please");
    json_t *j = policy_result_to_json(&fx.r, 42);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "redact");
    assert_int_equal(json_integer_value(json_object_get(j, "rules_evaluated")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "policy_version")), 42);
    assert_true(json_is_number(json_object_get(j, "latency_ms")));
    json_t *t = json_array_get(json_object_get(j, "rules_triggered"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "type")), "pii");
    assert_string_equal(json_string_value(json_object_get(t, "action")), "redact");
    json_t *m = json_array_get(json_object_get(t, "matches"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "entity")), "email");
    assert_int_equal(json_integer_value(json_object_get(m, "start")), 9);
    assert_int_equal(json_integer_value(json_object_get(m, "end")), 24);
    json_decref(j);
}

static void test_many_matches_capped(void **state)
{
    char *text = malloc(3 * 500 + 1);
    for (int i = 0; i < 500; i++)
        memcpy(text + 3 * i, "ab ", 3);
    text[1500] = 0;
    eval_doc("{\"inbound\":[" KW("k", "redact", "", "\"ab\"") "]}", POLICY_INBOUND, text);
    json_t *t = rule_result("k");
    assert_int_equal(json_array_size(json_object_get(t, "matches")), 100);
    assert_int_equal(json_integer_value(json_object_get(t, "match_count")), 500);
    /* every match is redacted, not only the reported ones */
    assert_null(strstr(fx.r.filtered, "ab"));
    free(text);
}

static void test_scratch_reused_across_policies(void **state)
{
    /* one scratch grows to fit a bigger policy, then serves a smaller one */
    eval_doc("{\"inbound\":[" KW("k", "flag", "", "\"x\"") "]}", POLICY_INBOUND, "x");
    eval_doc(policy_default_json(), POLICY_OUTBOUND, "mail bo@example.com");
    assert_int_equal(fx.r.decision, POLICY_REDACT);
    eval_doc("{\"inbound\":[" KW("k", "flag", "", "\"x\"") "]}", POLICY_INBOUND, "x");
    assert_int_equal(fx.r.decision, POLICY_FLAG);
}

/* Regression: Vectorscan 5.4.9 on AVX-512 missed matches ending in the last
 * ~32 bytes of a scanned buffer (see SCAN_PAD in eval.c). Every prefix and
 * trailer length, short texts and texts longer than the padded tail. */
static void test_matches_near_buffer_end(void **state)
{
    const char *doc = "{\"inbound\":[{\"id\":\"p\",\"type\":\"pii\",\"action\":\"redact\","
                      "\"entities\":[\"email\",\"us_ssn\"]},{\"id\":\"end\",\"type\":\"regex\","
                      "\"action\":\"flag\",\"pattern\":\"done$\"}]}";
    struct policy_error err;
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    assert_non_null(p);
    struct policy_scratch *s = policy_scratch_new();
    static char text[20000];
    int misses = 0;
    for (int big = 0; big < 2; big++) {
        for (int pre = 0; pre < 200; pre += 3) {
            for (int post = 0; post < 40; post++) {
                size_t o = (size_t)pre + (big ? 12000 : 0);
                memset(text, ' ', o);
                o += (size_t)sprintf(text + o, " zz@example.com 123-45-6789");
                memset(text + o, ' ', (size_t)post);
                strcpy(text + o + post, " done");
                struct policy_result r;
                assert_int_equal(policy_eval(p, s, POLICY_INBOUND, text, strlen(text), &r), 0);
                json_t *m = json_object_get(json_array_get(r.rules_triggered, 0), "matches");
                if (json_array_size(m) != 2 || json_array_size(r.rules_triggered) != 2)
                    misses++;
                policy_result_clear(&r);
            }
        }
    }
    assert_int_equal(misses, 0);
    policy_scratch_free(s);
    policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pass_copies_text, teardown),
        cmocka_unit_test_teardown(test_keywords_with_or_without_detectors, teardown),
        cmocka_unit_test_teardown(test_decision_order, teardown),
        cmocka_unit_test_teardown(test_codepoint_offsets, teardown),
        cmocka_unit_test_teardown(test_overlaps_merge, teardown),
        cmocka_unit_test_teardown(test_adjacent_not_merged, teardown),
        cmocka_unit_test_teardown(test_whole_word_and_case, teardown),
        cmocka_unit_test_teardown(test_unicode_case_folding, teardown),
        cmocka_unit_test_teardown(test_regex_rule, teardown),
        cmocka_unit_test_teardown(test_length_rule, teardown),
        cmocka_unit_test_teardown(test_legacy_fallback, teardown),
        cmocka_unit_test_teardown(test_empty_text_and_policy, teardown),
        cmocka_unit_test_teardown(test_result_json, teardown),
        cmocka_unit_test_teardown(test_many_matches_capped, teardown),
        cmocka_unit_test_teardown(test_scratch_reused_across_policies, teardown),
        cmocka_unit_test(test_matches_near_buffer_end),
    };
    return cmocka_run_group_tests_name("policy_redact", tests, NULL, NULL);
}
