#include "util/utf8.h"

#include <string.h>

size_t utf8_sequence_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char b = u[0];
    if (b < 0x80)
        return 1;
    /* The lead byte fixes the length and the range of the second byte,
     * which is what rules out overlong forms, surrogates (ED A0..BF) and
     * code points past U+10FFFF (F4 90.., F5..FF). */
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((u[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        /* ASCII, nearly all of most texts, without the call. */
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_sequence_len(s + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void utf8_scrub(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_sequence_len(s + i, n - i);
        if (l == 0) {
            s[i++] = '?';
        } else {
            i += l;
        }
    }
}

size_t utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; chars++) {
        size_t len = utf8_sequence_len(s + i, n - i);
        i += len ? len : 1;
    }
    return chars;
}
