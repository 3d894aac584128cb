/* The webhook address policy (SSRF): which IP addresses a webhook may be
 * delivered to when the operator has not allowed private targets.
 *
 * Two places use it. At job creation, webhook_url_literal_check refuses a URL
 * whose host is itself a refused address (or "localhost"), so the customer
 * gets a 422 at once. At delivery, the dispatcher runs webhook_addr_check on
 * the exact address curl is about to connect to (CURLOPT_OPENSOCKETFUNCTION),
 * which covers host names, whatever DNS answers at that moment.
 *
 * Pure functions: no I/O, no allocation beyond curl's URL parser, thread-safe. */
#ifndef COLLIE_WEBHOOK_ADDRESS_H
#define COLLIE_WEBHOOK_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

/* Why an address is refused. PUBLIC is the only class delivered to. */
enum webhook_addr_class {
    WEBHOOK_ADDR_PUBLIC = 0,
    WEBHOOK_ADDR_LOOPBACK,     /* 127/8, ::1 */
    WEBHOOK_ADDR_UNSPECIFIED,  /* 0.0.0.0/8, :: */
    WEBHOOK_ADDR_PRIVATE,      /* 10/8, 172.16/12, 192.168/16 (RFC 1918) */
    WEBHOOK_ADDR_UNIQUE_LOCAL, /* fc00::/7 (RFC 4193), and fec0::/10 (old site-local) */
    WEBHOOK_ADDR_LINK_LOCAL,   /* 169.254/16, fe80::/10 */
    WEBHOOK_ADDR_CGNAT,        /* 100.64/10 (RFC 6598) */
    WEBHOOK_ADDR_MULTICAST,    /* 224/4, ff00::/8 */
    WEBHOOK_ADDR_RESERVED,     /* 240/4 (with 255.255.255.255), 192.0.0/24, TEST-NETs
                                * 192.0.2/24, 198.51.100/24, 203.0.113/24, 198.18/15,
                                * 2001:db8::/32, 100::/64, 64:ff9b:1::/48 */
    WEBHOOK_ADDR_METADATA,     /* 169.254.169.254, fd00:ec2::254, 100.100.100.200 */
    WEBHOOK_ADDR_NOT_IP,       /* not AF_INET/AF_INET6, or a truncated sockaddr */
};

/* Room for any reason these functions write (addresses, host names up to
 * 255 bytes, and the class phrase). Shorter buffers get a truncated text. */
#define WEBHOOK_ADDR_REASON_LEN 384

/* The class of sa (len bytes; AF_INET or AF_INET6). An IPv6 address that
 * embeds an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16) has the class of the embedded address
 * when that one is refused. The local-use NAT64 prefix 64:ff9b:1::/48 is
 * RESERVED as a whole (where it embeds the IPv4 address is site-specific).
 * Cloud-metadata addresses report METADATA although they also lie in a
 * wider refused range. */
enum webhook_addr_class webhook_addr_classify(const struct sockaddr *sa, size_t len);

/* A static phrase for the class, e.g. "a private address (RFC 1918)". */
const char *webhook_addr_class_phrase(enum webhook_addr_class c);

/* Returns 0 when sa may be delivered to, else -1 and writes why into reason
 * (may be NULL), e.g. "10.1.2.3 is a private address (RFC 1918)" or
 * "::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address". */
int webhook_addr_check(const struct sockaddr *sa, size_t len, char *reason, size_t cap);

/* Reads host, a URL host as curl_url_get(CURLUPART_HOST) returns it (IPv6
 * in brackets, IPv4 normalised), as an IP literal into *ss and *len. Returns
 * false for a host name. Numeric IPv4 spellings the system resolver would
 * read as an address (inet_aton forms) count as literals too. */
bool webhook_host_literal(const char *host, struct sockaddr_storage *ss, size_t *len);

/* Create-time check of a webhook URL. Parses url with curl's URL parser and
 * looks at the host as curl normalises it, so odd IPv4 spellings
 * ("http://2130706433/", "http://0x7f.1/") and bracketed IPv6 are seen as
 * the addresses curl would connect to. Returns -1 and writes the reason when
 *   - the URL does not parse (reason says so), or
 *   - !allow_private and the host is a refused literal address, or the name
 *     "localhost" or any "*.localhost" (RFC 6761: always loopback).
 * Returns 0 otherwise; other host names pass here (the dispatcher checks the
 * addresses they resolve to at delivery). The scheme is not judged here. */
int webhook_url_literal_check(const char *url, bool allow_private, char *reason, size_t cap);

#endif
