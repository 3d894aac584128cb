/* The webhook address policy: every refused class in both families, the
 * IPv6 forms that embed an IPv4 address, public addresses that must pass,
 * and the create-time check of literal hosts in URLs (including the odd
 * IPv4 spellings curl normalises). No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "curl_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "webhook/address.h"

/* Builds a sockaddr for text (IPv4 or IPv6) and returns its class; writes
 * the reason of webhook_addr_check into reason when given. */
static enum webhook_addr_class cls(const char *text, char *reason)
{
    struct sockaddr_storage ss;
    size_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(443);
        len = sizeof(*in);
    } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(443);
        len = sizeof(*in6);
    } else {
        fail_msg("bad test address %s", text);
        return WEBHOOK_ADDR_NOT_IP;
    }
    enum webhook_addr_class c = webhook_addr_classify((struct sockaddr *)&ss, len);
    char why[WEBHOOK_ADDR_REASON_LEN];
    int rc = webhook_addr_check((struct sockaddr *)&ss, len, why, sizeof(why));
    /* check and classify must agree, and a refusal always says why. */
    assert_int_equal(rc, c == WEBHOOK_ADDR_PUBLIC ? 0 : -1);
    if (rc == 0)
        assert_string_equal(why, "");
    else
        assert_non_null(strstr(why, webhook_addr_class_phrase(c)));
    if (reason)
        strcpy(reason, why);
    return c;
}

struct want {
    const char *addr;
    enum webhook_addr_class c;
};

static void check_all(const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum webhook_addr_class got = cls(w[i].addr, NULL);
        if (got != w[i].c)
            fail_msg("%s: class %d (%s), want %d (%s)", w[i].addr, got,
                     webhook_addr_class_phrase(got), w[i].c, webhook_addr_class_phrase(w[i].c));
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_ipv4_classes(void **state)
{
    (void)state;
    const struct want w[] = {
        {"127.0.0.1", WEBHOOK_ADDR_LOOPBACK},
        {"127.255.255.254", WEBHOOK_ADDR_LOOPBACK},
        {"0.0.0.0", WEBHOOK_ADDR_UNSPECIFIED},
        {"0.1.2.3", WEBHOOK_ADDR_UNSPECIFIED},
        {"10.0.0.1", WEBHOOK_ADDR_PRIVATE},
        {"10.255.255.255", WEBHOOK_ADDR_PRIVATE},
        {"172.16.0.1", WEBHOOK_ADDR_PRIVATE},
        {"172.31.255.255", WEBHOOK_ADDR_PRIVATE},
        {"192.168.1.1", WEBHOOK_ADDR_PRIVATE},
        {"169.254.0.1", WEBHOOK_ADDR_LINK_LOCAL},
        {"169.254.170.2", WEBHOOK_ADDR_LINK_LOCAL},
        {"100.64.0.1", WEBHOOK_ADDR_CGNAT},
        {"100.127.255.255", WEBHOOK_ADDR_CGNAT},
        {"224.0.0.1", WEBHOOK_ADDR_MULTICAST},
        {"239.255.255.250", WEBHOOK_ADDR_MULTICAST},
        {"240.0.0.1", WEBHOOK_ADDR_RESERVED},
        {"255.255.255.255", WEBHOOK_ADDR_RESERVED},
        {"169.254.169.254", WEBHOOK_ADDR_METADATA},
        {"100.100.100.200", WEBHOOK_ADDR_METADATA},
        /* special-purpose blocks no public receiver lives in */
        {"192.0.0.8", WEBHOOK_ADDR_RESERVED},
        {"192.0.2.2", WEBHOOK_ADDR_RESERVED},
        {"198.51.100.7", WEBHOOK_ADDR_RESERVED},
        {"203.0.113.255", WEBHOOK_ADDR_RESERVED},
        {"198.18.0.1", WEBHOOK_ADDR_RESERVED},
        {"198.19.255.255", WEBHOOK_ADDR_RESERVED},
    };
    check_all(w, N(w));
}

static void test_ipv4_edges_public(void **state)
{
    (void)state;
    /* Just outside each refused range, and well-known public addresses. */
    const struct want w[] = {
        {"8.8.8.8", WEBHOOK_ADDR_PUBLIC},        {"1.1.1.1", WEBHOOK_ADDR_PUBLIC},
        {"1.0.0.0", WEBHOOK_ADDR_PUBLIC},        {"9.255.255.255", WEBHOOK_ADDR_PUBLIC},
        {"11.0.0.0", WEBHOOK_ADDR_PUBLIC},       {"126.255.255.255", WEBHOOK_ADDR_PUBLIC},
        {"128.0.0.0", WEBHOOK_ADDR_PUBLIC},      {"172.15.255.255", WEBHOOK_ADDR_PUBLIC},
        {"172.32.0.0", WEBHOOK_ADDR_PUBLIC},     {"192.167.255.255", WEBHOOK_ADDR_PUBLIC},
        {"192.169.0.0", WEBHOOK_ADDR_PUBLIC},    {"169.253.255.255", WEBHOOK_ADDR_PUBLIC},
        {"169.255.0.0", WEBHOOK_ADDR_PUBLIC},    {"100.63.255.255", WEBHOOK_ADDR_PUBLIC},
        {"100.128.0.0", WEBHOOK_ADDR_PUBLIC},    {"223.255.255.255", WEBHOOK_ADDR_PUBLIC},
        {"100.100.100.201", WEBHOOK_ADDR_CGNAT}, {"93.184.216.34", WEBHOOK_ADDR_PUBLIC},
        {"192.0.1.255", WEBHOOK_ADDR_PUBLIC},    {"192.0.3.0", WEBHOOK_ADDR_PUBLIC},
        {"198.17.255.255", WEBHOOK_ADDR_PUBLIC}, {"198.20.0.0", WEBHOOK_ADDR_PUBLIC},
    };
    check_all(w, N(w));
}

static void test_ipv6_classes(void **state)
{
    (void)state;
    const struct want w[] = {
        {"::1", WEBHOOK_ADDR_LOOPBACK},
        {"::", WEBHOOK_ADDR_UNSPECIFIED},
        {"fc00::1", WEBHOOK_ADDR_UNIQUE_LOCAL},
        {"fd12:3456:789a::1", WEBHOOK_ADDR_UNIQUE_LOCAL},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", WEBHOOK_ADDR_UNIQUE_LOCAL},
        {"fec0::1", WEBHOOK_ADDR_UNIQUE_LOCAL},
        {"fe80::1", WEBHOOK_ADDR_LINK_LOCAL},
        {"febf:ffff::1", WEBHOOK_ADDR_LINK_LOCAL},
        {"ff02::1", WEBHOOK_ADDR_MULTICAST},
        {"ff05::1:3", WEBHOOK_ADDR_MULTICAST},
        {"fd00:ec2::254", WEBHOOK_ADDR_METADATA},
        {"64:ff9b:1::1", WEBHOOK_ADDR_RESERVED},
        {"2001:db8::1", WEBHOOK_ADDR_RESERVED},
        {"100::1", WEBHOOK_ADDR_RESERVED},
        {"100:0:0:1::1", WEBHOOK_ADDR_PUBLIC},
        /* public */
        {"2606:4700::1111", WEBHOOK_ADDR_PUBLIC},
        {"2001:4860:4860::8888", WEBHOOK_ADDR_PUBLIC},
        {"fbff::1", WEBHOOK_ADDR_PUBLIC},
        {"fe00::1", WEBHOOK_ADDR_PUBLIC},
        {"fd00:ec2::253", WEBHOOK_ADDR_UNIQUE_LOCAL},
        {"::2", WEBHOOK_ADDR_UNSPECIFIED}, /* IPv4-compatible 0.0.0.2 */
    };
    check_all(w, N(w));
}

static void test_ipv6_embedded_ipv4(void **state)
{
    (void)state;
    const struct want w[] = {
        /* IPv4-mapped */
        {"::ffff:127.0.0.1", WEBHOOK_ADDR_LOOPBACK},
        {"::ffff:10.1.2.3", WEBHOOK_ADDR_PRIVATE},
        {"::ffff:169.254.169.254", WEBHOOK_ADDR_METADATA},
        {"::ffff:0.0.0.0", WEBHOOK_ADDR_UNSPECIFIED},
        {"::ffff:100.64.1.1", WEBHOOK_ADDR_CGNAT},
        {"::ffff:8.8.8.8", WEBHOOK_ADDR_PUBLIC},
        /* IPv4-compatible */
        {"::127.0.0.1", WEBHOOK_ADDR_LOOPBACK},
        {"::192.168.0.1", WEBHOOK_ADDR_PRIVATE},
        {"::8.8.8.8", WEBHOOK_ADDR_PUBLIC},
        /* NAT64 well-known prefix */
        {"64:ff9b::7f00:1", WEBHOOK_ADDR_LOOPBACK},
        {"64:ff9b::a9fe:a9fe", WEBHOOK_ADDR_METADATA},
        {"64:ff9b::172.16.0.1", WEBHOOK_ADDR_PRIVATE},
        {"64:ff9b::8.8.8.8", WEBHOOK_ADDR_PUBLIC},
        /* 6to4 */
        {"2002:7f00:1::1", WEBHOOK_ADDR_LOOPBACK},
        {"2002:a00:1::", WEBHOOK_ADDR_PRIVATE},
        {"2002:e000:1::1", WEBHOOK_ADDR_MULTICAST},
        {"2002:808:808::1", WEBHOOK_ADDR_PUBLIC},
    };
    check_all(w, N(w));
}

static void test_reasons(void **state)
{
    (void)state;
    char why[WEBHOOK_ADDR_REASON_LEN];
    cls("10.1.2.3", why);
    assert_string_equal(why, "10.1.2.3 is a private address (RFC 1918)");
    cls("127.0.0.1", why);
    assert_string_equal(why, "127.0.0.1 is a loopback address");
    cls("169.254.169.254", why);
    assert_string_equal(why, "169.254.169.254 is a cloud metadata address");
    cls("fd00:ec2::254", why);
    assert_string_equal(why, "fd00:ec2::254 is a cloud metadata address");
    cls("fc00::1", why);
    assert_string_equal(why, "fc00::1 is a unique-local address (RFC 4193)");
    cls("100.64.0.1", why);
    assert_string_equal(why, "100.64.0.1 is a carrier-grade NAT address (RFC 6598)");
    cls("::ffff:127.0.0.1", why);
    assert_string_equal(why, "::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback "
                             "address");
    cls("64:ff9b::a00:1", why);
    assert_string_equal(why, "64:ff9b::a00:1 is a NAT64 form of 10.0.0.1, a private address "
                             "(RFC 1918)");
    cls("2002:a9fe:a9fe::", why);
    assert_string_equal(why, "2002:a9fe:a9fe:: is a 6to4 form of 169.254.169.254, a cloud "
                             "metadata address");
    cls("::10.0.0.1", why);
    assert_non_null(strstr(why, "IPv4-compatible form of 10.0.0.1"));

    /* A short buffer truncates, never overflows. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    char tiny[8];
    assert_int_equal(webhook_addr_check((struct sockaddr *)&in, sizeof(in), tiny, sizeof(tiny)),
                     -1);
    assert_string_equal(tiny, "127.0.0");
    assert_int_equal(webhook_addr_check((struct sockaddr *)&in, sizeof(in), NULL, 0), -1);
}

static void test_not_ip(void **state)
{
    (void)state;
    char why[WEBHOOK_ADDR_REASON_LEN];
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(webhook_addr_classify((struct sockaddr *)&un, sizeof(un)),
                     WEBHOOK_ADDR_NOT_IP);
    assert_int_equal(webhook_addr_check((struct sockaddr *)&un, sizeof(un), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not an IPv4 or IPv6"));
    assert_int_equal(webhook_addr_classify(NULL, 0), WEBHOOK_ADDR_NOT_IP);
    /* A truncated sockaddr is refused, not read past its end. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
    assert_int_equal(webhook_addr_classify((struct sockaddr *)&in, sizeof(in) - 1),
                     WEBHOOK_ADDR_NOT_IP);
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    assert_int_equal(webhook_addr_classify((struct sockaddr *)&in6, sizeof(struct sockaddr_in)),
                     WEBHOOK_ADDR_NOT_IP);
}

/* ---- URLs ----------------------------------------------------------------- */

static int url_check(const char *url, bool allow, char *why)
{
    return webhook_url_literal_check(url, allow, why, WEBHOOK_ADDR_REASON_LEN);
}

static void test_url_literals_refused(void **state)
{
    (void)state;
    char why[WEBHOOK_ADDR_REASON_LEN];
    const struct {
        const char *url;
        const char *reason_has;
    } refused[] = {
        {"https://127.0.0.1/hook", "127.0.0.1 is a loopback address"},
        {"https://127.0.0.1:8443/hook", "127.0.0.1 is a loopback address"},
        {"http://2130706433/", "127.0.0.1 is a loopback address"},      /* decimal */
        {"http://0x7f.1/", "127.0.0.1 is a loopback address"},          /* hex + short */
        {"http://0177.0.0.1/", "127.0.0.1 is a loopback address"},      /* octal */
        {"http://127.1/", "127.0.0.1 is a loopback address"},           /* short */
        {"https://127.0.0.1./hook", "127.0.0.1 is a loopback address"}, /* the root */
        {"https://10.0.0.5./", "10.0.0.5 is a private address"},
        {"https://0/", "0.0.0.0 is an unspecified address"},
        {"https://10.0.0.5/x", "10.0.0.5 is a private address (RFC 1918)"},
        {"https://172.20.1.1/", "private"},
        {"https://192.168.0.10/", "private"},
        {"https://169.254.169.254/latest/meta-data/", "cloud metadata"},
        {"https://100.100.100.200/", "cloud metadata"},
        {"https://100.64.0.1/", "carrier-grade NAT"},
        {"https://224.0.0.1/", "multicast"},
        {"https://255.255.255.255/", "reserved"},
        {"https://[::1]/hook", "::1 is a loopback address"},
        {"https://[::1]:8443/hook", "loopback"},
        {"https://[::]/", "unspecified"},
        {"https://[fd00:ec2::254]/", "cloud metadata"},
        {"https://[fc00::1]/", "unique-local"},
        {"https://[fe80::1%25eth0]/", "link-local"},
        {"https://[ff02::1]/", "multicast"},
        {"https://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback"},
        {"https://[::ffff:7f00:1]/", "loopback"},
        {"https://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254"},
        {"https://[2002:c0a8:1::1]/", "6to4 form of 192.168.0.1"},
        {"https://localhost/hook", "localhost is a loopback host name"},
        {"https://LOCALHOST:9000/hook", "loopback host name"},
        {"https://localhost./hook", "loopback host name"},
        {"https://api.localhost/hook", "api.localhost is a loopback host name"},
        {"https://user:pw@127.0.0.1/", "loopback"},
    };
    for (size_t i = 0; i < N(refused); i++) {
        if (url_check(refused[i].url, false, why) != -1)
            fail_msg("%s: accepted, want refused", refused[i].url);
        if (!strstr(why, refused[i].reason_has))
            fail_msg("%s: reason \"%s\", want it to contain \"%s\"", refused[i].url, why,
                     refused[i].reason_has);
        /* The operator's allowance lets every one of them through. */
        if (url_check(refused[i].url, true, why) != 0)
            fail_msg("%s: refused with allow_private: %s", refused[i].url, why);
    }
}

static void test_url_allowed(void **state)
{
    (void)state;
    char why[WEBHOOK_ADDR_REASON_LEN];
    const char *ok[] = {
        "https://8.8.8.8/hook",
        "https://[2606:4700::1111]/hook",
        "https://[::ffff:8.8.8.8]/",
        "https://example.com/hook",
        "https://hooks.example.com:8443/a/b?c=d",
        "https://localhost.example.com/", /* not under .localhost */
        "https://mylocalhost/",
        "https://face.b00c/",       /* hex-looking name stays a name */
        "https://10.0.0.1.nip.io/", /* a name: judged by what it resolves to */
        "http://example.com/",      /* the scheme is not judged here */
    };
    for (size_t i = 0; i < N(ok); i++)
        if (url_check(ok[i], false, why) != 0)
            fail_msg("%s: refused: %s", ok[i], why);
}

static void test_url_malformed(void **state)
{
    (void)state;
    char why[WEBHOOK_ADDR_REASON_LEN];
    const char *bad[] = {"", "not a url", "/relative/path", "https://", "https://exa mple.com/"};
    for (size_t i = 0; i < N(bad); i++) {
        if (url_check(bad[i], false, why) != -1)
            fail_msg("\"%s\": accepted", bad[i]);
        assert_non_null(strstr(why, "not a valid absolute URL"));
        /* Malformed stays malformed with allow_private. */
        assert_int_equal(url_check(bad[i], true, why), -1);
    }
    assert_int_equal(webhook_url_literal_check(NULL, false, why, sizeof(why)), -1);
    assert_int_equal(webhook_url_literal_check("https://127.0.0.1/", false, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_classes),
        cmocka_unit_test(test_ipv4_edges_public),
        cmocka_unit_test(test_ipv6_classes),
        cmocka_unit_test(test_ipv6_embedded_ipv4),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_not_ip),
        cmocka_unit_test(test_url_literals_refused),
        cmocka_unit_test(test_url_allowed),
        cmocka_unit_test(test_url_malformed),
    };
    return cmocka_run_group_tests(tests, curl_group_setup, curl_group_teardown);
}
