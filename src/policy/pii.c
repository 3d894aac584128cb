/* PII detectors. Vectorscan finds candidates with deliberately loose
 * patterns; the checks here keep the real ones: Luhn and issuer prefixes for
 * cards, per-country length and mod-97 for IBANs, the never-issued SSN
 * ranges, inet_pton for IP addresses. Patterns are ASCII and scan the UTF-8
 * bytes (a byte >= 0x80 is never part of a candidate). */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A dotted or dashed number glued to a longer one (OIDs, versions, ISBNs)
 * is part of something else. */
static bool glued(const char *t, size_t len, size_t s, size_t e, char sep)
{
    if (s >= 2 && t[s - 1] == sep && is_digit(t[s - 2]))
        return true;
    if (e + 1 < len && t[e] == sep && is_digit(t[e + 1]))
        return true;
    return false;
}

static bool check_email(const char *t, size_t len, size_t *s, size_t *e)
{
    /* The local part may not begin with a dot; "..x@y" is "x@y". */
    while (*s < *e && (t[*s] == '.' || t[*s] == '-' || t[*s] == '+'))
        (*s)++;
    const char *at = memchr(t + *s, '@', *e - *s);
    if (!at || at == t + *s || at[-1] == '.')
        return false;
    /* user@host:path is an scp/git remote, not a mailbox */
    if (*e + 1 < len && t[*e] == ':' && t[*e + 1] != ' ')
        return false;
    /* a domain label never starts or ends with '-' */
    for (const char *p = at + 1; p < t + *e; p++)
        if (*p == '-' && (p[-1] == '.' || p[-1] == '@' || p + 1 == t + *e || p[1] == '.'))
            return false;
    return true;
}

static size_t count_digits(const char *t, size_t s, size_t e)
{
    size_t n = 0;
    for (size_t i = s; i < e; i++)
        n += is_digit(t[i]);
    return n;
}

/* The token before s (across one space) or after e is a group of digits or
 * capitals: the candidate is a slice of a longer grouped code (card, IBAN,
 * tracking number). */
static bool in_grouped_code(const char *t, size_t len, size_t s, size_t e)
{
    if (s >= 2 && t[s - 1] == ' ' && (is_digit(t[s - 2]) || (t[s - 2] >= 'A' && t[s - 2] <= 'Z')))
        return true;
    return e + 1 < len && t[e] == ' ' && is_digit(t[e + 1]);
}

static bool check_phone(const char *t, size_t len, size_t *s, size_t *e)
{
    size_t d = count_digits(t, *s, *e);
    if (d < 8 || d > 15 || (t[*s] != '+' && in_grouped_code(t, len, *s, *e)))
        return false;
    /* glued to other digits or to a word: a part number, not a phone */
    if (*s > 0 && (is_alnum(t[*s - 1]) || t[*s - 1] == '-' || t[*s - 1] == '/'))
        return false;
    if (*e < len && (t[*e] == '-' || t[*e] == '/') && *e + 1 < len && is_alnum(t[*e + 1]))
        return false;
    return !glued(t, len, *s, *e, '.');
}

static bool luhn_ok(const char *digits, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = digits[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* Issuer prefixes and the lengths they use (major networks). */
static bool card_issuer_ok(const char *d, size_t n)
{
    int p2 = (d[0] - '0') * 10 + (d[1] - '0');
    int p3 = p2 * 10 + (d[2] - '0');
    int p4 = p3 * 10 + (d[3] - '0');
    if (d[0] == '4')
        return n == 13 || n == 16 || n == 19; /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16; /* Mastercard */
    if (p2 == 34 || p2 == 37)
        return n == 15; /* Amex */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))
        return n >= 16 && n <= 19; /* Discover */
    if (p4 >= 3528 && p4 <= 3589)
        return n >= 16 && n <= 19; /* JCB */
    if (p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305))
        return n >= 14 && n <= 19; /* Diners */
    if (p2 == 62)
        return n >= 16 && n <= 19; /* UnionPay */
    if (p2 == 50 || (p2 >= 56 && p2 <= 69))
        return n >= 12 && n <= 19; /* Maestro */
    return false;
}

/* Digits of [s, e) if the separators are consistent: none, or one kind of
 * separator between groups of 3 to 6 digits (4-4-4-4, 4-6-5, ...). */
static bool card_digits(const char *t, size_t s, size_t e, char *out, size_t *n)
{
    char sep = 0;
    size_t group = 0, groups = 0;
    *n = 0;
    for (size_t i = s; i < e; i++) {
        if (is_digit(t[i])) {
            if (*n >= 19)
                return false;
            out[(*n)++] = t[i];
            group++;
            continue;
        }
        if ((sep && t[i] != sep) || group < 3 || group > 6)
            return false;
        sep = t[i];
        group = 0;
        groups++;
    }
    if (sep && (group < 2 || group > 6))
        return false;
    return *n >= 13;
}

static bool check_card(const char *t, size_t len, size_t *s, size_t *e)
{
    if (glued(t, len, *s, *e, '.') || glued(t, len, *s, *e, ','))
        return false;
    /* The leftmost start may include a number that precedes the card
     * ("ref 12 4111 1111 1111 1111"): retry from each later group. */
    for (size_t st = *s; st < *e; st++) {
        if (st > *s && !(is_digit(t[st]) && !is_digit(t[st - 1])))
            continue;
        char d[20];
        size_t n;
        if (!card_digits(t, st, *e, d, &n))
            continue;
        bool same = true;
        for (size_t i = 1; i < n; i++)
            same = same && d[i] == d[0];
        if (!same && card_issuer_ok(d, n) && luhn_ok(d, n)) {
            *s = st;
            return true;
        }
    }
    return false;
}

/* IBAN lengths per country (ISO 13616 registry, SEPA and common others). */
static const struct {
    char cc[3];
    unsigned char len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
    {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21},
    {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

static bool check_iban(const char *t, size_t len, size_t *s, size_t *e)
{
    size_t want = 0;
    for (size_t i = 0; i < sizeof(iban_lengths) / sizeof(iban_lengths[0]); i++)
        if (t[*s] == iban_lengths[i].cc[0] && t[*s + 1] == iban_lengths[i].cc[1])
            want = iban_lengths[i].len;
    if (want == 0)
        return false;
    char buf[40];
    size_t n = 0, i = *s;
    for (; i < *e && n < want; i++)
        if (t[i] != ' ')
            buf[n++] = t[i];
    /* A longer candidate may run into a following code ("... 00 AB"): cut
     * it at the country's length, but only at a group boundary. */
    if (n < want || (i < *e && t[i] != ' '))
        return false;
    *e = i;
    /* mod 97 of the rearranged number (country and check moved to the end,
     * letters as 10..35), computed digit by digit */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = buf[(k + 4) % n];
        unsigned v = is_digit(c) ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
        rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
    }
    return rem == 1;
}

static bool check_ssn(const char *t, size_t len, size_t *s, size_t *e)
{
    const char *p = t + *s;
    int area = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    int grp = (p[4] - '0') * 10 + (p[5] - '0');
    int serial = (p[7] - '0') * 1000 + (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
    if (area == 0 || area == 666 || area >= 900 || grp == 0 || serial == 0)
        return false;
    return !glued(t, len, *s, *e, p[3]) && !glued(t, len, *s, *e, '.');
}

/* Words that make a dotted quad a version or section number. */
static bool version_context(const char *t, size_t s)
{
    static const char *const words[] = {"version ",  "release ", "build ",   "section ",
                                        "v",         "ver. ",    "chapter ", "firmware ",
                                        "revision ", "rev ",     "kernel ",  "firmware is "};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t l = strlen(words[i]);
        if (s >= l && strncasecmp(t + s - l, words[i], l) == 0)
            return true;
    }
    return false;
}

static bool check_ipv4(const char *t, size_t len, size_t *s, size_t *e)
{
    char buf[16];
    size_t n = *e - *s;
    struct in_addr a;
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, t + *s, n);
    buf[n] = 0;
    /* inet_pton takes only four decimal octets <= 255 */
    return inet_pton(AF_INET, buf, &a) == 1 && !glued(t, len, *s, *e, '.') &&
           !version_context(t, *s);
}

static bool check_ipv6(const char *t, size_t len, size_t *s, size_t *e)
{
    char buf[64];
    size_t n = *e - *s;
    if (n < 3 || n >= sizeof(buf))
        return false;
    if (*s > 0 && (is_alnum(t[*s - 1]) || t[*s - 1] == ':' || t[*s - 1] == '_'))
        return false; /* Foo::bar, a:b::c */
    memcpy(buf, t + *s, n);
    buf[n] = 0;
    /* "cafe::babe" is valid syntax but is rarely an address; require a digit */
    if (count_digits(buf, 0, n) == 0)
        return false;
    struct in6_addr a;
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static const struct pol_detector dets[] = {
    {.entity = "email",
     .label = "EMAIL",
     .expr = "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,24}\\b",
     .fast = "@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,24}\\b",
     .max_len = 320,
     .entity_bit = PII_EMAIL,
     .validate = check_email},
    /* international, with a country code; led by "+", these scan with the
     * tokens group at no cost, the other digit runs in their own group */
    {.entity = "phone",
     .label = "PHONE",
     .expr =
         "\\+[1-9][0-9]{0,2}[ .-]?(?:\\([0-9]{1,4}\\)[ .-]?)?[0-9]{1,8}(?:[ .-][0-9]{1,8}){1,5}",
     .max_len = 40,
     .entity_bit = PII_PHONE,
     .guard = GUARD_DIGIT,
     .validate = check_phone},
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\+[1-9][0-9]{7,14}",
     .max_len = 16,
     .entity_bit = PII_PHONE,
     .guard = GUARD_DIGIT,
     .validate = check_phone},
    /* North American: (415) 555-2671, 415-555-2671, 212.555.0187 */
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\([2-9][0-9]{2}\\) ?[2-9][0-9]{2}[ .-][0-9]{4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_PHONE,
     .validate = check_phone},
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\b[2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_PHONE,
     .validate = check_phone},
    /* national with a trunk 0: 020 7946 0958, (02) 9876 5432, 01 42 68 53 00 */
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\b0[1-9][0-9]{1,3} ?[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_PHONE,
     .validate = check_phone},
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\(0[1-9][0-9]{0,3}\\) ?[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_PHONE,
     .validate = check_phone},
    {.entity = "phone",
     .label = "PHONE",
     .expr = "\\b0[1-9](?:[ .][0-9]{2}){4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_PHONE,
     .validate = check_phone},
    {.entity = "credit_card",
     .label = "CREDIT_CARD",
     .expr = "\\b(?:[0-9][ -]?){12,18}[0-9]\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_CREDIT_CARD,
     .validate = check_card},
    {.entity = "iban",
     .label = "IBAN",
     .expr = "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b",
     .fast = "[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b",
     .group = POL_GROUP_IBAN,
     .entity_bit = PII_IBAN,
     .validate = check_iban},
    {.entity = "us_ssn",
     .label = "US_SSN",
     .expr = "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_US_SSN,
     .validate = check_ssn},
    {.entity = "us_ssn",
     .label = "US_SSN",
     .expr = "\\b[0-9]{3} [0-9]{2} [0-9]{4}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_US_SSN,
     .validate = check_ssn},
    /* loose candidates, checked by inet_pton (measured 15x faster than the
     * exact octet grammar) */
    {.entity = "ip_address",
     .label = "IP_ADDRESS",
     .expr = "\\b[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\b",
     .group = POL_GROUP_DIGITS,
     .entity_bit = PII_IP_ADDRESS,
     .validate = check_ipv4},
    {.entity = "ip_address",
     .label = "IP_ADDRESS",
     .expr = "[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*",
     .fast = ":[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*",
     .max_len = 48,
     .entity_bit = PII_IP_ADDRESS,
     .guard = GUARD_IPV6,
     .validate = check_ipv6},
};

const struct pol_detector *pii_detectors(size_t *n)
{
    *n = sizeof(dets) / sizeof(dets[0]);
    return dets;
}
