/* From validated matches to a result: per-rule merging of overlapping spans,
 * the decision (block > redact > flag > pass), the filtered text and the
 * rules_triggered report with code-point offsets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

static int match_cmp(const void *a, const void *b)
{
    const struct pol_match *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end < y->end) - (x->end > y->end); /* longer first */
}

static int start_cmp(const void *a, const void *b)
{
    const struct pol_match *x = *(const struct pol_match *const *)a;
    const struct pol_match *y = *(const struct pol_match *const *)b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return (x->rule > y->rule) - (x->rule < y->rule);
}

static const char *match_label(const struct pol_direction *d, const struct pol_match *m)
{
    return m->det ? m->det->label : d->rules[m->rule].id;
}

/* Merges overlapping spans of the same rule (several ends of one email, a
 * token matched by two secret patterns); the first span's entity names the
 * merged one. Returns the new count. */
static size_t merge_per_rule(struct pol_match *m, size_t nm)
{
    size_t w = 0;
    for (size_t i = 0; i < nm; i++) {
        if (w > 0 && m[w - 1].rule == m[i].rule && m[i].start < m[w - 1].end) {
            if (m[i].end > m[w - 1].end)
                m[w - 1].end = m[i].end;
            continue;
        }
        m[w++] = m[i];
    }
    return w;
}

/* Replaces the spans of redact rules with [REDACTED:<label>]; spans that
 * overlap across rules are merged and take the label of the one that starts
 * first (the longest, on a tie). */
static int build_redacted(const struct pol_direction *d, const char *text, size_t len,
                          struct pol_match *m, size_t nm, struct policy_result *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nm; i++)
        if (d->rules[m[i].rule].action == POLICY_REDACT)
            n++;
    const struct pol_match **r = malloc((n ? n : 1) * sizeof(*r));
    if (!r)
        return -1;
    n = 0;
    for (size_t i = 0; i < nm; i++)
        if (d->rules[m[i].rule].action == POLICY_REDACT)
            r[n++] = &m[i];
    qsort(r, n, sizeof(*r), start_cmp);
    /* Two passes: measure, then write. */
    char *buf = NULL;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0, o = 0, i = 0;
        while (i < n) {
            size_t st = r[i]->start, en = r[i]->end;
            const char *label = match_label(d, r[i]);
            for (i++; i < n && r[i]->start < en; i++)
                if (r[i]->end > en)
                    en = r[i]->end;
            if (st < pos)
                st = pos;
            size_t ll = strlen(label) + 11; /* "[REDACTED:" + "]" */
            if (pass) {
                memcpy(buf + o, text + pos, st - pos);
                snprintf(buf + o + (st - pos), ll + 1, "[REDACTED:%s]", label);
            }
            o += (st - pos) + ll;
            pos = en;
        }
        if (pass)
            memcpy(buf + o, text + pos, len - pos);
        o += len - pos;
        if (!pass) {
            total = o;
            buf = malloc(total + 1);
            if (!buf) {
                free(r);
                return -1;
            }
        }
    }
    buf[total] = 0;
    out->filtered = buf;
    out->filtered_len = total;
    free(r);
    return 0;
}

static int build_report(const struct pol_direction *d, const char *text, size_t len,
                        const struct pol_match *m, size_t nm, const double *scores,
                        struct policy_result *out)
{
    /* Code points only for the spans that are reported. */
    size_t *cps = malloc((nm ? nm : 1) * 2 * sizeof(size_t));
    struct pol_offref *refs = malloc((nm ? nm : 1) * 2 * sizeof(*refs));
    bool *reported = calloc(nm ? nm : 1, sizeof(bool));
    int rc = -1;
    if (!cps || !refs || !reported)
        goto done;
    size_t nrefs = 0;
    for (size_t i = 0, k = 0; i < nm; i++, k++) {
        if (i > 0 && m[i].rule != m[i - 1].rule)
            k = 0;
        if (k >= POL_MAX_REPORTED_MATCHES)
            continue;
        reported[i] = true;
        refs[nrefs++] = (struct pol_offref){.byte = m[i].start, .out = &cps[2 * i]};
        refs[nrefs++] = (struct pol_offref){.byte = m[i].end, .out = &cps[2 * i + 1]};
    }
    pol_utf8_bytes_to_cps(text, len, refs, nrefs);

    out->rules_triggered = json_array();
    if (!out->rules_triggered)
        goto done;
    size_t i = 0;
    for (int r = 0; r < d->nrules; r++) {
        const struct pol_rule *rule = &d->rules[r];
        if (i >= nm || m[i].rule != r)
            continue;
        json_t *matches = json_array();
        size_t count = 0;
        for (; i < nm && m[i].rule == r; i++, count++) {
            if (!reported[i])
                continue;
            json_t *o = json_pack("{s:I, s:I}", "start", (json_int_t)cps[2 * i], "end",
                                  (json_int_t)cps[2 * i + 1]);
            if (o && m[i].det)
                json_object_set_new(o, "entity", json_string(m[i].det->entity));
            if (!o || json_array_append_new(matches, o))
                goto fail_matches;
        }
        json_t *t =
            json_pack("{s:s, s:s, s:s, s:o, s:I}", "rule_id", rule->id, "type",
                      pol_type_name(rule->type), "action", policy_decision_name(rule->action),
                      "matches", matches, "match_count", (json_int_t)count);
        matches = NULL; /* "o" took it, even on failure */
        if (!t)
            goto done;
        if (rule->type == POL_INJECTION && scores[r] >= 0.0)
            json_object_set_new(t, "score",
                                json_real((double)(int)(scores[r] * 1000 + 0.5) / 1000));
        if (json_array_append_new(out->rules_triggered, t))
            goto done;
        continue;
    fail_matches:
        json_decref(matches);
        goto done;
    }
    rc = 0;
done:
    free(cps);
    free(refs);
    free(reported);
    return rc;
}

int pol_finish(const struct pol_direction *d, const char *text, size_t len, struct pol_match *m,
               size_t nm, const double *scores, struct policy_result *out)
{
    if (nm > 1)
        qsort(m, nm, sizeof(*m), match_cmp);
    nm = merge_per_rule(m, nm);
    out->rules_evaluated = d->nrules;
    out->decision = POLICY_PASS;
    for (size_t i = 0; i < nm; i++)
        if (d->rules[m[i].rule].action > out->decision)
            out->decision = d->rules[m[i].rule].action;
    if (build_report(d, text, len, m, nm, scores, out))
        return -1;
    if (out->decision == POLICY_BLOCK)
        return 0; /* filtered stays NULL */
    if (out->decision == POLICY_REDACT)
        return build_redacted(d, text, len, m, nm, out);
    out->filtered = malloc(len + 1);
    if (!out->filtered)
        return -1;
    memcpy(out->filtered, text, len);
    out->filtered[len] = 0;
    out->filtered_len = len;
    return 0;
}

void policy_result_clear(struct policy_result *r)
{
    if (!r)
        return;
    json_decref(r->rules_triggered);
    free(r->filtered);
    memset(r, 0, sizeof(*r));
}

json_t *policy_result_to_json(const struct policy_result *r, long long policy_version)
{
    json_t *rt = r->rules_triggered ? json_deep_copy(r->rules_triggered) : json_array();
    /* latency rounded to microseconds: more digits are noise */
    double lat = (double)(long long)(r->latency_ms * 1000.0 + 0.5) / 1000.0;
    return json_pack("{s:s, s:i, s:o, s:f, s:I}", "decision", policy_decision_name(r->decision),
                     "rules_evaluated", r->rules_evaluated, "rules_triggered", rt, "latency_ms",
                     lat, "policy_version", (json_int_t)policy_version);
}
