/* Precision and recall of the detectors on the labelled corpus in
 * tests/data/policy (see make_corpus.py there for the format). Fails below:
 * PII and secrets precision 0.98 / recall 0.95; prompt injection recall 0.85
 * at a false-positive rate of at most 3% on benign prompts. Misclassified
 * lines are printed so that a regression can be read off the log. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "policy_spans.h"

#define MAX_LINES 2000

struct line {
    char *label;    /* entity, "1"/"0", or NULL for benign.txt */
    char *expected; /* expected span or "-" */
    char *text;
};

struct corpus {
    struct line lines[MAX_LINES];
    size_t n;
};

/* "\n" in a corpus line stands for a newline (a TSV line cannot hold one). */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] == 'n') {
            *o++ = '\n';
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

static void load(struct corpus *c, const char *name, int columns)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/policy/%s", COLLIE_TEST_DATA, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t l;
    while ((l = getline(&buf, &cap, f)) > 0) {
        while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
            buf[--l] = 0;
        if (l == 0 || buf[0] == '#')
            continue;
        assert_true(c->n < MAX_LINES);
        struct line *ln = &c->lines[c->n++];
        char *s = strdup(buf), *save = NULL;
        if (columns == 1) {
            ln->text = s;
        } else if (columns == 2) {
            ln->label = strtok_r(s, "\t", &save);
            ln->text = strtok_r(NULL, "", &save);
        } else {
            ln->label = strtok_r(s, "\t", &save);
            ln->expected = strtok_r(NULL, "\t", &save);
            ln->text = strtok_r(NULL, "", &save);
        }
        assert_non_null(ln->text);
        unescape(ln->text);
        if (ln->expected)
            unescape(ln->expected);
    }
    free(buf);
    fclose(f);
}

static void unload(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i].label ? c->lines[i].label : c->lines[i].text);
    c->n = 0;
}

static size_t cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

struct counts {
    int tp, fp, fn;
};

/* Scores one span-labelled line. any_entity: the label names the detector
 * ("secret"), so a match of any entity counts. */
static void score_spans(struct policy *p, struct policy_scratch *s, const struct line *ln,
                        bool any_entity, struct counts *tot, const char *what)
{
    struct policy_result r;
    assert_int_equal(policy_eval(p, s, POLICY_INBOUND, ln->text, strlen(ln->text), &r), 0);
    bool positive = ln->expected && strcmp(ln->expected, "-") != 0;
    long long es = -1, ee = -1;
    if (positive) {
        const char *at = strstr(ln->text, ln->expected);
        if (!at)
            fail_msg("expected span not in text: %s", ln->text);
        es = (long long)cp_count(ln->text, (size_t)(at - ln->text));
        ee = es + (long long)cp_count(ln->expected, strlen(ln->expected));
    }
    bool found = false;
    json_t *rule = json_array_get(r.rules_triggered, 0);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rule, "matches"), i, m)
    {
        const char *entity = json_string_value(json_object_get(m, "entity"));
        long long ms = json_integer_value(json_object_get(m, "start"));
        long long me = json_integer_value(json_object_get(m, "end"));
        bool same = positive && (any_entity || strcmp(entity, ln->label) == 0);
        /* a hit covers the expected span, give or take a bracket or two */
        if (same && !found && ms <= es && me >= ee && es - ms <= 3 && me - ee <= 3) {
            found = true;
            tot->tp++;
        } else {
            tot->fp++;
            printf("  %s FP %s [%lld,%lld): %s\n", what, entity, ms, me, ln->text);
        }
    }
    if (positive && !found) {
        tot->fn++;
        printf("  %s FN %s: %s\n", what, ln->label, ln->text);
    }
    policy_result_clear(&r);
}

static double ratio(int a, int b)
{
    return b ? (double)a / (double)b : 1.0;
}

/* Runs a span detector over file, its held-out companion and the benign
 * prompts; prints each, asserts on the union. */
static void span_detector(const char *rule, const char *file, const char *holdout, bool any_entity,
                          const char *what)
{
    static struct corpus c, h, benign;
    load(&c, file, 3);
    load(&h, holdout, 3);
    load(&benign, "benign.txt", 1);
    struct policy *p = compile_one(rule);
    struct policy_scratch *s = policy_scratch_new();
    struct counts tot = {0}, hold = {0}, ben = {0};
    for (size_t i = 0; i < c.n; i++)
        score_spans(p, s, &c.lines[i], any_entity, &tot, what);
    for (size_t i = 0; i < h.n; i++)
        score_spans(p, s, &h.lines[i], any_entity, &hold, what);
    for (size_t i = 0; i < benign.n; i++)
        score_spans(p, s, &benign.lines[i], any_entity, &ben, what);
    printf("%s main:     %zu lines, tp=%d fp=%d fn=%d precision=%.3f recall=%.3f\n", what, c.n,
           tot.tp, tot.fp, tot.fn, ratio(tot.tp, tot.tp + tot.fp), ratio(tot.tp, tot.tp + tot.fn));
    printf("%s held-out: %zu lines, tp=%d fp=%d fn=%d precision=%.3f recall=%.3f\n", what, h.n,
           hold.tp, hold.fp, hold.fn, ratio(hold.tp, hold.tp + hold.fp),
           ratio(hold.tp, hold.tp + hold.fn));
    printf("%s benign:   %zu lines, fp=%d\n", what, benign.n, ben.fp);
    tot.tp += hold.tp;
    tot.fp += hold.fp + ben.fp;
    tot.fn += hold.fn;
    double prec = ratio(tot.tp, tot.tp + tot.fp), rec = ratio(tot.tp, tot.tp + tot.fn);
    printf("%s all:      tp=%d fp=%d fn=%d precision=%.3f recall=%.3f\n", what, tot.tp, tot.fp,
           tot.fn, prec, rec);
    policy_scratch_free(s);
    policy_release(p);
    unload(&c);
    unload(&h);
    unload(&benign);
    assert_true(prec >= 0.98);
    assert_true(rec >= 0.95);
}

static void test_pii(void **state)
{
    span_detector("{\"id\":\"pii\",\"type\":\"pii\",\"action\":\"flag\"}", "pii.tsv",
                  "pii_holdout.tsv", false, "pii");
}

/* Per-entity figures, printed only (the threshold applies to the detector). */
static void test_pii_per_entity(void **state)
{
    static const char *const entities[] = {"email", "phone",  "credit_card",
                                           "iban",  "us_ssn", "ip_address"};
    static struct corpus c;
    load(&c, "pii.tsv", 3);
    for (size_t e = 0; e < 6; e++) {
        char rule[256];
        snprintf(rule, sizeof(rule),
                 "{\"id\":\"pii\",\"type\":\"pii\",\"action\":\"flag\",\"entities\":[\"%s\"]}",
                 entities[e]);
        struct policy *p = compile_one(rule);
        struct policy_scratch *s = policy_scratch_new();
        struct counts tot = {0};
        for (size_t i = 0; i < c.n; i++) {
            struct line ln = c.lines[i];
            if (strcmp(ln.label, entities[e]) != 0)
                ln.expected = "-"; /* another entity's positive is a negative here */
            score_spans(p, s, &ln, false, &tot, entities[e]);
        }
        printf("pii/%s: tp=%d fp=%d fn=%d precision=%.3f recall=%.3f\n", entities[e], tot.tp,
               tot.fp, tot.fn, ratio(tot.tp, tot.tp + tot.fp), ratio(tot.tp, tot.tp + tot.fn));
        policy_scratch_free(s);
        policy_release(p);
    }
    unload(&c);
}

static void test_secrets(void **state)
{
    span_detector("{\"id\":\"sec\",\"type\":\"secrets\",\"action\":\"flag\"}", "secrets.tsv",
                  "secrets_holdout.tsv", true, "secrets");
}

static void test_injection(void **state)
{
    static struct corpus c, benign;
    load(&c, "injection.tsv", 2);
    size_t main_n = c.n;
    load(&c, "injection_holdout.tsv", 2); /* appended after the main lines */
    load(&benign, "benign.txt", 1);
    struct policy *p =
        compile_one("{\"id\":\"inj\",\"type\":\"prompt_injection\",\"action\":\"flag\"}");
    struct policy_scratch *s = policy_scratch_new();
    int pos = 0, tp = 0, neg = 0, fp = 0, hpos = 0, htp = 0, hneg = 0, hfp = 0;
    for (size_t i = 0; i < c.n + benign.n; i++) {
        const struct line *ln = i < c.n ? &c.lines[i] : &benign.lines[i - c.n];
        bool label = ln->label && strcmp(ln->label, "1") == 0;
        struct policy_result r;
        assert_int_equal(policy_eval(p, s, POLICY_INBOUND, ln->text, strlen(ln->text), &r), 0);
        bool hit = r.decision == POLICY_FLAG;
        double score =
            json_number_value(json_object_get(json_array_get(r.rules_triggered, 0), "score"));
        if (i >= main_n && i < c.n) {
            hpos += label;
            htp += label && hit;
            hneg += !label;
            hfp += !label && hit;
        }
        if (label) {
            pos++;
            tp += hit;
            if (!hit)
                printf("  injection FN: %s\n", ln->text);
        } else {
            neg++;
            fp += hit;
            if (hit)
                printf("  injection FP (%.2f): %s\n", score, ln->text);
        }
        policy_result_clear(&r);
    }
    printf("prompt_injection held-out: %d positives, %d negatives, recall=%.3f fp rate=%.3f\n",
           hpos, hneg, ratio(htp, hpos), ratio(hfp, hneg));
    double rec = ratio(tp, pos), fpr = ratio(fp, neg);
    printf("prompt_injection: %d positives, %d benign/hard negatives, recall=%.3f "
           "false-positive rate=%.3f\n",
           pos, neg, rec, fpr);
    policy_scratch_free(s);
    policy_release(p);
    unload(&c);
    unload(&benign);
    assert_true(rec >= 0.85);
    assert_true(fpr <= 0.03);
}

/* The fresh set (written last, see make_corpus.py) is reported, never
 * asserted: the detectors must not be tuned to it. */
static void test_injection_fresh(void **state)
{
    static struct corpus c;
    load(&c, "injection_fresh.tsv", 2);
    struct policy *p =
        compile_one("{\"id\":\"inj\",\"type\":\"prompt_injection\",\"action\":\"flag\"}");
    struct policy_scratch *s = policy_scratch_new();
    int pos = 0, tp = 0, neg = 0, fp = 0;
    for (size_t i = 0; i < c.n; i++) {
        bool label = strcmp(c.lines[i].label, "1") == 0;
        struct policy_result r;
        assert_int_equal(
            policy_eval(p, s, POLICY_INBOUND, c.lines[i].text, strlen(c.lines[i].text), &r), 0);
        bool hit = r.decision == POLICY_FLAG;
        pos += label;
        tp += label && hit;
        neg += !label;
        fp += !label && hit;
        if (label != hit)
            printf("  fresh %s: %s\n", label ? "FN" : "FP", c.lines[i].text);
        policy_result_clear(&r);
    }
    printf("prompt_injection fresh (not asserted): %d positives, %d negatives, recall=%.3f "
           "fp rate=%.3f\n",
           pos, neg, ratio(tp, pos), ratio(fp, neg));
    policy_scratch_free(s);
    policy_release(p);
    unload(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pii),
        cmocka_unit_test(test_pii_per_entity),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_injection_fresh),
    };
    return cmocka_run_group_tests_name("policy_corpus", tests, NULL, NULL);
}
