/* A string hash for in-memory tables (FNV-1a, 32 bits): fast on short
 * keys such as ids and host names. Not for anything an attacker must not
 * be able to collide: callers bound their chains or their probes. */
#ifndef COLLIE_UTIL_STRHASH_H
#define COLLIE_UTIL_STRHASH_H

#include <stdint.h>

static inline uint32_t strhash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

#endif
