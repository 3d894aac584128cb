/* The webhook address policy (SSRF). A table-free classifier: the ranges are
 * few and fixed, and spelling each out as a comparison keeps every decision
 * greppable next to the RFC that defines it. */
#include "webhook/address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* How an IPv6 address carries an IPv4 address, if it does. */
enum v6_form {
    FORM_NONE = 0,
    FORM_MAPPED, /* ::ffff:a.b.c.d */
    FORM_COMPAT, /* ::a.b.c.d (deprecated, still routed by some stacks) */
    FORM_NAT64,  /* 64:ff9b::a.b.c.d (RFC 6052 well-known prefix) */
    FORM_6TO4,   /* 2002:aabb:ccdd::/48 (RFC 3056) */
};

static const char *form_phrase(enum v6_form f)
{
    switch (f) {
    case FORM_MAPPED:
        return "an IPv4-mapped form";
    case FORM_COMPAT:
        return "an IPv4-compatible form";
    case FORM_NAT64:
        return "a NAT64 form";
    case FORM_6TO4:
        return "a 6to4 form";
    default:
        return "a form";
    }
}

const char *webhook_addr_class_phrase(enum webhook_addr_class c)
{
    switch (c) {
    case WEBHOOK_ADDR_PUBLIC:
        return "a public address";
    case WEBHOOK_ADDR_LOOPBACK:
        return "a loopback address";
    case WEBHOOK_ADDR_UNSPECIFIED:
        return "an unspecified address";
    case WEBHOOK_ADDR_PRIVATE:
        return "a private address (RFC 1918)";
    case WEBHOOK_ADDR_UNIQUE_LOCAL:
        return "a unique-local address (RFC 4193)";
    case WEBHOOK_ADDR_LINK_LOCAL:
        return "a link-local address";
    case WEBHOOK_ADDR_CGNAT:
        return "a carrier-grade NAT address (RFC 6598)";
    case WEBHOOK_ADDR_MULTICAST:
        return "a multicast address";
    case WEBHOOK_ADDR_RESERVED:
        return "a reserved address";
    case WEBHOOK_ADDR_METADATA:
        return "a cloud metadata address";
    case WEBHOOK_ADDR_NOT_IP:
        return "not an IP address";
    }
    return "an unknown kind of address";
}

/* a: the IPv4 address in host byte order. */
static enum webhook_addr_class classify_v4(uint32_t a)
{
    /* Metadata first: these lie inside link-local and CGNAT, and the more
     * specific name is the more useful reason. */
    if (a == 0xA9FEA9FEu /* 169.254.169.254: AWS, GCP, Azure, OCI, … */ ||
        a == 0x646464C8u /* 100.100.100.200: Alibaba Cloud */)
        return WEBHOOK_ADDR_METADATA;
    if ((a & 0xFF000000u) == 0x00000000u) /* 0.0.0.0/8: "this network" */
        return WEBHOOK_ADDR_UNSPECIFIED;
    if ((a & 0xFF000000u) == 0x7F000000u) /* 127/8 */
        return WEBHOOK_ADDR_LOOPBACK;
    if ((a & 0xFF000000u) == 0x0A000000u || /* 10/8 */
        (a & 0xFFF00000u) == 0xAC100000u || /* 172.16/12 */
        (a & 0xFFFF0000u) == 0xC0A80000u)   /* 192.168/16 */
        return WEBHOOK_ADDR_PRIVATE;
    if ((a & 0xFFFF0000u) == 0xA9FE0000u) /* 169.254/16 */
        return WEBHOOK_ADDR_LINK_LOCAL;
    if ((a & 0xFFC00000u) == 0x64400000u) /* 100.64/10 */
        return WEBHOOK_ADDR_CGNAT;
    /* Special-purpose blocks that no public receiver lives in, yet a
     * network may use internally (documentation ranges do turn up on
     * test and lab networks): IETF protocol assignments, TEST-NET-1/2/3,
     * benchmarking. */
    if ((a & 0xFFFFFF00u) == 0xC0000000u || /* 192.0.0/24 */
        (a & 0xFFFFFF00u) == 0xC0000200u || /* 192.0.2/24 */
        (a & 0xFFFFFF00u) == 0xC6336400u || /* 198.51.100/24 */
        (a & 0xFFFFFF00u) == 0xCB007100u || /* 203.0.113/24 */
        (a & 0xFFFE0000u) == 0xC6120000u)   /* 198.18/15 */
        return WEBHOOK_ADDR_RESERVED;
    if ((a & 0xF0000000u) == 0xE0000000u) /* 224/4 */
        return WEBHOOK_ADDR_MULTICAST;
    if ((a & 0xF0000000u) == 0xF0000000u) /* 240/4, with 255.255.255.255 */
        return WEBHOOK_ADDR_RESERVED;
    return WEBHOOK_ADDR_PUBLIC;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Classifies an IPv6 address. When the class comes from an embedded IPv4
 * address, *form says how it was embedded and *v4 holds it (host order). */
static enum webhook_addr_class classify_v6(const uint8_t b[16], enum v6_form *form, uint32_t *v4)
{
    static const uint8_t metadata_ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                             0,    0,    0,    0,    0, 0, 0x02, 0x54};
    *form = FORM_NONE;
    *v4 = 0;

    if (all_zero(b, 16))
        return WEBHOOK_ADDR_UNSPECIFIED;
    if (all_zero(b, 15) && b[15] == 1)
        return WEBHOOK_ADDR_LOOPBACK;
    if (memcmp(b, metadata_ec2, 16) == 0) /* AWS's IPv6 instance metadata */
        return WEBHOOK_ADDR_METADATA;
    if (b[0] == 0xff)
        return WEBHOOK_ADDR_MULTICAST;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 */
        return WEBHOOK_ADDR_LINK_LOCAL;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10, deprecated site-local */
        return WEBHOOK_ADDR_UNIQUE_LOCAL;
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 */
        return WEBHOOK_ADDR_UNIQUE_LOCAL;
    if ((b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* 2001:db8::/32 */
        (b[0] == 0x01 && all_zero(b + 1, 7)))                             /* 100::/64 discard */
        return WEBHOOK_ADDR_RESERVED;
    /* 64:ff9b:1::/48 (RFC 8215) is for translators inside one network, and
     * where it embeds the IPv4 address depends on the prefix length the
     * operator chose; refuse the whole prefix rather than guess. */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 &&
        b[5] == 0x01)
        return WEBHOOK_ADDR_RESERVED;

    enum v6_form f = FORM_NONE;
    uint32_t a = 0;
    if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) {
        f = FORM_MAPPED;
        a = be32(b + 12);
    } else if (all_zero(b, 12)) {
        f = FORM_COMPAT; /* :: and ::1 were handled above */
        a = be32(b + 12);
    } else if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(b + 4, 8)) {
        f = FORM_NAT64;
        a = be32(b + 12);
    } else if (b[0] == 0x20 && b[1] == 0x02) {
        f = FORM_6TO4;
        a = be32(b + 2);
    }
    if (f != FORM_NONE) {
        enum webhook_addr_class c = classify_v4(a);
        if (c != WEBHOOK_ADDR_PUBLIC) {
            *form = f;
            *v4 = a;
        }
        return c;
    }
    return WEBHOOK_ADDR_PUBLIC;
}

/* The one entry point the public functions share. text gets the address as
 * text (INET6_ADDRSTRLEN) when it is an IP address. */
static enum webhook_addr_class classify(const struct sockaddr *sa, size_t len, char *text,
                                        enum v6_form *form, uint32_t *v4)
{
    *form = FORM_NONE;
    *v4 = 0;
    text[0] = '\0';
    if (!sa || len < sizeof(sa_family_t))
        return WEBHOOK_ADDR_NOT_IP;
    /* Copied out: a caller's struct sockaddr need not be aligned for the
     * larger family-specific structs. */
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        inet_ntop(AF_INET, &in.sin_addr, text, INET6_ADDRSTRLEN);
        return classify_v4(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        inet_ntop(AF_INET6, &in6.sin6_addr, text, INET6_ADDRSTRLEN);
        return classify_v6(in6.sin6_addr.s6_addr, form, v4);
    }
    return WEBHOOK_ADDR_NOT_IP;
}

enum webhook_addr_class webhook_addr_classify(const struct sockaddr *sa, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    enum v6_form form;
    uint32_t v4;
    return classify(sa, len, text, &form, &v4);
}

/* Writes the reason for a refused address. */
static void describe(char *reason, size_t cap, const char *text, enum webhook_addr_class c,
                     enum v6_form form, uint32_t v4)
{
    if (!reason || cap == 0)
        return;
    if (c == WEBHOOK_ADDR_NOT_IP) {
        snprintf(reason, cap, "the address is not an IPv4 or IPv6 address");
        return;
    }
    if (form == FORM_NONE) {
        snprintf(reason, cap, "%s is %s", text, webhook_addr_class_phrase(c));
        return;
    }
    char inner[INET_ADDRSTRLEN];
    struct in_addr ia = {.s_addr = htonl(v4)};
    inet_ntop(AF_INET, &ia, inner, sizeof(inner));
    snprintf(reason, cap, "%s is %s of %s, %s", text, form_phrase(form), inner,
             webhook_addr_class_phrase(c));
}

int webhook_addr_check(const struct sockaddr *sa, size_t len, char *reason, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    enum v6_form form;
    uint32_t v4;
    enum webhook_addr_class c = classify(sa, len, text, &form, &v4);
    if (c == WEBHOOK_ADDR_PUBLIC) {
        if (reason && cap)
            reason[0] = '\0';
        return 0;
    }
    describe(reason, cap, text, c, form, v4);
    return -1;
}

/* ---- URLs ----------------------------------------------------------------- */

/* RFC 6761: "localhost" and every name under it resolve to loopback, and
 * curl answers them without asking DNS. A trailing dot (the root) is the
 * same name. */
static bool is_localhost_name(const char *host)
{
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    static const char name[] = "localhost";
    size_t k = sizeof(name) - 1;
    if (n < k || strncasecmp(host + n - k, name, k) != 0)
        return false;
    return n == k || host[n - k - 1] == '.';
}

/* curl has already normalised IPv4 spellings; inet_aton is a second opinion
 * for any numeric form curl left alone but the resolver would still read as
 * an address. */
bool webhook_host_literal(const char *host, struct sockaddr_storage *ss, size_t *len)
{
    memset(ss, 0, sizeof(*ss));
    *len = 0;
    if (!host)
        return false;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[') {
        char buf[INET6_ADDRSTRLEN + 64];
        const char *end = strchr(host, ']');
        size_t m = end ? (size_t)(end - host - 1) : 0;
        if (!end || m >= sizeof(buf))
            return false;
        memcpy(buf, host + 1, m);
        buf[m] = '\0';
        char *zone = strchr(buf, '%'); /* a zone id does not change the class */
        if (zone)
            *zone = '\0';
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1)
            return false;
        in6->sin6_family = AF_INET6;
        *len = sizeof(*in6);
        return true;
    }
    /* "127.0.0.1." is the same host with the root spelled out, as for names
     * (is_localhost_name): judged as the address. */
    char v4[64];
    if (n > 1 && host[n - 1] == '.' && n - 1 < sizeof(v4)) {
        memcpy(v4, host, n - 1);
        v4[n - 1] = '\0';
        host = v4;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        *len = sizeof(*in);
        return true;
    }
    /* Only digits, dots and hex letters can be an inet_aton form; anything
     * else is a name, and "face.b00c" style names must stay names. */
    bool numeric = host[0] != '\0';
    for (const char *p = host; *p && numeric; p++)
        numeric = isxdigit((unsigned char)*p) || *p == '.' || *p == 'x' || *p == 'X';
    if (numeric && isdigit((unsigned char)host[0]) && inet_aton(host, &in->sin_addr) != 0) {
        in->sin_family = AF_INET;
        *len = sizeof(*in);
        return true;
    }
    return false;
}

int webhook_url_literal_check(const char *url, bool allow_private, char *reason, size_t cap)
{
    int rc = -1;
    char *host = NULL;
    CURLU *u = NULL;
    if (reason && cap)
        reason[0] = '\0';
    if (!url) {
        if (reason && cap)
            snprintf(reason, cap, "the webhook URL is missing");
        goto done;
    }
    u = curl_url();
    if (!u) {
        if (reason && cap)
            snprintf(reason, cap, "out of memory while parsing the webhook URL");
        goto done;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (uc != CURLUE_OK) {
        if (reason && cap)
            snprintf(reason, cap, "the webhook URL is not a valid absolute URL (%s)",
                     curl_url_strerror(uc));
        goto done;
    }
    if (allow_private) {
        rc = 0;
        goto done;
    }
    if (is_localhost_name(host)) {
        if (reason && cap)
            snprintf(reason, cap, "%.255s is a loopback host name (RFC 6761)", host);
        goto done;
    }
    struct sockaddr_storage ss;
    size_t len = 0;
    if (!webhook_host_literal(host, &ss, &len)) {
        rc = 0; /* a name: judged by the address it resolves to, at delivery */
        goto done;
    }
    rc = webhook_addr_check((const struct sockaddr *)&ss, len, reason, cap) == 0 ? 0 : -1;

done:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}
