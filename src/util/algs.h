/* OpenSSL algorithm objects, fetched once per process.
 *
 * Why: OpenSSL 3 looks an algorithm up in its provider tables on every
 * implicit use (SHA256(), EVP_aes_256_gcm() in an Init call,
 * EVP_MAC_fetch), and those lookups were ~2 % of the server's CPU under
 * load for three tiny operations per job. The objects are created on first
 * use (thread-safe), live until the process exits, and must not be freed.
 * NULL when OpenSSL cannot provide the algorithm. */
#ifndef COLLIE_UTIL_ALGS_H
#define COLLIE_UTIL_ALGS_H

#include <openssl/evp.h>

const EVP_MD *algs_sha256(void);
const EVP_CIPHER *algs_aes_256_gcm(void);
EVP_MAC *algs_hmac(void);

#endif
