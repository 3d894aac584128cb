/* Secrets at rest: short strings (webhook secrets) sealed with AES-256-GCM
 * under one server key, so a copy of the database alone does not reveal
 * them.
 *
 * Sealed text: "v1:" + standard padded base64 of
 *     nonce (12 random bytes) || ciphertext || tag (16 bytes)
 * with the fixed associated data "collie secretbox v1" (so a blob sealed for
 * another purpose under the same key cannot be passed off as one of these).
 * A fresh random nonce per seal: sealing the same plaintext twice gives
 * different text.
 *
 * The key (32 bytes) comes from COLLIE_SECRET_KEY (base64 of 32 bytes, or
 * 64 hex digits) or else from a key file, created on first start. */
#ifndef COLLIE_UTIL_SECRETBOX_H
#define COLLIE_UTIL_SECRETBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRETBOX_KEY_LEN 32
/* The longest plaintext secretbox_seal accepts. Secrets are short; the cap
 * keeps a sealed column bounded. */
#define SECRETBOX_MAX_PLAINTEXT 4096

/* Parses a key given as text: standard padded base64 of exactly 32 bytes
 * (44 characters) or exactly 64 hex digits (either case). Nothing else is
 * accepted: no blanks, no URL-safe alphabet, no other lengths. Returns 0,
 * or -1 with a message in err (which never contains the key). */
int secretbox_parse_key(const char *text, uint8_t key[SECRETBOX_KEY_LEN], char *err, size_t cap);

/* Gets the server key.
 *  - env_value (the caller passes getenv("COLLIE_SECRET_KEY")): when not
 *    NULL it is the key, parsed by secretbox_parse_key; the key file is then
 *    neither read nor created. An empty value is an error.
 *  - otherwise key_file is read: exactly 32 raw bytes, a regular file (not
 *    a symlink), with no group or other permission bits. When it does not
 *    exist it is created with 32 bytes from the CSPRNG, mode 0600,
 *    atomically (written to a temporary file in the same directory, synced,
 *    then linked into place, so concurrent first starts agree on one key
 *    and no reader ever sees half a key).
 * Returns 0, or -1 with a message in err. key_file may be NULL only when
 * env_value is given. */
int secretbox_open_key(const char *env_value, const char *key_file, uint8_t key[SECRETBOX_KEY_LEN],
                       char *err, size_t cap);

struct secretbox;

/* A box for key (copied). Returns NULL when out of memory. The box is
 * immutable: one may be shared by any number of threads. */
struct secretbox *secretbox_new(const uint8_t key[SECRETBOX_KEY_LEN]);

/* Wipes the key and frees the box. Accepts NULL. */
void secretbox_free(struct secretbox *b);

/* Seals plaintext (a NUL-terminated string of at most
 * SECRETBOX_MAX_PLAINTEXT bytes). Returns the sealed text, which the caller
 * frees with free(), or NULL (too long, out of memory, random source or
 * cipher failure). */
char *secretbox_seal(const struct secretbox *b, const char *plaintext);

/* Opens sealed text. Returns the plaintext, which the caller frees with
 * free() (wiping it first is courteous), or NULL when the text is not
 * sealed ("v1:" prefix), malformed, sealed under another key, or tampered
 * with. Never returns unauthenticated bytes. */
char *secretbox_open(const struct secretbox *b, const char *sealed);

/* True when text looks sealed (starts with "v1:"). No whsec_ secret does,
 * so a store can tell old plaintext rows from sealed ones and migrate
 * them; whether it opens is only known from secretbox_open. */
bool secretbox_is_sealed(const char *text);

#endif
