#include "util/algs.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;
static EVP_CIPHER *aes_256_gcm;
static EVP_MAC *hmac;

static void fetch_all(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

const EVP_MD *algs_sha256(void)
{
    pthread_once(&once, fetch_all);
    return sha256;
}

const EVP_CIPHER *algs_aes_256_gcm(void)
{
    pthread_once(&once, fetch_all);
    return aes_256_gcm;
}

EVP_MAC *algs_hmac(void)
{
    pthread_once(&once, fetch_all);
    return hmac;
}
