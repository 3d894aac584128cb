/* Request bodies into jansson values, with yajl's lexer where it agrees.
 *
 * jansson reads a character at a time through several calls per byte:
 * ~11-13 ns a byte here, 12 µs for the 1.1 KB body of a typical job, a
 * quarter of an HTTP thread's work per request (bench/README.md). yajl
 * lexes the same body in under 1 µs. jsonparse_load lets yajl read the
 * text and builds the jansson value from its events; wherever yajl's
 * reading could differ from jansson's (surrogate escapes, overlong UTF-8,
 * duplicate or NUL-holding keys, numbers out of range, deep nesting) it
 * does not decide and hands the text to jansson, which stays the reference
 * for what is accepted and for every error message. The rest of the code
 * sees only jansson values. */
#ifndef COLLIE_UTIL_JSONPARSE_H
#define COLLIE_UTIL_JSONPARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The flags whose meaning jsonparse_load has: NULs allowed in strings,
 * duplicate keys refused, any value at the top (so that a bare 5 is "not
 * an object" rather than "not JSON"). */
#define JSONPARSE_FLAGS (JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

/* What json_loadb(buf, len, JSONPARSE_FLAGS, err) returns: a new reference
 * the caller owns, or NULL with *err filled (err may be NULL). */
json_t *jsonparse_load(const char *buf, size_t len, json_error_t *err);

/* v is a string holding a NUL character. The parse lets them through
 * (JSON_ALLOW_NUL) so that validation can name the field that holds one. */
bool jsonparse_string_has_nul(json_t *v);

/* The yajl path alone: the value json_loadb would return (a new
 * reference), or NULL when this path does not decide, because the text is
 * not JSON or is JSON it leaves to jansson. For jsonparse_load and its
 * tests. */
json_t *jsonparse_fast(const char *buf, size_t len);

#endif
