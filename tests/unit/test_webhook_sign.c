/* Standard Webhooks signing: the published test vector, a second vector
 * computed independently (Python hmac) for a padded 32-byte key like the
 * ones Collie issues, and verification edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/ids.h"
#include "webhook/sign.h"

#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Key bytes 0x00..0x1f; the base64 ends in '=' padding. */
#define PAD_SECRET "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static int sign_str(const char *secret, const char *id, int64_t ts, const char *body, char *out)
{
    return webhook_sign(secret, id, ts, body, strlen(body), out, WEBHOOK_SIGNATURE_LEN);
}

static int verify_str(const char *secret, const char *id, int64_t ts, const char *body,
                      const char *header)
{
    return webhook_verify(secret, id, ts, body, strlen(body), header);
}

static void test_vector(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_LEN];
    assert_int_equal(sign_str(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, sig), 0);
    assert_string_equal(sig, VEC_SIG);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, VEC_SIG), 1);
}

static void test_padded_secret_vector(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_LEN];
    assert_int_equal(sign_str(PAD_SECRET, "msg_01JMZ0000000000000000000", 1700000000,
                              "{\"type\":\"job.inbound_complete\"}", sig),
                     0);
    assert_string_equal(sig, "v1,BbmJWvwLtBzZfjBxGrpIS02vAyLWIuZfBlsh3+wDJ1Y=");
    /* Empty body and a negative timestamp are still well defined. */
    assert_int_equal(sign_str(PAD_SECRET, "msg_x", -5, "", sig), 0);
    assert_string_equal(sig, "v1,pBWjS8q6ZmGNMBdrWMG4u3yCWOB0i8IcjqN2QbnYZFw=");
}

static void test_body_length_is_respected(void **state)
{
    (void)state;
    /* Only body_len bytes are signed, even with more in the buffer. */
    char a[WEBHOOK_SIGNATURE_LEN], b[WEBHOOK_SIGNATURE_LEN];
    const char *longer = VEC_BODY "trailing";
    assert_int_equal(
        webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, longer, strlen(VEC_BODY), a, sizeof(a)), 0);
    assert_int_equal(sign_str(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, b), 0);
    assert_string_equal(a, b);
    /* Bytes after an embedded NUL are signed too. */
    const char nul_body[] = {'a', '\0', 'b'};
    assert_int_equal(webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, nul_body, 3, a, sizeof(a)), 0);
    assert_int_equal(webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, nul_body, 1, b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(webhook_verify(VEC_SECRET, VEC_ID, VEC_TS, nul_body, 3, a), 1);
    assert_int_equal(webhook_verify(VEC_SECRET, VEC_ID, VEC_TS, nul_body, 1, a), 0);
}

static void test_secret_new(void **state)
{
    (void)state;
    char s1[WEBHOOK_SECRET_LEN], s2[WEBHOOK_SECRET_LEN];
    uint8_t key[64];
    assert_int_equal(webhook_secret_new(s1, sizeof(s1)), 0);
    assert_int_equal(webhook_secret_new(s2, sizeof(s2)), 0);
    assert_string_not_equal(s1, s2);
    assert_int_equal(strncmp(s1, "whsec_", 6), 0);
    assert_int_equal(strlen(s1), 6 + 44);
    assert_int_equal(s1[strlen(s1) - 1], '='); /* standard padded base64 */
    assert_int_equal(ids_base64_decode(s1 + 6, 44, key, sizeof(key)), 32);

    /* A fresh secret signs and verifies its own signatures. */
    char sig[WEBHOOK_SIGNATURE_LEN];
    assert_int_equal(sign_str(s1, "msg_1", 1700000000, "{}", sig), 0);
    assert_int_equal(verify_str(s1, "msg_1", 1700000000, "{}", sig), 1);
    assert_int_equal(verify_str(s2, "msg_1", 1700000000, "{}", sig), 0);

    /* Too small a buffer fails instead of truncating. */
    char small[50];
    assert_int_equal(webhook_secret_new(small, sizeof(small)), -1);
    assert_int_equal(webhook_secret_new(s1, 51), 0);
}

static void test_verify_rejects_tampering(void **state)
{
    (void)state;
    const char *body = VEC_BODY;
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, "{\"test\": 2432232315}", VEC_SIG), 0);
    assert_int_equal(verify_str(VEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", VEC_TS, body, VEC_SIG),
                     0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS + 1, body, VEC_SIG), 0);
    assert_int_equal(verify_str(PAD_SECRET, VEC_ID, VEC_TS, body, VEC_SIG), 0);
    /* One flipped signature character. */
    char bad[] = VEC_SIG;
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, bad), 0);
    /* Truncated, prefixed, or of another version. */
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, "v1,g0hM9SsE"), 0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                "xv1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, ""), 0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, "   "), 0);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, NULL), 0);
}

static void test_verify_multiple_entries(void **state)
{
    (void)state;
    const char *body = VEC_BODY;
    /* Rotation: the sender signs with an old and a new key. */
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                "v1,BbmJWvwLtBzZfjBxGrpIS02vAyLWIuZfBlsh3+wDJ1Y= " VEC_SIG),
                     1);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                VEC_SIG " v1,BbmJWvwLtBzZfjBxGrpIS02vAyLWIuZfBlsh3+wDJ1Y="),
                     1);
    /* Unknown versions are skipped, extra blanks tolerated. */
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body, "v1a,abcdef   " VEC_SIG "  "), 1);
    assert_int_equal(verify_str(VEC_SECRET, VEC_ID, VEC_TS, body,
                                "v1,BbmJWvwLtBzZfjBxGrpIS02vAyLWIuZfBlsh3+wDJ1Y= v1a,xyz"),
                     0);
}

static void test_malformed_secrets(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_LEN];
    const char *bad[] = {
        "",
        "whsec_",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* no prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* prefix is case-sensitive */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjU*D8ILPZIo2LaLaSw", /* not base64 */
        "whsec_MfKQ 9r8GKYqrTwjUPD8ILPZIo2LaLaS",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(sig, "unchanged");
        assert_int_equal(sign_str(bad[i], VEC_ID, VEC_TS, VEC_BODY, sig), -1);
        assert_string_equal(sig, ""); /* never a partial signature */
        assert_int_equal(verify_str(bad[i], VEC_ID, VEC_TS, VEC_BODY, VEC_SIG), 0);
    }
    assert_int_equal(sign_str(NULL, VEC_ID, VEC_TS, VEC_BODY, sig), -1);

    /* An over-long key is rejected rather than read past a buffer. */
    char huge[2048] = "whsec_";
    memset(huge + 6, 'A', sizeof(huge) - 7);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(sign_str(huge, VEC_ID, VEC_TS, VEC_BODY, sig), -1);

    /* Output buffer too small. */
    char tiny[20];
    assert_int_equal(
        webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), tiny, sizeof(tiny)),
        -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_padded_secret_vector),
        cmocka_unit_test(test_body_length_is_respected),
        cmocka_unit_test(test_secret_new),
        cmocka_unit_test(test_verify_rejects_tampering),
        cmocka_unit_test(test_verify_multiple_entries),
        cmocka_unit_test(test_malformed_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
