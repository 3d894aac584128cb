/* Standard Webhooks signing (standardwebhooks.com): the key is the base64
 * payload of a "whsec_" secret, the signature HMAC-SHA256 over
 * "{id}.{timestamp}.{body}", sent as "v1,<base64>". Any Standard Webhooks
 * library verifies what this file signs, and the reverse. */
#include "webhook/sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/algs.h"
#include "util/ids.h"

#define SECRET_PREFIX "whsec_"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
#define SECRET_RANDOM_BYTES 32
/* Standard Webhooks keys are 24..64 bytes; accept up to this many so that a
 * customer-chosen longer key still works. */
#define KEY_MAX 256
#define MAC_LEN 32 /* SHA-256 */

int webhook_secret_new(char *out, size_t cap)
{
    uint8_t key[SECRET_RANDOM_BYTES];
    /* 4 * ceil(32 / 3) = 44 base64 characters. */
    if (!out || cap < SECRET_PREFIX_LEN + 44 + 1)
        return -1;
    if (ids_random(key, sizeof(key)) != 0)
        return -1;
    memcpy(out, SECRET_PREFIX, SECRET_PREFIX_LEN);
    int n = ids_base64(key, sizeof(key), out + SECRET_PREFIX_LEN, cap - SECRET_PREFIX_LEN);
    OPENSSL_cleanse(key, sizeof(key));
    if (n != 44) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Decodes the key of a "whsec_" secret into key[KEY_MAX]. Returns its length,
 * or -1 when the secret is malformed. */
static int secret_key(const char *secret, uint8_t *key)
{
    if (!secret || strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
        return -1;
    const char *b64 = secret + SECRET_PREFIX_LEN;
    size_t n = strlen(b64);
    /* ids_base64_decode wants room for the padding bytes too. */
    if (n == 0 || n > (KEY_MAX / 3) * 4)
        return -1;
    int len = ids_base64_decode(b64, n, key, KEY_MAX);
    return len > 0 ? len : -1;
}

/* HMAC-SHA256(key, "{id}.{timestamp}.{body}") into mac[MAC_LEN]. Fed in
 * pieces so the body (up to megabytes) is never copied. */
static int compute_mac(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp,
                       const char *body, size_t body_len, uint8_t mac[MAC_LEN])
{
    char ts[24];
    int ts_len = snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
    EVP_MAC *alg = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t out_len = 0;
    int rc = -1;

    if (ts_len <= 0 || (size_t)ts_len >= sizeof(ts))
        return -1;
    alg = algs_hmac();
    if (!alg)
        goto fail;
    ctx = EVP_MAC_CTX_new(alg);
    if (!ctx)
        goto fail;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)ts_len) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
        (body_len > 0 && EVP_MAC_update(ctx, (const unsigned char *)body, body_len) != 1) ||
        EVP_MAC_final(ctx, mac, &out_len, MAC_LEN) != 1 || out_len != MAC_LEN)
        goto fail;
    rc = 0;
fail:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

int webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                 size_t body_len, char *out, size_t cap)
{
    uint8_t key[KEY_MAX];
    uint8_t mac[MAC_LEN];
    int rc = -1;

    if (!msg_id || (!body && body_len > 0) || !out || cap < 3 + 44 + 1)
        return -1;
    int key_len = secret_key(secret, key);
    if (key_len < 0)
        goto done;
    if (compute_mac(key, (size_t)key_len, msg_id, timestamp, body, body_len, mac) != 0)
        goto done;
    memcpy(out, "v1,", 3);
    if (ids_base64(mac, sizeof(mac), out + 3, cap - 3) != 44)
        goto done;
    rc = 0;
done:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(mac, sizeof(mac));
    if (rc != 0 && out && cap > 0)
        out[0] = '\0';
    return rc;
}

int webhook_verify(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                   size_t body_len, const char *signature_header)
{
    char expected[WEBHOOK_SIGNATURE_LEN];
    int ok = 0;

    if (!signature_header)
        return 0;
    if (webhook_sign(secret, msg_id, timestamp, body, body_len, expected, sizeof(expected)) != 0)
        return 0;
    size_t exp_len = strlen(expected);

    /* Entries are separated by spaces; a sender rotating secrets sends one
     * per key, and entries of versions we do not know ("v1a,…") simply
     * never match. Every candidate of the right length is compared in full
     * (CRYPTO_memcmp) so timing does not reveal how much of it matched. */
    const char *p = signature_header;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        size_t len = (size_t)(p - start);
        if (len == exp_len && CRYPTO_memcmp(start, expected, exp_len) == 0)
            ok = 1;
    }
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
}
