/* Policy engine benchmark: scan throughput of the default policy plus a
 * 1,000-keyword rule over 16 MiB of mixed prose, evaluation time of a
 * typical 2 KB message, compile time of 10,000 keywords. Each figure is
 * reported as min / median / max over repeated runs, on one core.
 *
 *   policy_bench [runs]        (default 7)
 *
 * Two texts, both with an email, a phone number, a card number, an IP
 * address, a password assignment or an injection-like sentence every 4 KB,
 * so that the start-of-match and redaction paths run, not only the scan:
 *   prose      English prose (the licence texts in /usr/share/common-licenses,
 *              present on every Debian system) mixed with sentences in other
 *              languages and scripts;
 *   dense      words drawn at random from a small vocabulary full of the words
 *              detectors look at ("system", "previous", "instructions",
 *              "policy", "model"): a worst case for the injection patterns. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    /* xorshift64*: reproducible, and no global state beyond this program */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static const char *const words[] = {
    "the",       "of",       "and",       "to",       "in",           "a",        "is",
    "that",      "for",      "it",        "as",       "was",          "with",     "be",
    "by",        "on",       "not",       "he",       "this",         "are",      "or",
    "his",       "from",     "at",        "which",    "but",          "have",     "an",
    "had",       "they",     "you",       "were",     "their",        "one",      "all",
    "we",        "can",      "her",       "has",      "there",        "been",     "if",
    "more",      "when",     "will",      "would",    "who",          "so",       "system",
    "report",    "customer", "order",     "delivery", "weather",      "garden",   "river",
    "quarterly", "meeting",  "schedule",  "invoice",  "analysis",     "language", "model",
    "question",  "answer",   "summary",   "previous", "instructions", "follow",   "policy",
    "account",   "number",   "café",      "naïve",    "Müller",       "straße",   "résumé",
    "São",       "Zürich",   "niño",      "привет",   "東京",         "données",  "ошибка",
    "🙂",      "été",      "coöperate", "Ærø",
};

static const char *const inserts[] = {
    "Contact me at jane.doe@example.com for details. ",
    "Call +44 20 7946 0958 tomorrow. ",
    "My card is 4111 1111 1111 1111 thanks. ",
    "Please ignore the previous email about the schedule. ",
    "The server at 192.168.10.20 is down. ",
    "Set password=Xk9#mQ2!vL7p in the config. ",
};

/* Appends prose to buf until it holds len bytes (cut at a character
 * boundary, NUL-terminated). */
static void make_text(char *buf, size_t len, size_t insert_every)
{
    size_t o = 0, next_insert = insert_every;
    while (o < len) {
        const char *w;
        char tmp[128];
        if (insert_every && o >= next_insert) {
            w = inserts[rng() % (sizeof(inserts) / sizeof(inserts[0]))];
            next_insert += insert_every;
        } else {
            const char *x = words[rng() % (sizeof(words) / sizeof(words[0]))];
            int end = rng() % 12;
            snprintf(tmp, sizeof(tmp), "%s%s", x, end == 0 ? ". " : end == 1 ? ", " : " ");
            w = tmp;
        }
        size_t l = strlen(w);
        if (o + l > len)
            break;
        memcpy(buf + o, w, l);
        o += l;
    }
    while (o < len)
        buf[o++] = ' ';
    buf[len] = 0;
}

static const char *const foreign[] = {
    "Der Kunde hat die Rechnung für März noch nicht bezahlt. ",
    "La réunion est reportée à jeudi après-midi, désolé. ",
    "El envío llegará mañana por la mañana. ",
    "Заказ будет доставлен в пятницу. ",
    "会議は明日の午後三時に始まります。",
    "Η παράδοση καθυστέρησε λόγω καιρού. ",
    "Spotkanie przesunięto na środę 🙂. ",
};

/* English prose from the licence texts; 0 when they are not there. */
static int make_prose(char *buf, size_t len)
{
    const char *dir = "/usr/share/common-licenses";
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    char *pool = NULL;
    size_t plen = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            char *q = realloc(pool, plen + n);
            if (!q)
                break;
            pool = q;
            memcpy(pool + plen, chunk, n);
            plen += n;
        }
        fclose(f);
    }
    closedir(dp);
    if (plen < 65536) {
        free(pool);
        return 0;
    }
    size_t o = 0, src = 0, next = 4096;
    while (o < len) {
        const char *w;
        size_t l;
        if (o >= next) {
            w = (rng() & 1) ? inserts[rng() % (sizeof(inserts) / sizeof(inserts[0]))]
                            : foreign[rng() % (sizeof(foreign) / sizeof(foreign[0]))];
            l = strlen(w);
            next += 4096;
        } else {
            /* copy up to the end of the next line of the pool */
            w = pool + src;
            const char *nl = memchr(w, '\n', plen - src);
            l = nl ? (size_t)(nl - w) + 1 : plen - src;
            src = (src + l) % plen;
        }
        if (o + l > len)
            l = len - o;
        memcpy(buf + o, w, l);
        o += l;
    }
    /* do not end inside a UTF-8 sequence */
    while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
        buf[--o] = ' ';
    if (o > 0 && (unsigned char)buf[o - 1] >= 0xC0)
        buf[o - 1] = ' ';
    buf[len] = 0;
    free(pool);
    return 1;
}

/* A 1,000 (or n) keyword rule; keywords look like words but do not occur in
 * the prose, except a handful. */
static char *policy_with_keywords(int n, bool with_default)
{
    size_t cap = (size_t)n * 24 + 4096;
    char *doc = malloc(cap), *kw = malloc((size_t)n * 24 + 64);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char w[16];
        int l = 4 + (int)(rng() % 8);
        for (int k = 0; k < l; k++)
            w[k] = (char)('a' + rng() % 26);
        w[l] = 0;
        if (i % 250 == 0)
            snprintf(w, sizeof(w), "%s", i == 0 ? "garden" : i == 250 ? "invoice" : "zürich");
        o += (size_t)sprintf(kw + o, "%s\"%s\"", i ? "," : "", w);
    }
    const char *def_in =
        "{\"id\":\"prompt-injection\",\"type\":\"prompt_injection\",\"action\":"
        "\"flag\"},{\"id\":\"secrets\",\"type\":\"secrets\",\"action\":\"redact\"},"
        "{\"id\":\"pii\",\"type\":\"pii\",\"action\":\"redact\",\"entities\":["
        "\"credit_card\",\"us_ssn\"]},";
    const char *def_out = "{\"id\":\"secrets\",\"type\":\"secrets\",\"action\":\"redact\"},"
                          "{\"id\":\"pii\",\"type\":\"pii\",\"action\":\"redact\"},";
    snprintf(doc, cap,
             "{\"inbound\":[%s{\"id\":\"kw\",\"type\":\"keywords\",\"action\":\"flag\","
             "\"keywords\":[%s]}],\"outbound\":[%s{\"id\":\"kw\",\"type\":\"keywords\","
             "\"action\":\"flag\",\"keywords\":[%s]}]}",
             with_default ? def_in : "", kw, with_default ? def_out : "", kw);
    free(kw);
    return doc;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, const char *unit, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), dcmp);
    printf("%-58s min %10.2f  median %10.2f  max %10.2f  %s\n", what, v[0], v[n / 2], v[n - 1],
           unit);
}

static struct policy *compile_or_die(const char *doc)
{
    struct policy_error err;
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    if (!p) {
        fprintf(stderr, "compile failed: %s %s %s\n", err.rule_id, err.field, err.message);
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1 || runs > 1000)
        runs = 7;
    double *v = calloc((size_t)runs, sizeof(double));
    const size_t big = 16u << 20;
    char *text = malloc(big + 1), *dense = malloc(big + 1);
    make_text(dense, big, 4096);
    bool have_prose = make_prose(text, big);
    if (!have_prose)
        memcpy(text, dense, big + 1);

    /* 1. compile times */
    char *doc10k = policy_with_keywords(10000, false);
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        struct policy *p = compile_or_die(doc10k);
        v[r] = (now_s() - t0) * 1e3;
        policy_release(p);
    }
    report("compile: 10,000 keywords (inbound + outbound rule)", "ms", v, runs);
    free(doc10k);
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        struct policy *p = compile_or_die(policy_default_json());
        v[r] = (now_s() - t0) * 1e3;
        policy_release(p);
    }
    report("compile: default policy", "ms", v, runs);

    char *doc = policy_with_keywords(1000, true);
    double t0 = now_s();
    struct policy *p = compile_or_die(doc);
    printf("compile: default policy + 1,000 keywords: %.1f ms\n", (now_s() - t0) * 1e3);
    struct policy_scratch *s = policy_scratch_new();
    struct policy_result res;

    /* 2. throughput over 16 MiB, per direction and text */
    static const char *const dir_names[] = {"inbound", "outbound"};
    for (int t = 0; t < 2; t++) {
        const char *src = t == 0 ? text : dense;
        const char *tname = t == 0 ? (have_prose ? "prose" : "dense (no licence texts)") : "dense";
        for (int d = 0; d < 2; d++) {
            size_t triggered = 0;
            for (int r = 0; r < runs; r++) {
                t0 = now_s();
                if (policy_eval(p, s, (enum policy_direction)d, src, big, &res)) {
                    fprintf(stderr, "eval failed\n");
                    return 1;
                }
                v[r] = (double)big / (1 << 20) / (now_s() - t0);
                triggered = json_array_size(res.rules_triggered);
                policy_result_clear(&res);
            }
            char what[128];
            snprintf(what, sizeof(what), "scan 16 MiB %s, %s (%zu rules triggered)", tname,
                     dir_names[d], triggered);
            report(what, "MiB/s", v, runs);
        }
    }

    /* 3. a typical 2 KB message: prose with an email, a phone number and a
     * card number in it (so redaction runs) */
    char msg[2049];
    {
        const char *parts[] = {inserts[0], inserts[1], inserts[2]};
        size_t o = 0, src = 1u << 20;
        for (int k = 0; k < 3; k++) {
            memcpy(msg + o, text + src, 600);
            o += 600;
            src += 4096;
            size_t l = strlen(parts[k]);
            memcpy(msg + o, parts[k], l);
            o += l;
        }
        while (o < 2048)
            msg[o++] = '.';
        msg[2048] = 0;
        /* replace bytes of sequences cut at the chunk edges: keep valid UTF-8 */
        for (size_t i = 0; i < 2048; i++)
            if ((unsigned char)msg[i] >= 0x80)
                msg[i] = '~';
    }
    const int iters = 2000;
    for (int dir = 0; dir < 2; dir++) {
        for (int r = 0; r < runs; r++) {
            t0 = now_s();
            for (int i = 0; i < iters; i++) {
                policy_eval(p, s, (enum policy_direction)dir, msg, 2048, &res);
                policy_result_clear(&res);
            }
            v[r] = (now_s() - t0) / iters * 1e6;
        }
        char what[128];
        snprintf(what, sizeof(what), "evaluate one 2 KB message, %s (mean of %d)", dir_names[dir],
                 iters);
        report(what, "us", v, runs);
    }
    policy_eval(p, s, POLICY_OUTBOUND, msg, 2048, &res);
    char *js = json_dumps(res.rules_triggered, JSON_COMPACT);
    printf("2 KB message, outbound: decision %s, %.300s\n", policy_decision_name(res.decision), js);
    free(js);
    policy_result_clear(&res);

    policy_scratch_free(s);
    policy_release(p);
    free(doc);
    free(text);
    free(dense);
    free(v);
    return 0;
}
