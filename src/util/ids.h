/* Identifiers and secrets. Ids are a prefix plus a ULID (48-bit millisecond
 * time + 80 random bits, Crockford base32), so they sort by creation time. */
#ifndef COLLIE_UTIL_IDS_H
#define COLLIE_UTIL_IDS_H

#include <stddef.h>
#include <stdint.h>

#define IDS_ULID_LEN 26
#define IDS_MAX_LEN 48 /* prefix + ULID + NUL fits in this */

/* Writes prefix (e.g. "job_") followed by a new ULID for time ms into out.
 * Returns 0, or -1 when the random source fails or cap is too small. */
int ids_new(char *out, size_t cap, const char *prefix, int64_t ms);

/* Fills buf with n cryptographically strong random bytes. Returns 0 or -1. */
int ids_random(uint8_t *buf, size_t n);

/* Standard padded base64 of n bytes into out (cap must be >= 4*((n+2)/3)+1).
 * Returns the length written, or -1. */
int ids_base64(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes standard padded base64. Returns the decoded length, or -1 on
 * malformed input or when cap is too small. */
int ids_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* Lower-case hex of n bytes into out (cap >= 2n+1). */
void ids_hex(const uint8_t *in, size_t n, char *out);

/* SHA-256 of n bytes into out[32]. */
void ids_sha256(const void *in, size_t n, uint8_t out[32]);

#endif
