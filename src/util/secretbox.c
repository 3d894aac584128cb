/* Secrets at rest with AES-256-GCM (OpenSSL EVP). The format and the key's
 * sources are described in secretbox.h; this file adds why:
 *  - GCM authenticates, so a wrong key, a flipped bit or a truncated value
 *    is reported as "cannot open", never turned into a wrong secret that
 *    would then sign webhooks nobody can verify.
 *  - Random 96-bit nonces: NIST SP 800-38D allows 2^32 seals per key with
 *    them. Collie seals once per job (its webhook secret), so that is about
 *    four billion jobs per key; the "v1:" prefix leaves room for a format
 *    that derives a key per seal, should a deployment ever get near.
 *  - The key file holds raw bytes and must be private to its owner: a
 *    readable key next to the database would make the encryption moot. */
#include "util/secretbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/algs.h"
#include "util/ids.h"

#define PREFIX "v1:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define NONCE_LEN 12
#define TAG_LEN 16
#define AAD "collie secretbox v1"
#define AAD_LEN (sizeof(AAD) - 1)
#define B64_KEY_LEN 44 /* 4 * ceil(32 / 3) */
#define HEX_KEY_LEN 64
/* Raw bytes of the largest sealed value, and its base64 length. */
#define RAW_MAX (NONCE_LEN + SECRETBOX_MAX_PLAINTEXT + TAG_LEN)
#define B64_MAX (4 * ((RAW_MAX + 2) / 3))

struct secretbox {
    uint8_t key[SECRETBOX_KEY_LEN];
};

/* ---- keys ----------------------------------------------------------------- */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int secretbox_parse_key(const char *text, uint8_t key[SECRETBOX_KEY_LEN], char *err, size_t cap)
{
    uint8_t buf[48]; /* ids_base64_decode wants room for 3 bytes per 4 chars */
    int rc = -1;
    size_t n = text ? strlen(text) : 0;

    if (n == HEX_KEY_LEN) {
        for (size_t i = 0; i < SECRETBOX_KEY_LEN; i++) {
            int hi = hex_val(text[2 * i]), lo = hex_val(text[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, cap, "the secret key has 64 characters but is not hex");
                goto done;
            }
            buf[i] = (uint8_t)(hi << 4 | lo);
        }
    } else if (n == B64_KEY_LEN) {
        /* 32 bytes encode to 43 characters and one '=': insisting on that
         * shape rejects 31- and 33-byte keys that also fit in 44. */
        if (text[43] != '=' || text[42] == '=' ||
            ids_base64_decode(text, n, buf, sizeof(buf)) != SECRETBOX_KEY_LEN) {
            snprintf(err, cap,
                     "the secret key has 44 characters but is not standard base64 of "
                     "32 bytes");
            goto done;
        }
    } else {
        snprintf(err, cap,
                 "the secret key must be 32 bytes written as base64 (44 characters) or hex "
                 "(64 characters), not %zu characters; generate one with "
                 "`openssl rand -base64 32`",
                 n);
        goto done;
    }
    if (all_zero(buf, SECRETBOX_KEY_LEN)) {
        snprintf(err, cap, "the secret key is all zero bytes; generate a random one");
        goto done;
    }
    memcpy(key, buf, SECRETBOX_KEY_LEN);
    rc = 0;
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* Reads an existing key file. Returns 0, 1 when it does not exist, or -1
 * with a message. */
static int read_key_file(const char *path, uint8_t key[SECRETBOX_KEY_LEN], char *err, size_t cap)
{
    int rc = -1;
    uint8_t buf[SECRETBOX_KEY_LEN + 1];
    struct stat stt;
    /* O_NOFOLLOW: a symlink planted in the data directory must not make us
     * read, or trust the permissions of, some other file. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        if (errno == ELOOP)
            snprintf(err, cap, "key file %s is a symbolic link; refusing it", path);
        else
            snprintf(err, cap, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &stt) != 0) {
        snprintf(err, cap, "cannot stat key file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(stt.st_mode)) {
        snprintf(err, cap, "key file %s is not a regular file", path);
        goto done;
    }
    if (stt.st_mode & 077) {
        snprintf(err, cap,
                 "key file %s is accessible to group or others (mode %04o); "
                 "run `chmod 600 %s`",
                 path, (unsigned)(stt.st_mode & 07777), path);
        goto done;
    }
    if (stt.st_size != SECRETBOX_KEY_LEN) {
        snprintf(err, cap, "key file %s has %lld bytes, want exactly %d", path,
                 (long long)stt.st_size, SECRETBOX_KEY_LEN);
        goto done;
    }
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, cap, "cannot read key file %s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got != SECRETBOX_KEY_LEN) { /* it changed size under us */
        snprintf(err, cap, "key file %s has %zu bytes, want exactly %d", path, got,
                 SECRETBOX_KEY_LEN);
        goto done;
    }
    memcpy(key, buf, SECRETBOX_KEY_LEN);
    rc = 0;
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Syncs the directory holding path, so that the new name survives a crash.
 * Best effort: the key file itself is already synced. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Creates the key file with a fresh key. Returns 0 when it (or a file some
 * concurrent starter created first) is in place, or -1 with a message. */
static int create_key_file(const char *path, char *err, size_t cap)
{
    int rc = -1;
    int fd = -1;
    uint8_t key[SECRETBOX_KEY_LEN];
    size_t tlen = strlen(path) + sizeof(".tmp-XXXXXX");
    char *tmp = malloc(tlen);
    if (!tmp) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    snprintf(tmp, tlen, "%s.tmp-XXXXXX", path);
    /* mkostemp creates the file with mode 0600 whatever the umask. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot create key file %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    if (ids_random(key, sizeof(key)) != 0) {
        snprintf(err, cap, "the random source failed while creating key file %s", path);
        goto done;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, key, sizeof(key)) != 0 || fsync(fd) != 0) {
        snprintf(err, cap, "cannot write key file %s: %s", path, strerror(errno));
        goto done;
    }
    /* link() never replaces: if another process created the file first,
     * theirs stands and we read it like any existing key file. */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, cap, "cannot create key file %s: %s", path, strerror(errno));
        goto done;
    }
    sync_parent_dir(path);
    rc = 0;
done:
    OPENSSL_cleanse(key, sizeof(key));
    close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

int secretbox_open_key(const char *env_value, const char *key_file, uint8_t key[SECRETBOX_KEY_LEN],
                       char *err, size_t cap)
{
    char why[256];
    if (env_value) {
        if (secretbox_parse_key(env_value, key, why, sizeof(why)) != 0) {
            snprintf(err, cap, "COLLIE_SECRET_KEY: %s", why);
            return -1;
        }
        return 0;
    }
    if (!key_file || !key_file[0]) {
        snprintf(err, cap, "no secret key: set COLLIE_SECRET_KEY or give a key file path");
        return -1;
    }
    int rc = read_key_file(key_file, key, err, cap);
    if (rc != 1)
        return rc;
    if (create_key_file(key_file, err, cap) != 0)
        return -1;
    rc = read_key_file(key_file, key, err, cap);
    if (rc == 1) { /* removed between our link and our read */
        snprintf(err, cap, "key file %s vanished right after it was created", key_file);
        return -1;
    }
    return rc;
}

/* ---- sealing -------------------------------------------------------------- */

struct secretbox *secretbox_new(const uint8_t key[SECRETBOX_KEY_LEN])
{
    struct secretbox *b = malloc(sizeof(*b));
    if (!b)
        return NULL;
    memcpy(b->key, key, SECRETBOX_KEY_LEN);
    return b;
}

void secretbox_free(struct secretbox *b)
{
    if (!b)
        return;
    OPENSSL_cleanse(b->key, sizeof(b->key));
    free(b);
}

bool secretbox_is_sealed(const char *text)
{
    return text && strncmp(text, PREFIX, PREFIX_LEN) == 0;
}

char *secretbox_seal(const struct secretbox *b, const char *plaintext)
{
    char *out = NULL;
    uint8_t *raw = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    int len = 0;
    if (!b || !plaintext)
        return NULL;
    size_t n = strlen(plaintext);
    if (n > SECRETBOX_MAX_PLAINTEXT)
        return NULL;
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    size_t out_cap = PREFIX_LEN + 4 * ((raw_len + 2) / 3) + 1;

    raw = malloc(raw_len);
    out = malloc(out_cap);
    ctx = EVP_CIPHER_CTX_new();
    if (!raw || !out || !ctx)
        goto fail;
    if (ids_random(raw, NONCE_LEN) != 0)
        goto fail;
    /* AES-GCM's default IV length is 12 bytes, which NONCE_LEN is. */
    if (EVP_EncryptInit_ex(ctx, algs_aes_256_gcm(), NULL, b->key, raw) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)AAD, (int)AAD_LEN) != 1 ||
        EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &len, (const uint8_t *)plaintext, (int)n) != 1 ||
        (size_t)len != n || EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &len) != 1 || len != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + n) != 1)
        goto fail;
    memcpy(out, PREFIX, PREFIX_LEN);
    if (ids_base64(raw, raw_len, out + PREFIX_LEN, out_cap - PREFIX_LEN) < 0)
        goto fail;
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    return out;

fail:
    EVP_CIPHER_CTX_free(ctx);
    if (raw)
        OPENSSL_cleanse(raw, raw_len);
    free(raw);
    free(out);
    return NULL;
}

char *secretbox_open(const struct secretbox *b, const char *sealed)
{
    uint8_t *raw = NULL;
    char *pt = NULL;
    size_t pt_len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    int len = 0;
    if (!b || !secretbox_is_sealed(sealed))
        return NULL;
    const char *b64 = sealed + PREFIX_LEN;
    size_t b64_len = strlen(b64);
    if (b64_len == 0 || b64_len > B64_MAX || b64_len % 4 != 0)
        return NULL;
    size_t raw_cap = 3 * (b64_len / 4);
    raw = malloc(raw_cap);
    if (!raw)
        goto fail;
    int n = ids_base64_decode(b64, b64_len, raw, raw_cap);
    if (n < NONCE_LEN + TAG_LEN)
        goto fail;
    pt_len = (size_t)n - NONCE_LEN - TAG_LEN;
    pt = malloc(pt_len + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (!pt || !ctx)
        goto fail;
    if (EVP_DecryptInit_ex(ctx, algs_aes_256_gcm(), NULL, b->key, raw) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)AAD, (int)AAD_LEN) != 1 ||
        EVP_DecryptUpdate(ctx, (uint8_t *)pt, &len, raw + NONCE_LEN, (int)pt_len) != 1 ||
        (size_t)len != pt_len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + pt_len) != 1 ||
        EVP_DecryptFinal_ex(ctx, (uint8_t *)pt + pt_len, &len) != 1)
        goto fail; /* includes a tag mismatch: wrong key or tampered */
    /* Authentic, but a NUL inside would silently shorten the C string. */
    if (memchr(pt, '\0', pt_len))
        goto fail;
    pt[pt_len] = '\0';
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return pt;

fail:
    EVP_CIPHER_CTX_free(ctx);
    if (pt)
        OPENSSL_cleanse(pt, pt_len + 1);
    free(pt);
    free(raw);
    return NULL;
}
