/* The retry schedule: parsing "5s,5m,30m" and drawing jittered delays. */
#include "webhook/schedule.h"

#include <ctype.h>
#include <string.h>

#include "util/ids.h"

#define SEC_MS INT64_C(1000)
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)

void webhook_schedule_default(struct webhook_schedule *s)
{
    static const int64_t def[] = {
        5 * SEC_MS, 5 * MIN_MS, 30 * MIN_MS, 2 * HOUR_MS, 5 * HOUR_MS, 10 * HOUR_MS, 10 * HOUR_MS,
    };
    memset(s, 0, sizeof(*s));
    memcpy(s->delay_ms, def, sizeof(def));
    s->n = sizeof(def) / sizeof(def[0]);
}

/* Parses one item "<digits><unit>" spanning [p, end) with surrounding blanks
 * already trimmed. Returns 0 and sets *out, or -1. */
static int parse_item(const char *p, const char *end, int64_t *out)
{
    int64_t v = 0;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9') {
        int d = *q - '0';
        if (v > (WEBHOOK_SCHEDULE_DELAY_MAX_MS - d) / 10)
            return -1;
        v = v * 10 + d;
        q++;
    }
    if (q == p) /* no digits: "", "s", "-1s", "1.5s" all end up here or below */
        return -1;

    size_t ulen = (size_t)(end - q);
    int64_t mul;
    if (ulen == 2 && q[0] == 'm' && q[1] == 's')
        mul = 1;
    else if (ulen == 1 && q[0] == 's')
        mul = SEC_MS;
    else if (ulen == 1 && q[0] == 'm')
        mul = MIN_MS;
    else if (ulen == 1 && q[0] == 'h')
        mul = HOUR_MS;
    else
        return -1;

    if (v > WEBHOOK_SCHEDULE_DELAY_MAX_MS / mul)
        return -1;
    *out = v * mul;
    return 0;
}

int webhook_schedule_parse(const char *text, struct webhook_schedule *s)
{
    struct webhook_schedule tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (!text || !s)
        return -1;

    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (a == b || tmp.n == WEBHOOK_SCHEDULE_MAX)
            return -1; /* empty item ("1s,,2s", trailing comma, "") or too many */
        if (parse_item(a, b, &tmp.delay_ms[tmp.n]) != 0)
            return -1;
        tmp.n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    /* Only a fully valid list replaces the caller's schedule. */
    *s = tmp;
    return 0;
}

/* Uniform integer in [0, bound] from the CSPRNG, without modulo bias.
 * Returns -1 when the random source fails. */
static int uniform_u64(uint64_t bound, uint64_t *out)
{
    if (bound == UINT64_MAX) {
        return ids_random((uint8_t *)out, sizeof(*out));
    }
    uint64_t range = bound + 1;
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
    for (;;) {
        uint64_t r;
        if (ids_random((uint8_t *)&r, sizeof(r)) != 0)
            return -1;
        if (r < limit) {
            *out = r % range;
            return 0;
        }
    }
}

int64_t webhook_schedule_delay(const struct webhook_schedule *s, int retry, int jitter_pct)
{
    if (!s || retry < 1 || (size_t)retry > s->n)
        return -1;
    int64_t base = s->delay_ms[retry - 1];
    if (base <= 0)
        return 0;
    if (jitter_pct <= 0)
        return base;
    if (jitter_pct > 100)
        jitter_pct = 100;

    /* span = base * pct / 100 without overflow; base is at most
     * WEBHOOK_SCHEDULE_DELAY_MAX_MS so base + span fits easily. */
    uint64_t span = (uint64_t)(base / 100) * (uint64_t)jitter_pct +
                    (uint64_t)(base % 100) * (uint64_t)jitter_pct / 100;
    uint64_t r;
    if (uniform_u64(2 * span, &r) != 0)
        return base; /* no randomness: an unjittered retry beats none */
    return (int64_t)((uint64_t)base - span + r);
}

int64_t webhook_schedule_max_delay(const struct webhook_schedule *s)
{
    int64_t m = 0;
    for (size_t i = 0; s && i < s->n; i++)
        if (s->delay_ms[i] > m)
            m = s->delay_ms[i];
    return m;
}
