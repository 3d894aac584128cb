/* UTF-8 well-formedness: what error messages that quote client input go
 * through before they become JSON. jansson is the judge: whatever
 * utf8_scrub leaves must be a string it accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "util/utf8.h"

static size_t seq(const char *s)
{
    return utf8_sequence_len(s, strlen(s));
}

static void test_well_formed_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("a"), 1);
    assert_int_equal(seq("\xC2\x80"), 2);         /* U+0080 */
    assert_int_equal(seq("\xDF\xBF"), 2);         /* U+07FF */
    assert_int_equal(seq("\xE0\xA0\x80"), 3);     /* U+0800 */
    assert_int_equal(seq("\xED\x9F\xBF"), 3);     /* U+D7FF, below the surrogates */
    assert_int_equal(seq("\xEE\x80\x80"), 3);     /* U+E000, above them */
    assert_int_equal(seq("\xEF\xBF\xBD"), 3);     /* U+FFFD */
    assert_int_equal(seq("\xF0\x90\x80\x80"), 4); /* U+10000 */
    assert_int_equal(seq("\xF4\x8F\xBF\xBF"), 4); /* U+10FFFF */
}

static void test_ill_formed_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("\x80"), 0);             /* a continuation byte alone */
    assert_int_equal(seq("\xC0\x80"), 0);         /* overlong NUL */
    assert_int_equal(seq("\xC1\xBF"), 0);         /* overlong */
    assert_int_equal(seq("\xE0\x9F\xBF"), 0);     /* overlong */
    assert_int_equal(seq("\xED\xA0\x80"), 0);     /* surrogate U+D800 */
    assert_int_equal(seq("\xF0\x8F\xBF\xBF"), 0); /* overlong */
    assert_int_equal(seq("\xF4\x90\x80\x80"), 0); /* past U+10FFFF */
    assert_int_equal(seq("\xF5\x80\x80\x80"), 0);
    assert_int_equal(seq("\xFF"), 0);
    assert_int_equal(seq("\xC3"), 0);         /* cut after the lead byte */
    assert_int_equal(seq("\xE2\x82"), 0);     /* cut inside */
    assert_int_equal(seq("\xE2\x41\x41"), 0); /* not a continuation byte */
    /* the length given is what counts, not the bytes beyond it */
    assert_int_equal(utf8_sequence_len("\xC3\xA9", 1), 0);
}

static void test_scrub_keeps_valid_text(void **state)
{
    (void)state;
    char s[] = "no job caf\xC3\xA9 \xF0\x9F\x90\x95 ok";
    char before[sizeof(s)];
    memcpy(before, s, sizeof(s));
    utf8_scrub(s);
    assert_string_equal(s, before);
}

static void test_scrub_replaces_each_bad_byte(void **state)
{
    (void)state;
    char cut[] = "page=aaa\xC3";            /* a two-byte character cut by a %.Ns */
    char bad[] = "/v1/\xFF/x\xED\xA0\x80y"; /* a raw byte and a surrogate */
    char stray[] = "\x80\xC3\xA9\x80";
    utf8_scrub(cut);
    utf8_scrub(bad);
    utf8_scrub(stray);
    assert_string_equal(cut, "page=aaa?");
    assert_string_equal(bad, "/v1/?/x???y");
    assert_string_equal(stray, "?\xC3\xA9?");
}

/* Every byte string of up to three bytes: after scrubbing, jansson takes it. */
static void test_scrubbed_text_is_valid_json(void **state)
{
    (void)state;
    for (unsigned a = 1; a < 256; a++)
        for (unsigned b = 0; b < 256; b += 3)
            for (unsigned c = 0; c < 256; c += 7) {
                char s[4] = {(char)a, (char)b, (char)c, 0};
                utf8_scrub(s);
                json_t *j = json_string(s);
                if (!j)
                    fail_msg("not valid after scrub: %02x %02x %02x", a, b, c);
                json_decref(j);
            }
}

/* Characters, as limits in characters count them: a sequence is one, and
 * so is each stray byte. */
/* utf8_valid agrees with jansson on whole texts: ASCII, good sequences
 * anywhere, and one bad sequence spoiling an otherwise good text. */
static void test_valid_whole_text(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        "plain ascii",
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
        "\xF4\x8F\xBF\xBF at the end",
        "ok then \xC0\x80",       /* overlong */
        "\xED\xA0\x80 surrogate", /* U+D800 */
        "past \xF4\x90\x80\x80",  /* U+110000 */
        "cut \xE2\x82",           /* truncated at the end */
        "stray \x80 byte",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t n = strlen(texts[i]);
        json_t *j = json_stringn(texts[i], n);
        assert_int_equal(utf8_valid(texts[i], n), j != NULL);
        json_decref(j);
    }
    assert_true(utf8_valid("a\0b", 3)); /* NUL is a character like any */
    assert_false(utf8_valid("\xC3\xA9", 1));
}

static void test_chars(void **state)
{
    (void)state;
    assert_int_equal(utf8_chars("", 0), 0);
    assert_int_equal(utf8_chars("abc", 3), 3);
    assert_int_equal(utf8_chars("\xC3\xA9\xC3\xA9", 4), 2); /* éé */
    assert_int_equal(utf8_chars("a\xF0\x9F\x98\x80"
                                "b",
                                6),
                     3);                                    /* a😀b */
    assert_int_equal(utf8_chars("\xC3\xC3\xA9\xFF", 4), 3); /* stray, é, stray */
    assert_int_equal(utf8_chars("\xE2\x82", 2), 2);         /* cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_sequences),
        cmocka_unit_test(test_ill_formed_sequences),
        cmocka_unit_test(test_scrub_keeps_valid_text),
        cmocka_unit_test(test_scrub_replaces_each_bad_byte),
        cmocka_unit_test(test_scrubbed_text_is_valid_json),
        cmocka_unit_test(test_valid_whole_text),
        cmocka_unit_test(test_chars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
