/* Standard Webhooks signatures (standardwebhooks.com): per-job secrets
 * "whsec_<base64(32 random bytes)>" and "v1,<base64(HMAC-SHA256)>" over
 * "{id}.{timestamp}.{body}". */
#ifndef COLLIE_WEBHOOK_SIGN_H
#define COLLIE_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SECRET_LEN 64    /* "whsec_" + 44 base64 chars + NUL, with room */
#define WEBHOOK_SIGNATURE_LEN 64 /* "v1," + 44 base64 chars + NUL, with room */

/* Writes a new random secret into out. Returns 0 or -1. */
int webhook_secret_new(char *out, size_t cap);

/* Signs body with secret ("whsec_…"; the part after the prefix is base64 of
 * the key). Writes "v1,<signature>" into out. Returns 0, or -1 when the
 * secret is malformed or cap is too small. */
int webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                 size_t body_len, char *out, size_t cap);

/* Verifies a webhook-signature header value (space-separated list of
 * "v1,<sig>" entries; any match passes) in constant time per entry.
 * Returns 1 when valid, 0 otherwise. */
int webhook_verify(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                   size_t body_len, const char *signature_header);

#endif
