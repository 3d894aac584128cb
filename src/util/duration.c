#include "util/duration.h"

#include <string.h>

int duration_parse_ms(const char *text, size_t len, int64_t *ms)
{
    size_t i = 0;
    int64_t v = 0;
    if (len == 0)
        return -1;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        if (v > (INT64_MAX / 10 - 9) / 3600000)
            return -1; /* would overflow once scaled to milliseconds */
        v = v * 10 + (text[i] - '0');
        i++;
    }
    if (i == 0)
        return -1;
    const char *unit = text + i;
    size_t ulen = len - i;
    int64_t scale;
    if (ulen == 0 || (ulen == 1 && unit[0] == 's'))
        scale = 1000;
    else if (ulen == 2 && memcmp(unit, "ms", 2) == 0)
        scale = 1;
    else if (ulen == 1 && unit[0] == 'm')
        scale = 60000;
    else if (ulen == 1 && unit[0] == 'h')
        scale = 3600000;
    else
        return -1;
    if (v <= 0)
        return -1;
    *ms = v * scale;
    return 0;
}
