/* Secret detectors: provider tokens recognised by their documented prefixes
 * (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, Anthropic), PEM private-key
 * blocks, JWTs, and generic "password=" / "api_key:" assignments whose value
 * looks random (Shannon entropy, character classes) rather than like a
 * placeholder or a code expression. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_internal.h"

/* Bits of entropy per character of s[0..n). */
static double shannon(const char *s, size_t n)
{
    unsigned counts[256] = {0};
    for (size_t i = 0; i < n; i++)
        counts[(unsigned char)s[i]]++;
    double h = 0.0;
    for (int c = 0; c < 256; c++) {
        if (!counts[c])
            continue;
        double p = (double)counts[c] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

static bool contains_ci(const char *s, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (strncasecmp(s + i, needle, l) == 0)
            return true;
    return false;
}

/* Values that are placeholders, references to somewhere else, or code. */
static bool looks_like_placeholder(const char *v, size_t n)
{
    static const char *const words[] = {
        "xxxx",        "****",       "your",   "example",   "changeme", "placeholder", "redacted",
        "dummy",       "sample",     "<",      ">",         "${",       "{{",          "%(",
        "process.env", "os.environ", "getenv", "settings.", "config.",  "env.",        "secrets.",
        "vault:",      "(",          "[",      "..."};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (contains_ci(v, n, words[i]))
            return true;
    /* SCREAMING_CASE names another variable: api_key=API_KEY_PROD */
    bool upper_ident = true;
    for (size_t i = 0; i < n; i++)
        if (!(isupper((unsigned char)v[i]) || v[i] == '_' || isdigit((unsigned char)v[i])))
            upper_ident = false;
    return upper_ident;
}

static bool check_assignment(const char *t, size_t len, size_t *s, size_t *e)
{
    /* the value starts after the first ':' or '=' and any quotes/spaces */
    size_t v = *s;
    while (v < *e && t[v] != ':' && t[v] != '=')
        v++;
    while (v < *e && (t[v] == ':' || t[v] == '=' || t[v] == ' ' || t[v] == '\t' || t[v] == '"' ||
                      t[v] == '\''))
        v++;
    size_t n = *e - v;
    if (n < 8 || n > 256)
        return false;
    const char *val = t + v;
    if (looks_like_placeholder(val, n))
        return false;
    int lower = 0, upper = 0, digit = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (islower(c))
            lower = 1;
        else if (isupper(c))
            upper = 1;
        else if (isdigit(c))
            digit = 1;
        else
            other = 1;
    }
    if (lower + upper + digit + other < 2 || shannon(val, n) < 3.0)
        return false;
    *s = v; /* redact the value, keep "password=" readable */
    return true;
}

static bool check_openai(const char *t, size_t len, size_t *s, size_t *e)
{
    /* sk-ant-... belongs to the Anthropic pattern */
    if (*e - *s > 7 && strncmp(t + *s, "sk-ant-", 7) == 0)
        return false;
    size_t n = *e - *s;
    return shannon(t + *s, n) >= 3.5;
}

static bool check_token(const char *t, size_t len, size_t *s, size_t *e)
{
    /* the random part of a real token is dense; "sk_live_aaaa..." is not */
    return shannon(t + *s, *e - *s) >= 3.2;
}

#define B64URL "[A-Za-z0-9_-]"

static const struct pol_detector dets[] = {
    {.entity = "aws_access_key",
     .label = "AWS_ACCESS_KEY",
     .expr = "\\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\\b"},
    {.entity = "github_token",
     .label = "GITHUB_TOKEN",
     .expr = "\\bgh[pousr]_[A-Za-z0-9]{36,}",
     .max_len = 260,
     .guard = GUARD_WORD,
     .validate = check_token},
    {.entity = "github_token",
     .label = "GITHUB_TOKEN",
     .expr = "\\bgithub_pat_[A-Za-z0-9_]{22,}",
     .max_len = 260,
     .guard = GUARD_WORD,
     .validate = check_token},
    {.entity = "gitlab_token",
     .label = "GITLAB_TOKEN",
     .expr = "\\bglpat-" B64URL "{20,}",
     .max_len = 120,
     .guard = GUARD_B64URL,
     .validate = check_token},
    {.entity = "slack_token",
     .label = "SLACK_TOKEN",
     .expr = "\\bxox[abposr]-[0-9A-Za-z-]{10,}",
     .max_len = 300,
     .guard = GUARD_B64URL,
     .validate = check_token},
    {.entity = "slack_webhook",
     .label = "SLACK_WEBHOOK",
     .expr = "https://hooks\\.slack\\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}",
     .max_len = 200,
     .guard = GUARD_WORD},
    {.entity = "stripe_key",
     .label = "STRIPE_KEY",
     .expr = "\\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
     .max_len = 260,
     .guard = GUARD_WORD,
     .validate = check_token},
    {.entity = "openai_key",
     .label = "OPENAI_KEY",
     .expr = "\\bsk-(?:proj-|svcacct-|admin-)?" B64URL "{20,}",
     .max_len = 400,
     .guard = GUARD_B64URL,
     .validate = check_openai},
    {.entity = "anthropic_key",
     .label = "ANTHROPIC_KEY",
     .expr = "\\bsk-ant-(?:api|admin|sid)[0-9]{2}-" B64URL "{32,}",
     .max_len = 400,
     .guard = GUARD_B64URL},
    /* a whole block, and a truncated one (header and base64 body) */
    {.entity = "private_key",
     .label = "PRIVATE_KEY",
     .expr = "-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\\s:,.-]*"
             "-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
     .max_len = 32768},
    {.entity = "private_key",
     .label = "PRIVATE_KEY",
     .expr = "-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\\s]*",
     .max_len = 32768,
     .guard = GUARD_PEM},
    {.entity = "jwt",
     .label = "JWT",
     .expr = "\\beyJ" B64URL "{8,}\\.eyJ" B64URL "{8,}\\." B64URL "{8,}",
     .max_len = 8192,
     .guard = GUARD_B64URL},
    {.entity = "generic_secret",
     .label = "SECRET",
     .expr = "(?i)\\b(?:[a-z0-9]+[_-])?(?:password|passwd|pwd|secret|api[_-]?key|apikey|"
             "access[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|secret[_-]?key|"
             "private[_-]?key|key|token)[\"']?[ \\t]*[:=][ \\t]*[\"']?[^\\s\"'`,;]{8,}",
     .fast =
         "(?i)(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|access[_-]?token|"
         "auth[_-]?token|client[_-]?secret|secret[_-]?key|private[_-]?key|key|token)[\"']?[ \\t]*"
         "[:=][ \\t]*[\"']?[^\\s\"'`,;]{8,}",
     .max_len = 400,
     .guard = GUARD_NONSPACE,
     .validate = check_assignment},
};

const struct pol_detector *secrets_detectors(size_t *n)
{
    *n = sizeof(dets) / sizeof(dets[0]);
    return dets;
}
