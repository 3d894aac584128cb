#include "util/ids.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/algs.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Each thread draws from OpenSSL's generator a pool at a time: one
 * RAND_bytes call costs about as much as 200 bytes of output, and a job
 * needs several small draws (ids, its webhook secret, a sealing nonce).
 * Bytes handed out are wiped from the pool. The process never forks, so no
 * two processes can share a pool's contents. */
#define POOL_BYTES 512

static _Thread_local uint8_t pool[POOL_BYTES];
static _Thread_local size_t pool_left;

int ids_random(uint8_t *buf, size_t n)
{
    if (n > POOL_BYTES / 4)
        return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
    if (n > pool_left) {
        if (RAND_bytes(pool, POOL_BYTES) != 1)
            return -1;
        pool_left = POOL_BYTES;
    }
    uint8_t *from = pool + POOL_BYTES - pool_left;
    memcpy(buf, from, n);
    OPENSSL_cleanse(from, n);
    pool_left -= n;
    return 0;
}

int ids_new(char *out, size_t cap, const char *prefix, int64_t ms)
{
    size_t plen = strlen(prefix);
    uint8_t rnd[10];
    if (cap < plen + IDS_ULID_LEN + 1 || ids_random(rnd, sizeof(rnd)) != 0)
        return -1;
    memcpy(out, prefix, plen);
    char *p = out + plen;
    /* 48 bits of time as 10 base32 digits, most significant first. */
    uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFull;
    for (int i = 9; i >= 0; i--) {
        p[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 random bits as 16 digits. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = (hi << 8) | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = (lo << 8) | rnd[i];
    for (int i = 7; i >= 0; i--) {
        p[10 + i] = crockford[hi & 31];
        hi >>= 5;
        p[18 + i] = crockford[lo & 31];
        lo >>= 5;
    }
    p[IDS_ULID_LEN] = '\0';
    return 0;
}

int ids_base64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (cap < 4 * ((n + 2) / 3) + 1)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int ids_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0)
        return 0;
    if (n % 4 != 0 || cap < 3 * (n / 4))
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts padding as zero bytes; drop them. */
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    return len;
}

void ids_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ids_sha256(const void *in, size_t n, uint8_t out[32])
{
    const EVP_MD *md = algs_sha256();
    EVP_Digest(in, n, out, NULL, md ? md : EVP_sha256(), NULL);
}
