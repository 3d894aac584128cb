/* Durations written with a unit: "250ms", "15s", "5m", "2h". */
#ifndef COLLIE_UTIL_DURATION_H
#define COLLIE_UTIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses exactly len bytes of text as a positive duration with a unit (ms,
 * s, m, h); a bare number is seconds. Returns 0 and sets *ms, or -1. */
int duration_parse_ms(const char *text, size_t len, int64_t *ms);

#endif
