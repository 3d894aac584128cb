#include <string.h>

#include "api/api.h"
#include "util/ids.h"

int api_key_create(struct store *st, int64_t project_id, char *out)
{
    uint8_t raw[API_KEY_HEX / 2];
    if (ids_random(raw, sizeof(raw)) != 0)
        return STORE_IO;
    memcpy(out, API_KEY_PREFIX, sizeof(API_KEY_PREFIX) - 1);
    ids_hex(raw, sizeof(raw), out + sizeof(API_KEY_PREFIX) - 1);
    uint8_t hash[32];
    api_key_hash(out, hash);
    /* The display prefix is not secret: 8 of 48 hex digits. */
    char prefix[sizeof(API_KEY_PREFIX) + 8];
    memcpy(prefix, out, sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    return store_key_create(st, project_id, hash, prefix);
}

bool api_key_hash(const char *key, uint8_t hash[32])
{
    size_t plen = sizeof(API_KEY_PREFIX) - 1;
    if (strncmp(key, API_KEY_PREFIX, plen) != 0 || strlen(key) != API_KEY_LEN)
        return false;
    for (size_t i = plen; i < API_KEY_LEN; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    ids_sha256(key, API_KEY_LEN, hash);
    return true;
}
