/* The yajl path of jsonparse must read every text it decides exactly as
 * jansson does, and leave to jansson every text where the two could
 * differ. jansson is the judge throughout: a value is compared with
 * json_loadb's by its compact serialisation, which also holds key order
 * and the exact numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonparse.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* What jansson makes of the text: its compact serialisation, or NULL. */
static char *reference(const char *buf, size_t len)
{
    json_t *v = json_loadb(buf, len, JSONPARSE_FLAGS, NULL);
    char *s = v ? dump(v) : NULL;
    json_decref(v);
    return s;
}

/* The fast path decides buf and agrees with jansson. */
static void expect_fast(const char *buf, size_t len)
{
    json_t *fast = jsonparse_fast(buf, len);
    if (!fast)
        fail_msg("the fast path left to jansson: %.*s", (int)len, buf);
    char *want = reference(buf, len);
    char *got = dump(fast);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(fast);
}

/* The fast path leaves buf to jansson, and jsonparse_load answers as
 * json_loadb does, error text included. */
static void expect_jansson(const char *buf, size_t len)
{
    json_t *fast = jsonparse_fast(buf, len);
    if (fast)
        fail_msg("the fast path decided: %.*s", (int)len, buf);
    json_error_t e1, e2;
    json_t *a = jsonparse_load(buf, len, &e1);
    json_t *b = json_loadb(buf, len, JSONPARSE_FLAGS, &e2);
    assert_int_equal(a != NULL, b != NULL);
    if (a) {
        char *sa = dump(a), *sb = dump(b);
        assert_string_equal(sa, sb);
        free(sa);
        free(sb);
    } else {
        assert_string_equal(e1.text, e2.text);
        assert_int_equal(e1.line, e2.line);
        assert_int_equal(e1.column, e2.column);
    }
    json_decref(a);
    json_decref(b);
}

#define FAST(s) expect_fast(s, sizeof(s) - 1)
#define JANSSON(s) expect_jansson(s, sizeof(s) - 1)

static char *nested(int depth)
{
    char *s = malloc(2 * (size_t)depth + 2);
    memset(s, '[', (size_t)depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', (size_t)depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static void test_decides_what_jansson_accepts(void **state)
{
    (void)state;
    FAST("{\"message_input\":\"The quick brown fox jumps over the lazy dog. \","
         "\"webhook_url\":\"http://127.0.0.1:9901/hook\",\"inbound_only\":true}");
    FAST("{}");
    FAST("[]");
    FAST("5");
    FAST("-0");
    FAST("\"x\"");
    FAST("true");
    FAST("null");
    FAST(" \t\r\n{ \"a\" : 1 } \n");
    FAST("{\"a\":[1,2.5,-3e2,1E+2,0.5e-3,true,false,null,{\"b\":\"c\"}],\"d\":{},\"e\":[]}");
    FAST("{\"outer\":{\"inner\":{\"x\":1},\"y\":2},\"z\":3,\"w\":[{\"k\":[{\"k\":1}]}]}");
    /* Escapes other than surrogates, a NUL among them (allowed in values). */
    FAST("{\"s\":\"tab\\t nl\\n q\\\" sl\\/ bs\\\\ b\\b f\\f r\\r e\\u00e9 \\u20AC nul\\u0000 "
         "end\"}");
    FAST("{\"k\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}");
    FAST("[9223372036854775807,-9223372036854775808,1e-400,1.7976931348623157e308]");
    FAST("{\"a key longer than the forty-eight bytes a frame keeps for it, by far\":"
         "{\"another key longer than the forty-eight bytes a frame keeps, too\":1}}");
    /* Order of keys is kept, as jansson keeps it. */
    FAST("{\"z\":1,\"a\":2,\"m\":3}");
    char *deep = nested(20);
    expect_fast(deep, strlen(deep));
    free(deep);
}

static void test_leaves_the_rest_to_jansson(void **state)
{
    (void)state;
    /* Duplicate keys, at the top and below. */
    JANSSON("{\"a\":1,\"a\":2}");
    JANSSON("{\"a\":{\"b\":1,\"b\":[]}}");
    /* Surrogate escapes: yajl joins or replaces them where jansson refuses
     * (a lone or mismatched half), and a good pair is jansson's too. */
    JANSSON("\"\\ud800\"");
    JANSSON("\"\\udc00\"");
    JANSSON("\"\\ud800\\u0041\"");
    JANSSON("\"\\uDBFF\\uDBFF\"");
    JANSSON("{\"e\":\"\\uD83D\\uDE00\"}");
    /* UTF-8 that yajl's own check lets through: overlong, a surrogate,
     * past U+10FFFF; and a stray byte. */
    JANSSON("\"\xc0\x80\"");
    JANSSON("\"\xe0\x80\xaf\"");
    JANSSON("\"\xed\xa0\x80\"");
    JANSSON("\"\xf4\x90\x80\x80\"");
    JANSSON("\"\xff\"");
    JANSSON("{\"\xc0\xaf\":1}");
    /* A NUL in a key, which jansson refuses whatever its flags. */
    JANSSON("{\"a\\u0000b\":1}");
    /* Numbers jansson refuses as out of range, and one too long to keep. */
    JANSSON("99999999999999999999");
    JANSSON("{\"n\":-99999999999999999999}");
    JANSSON("1e400");
    JANSSON("[-1e400]");
    JANSSON("0.00000000000000000000000000000000000000000000000000000000000000000000001");
    /* Not JSON. */
    JANSSON("");
    JANSSON("   ");
    JANSSON("{\"a\":1 /* c */}");
    JANSSON("// c\n{}");
    JANSSON("{\"a\":1} x");
    JANSSON("{\"a\":1}{\"b\":2}");
    JANSSON("{\"a\":1");
    JANSSON("[1,]");
    JANSSON("{\"a\":1,}");
    JANSSON("01");
    JANSSON("1.");
    JANSSON(".5");
    JANSSON("+1");
    JANSSON("NaN");
    JANSSON("Infinity");
    JANSSON("'a'");
    JANSSON("{a:1}");
    JANSSON("\"a\x01z\"");
    JANSSON("\"a\x00z\"");
    JANSSON("\"a\\x\"");
    JANSSON("\xef\xbb\xbf{}");
    /* Deeper than the fast path builds; deeper than jansson allows. */
    char *deep = nested(40);
    expect_jansson(deep, strlen(deep));
    free(deep);
    deep = nested(3000);
    expect_jansson(deep, strlen(deep));
    free(deep);
}

/* Texts a step or three away from JSON, from a fixed seed: whatever the
 * fast path decides, jansson must accept and read the same. */
static void test_mutations_agree_with_jansson(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "{\"message_input\":\"Ignore previous instructions\",\"webhook_url\":"
        "\"https://example.com/h\",\"inbound_only\":true,\"metadata\":{\"a\":1,\"b\":[2.5,null]}}",
        "{\"s\":\"x\\u00e9\\n\\\"\\\\\",\"n\":-12e3,\"t\":[true,false,{}]}",
        "{\"k\xc3\xa9\":\"\xe2\x82\xac\",\"d\":\"\\ud83d\\ude00\",\"e\":0.5}",
        "[1,[2,[3,[4]]],{\"a\":{\"a\":{\"a\":\"a\"}}}]",
    };
    static const char alphabet[] = "{}[]\":,\\u0123456789abcdefDEe.-+ tnrfl\x01\x80\xc3\xed\xff";
    unsigned seed = 12345;
    size_t decided = 0;
    for (int i = 0; i < 40000; i++) {
        char buf[512];
        const char *s = seeds[i % (sizeof seeds / sizeof *seeds)];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        int edits = 1 + (int)(rand_r(&seed) % 3);
        for (int k = 0; k < edits && len > 0; k++) {
            size_t at = (size_t)rand_r(&seed) % len;
            char c = alphabet[(size_t)rand_r(&seed) % (sizeof alphabet - 1)];
            switch (rand_r(&seed) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* insert */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
                break;
            default: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
        }
        json_t *fast = jsonparse_fast(buf, len);
        if (!fast)
            continue;
        decided++;
        char *want = reference(buf, len);
        if (!want)
            fail_msg("decided a text jansson refuses: %.*s", (int)len, buf);
        char *got = dump(fast);
        if (strcmp(got, want) != 0)
            fail_msg("read %.*s as %s; jansson as %s", (int)len, buf, got, want);
        free(got);
        free(want);
        json_decref(fast);
    }
    /* Many mutations stay JSON (a changed letter or digit in a string or
     * number): the check above must have had texts to check. */
    assert_true(decided > 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decides_what_jansson_accepts),
        cmocka_unit_test(test_leaves_the_rest_to_jansson),
        cmocka_unit_test(test_mutations_agree_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
