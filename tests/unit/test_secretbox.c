/* Secrets at rest: round trips, the sealed format checked by an independent
 * decryption, tampering with each region, wrong keys, malformed input, key
 * parsing, and the key file's creation and permission checks (in a temp
 * directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/ids.h"
#include "util/secretbox.h"
#include "webhook/sign.h"

#define AAD "collie secretbox v1"

static const uint8_t KEY_A[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void key_b(uint8_t k[32])
{
    memcpy(k, KEY_A, 32);
    k[31] ^= 0x80;
}

/* Decodes the base64 part of sealed text into raw. Returns its length. */
static int decode_sealed(const char *sealed, uint8_t *raw, size_t cap)
{
    assert_true(secretbox_is_sealed(sealed));
    const char *b64 = sealed + 3;
    return ids_base64_decode(b64, strlen(b64), raw, cap);
}

/* "v1:" + base64(raw). Caller frees. */
static char *encode_sealed(const uint8_t *raw, size_t n)
{
    size_t cap = 3 + 4 * ((n + 2) / 3) + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    memcpy(s, "v1:", 3);
    assert_true(ids_base64(raw, n, s + 3, cap - 3) >= 0);
    return s;
}

/* ---- sealing -------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    struct secretbox *b = secretbox_new(KEY_A);
    assert_non_null(b);
    char whsec[WEBHOOK_SECRET_LEN];
    assert_int_equal(webhook_secret_new(whsec, sizeof(whsec)), 0);
    char *big = malloc(SECRETBOX_MAX_PLAINTEXT + 1);
    assert_non_null(big);
    memset(big, 'k', SECRETBOX_MAX_PLAINTEXT);
    big[SECRETBOX_MAX_PLAINTEXT] = '\0';
    const char *texts[] = {whsec, "", "x", "ünïcödé ✓", big};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *s = secretbox_seal(b, texts[i]);
        assert_non_null(s);
        assert_true(secretbox_is_sealed(s));
        size_t raw_len = 12 + strlen(texts[i]) + 16;
        assert_int_equal(strlen(s), 3 + 4 * ((raw_len + 2) / 3));
        char *p = secretbox_open(b, s);
        assert_non_null(p);
        assert_string_equal(p, texts[i]);
        free(p);
        free(s);
    }
    /* One byte over the cap is refused. */
    char *over = malloc(SECRETBOX_MAX_PLAINTEXT + 2);
    assert_non_null(over);
    memset(over, 'k', SECRETBOX_MAX_PLAINTEXT + 1);
    over[SECRETBOX_MAX_PLAINTEXT + 1] = '\0';
    assert_null(secretbox_seal(b, over));
    free(over);
    free(big);
    assert_null(secretbox_seal(b, NULL));
    assert_null(secretbox_seal(NULL, "x"));
    secretbox_free(b);
    secretbox_free(NULL);
}

static void test_fresh_nonce(void **state)
{
    (void)state;
    struct secretbox *b = secretbox_new(KEY_A);
    char *s1 = secretbox_seal(b, "whsec_same");
    char *s2 = secretbox_seal(b, "whsec_same");
    assert_non_null(s1);
    assert_non_null(s2);
    assert_string_not_equal(s1, s2);
    uint8_t r1[64], r2[64];
    assert_int_equal(decode_sealed(s1, r1, sizeof(r1)), 12 + 10 + 16);
    assert_int_equal(decode_sealed(s2, r2, sizeof(r2)), 12 + 10 + 16);
    assert_memory_not_equal(r1, r2, 12);
    free(s1);
    free(s2);
    secretbox_free(b);
}

/* Decrypts with EVP directly, as a second implementation of the documented
 * format: nonce || ciphertext || tag, AAD "collie secretbox v1". */
static void test_format_independent_decrypt(void **state)
{
    (void)state;
    struct secretbox *b = secretbox_new(KEY_A);
    const char *msg = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char *s = secretbox_seal(b, msg);
    assert_non_null(s);
    uint8_t raw[128], out[128];
    int n = decode_sealed(s, raw, sizeof(raw));
    assert_int_equal(n, 12 + (int)strlen(msg) + 16);
    int ct = n - 28, len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, KEY_A, raw), 1);
    assert_int_equal(EVP_DecryptUpdate(c, NULL, &len, (const uint8_t *)AAD, strlen(AAD)), 1);
    assert_int_equal(EVP_DecryptUpdate(c, out, &len, raw + 12, ct), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, raw + 12 + ct), 1);
    assert_int_equal(EVP_DecryptFinal_ex(c, out + len, &len), 1);
    EVP_CIPHER_CTX_free(c);
    assert_memory_equal(out, msg, strlen(msg));
    free(s);
    secretbox_free(b);
}

/* Seals raw bytes (which may hold a NUL) the way secretbox does. */
static char *seal_bytes(const uint8_t key[32], const uint8_t *pt, int n)
{
    uint8_t raw[256];
    int len = 0;
    assert_true(n + 28 <= (int)sizeof(raw));
    assert_int_equal(ids_random(raw, 12), 0);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &len, (const uint8_t *)AAD, strlen(AAD)), 1);
    assert_int_equal(EVP_EncryptUpdate(c, raw + 12, &len, pt, n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, raw + 12 + n, &len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, raw + 12 + n), 1);
    EVP_CIPHER_CTX_free(c);
    return encode_sealed(raw, (size_t)n + 28);
}

static void test_tamper_each_region(void **state)
{
    (void)state;
    struct secretbox *b = secretbox_new(KEY_A);
    char *s = secretbox_seal(b, "whsec_tamper_me");
    assert_non_null(s);
    uint8_t raw[128];
    int n = decode_sealed(s, raw, sizeof(raw));
    assert_int_equal(n, 12 + 15 + 16);
    /* Every byte: nonce (0..11), ciphertext (12..26), tag (27..42). */
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            raw[i] ^= (uint8_t)(1u << bit);
            char *t = encode_sealed(raw, (size_t)n);
            char *p = secretbox_open(b, t);
            if (p)
                fail_msg("flipping bit %d of byte %d opened as \"%s\"", bit, i, p);
            free(t);
            raw[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Truncated (tag cut short) and extended. */
    for (int cut = 1; cut <= 16; cut++) {
        char *t = encode_sealed(raw, (size_t)(n - cut));
        assert_null(secretbox_open(b, t));
        free(t);
    }
    uint8_t longer[129];
    memcpy(longer, raw, (size_t)n);
    longer[n] = 0;
    char *t = encode_sealed(longer, (size_t)n + 1);
    assert_null(secretbox_open(b, t));
    free(t);
    /* Untouched still opens. */
    t = encode_sealed(raw, (size_t)n);
    char *p = secretbox_open(b, t);
    assert_non_null(p);
    assert_string_equal(p, "whsec_tamper_me");
    free(p);
    free(t);
    free(s);
    secretbox_free(b);
}

static void test_wrong_key(void **state)
{
    (void)state;
    uint8_t kb[32];
    key_b(kb);
    struct secretbox *a = secretbox_new(KEY_A);
    struct secretbox *b = secretbox_new(kb);
    char *s = secretbox_seal(a, "whsec_for_a");
    assert_null(secretbox_open(b, s));
    char *p = secretbox_open(a, s);
    assert_string_equal(p, "whsec_for_a");
    free(p);
    free(s);
    secretbox_free(a);
    secretbox_free(b);
}

static void test_malformed(void **state)
{
    (void)state;
    struct secretbox *b = secretbox_new(KEY_A);
    const char *bad[] = {
        "",
        "v1:",
        "v1:AAAA",                                    /* too short for nonce + tag */
        "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* not a multiple of 4 */
        "v1:!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 30 zero bytes: tag fails */
        "v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "V1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (secretbox_open(b, bad[i]))
            fail_msg("\"%s\" opened", bad[i]);
    assert_null(secretbox_open(b, NULL));
    assert_null(secretbox_open(NULL, "v1:AAAA"));

    /* Authentic but holding a NUL: refused, not silently cut short. */
    const uint8_t with_nul[] = {'w', 'h', 0, 's', 'e', 'c'};
    char *s = seal_bytes(KEY_A, with_nul, sizeof(with_nul));
    assert_null(secretbox_open(b, s));
    free(s);
    const uint8_t plain[] = {'w', 'h', 's', 'e', 'c'};
    s = seal_bytes(KEY_A, plain, sizeof(plain));
    char *p = secretbox_open(b, s);
    assert_string_equal(p, "whsec");
    free(p);
    free(s);

    /* A sealed value longer than any seal could make is not even decoded. */
    size_t huge = 3 + 4 * 2000;
    char *h = malloc(huge + 1);
    memcpy(h, "v1:", 3);
    memset(h + 3, 'A', huge - 3);
    h[huge] = '\0';
    assert_null(secretbox_open(b, h));
    free(h);
    secretbox_free(b);
}

static void test_is_sealed(void **state)
{
    (void)state;
    assert_true(secretbox_is_sealed("v1:abc"));
    assert_false(secretbox_is_sealed("whsec_abc"));
    assert_false(secretbox_is_sealed("v1"));
    assert_false(secretbox_is_sealed(""));
    assert_false(secretbox_is_sealed(NULL));
    char whsec[WEBHOOK_SECRET_LEN];
    assert_int_equal(webhook_secret_new(whsec, sizeof(whsec)), 0);
    assert_false(secretbox_is_sealed(whsec));
}

/* ---- keys ----------------------------------------------------------------- */

static void test_parse_key_forms(void **state)
{
    (void)state;
    uint8_t k[32];
    char err[512];
    char text[80];

    /* base64 of KEY_A, as `openssl rand -base64 32` would print a key */
    assert_int_equal(ids_base64(KEY_A, 32, text, sizeof(text)), 44);
    assert_int_equal(secretbox_parse_key(text, k, err, sizeof(err)), 0);
    assert_memory_equal(k, KEY_A, 32);

    /* hex, lower and upper case */
    ids_hex(KEY_A, 32, text);
    memset(k, 0, sizeof(k));
    assert_int_equal(secretbox_parse_key(text, k, err, sizeof(err)), 0);
    assert_memory_equal(k, KEY_A, 32);
    for (char *c = text; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    memset(k, 0, sizeof(k));
    assert_int_equal(secretbox_parse_key(text, k, err, sizeof(err)), 0);
    assert_memory_equal(k, KEY_A, 32);
}

static void test_parse_key_rejects(void **state)
{
    (void)state;
    uint8_t k[32];
    char err[512];
    char b64[80], hex[80], buf[160];
    assert_int_equal(ids_base64(KEY_A, 32, b64, sizeof(b64)), 44);
    ids_hex(KEY_A, 32, hex);

    uint8_t k31[31], k33[33];
    memcpy(k31, KEY_A, 31);
    memcpy(k33, KEY_A, 32);
    k33[32] = 7;
    char b31[80], b33[80];
    assert_int_equal(ids_base64(k31, 31, b31, sizeof(b31)), 44); /* ends "==" */
    assert_int_equal(ids_base64(k33, 33, b33, sizeof(b33)), 44); /* no padding */

    struct {
        const char *text;
        const char *err_has;
    } cases[] = {
        {"", "not 0 characters"},
        {"short", "not 5 characters"},
        {b31, "not standard base64 of 32 bytes"},
        {b33, "not standard base64 of 32 bytes"},
        {"0000000000000000000000000000000000000000000000000000000000000000", "all zero"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "all zero"},
        {"g000000000000000000000000000000000000000000000000000000000000001", "not hex"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (secretbox_parse_key(cases[i].text, k, err, sizeof(err)) != -1)
            fail_msg("\"%s\" accepted", cases[i].text);
        if (!strstr(err, cases[i].err_has))
            fail_msg("\"%s\": error \"%s\", want \"%s\"", cases[i].text, err, cases[i].err_has);
    }

    /* Variants of good keys: blanks, newline, URL-safe alphabet, one char
     * more or less, hex with a separator. */
    snprintf(buf, sizeof(buf), "%s\n", b64);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), " %s", b64);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), "%.43s", b64);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), "%s", b64);
    for (char *c = buf; *c; c++) {
        if (*c == '+')
            *c = '-';
        if (*c == '/')
            *c = '_';
    }
    if (strcmp(buf, b64) != 0) /* only meaningful if b64 had + or / */
        assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    buf[0] = '-'; /* URL-safe regardless of the key's own letters */
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), "%s0", hex);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), "%.63s", hex);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    snprintf(buf, sizeof(buf), "%.31s:%s", hex, hex + 32);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    assert_int_equal(secretbox_parse_key(NULL, k, err, sizeof(err)), -1);
    /* The message never repeats the key. */
    snprintf(buf, sizeof(buf), "%s==", b64);
    assert_int_equal(secretbox_parse_key(buf, k, err, sizeof(err)), -1);
    assert_null(strstr(err, b64));
}

/* ---- the key file --------------------------------------------------------- */

struct tmpdir {
    char dir[64];
    char key[128];
};

static void tmpdir_make(struct tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/collie-sbtest-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->key, sizeof(t->key), "%s/collie.db.key", t->dir);
}

/* Number of entries in the directory besides . and .. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void tmpdir_remove(struct tmpdir *t)
{
    DIR *d = opendir(t->dir);
    assert_non_null(d);
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", t->dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    assert_int_equal(rmdir(t->dir), 0);
}

static void test_key_file_created_then_reused(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    uint8_t k1[32], k2[32];
    char err[512];
    mode_t old = umask(0); /* the file is private whatever the umask */
    int rc = secretbox_open_key(NULL, t.key, k1, err, sizeof(err));
    umask(old);
    if (rc != 0)
        fail_msg("%s", err);
    struct stat st;
    assert_int_equal(lstat(t.key, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(dir_entries(t.dir), 1); /* no temporary left behind */

    assert_int_equal(secretbox_open_key(NULL, t.key, k2, err, sizeof(err)), 0);
    assert_memory_equal(k1, k2, 32);

    /* A box from the file's key opens what it sealed after a "restart". */
    struct secretbox *b1 = secretbox_new(k1);
    char *s = secretbox_seal(b1, "whsec_persisted");
    secretbox_free(b1);
    struct secretbox *b2 = secretbox_new(k2);
    char *p = secretbox_open(b2, s);
    assert_string_equal(p, "whsec_persisted");
    free(p);
    free(s);
    secretbox_free(b2);
    tmpdir_remove(&t);
}

static void test_key_env_wins(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    uint8_t k[32];
    char err[512], hex[80];
    ids_hex(KEY_A, 32, hex);
    assert_int_equal(secretbox_open_key(hex, t.key, k, err, sizeof(err)), 0);
    assert_memory_equal(k, KEY_A, 32);
    assert_int_equal(dir_entries(t.dir), 0); /* no key file made */

    assert_int_equal(secretbox_open_key("not-a-key", t.key, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "COLLIE_SECRET_KEY"));
    assert_int_equal(secretbox_open_key("", t.key, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "COLLIE_SECRET_KEY"));
    assert_int_equal(dir_entries(t.dir), 0);
    assert_int_equal(secretbox_open_key(NULL, NULL, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "COLLIE_SECRET_KEY"));
    tmpdir_remove(&t);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_key_file_refused(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    uint8_t k[32];
    char err[512];

    const mode_t loose[] = {0640, 0604, 0660, 0644, 0610, 0601};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        write_file(t.key, KEY_A, 32, loose[i]);
        err[0] = '\0';
        assert_int_equal(secretbox_open_key(NULL, t.key, k, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "group or others"));
        assert_non_null(strstr(err, "chmod 600"));
    }
    write_file(t.key, KEY_A, 32, 0400); /* read-only for the owner is fine */
    assert_int_equal(secretbox_open_key(NULL, t.key, k, err, sizeof(err)), 0);
    assert_memory_equal(k, KEY_A, 32);
    chmod(t.key, 0600);

    const size_t sizes[] = {0, 31, 33, 64};
    uint8_t junk[64] = {0};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_file(t.key, junk, sizes[i], 0600);
        assert_int_equal(secretbox_open_key(NULL, t.key, k, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "want exactly 32"));
    }
    /* An existing but broken file is never replaced by a fresh key, which
     * would silently orphan every sealed secret. */
    struct stat st;
    assert_int_equal(stat(t.key, &st), 0);
    assert_int_equal(st.st_size, 64);
    assert_int_equal(unlink(t.key), 0);

    /* A symlink, even to a good key file, is refused. */
    char target[192];
    snprintf(target, sizeof(target), "%s/real.key", t.dir);
    write_file(target, KEY_A, 32, 0600);
    assert_int_equal(symlink(target, t.key), 0);
    assert_int_equal(secretbox_open_key(NULL, t.key, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "symbolic link"));
    assert_int_equal(unlink(t.key), 0);

    /* A directory in its place. */
    assert_int_equal(mkdir(t.key, 0700), 0);
    assert_int_equal(secretbox_open_key(NULL, t.key, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(rmdir(t.key), 0);

    /* A directory that does not exist. */
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/nope/collie.db.key", t.dir);
    assert_int_equal(secretbox_open_key(NULL, missing, k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot create key file"));
    tmpdir_remove(&t);
}

struct racer {
    const char *path;
    uint8_t key[32];
    int rc;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    char err[512];
    r->rc = secretbox_open_key(NULL, r->path, r->key, err, sizeof(err));
    return NULL;
}

static void test_key_file_concurrent_first_start(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    enum { N = 8 };
    struct racer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i].path = t.key;
        r[i].rc = -2;
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_memory_equal(r[i].key, r[0].key, 32); /* all agree on one key */
    }
    assert_int_equal(dir_entries(t.dir), 1);
    tmpdir_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fresh_nonce),
        cmocka_unit_test(test_format_independent_decrypt),
        cmocka_unit_test(test_tamper_each_region),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_is_sealed),
        cmocka_unit_test(test_parse_key_forms),
        cmocka_unit_test(test_parse_key_rejects),
        cmocka_unit_test(test_key_file_created_then_reused),
        cmocka_unit_test(test_key_env_wins),
        cmocka_unit_test(test_key_file_refused),
        cmocka_unit_test(test_key_file_concurrent_first_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
