/* Turning validated rules into Vectorscan databases, and the lifetime of a
 * compiled policy (immutable after policy_compile, reference counted). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* Growable arrays of what goes into one hs_compile_multi call. */
struct pat_build {
    char **exprs; /* owned copies: keywords are escaped, detectors are copied */
    char **fast;  /* what re_db scans for: exprs[i], or a cheaper superset of its ends */
    unsigned *flags;
    unsigned *ids;
    unsigned n, cap;
};

static void build_free(struct pat_build *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        if (b->fast[i] != b->exprs[i])
            free(b->fast[i]);
        free(b->exprs[i]);
    }
    free(b->exprs);
    free(b->fast);
    free(b->flags);
    free(b->ids);
}

static int grow(void **p, size_t elem, unsigned cap)
{
    void *q = realloc(*p, elem * cap);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

/* Appends a pattern to both the build arrays and d->pats. */
static int add_pattern(struct pol_direction *d, struct pat_build *b, unsigned *pat_cap,
                       const char *expr, unsigned flags, int rule, const struct pol_detector *det,
                       unsigned char word_bounds)
{
    if (b->n == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 64;
        if (grow((void **)&b->exprs, sizeof(char *), cap) ||
            grow((void **)&b->fast, sizeof(char *), cap) ||
            grow((void **)&b->flags, sizeof(unsigned), cap) ||
            grow((void **)&b->ids, sizeof(unsigned), cap))
            return -1;
        b->cap = cap;
    }
    if (d->npats == *pat_cap) {
        unsigned cap = *pat_cap ? *pat_cap * 2 : 64;
        if (grow((void **)&d->pats, sizeof(struct pol_pat), cap))
            return -1;
        *pat_cap = cap;
    }
    char *copy = strdup(expr);
    if (!copy)
        return -1;
    b->exprs[b->n] = copy;
    b->fast[b->n] = copy;
    b->flags[b->n] = flags;
    b->ids[b->n] = d->npats;
    b->n++;
    d->pats[d->npats] = (struct pol_pat){
        .rule = rule, .det = det, .word_bounds = word_bounds, .max_width = UINT_MAX};
    d->npats++;
    return 0;
}

/* The pattern re_db scans for a detector: expr without the \b that open it
 * or any of its alternatives and groups. Measured: a leading \b (even only
 * in the first alternative) makes Vectorscan merge digit-led detectors into
 * one automaton that crawls over prose (PII scan 0.6 GB/s instead of
 * 10 GB/s). Dropping an assertion only adds match ends; the exact pattern
 * still decides, through the SOM database or, when the only \b dropped opens
 * a fixed-width pattern, through the check in on_re. Returns a new string
 * and the number of \b removed. */
static char *strip_leading_wb(const char *e, int *removed, bool *only_first)
{
    char *out = malloc(strlen(e) + 1), *o = out;
    if (!out)
        return NULL;
    bool alt_start = true, cls = false;
    *removed = 0;
    *only_first = true;
    for (const char *p = e; *p; p++) {
        if (cls) {
            if (*p == '\\' && p[1])
                *o++ = *p++;
            else if (*p == ']')
                cls = false;
            *o++ = *p;
            continue;
        }
        if (p[0] == '\\' && p[1] == 'b' && alt_start) {
            if (p != e && !(p - e == 4 && strncmp(e, "(?i)", 4) == 0))
                *only_first = false;
            (*removed)++;
            p++;
            continue;
        }
        if (strncmp(p, "(?i)", 4) == 0 || strncmp(p, "(?:", 3) == 0) {
            size_t l = p[2] == 'i' ? 4 : 3;
            memcpy(o, p, l);
            o += l;
            p += l - 1;
            alt_start = true;
            continue;
        }
        if (*p == '\\' && p[1]) {
            *o++ = *p++;
            *o++ = *p;
            alt_start = false;
            continue;
        }
        if (*p == '[')
            cls = true;
        alt_start = *p == '|' || *p == '(';
        *o++ = *p;
    }
    *o = 0;
    return out;
}

static unsigned char keyword_bounds(const char *kw, size_t len, bool whole_word)
{
    if (!whole_word)
        return 0;
    uint32_t first, last;
    pol_utf8_decode(kw, len, 0, &first);
    last = pol_utf8_prev(kw, len);
    return (unsigned char)((pol_is_word_cp(first) ? 1 : 0) | (pol_is_word_cp(last) ? 2 : 0));
}

/* A keyword as a regex that matches it literally: ASCII bytes are escaped as
 * \xHH (no metacharacter can slip through), UTF-8 sequences stay as they
 * are so that HS_FLAG_UCP folds their case. */
static char *escape_keyword(const char *kw)
{
    size_t n = strlen(kw);
    char *out = malloc(n * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)kw[i];
        if (c < 0x80) {
            sprintf(o, "\\x%02x", c);
            o += 4;
        } else {
            *o++ = (char)c;
        }
    }
    *o = 0;
    return out;
}

static int add_detectors(struct pol_direction *d, struct pat_build *b, unsigned *cap, int rule,
                         const struct pol_detector *dets, size_t n, unsigned entities)
{
    for (size_t i = 0; i < n; i++) {
        if (dets[i].entity_bit && !(dets[i].entity_bit & entities))
            continue;
        if (add_pattern(d, b, cap, dets[i].expr, dets[i].flags, rule, &dets[i], 0))
            return -1;
        struct pol_pat *pat = &d->pats[d->npats - 1];
        pat->gated = dets[i].anchors != NULL;
        char *f;
        if (dets[i].fast) {
            f = strdup(dets[i].fast);
            pat->confirm = true;
        } else {
            int removed = 0;
            bool only_first = false;
            f = strip_leading_wb(dets[i].expr, &removed, &only_first);
            if (f && removed == 0) {
                free(f);
                /* a window's edge can fake a trailing \b: confirm on the text */
                pat->confirm = pat->gated;
                continue;
            }
            /* fixed width is only known later: both flags are set, and
             * pattern_info keeps the right one */
            pat->lead_wb = removed == 1 && only_first;
            pat->confirm = true;
        }
        if (!f)
            return -1;
        b->fast[b->n - 1] = f;
    }
    return 0;
}

static int compile_literals(struct pol_direction *d, const char *dir_name, struct policy_error *err)
{
    unsigned n = 0;
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        if (rule->type != POL_KEYWORDS)
            continue;
        for (size_t k = 0; k < rule->nkeywords; k++)
            if (rule->case_sensitive || pol_is_ascii(rule->keywords[k], strlen(rule->keywords[k])))
                n++;
    }
    if (n == 0)
        return 0;
    const char **exprs = calloc(n, sizeof(*exprs));
    unsigned *flags = calloc(n, sizeof(*flags)), *ids = calloc(n, sizeof(*ids));
    size_t *lens = calloc(n, sizeof(*lens));
    d->lits = calloc(n, sizeof(*d->lits));
    int rc = -1;
    if (!exprs || !flags || !ids || !lens || !d->lits) {
        pol_error_set(err, "", dir_name, "out of memory");
        goto done;
    }
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        if (rule->type != POL_KEYWORDS)
            continue;
        for (size_t k = 0; k < rule->nkeywords; k++) {
            const char *kw = rule->keywords[k];
            size_t l = strlen(kw);
            if (!rule->case_sensitive && !pol_is_ascii(kw, l))
                continue;
            unsigned i = d->nlits++;
            exprs[i] = kw;
            lens[i] = l;
            ids[i] = i;
            flags[i] = rule->case_sensitive ? 0 : HS_FLAG_CASELESS;
            d->lits[i] = (struct pol_lit){.rule = r,
                                          .len = (unsigned)l,
                                          .word_bounds = keyword_bounds(kw, l, rule->whole_word)};
        }
    }
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_lit_multi(exprs, flags, ids, lens, n, HS_MODE_BLOCK, NULL, &d->lit_db, &cerr) !=
        HS_SUCCESS) {
        int e = cerr && cerr->expression >= 0 ? cerr->expression : -1;
        const char *id = e >= 0 ? d->rules[d->lits[e].rule].id : "";
        pol_error_set(err, id, "keywords", "keyword cannot be compiled: %s",
                      cerr ? cerr->message : "unknown error");
        hs_free_compile_error(cerr);
        goto done;
    }
    rc = 0;
done:
    free(exprs);
    free(flags);
    free(ids);
    free(lens);
    return rc;
}

/* Fills min/max width of each pattern and reports a user regex that does
 * not parse with its rule id and the engine's message (which carries the
 * offset, e.g. "Missing close parenthesis for group started at index 3."). */
static int pattern_info(struct pol_direction *d, struct pat_build *b, const char *dir_name,
                        struct policy_error *err)
{
    for (unsigned i = 0; i < b->n; i++) {
        struct pol_pat *pat = &d->pats[b->ids[i]];
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *cerr = NULL;
        if (hs_expression_info(b->exprs[i], b->flags[i], &info, &cerr) != HS_SUCCESS) {
            struct pol_rule *r = &d->rules[pat->rule];
            char field[64];
            snprintf(field, sizeof(field), "%s[%d].%s", dir_name, pat->rule,
                     r->type == POL_REGEX ? "pattern" : "keywords");
            pol_error_set(err, r->id, field, "%s: %s",
                          r->type == POL_REGEX ? "invalid regex" : "keyword cannot be compiled",
                          cerr ? cerr->message : "unknown error");
            hs_free_compile_error(cerr);
            return -1;
        }
        pat->min_width = info->min_width;
        pat->max_width = info->max_width;
        /* "$" and friends need an unpadded scan of the end (see SCAN_PAD in
         * eval.c); a trailing \b (also reported as an EOD match) does not, and
         * the detectors use no "$" */
        if (!pat->det && (info->matches_at_eod || info->matches_only_at_eod))
            d->eod = true;
        /* a fixed-width pattern that lost only its opening \b is checked in
         * on_re, without the SOM database */
        if (pat->lead_wb && info->min_width == info->max_width && !(pat->det && pat->det->fast) &&
            !pat->gated)
            pat->confirm = false;
        else
            pat->lead_wb = false;
        if (pat->det && pat->det->max_len && info->max_width > pat->det->max_len)
            pat->max_width = pat->det->max_len;
        free(info); /* allocated with the default misc allocator (malloc) */
    }
    return 0;
}

enum db_kind { DB_RE, DB_INJ, DB_SOM };

static int compile_db(struct pol_direction *d, struct pat_build *b, enum db_kind kind,
                      const char *dir_name, struct policy_error *err, hs_database_t **db)
{
    unsigned n = 0;
    unsigned *flags = malloc(sizeof(unsigned) * b->n);
    const char **exprs = malloc(sizeof(char *) * b->n);
    unsigned *ids = malloc(sizeof(unsigned) * b->n);
    int rc = -1;
    if (!flags || !exprs || !ids) {
        pol_error_set(err, "", dir_name, "out of memory");
        goto done;
    }
    bool som = kind == DB_SOM;
    for (unsigned i = 0; i < b->n; i++) {
        const struct pol_pat *pat = &d->pats[b->ids[i]];
        if (som && pat->min_width == pat->max_width && !pat->confirm)
            continue; /* the start is end - width */
        if (!som && pat->gated != (kind == DB_INJ))
            continue;
        exprs[n] = som ? b->exprs[i] : b->fast[i];
        ids[n] = b->ids[i];
        flags[n] = b->flags[i] | (som ? HS_FLAG_SOM_LEFTMOST : 0);
        n++;
    }
    if (n == 0) {
        rc = 0;
        goto done;
    }
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, db, &cerr) != HS_SUCCESS) {
        if (cerr && cerr->expression >= 0) {
            const struct pol_pat *pat = &d->pats[ids[cerr->expression]];
            const struct pol_rule *r = &d->rules[pat->rule];
            char field[64];
            snprintf(field, sizeof(field), "%s[%d].%s", dir_name, pat->rule,
                     r->type == POL_REGEX      ? "pattern"
                     : r->type == POL_KEYWORDS ? "keywords"
                                               : "type");
            pol_error_set(err, r->id, field, "%s: %s",
                          som ? "pattern is too complex to locate where matches start"
                              : "pattern cannot be compiled",
                          cerr->message);
        } else {
            pol_error_set(err, "", dir_name, "cannot compile the rules: %s",
                          cerr ? cerr->message : "unknown error");
        }
        hs_free_compile_error(cerr);
        goto done;
    }
    rc = 0;
done:
    free(flags);
    free(exprs);
    free(ids);
    return rc;
}

/* The anchors of every gated pattern, deduplicated, as one caseless literal
 * database. */
static int compile_gate(struct pol_direction *d, const char *dir_name, struct policy_error *err)
{
    const char *seen[512];
    size_t lens[512];
    unsigned n = 0, flags[512], ids[512];
    for (unsigned i = 0; i < d->npats; i++) {
        if (!d->pats[i].gated)
            continue;
        const char *a = d->pats[i].det->anchors;
        while (*a) {
            size_t l = strcspn(a, ",");
            bool dup = false;
            for (unsigned k = 0; k < n && !dup; k++)
                dup = lens[k] == l && strncmp(seen[k], a, l) == 0;
            if (!dup && n < 512) {
                seen[n] = a;
                lens[n] = l;
                flags[n] = HS_FLAG_CASELESS;
                ids[n] = n;
                n++;
            }
            a += l + (a[l] == ',');
        }
    }
    if (n == 0)
        return 0;
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_lit_multi(seen, flags, ids, lens, n, HS_MODE_BLOCK, NULL, &d->gate_db, &cerr) !=
        HS_SUCCESS) {
        pol_error_set(err, "", dir_name, "cannot compile the rules: %s",
                      cerr ? cerr->message : "unknown error");
        hs_free_compile_error(cerr);
        return -1;
    }
    return 0;
}

int pol_direction_compile(struct pol_direction *d, const char *dir_name, struct policy_error *err)
{
    if (compile_literals(d, dir_name, err))
        return -1;
    struct pat_build b = {0};
    unsigned cap = 0;
    int rc = -1;
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        size_t n;
        const struct pol_detector *dets;
        switch (rule->type) {
        case POL_KEYWORDS:
            for (size_t k = 0; k < rule->nkeywords; k++) {
                const char *kw = rule->keywords[k];
                size_t l = strlen(kw);
                if (rule->case_sensitive || pol_is_ascii(kw, l))
                    continue; /* in lit_db */
                char *e = escape_keyword(kw);
                int bad =
                    !e || add_pattern(d, &b, &cap, e, HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_CASELESS,
                                      r, NULL, keyword_bounds(kw, l, rule->whole_word));
                free(e);
                if (bad)
                    goto oom;
            }
            break;
        case POL_REGEX:
            if (add_pattern(d, &b, &cap, rule->pattern,
                            HS_FLAG_UTF8 | (rule->case_sensitive ? 0 : HS_FLAG_CASELESS), r, NULL,
                            0))
                goto oom;
            break;
        case POL_PII:
            dets = pii_detectors(&n);
            if (add_detectors(d, &b, &cap, r, dets, n, rule->entities))
                goto oom;
            break;
        case POL_SECRETS:
            dets = secrets_detectors(&n);
            if (add_detectors(d, &b, &cap, r, dets, n, 0))
                goto oom;
            break;
        case POL_INJECTION:
            dets = injection_detectors(&n);
            if (add_detectors(d, &b, &cap, r, dets, n, 0))
                goto oom;
            d->injection_rules++;
            break;
        case POL_LENGTH:
            break;
        }
    }
    if (b.n == 0) {
        rc = 0;
        goto done;
    }
    if (pattern_info(d, &b, dir_name, err) || compile_db(d, &b, DB_RE, dir_name, err, &d->re_db) ||
        compile_db(d, &b, DB_INJ, dir_name, err, &d->inj_db) ||
        compile_db(d, &b, DB_SOM, dir_name, err, &d->som_db) || compile_gate(d, dir_name, err))
        goto done;
    rc = 0;
    goto done;
oom:
    pol_error_set(err, "", dir_name, "out of memory");
done:
    build_free(&b);
    return rc;
}

void pol_direction_free(struct pol_direction *d)
{
    pol_rules_free(d->rules, d->nrules);
    hs_free_database(d->lit_db);
    hs_free_database(d->re_db);
    hs_free_database(d->gate_db);
    hs_free_database(d->inj_db);
    hs_free_database(d->som_db);
    free(d->lits);
    free(d->pats);
    memset(d, 0, sizeof(*d));
}

static void policy_free(struct policy *p)
{
    for (int i = 0; i < 3; i++)
        pol_direction_free(&p->dirs[i]);
    json_decref(p->normalised);
    hs_free_scratch(p->proto);
    free(p);
}

struct policy *policy_compile(const char *json, size_t len, struct policy_error *err)
{
    static const char *const names[3] = {"inbound", "outbound", "legacy"};
    if (err)
        memset(err, 0, sizeof(*err));
    if (!json) {
        pol_error_set(err, "", "", "no policy document");
        return NULL;
    }
    struct policy *p = calloc(1, sizeof(*p));
    if (!p) {
        pol_error_set(err, "", "", "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    if (pol_parse(p, json, len, err))
        goto fail;
    for (int i = 0; i < 3; i++) {
        struct pol_direction *d = &p->dirs[i];
        if (pol_direction_compile(d, names[i], err))
            goto fail;
        hs_database_t *dbs[5] = {d->lit_db, d->re_db, d->som_db, d->gate_db, d->inj_db};
        for (int k = 0; k < 5; k++) {
            if (dbs[k] && hs_alloc_scratch(dbs[k], &p->proto) != HS_SUCCESS) {
                pol_error_set(err, "", names[i], "out of memory");
                goto fail;
            }
        }
    }
    return p;
fail:
    policy_free(p);
    return NULL;
}

void policy_retain(struct policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void policy_release(struct policy *p)
{
    /* acq_rel: the thread that frees must see every other thread's last use. */
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

json_t *policy_to_json(const struct policy *p)
{
    return p ? json_deep_copy(p->normalised) : NULL;
}

const struct pol_direction *pol_dir_get(const struct policy *p, enum policy_direction dir)
{
    if (dir == POLICY_LEGACY && !p->has_legacy)
        dir = POLICY_INBOUND;
    if ((unsigned)dir > POLICY_LEGACY)
        dir = POLICY_INBOUND;
    return &p->dirs[dir];
}

int policy_rule_count(const struct policy *p, enum policy_direction dir)
{
    return p ? pol_dir_get(p, dir)->nrules : 0;
}
