/* UTF-8 helpers: code point counting and offset conversion (reported offsets
 * are code points of the original text, matching works on bytes), and the
 * word-character test behind whole_word keywords. Input is assumed to be
 * valid UTF-8, but nothing here reads outside [0, n) when it is not. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

size_t pol_utf8_count(const char *s, size_t n)
{
    /* Every byte that is not a continuation byte (10xxxxxx) starts a code
     * point. Eight bytes at a time: bit 7 set and bit 6 clear, summed with a
     * multiply (offsets of a 16 MiB text: 10 ms byte by byte, 2 ms so). */
    const unsigned char *u = (const unsigned char *)s;
    size_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, u + i, 8);
        uint64_t cont = (x & ~(x << 1) & 0x8080808080808080ull) >> 7;
        /* one bit per byte: the multiply sums the eight bytes into the top one */
        c += 8 - (size_t)((cont * 0x0101010101010101ull) >> 56);
    }
    for (; i < n; i++)
        c += (u[i] & 0xC0) != 0x80;
    return c;
}

size_t pol_utf8_decode(const char *s, size_t n, size_t i, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char b = u[i];
    size_t need;
    uint32_t v;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        need = 1;
        v = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
        need = 2;
        v = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
        need = 3;
        v = b & 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n - i <= need) { /* truncated sequence */
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t k = 1; k <= need; k++) {
        if ((u[i + k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (u[i + k] & 0x3F);
    }
    *cp = v;
    return need + 1;
}

uint32_t pol_utf8_prev(const char *s, size_t i)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t j = i;
    /* back over at most three continuation bytes to the lead byte */
    while (j > 0 && i - j < 4) {
        j--;
        if ((u[j] & 0xC0) != 0x80)
            break;
    }
    uint32_t cp;
    size_t l = pol_utf8_decode(s, i, j, &cp);
    return j + l == i ? cp : 0xFFFD;
}

bool pol_is_word_cp(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') ||
               cp == '_';
    if (cp < 0xC0)
        return cp == 0xAA || cp == 0xB5 || cp == 0xBA; /* ª µ º */
    if (cp == 0xD7 || cp == 0xF7)
        return false; /* × ÷ */
    /* Punctuation, symbols, spaces and controls that sit between scripts. */
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
        (cp >= 0xE0000 && cp <= 0xE007F) || cp == 0xFEFF || cp == 0xFFFD ||
        (cp >= 0x1F000 && cp <= 0x1FAFF))
        return false;
    return true;
}

bool pol_is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

size_t pol_utf8_cp_to_byte(const char *s, size_t n, size_t cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            if (c == cp)
                return i;
            c++;
        }
    }
    return n;
}

static int offref_cmp(const void *a, const void *b)
{
    const struct pol_offref *x = a, *y = b;
    return (x->byte > y->byte) - (x->byte < y->byte);
}

void pol_utf8_bytes_to_cps(const char *s, size_t n, struct pol_offref *refs, size_t nrefs)
{
    if (nrefs == 0)
        return;
    qsort(refs, nrefs, sizeof(*refs), offref_cmp);
    size_t pos = 0, cps = 0;
    for (size_t k = 0; k < nrefs; k++) {
        size_t b = refs[k].byte < n ? refs[k].byte : n;
        cps += pol_utf8_count(s + pos, b - pos);
        pos = b;
        *refs[k].out = cps;
    }
}

bool pol_guard_has(enum pol_guard g, unsigned char c)
{
    bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    switch (g) {
    case GUARD_NONE:
        return false;
    case GUARD_WORD:
        return alnum || c == '_';
    case GUARD_DIGIT:
        return c >= '0' && c <= '9';
    case GUARD_B64:
        return alnum || c == '+' || c == '/' || c == '=';
    case GUARD_B64CORE:
        return alnum || c == '+' || c == '/';
    case GUARD_B64URL:
        return alnum || c == '_' || c == '-';
    case GUARD_TOKEN:
        return alnum || c == '_' || c == '-' || c == '.';
    case GUARD_IPV6:
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') ||
               c == ':';
    case GUARD_PEM:
        return alnum || c == '+' || c == '/' || c == '=' || c == ' ' || c == '\n' || c == '\r' ||
               c == '\t';
    case GUARD_NONSPACE:
        return c > ' ' && c != '"' && c != '\'' && c != '`' && c != ',' && c != ';' && c != 0x7F;
    }
    return false;
}
