/* UTF-8 well-formedness, for text that goes into JSON we produce. */
#ifndef COLLIE_UTIL_UTF8_H
#define COLLIE_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at s[0, n) (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), or 0 when s does not start with
 * one. n > 0. */
size_t utf8_sequence_len(const char *s, size_t n);

/* s[0, n) is well-formed UTF-8 throughout (as utf8_sequence_len judges;
 * the RFC 3629 rules jansson applies too). */
bool utf8_valid(const char *s, size_t n);

/* Characters in s[0, n): well-formed sequences count one each, and so
 * does every byte that is not part of one. */
size_t utf8_chars(const char *s, size_t n);

/* Replaces, in place, every byte of the NUL-terminated s that is not part
 * of a well-formed sequence with '?', so that s is valid UTF-8 of the same
 * length. Messages that quote client input (a path, an id, a header, a
 * string cut at a byte limit) can hold anything; JSON cannot. */
void utf8_scrub(char *s);

#endif
