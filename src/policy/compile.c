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
                       enum pol_group group, unsigned char word_bounds)
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
    d->pats[d->npats] = (struct pol_pat){.rule = rule,
                                         .det = det,
                                         .word_bounds = word_bounds,
                                         .group = (unsigned char)group,
                                         .max_width = UINT_MAX};
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
        bool gated = dets[i].anchors != NULL;
        if (add_pattern(d, b, cap, dets[i].expr, dets[i].flags, rule, &dets[i],
                        gated ? POL_GROUP_GATED : dets[i].group, 0))
            return -1;
        struct pol_pat *pat = &d->pats[d->npats - 1];
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
                /* the start of a window can fake a "^": confirm on the text */
                pat->confirm = gated;
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

/* Vectorscan's literal matcher (FDR) chooses its stride from the number of
 * literals and the shortest one: stride 2 from 800 literals, up to the
 * shortest length below that. On prose, stride 1 was measured faster from
 * about 450 literals on: 1,000 random keywords 10.4 -> 6.6 ms per 16 MiB,
 * the same plus the anchor words 25 -> 8.9 ms, 500 English words 40 -> 32
 * ms (250 random keywords were 1.5 ms slower, hence the threshold). A
 * literal of one byte forces stride 1; 0xFF never occurs in UTF-8, so it
 * does not match valid text, and lit_hit (eval.c) ignores its id if it
 * ever does. */
#define STRIDE1_LITERALS 400
static const char stride1_literal[] = "\xFF";

/* The number of (gated pattern, anchor) pairs. */
static unsigned anchor_links(const struct pol_direction *d)
{
    unsigned links = 0;
    for (unsigned g = 0; g < d->ngated; g++)
        for (const char *a = d->pats[d->gated[g].pat].det->anchors; *a; a++)
            links += a[1] == 0 || *a == ',';
    return links;
}

/* Appends the distinct anchors of the gated patterns to exprs/lens (from
 * index base on) and lists, for each, the gated patterns it opens windows
 * for: d->anchor_gated[d->anchor_first[k] .. d->anchor_first[k + 1]). */
static int collect_anchors(struct pol_direction *d, const char **exprs, size_t *lens, unsigned base,
                           unsigned links)
{
    unsigned *of = malloc((links ? links : 1) * sizeof(unsigned)); /* anchor of each pair */
    unsigned *fill = calloc(links + 1, sizeof(unsigned));
    if (!of || !fill) {
        free(of);
        free(fill);
        return -1;
    }
    unsigned n = 0, p = 0;
    for (unsigned g = 0; g < d->ngated; g++) {
        for (const char *a = d->pats[d->gated[g].pat].det->anchors; *a;) {
            size_t l = strcspn(a, ",");
            unsigned k = 0;
            while (k < n && !(lens[base + k] == l && strncmp(exprs[base + k], a, l) == 0))
                k++;
            if (k == n) {
                exprs[base + n] = a;
                lens[base + n] = l;
                n++;
            }
            of[p++] = k;
            d->anchor_first[k + 1]++;
            a += l + (a[l] == ',');
        }
    }
    for (unsigned k = 0; k < n; k++) {
        d->anchor_first[k + 1] += d->anchor_first[k];
        fill[k] = d->anchor_first[k];
    }
    p = 0;
    for (unsigned g = 0; g < d->ngated; g++)
        for (const char *a = d->pats[d->gated[g].pat].det->anchors; *a; a++)
            if (a[1] == 0 || *a == ',')
                d->anchor_gated[fill[of[p++]]++] = g;
    d->nanchors = n;
    free(of);
    free(fill);
    return 0;
}

/* The literals of a direction, in lit_db id order: keywords (nkw), anchors,
 * and the stride literal when there are enough. */
struct lit_set {
    const char **exprs;
    size_t *lens;
    unsigned *flags;
    unsigned n, nkw;
};

static void lit_set_free(struct lit_set *l)
{
    free(l->exprs);
    free(l->lens);
    free(l->flags);
}

/* Fills l, d->lits and the anchor lists; -1 when memory ran out. */
static int collect_literals(struct pol_direction *d, struct lit_set *l)
{
    unsigned nkw = 0;
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        if (rule->type != POL_KEYWORDS)
            continue;
        for (size_t k = 0; k < rule->nkeywords; k++)
            if (rule->case_sensitive || pol_is_ascii(rule->keywords[k], strlen(rule->keywords[k])))
                nkw++;
    }
    unsigned links = anchor_links(d); /* an upper bound on the distinct anchors */
    if (nkw + links == 0)
        return 0;
    unsigned cap = nkw + links + 1;
    l->exprs = calloc(cap, sizeof(*l->exprs));
    l->lens = calloc(cap, sizeof(*l->lens));
    l->flags = calloc(cap, sizeof(*l->flags));
    d->lits = calloc(nkw ? nkw : 1, sizeof(*d->lits));
    d->anchor_first = calloc(links + 1, sizeof(unsigned));
    d->anchor_gated = calloc(links ? links : 1, sizeof(unsigned));
    if (!l->exprs || !l->lens || !l->flags || !d->lits || !d->anchor_first || !d->anchor_gated)
        return -1;
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        if (rule->type != POL_KEYWORDS)
            continue;
        for (size_t k = 0; k < rule->nkeywords; k++) {
            const char *kw = rule->keywords[k];
            size_t len = strlen(kw);
            if (!rule->case_sensitive && !pol_is_ascii(kw, len))
                continue;
            unsigned i = d->nlits++;
            l->exprs[i] = kw;
            l->lens[i] = len;
            l->flags[i] = rule->case_sensitive ? 0 : HS_FLAG_CASELESS;
            d->lits[i] = (struct pol_lit){.rule = r,
                                          .len = (unsigned)len,
                                          .word_bounds = keyword_bounds(kw, len, rule->whole_word)};
        }
    }
    l->nkw = nkw;
    if (collect_anchors(d, l->exprs, l->lens, nkw, links))
        return -1;
    l->n = nkw + d->nanchors;
    for (unsigned i = nkw; i < l->n; i++)
        l->flags[i] = HS_FLAG_CASELESS;
    if (l->n >= STRIDE1_LITERALS) {
        l->exprs[l->n] = stride1_literal;
        l->lens[l->n++] = 1;
    }
    return 0;
}

static int compile_lit_db(struct pol_direction *d, const struct lit_set *l, const char *dir_name,
                          struct policy_error *err)
{
    unsigned *ids = malloc(l->n * sizeof(unsigned));
    if (!ids) {
        pol_error_set(err, "", dir_name, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < l->n; i++)
        ids[i] = i;
    hs_compile_error_t *cerr = NULL;
    int rc = 0;
    if (hs_compile_lit_multi(l->exprs, l->flags, ids, l->lens, l->n, HS_MODE_BLOCK, NULL,
                             &d->lit_db, &cerr) != HS_SUCCESS) {
        int e = cerr && cerr->expression >= 0 ? cerr->expression : -1;
        const char *id = e >= 0 && (unsigned)e < l->nkw ? d->rules[d->lits[e].rule].id : "";
        pol_error_set(err, id, "keywords", "keyword cannot be compiled: %s",
                      cerr ? cerr->message : "unknown error");
        hs_free_compile_error(cerr);
        rc = -1;
    }
    free(ids);
    return rc;
}

/* A literal as a pattern that matches exactly its bytes. */
static char *escape_literal(const char *s, size_t len)
{
    char *out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++)
        sprintf(out + 4 * i, "\\x%02x", (unsigned char)s[i]);
    out[4 * len] = 0;
    return out;
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
        bool gated = pat->group == POL_GROUP_GATED;
        if (pat->lead_wb && info->min_width == info->max_width && !(pat->det && pat->det->fast) &&
            !gated)
            pat->confirm = false;
        else
            pat->lead_wb = false;
        if (pat->det && pat->det->max_len && info->max_width > pat->det->max_len)
            pat->max_width = pat->det->max_len;
        /* a gated match lies within the window it was found in, so its
         * start is looked for no further back (number_gated) */
        if (gated && pat->max_width > 2 * POL_GATE_WINDOW + POL_ANCHOR_MAX)
            pat->max_width = 2 * POL_GATE_WINDOW + POL_ANCHOR_MAX;
        free(info); /* allocated with the default misc allocator (malloc) */
    }
    return 0;
}

/* compile_db's group for the user patterns (keywords and regexes) of all
 * groups. */
#define USER_PATTERNS POL_GROUPS

/* Compiles the patterns of a group (only: one pattern, or UINT_MAX for all
 * of the group) into *db: as they are scanned, or with SOM for the
 * patterns whose start is not end - width. lits, when not NULL, are added
 * with ids from d->lit_base on. */
static int compile_db(struct pol_direction *d, struct pat_build *b, int group, bool som,
                      unsigned only, const struct lit_set *lits, const char *dir_name,
                      struct policy_error *err, hs_database_t **db)
{
    unsigned n = 0, cap = b->n + (lits ? lits->n : 0);
    unsigned *flags = malloc(sizeof(unsigned) * cap);
    const char **exprs = malloc(sizeof(char *) * cap);
    unsigned *ids = malloc(sizeof(unsigned) * cap);
    char **escaped = lits ? calloc(lits->n ? lits->n : 1, sizeof(char *)) : NULL;
    int rc = -1;
    if (!flags || !exprs || !ids || (lits && !escaped)) {
        pol_error_set(err, "", dir_name, "out of memory");
        goto done;
    }
    for (unsigned i = 0; i < b->n; i++) {
        const struct pol_pat *pat = &d->pats[b->ids[i]];
        if ((group == USER_PATTERNS ? pat->det != NULL : pat->group != group) ||
            (only != UINT_MAX && b->ids[i] != only))
            continue;
        if (som && pat->min_width == pat->max_width && !pat->confirm)
            continue; /* the start is end - width */
        exprs[n] = som ? b->exprs[i] : b->fast[i];
        ids[n] = b->ids[i];
        flags[n] = b->flags[i] | (som ? HS_FLAG_SOM_LEFTMOST : 0);
        n++;
    }
    for (unsigned i = 0; lits && i < lits->n; i++) {
        if (!(escaped[i] = escape_literal(lits->exprs[i], lits->lens[i]))) {
            pol_error_set(err, "", dir_name, "out of memory");
            goto done;
        }
        exprs[n] = escaped[i];
        ids[n] = d->lit_base + i;
        flags[n++] = lits->flags[i];
    }
    if (n == 0) {
        rc = 0;
        goto done;
    }
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, db, &cerr) != HS_SUCCESS) {
        if (cerr && cerr->expression >= 0 && ids[cerr->expression] < d->npats) {
            /* a detector pattern names the leader of the rules sharing it,
             * the first rule of its type in the direction */
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
    for (unsigned i = 0; lits && escaped && i < lits->n; i++)
        free(escaped[i]);
    free(escaped);
    free(flags);
    free(exprs);
    free(ids);
    return rc;
}

/* Numbers the gated patterns and sizes their windows: a match lies within
 * POL_GATE_WINDOW bytes of an anchor; one that starts with its anchor
 * starts at most POL_ANCHOR_MAX before the anchor's end, one that ends with
 * it at most 16 bytes after. */
static int number_gated(struct pol_direction *d)
{
    for (unsigned i = 0; i < d->npats; i++)
        if (d->pats[i].group == POL_GROUP_GATED)
            d->ngated++;
    if (d->ngated && !(d->gated = calloc(d->ngated, sizeof(*d->gated))))
        return -1;
    unsigned g = 0;
    for (unsigned i = 0; i < d->npats; i++) {
        struct pol_pat *pat = &d->pats[i];
        if (pat->group != POL_GROUP_GATED)
            continue;
        enum pol_anchor_at at = pat->det->anchor_at;
        pat->gate = g;
        d->gated[g].pat = i;
        d->gated[g].back =
            at == POL_ANCHOR_LEADS ? POL_ANCHOR_MAX : POL_GATE_WINDOW + POL_ANCHOR_MAX;
        d->gated[g++].fwd = at == POL_ANCHOR_ENDS ? 16 : POL_GATE_WINDOW;
    }
    return 0;
}

/* Every group's scanning database (lits, when not NULL, go into the tokens
 * group's), one scanning database per gated pattern, and the SOM
 * databases: one per detector pattern, so that locating a start scans a
 * window with that pattern alone (measured: the outbound detectors' shared
 * SOM database took 6 ms per 16 MiB of prose, alone 3 ms), and one for the
 * user patterns, which can be thousands. */
static int compile_groups(struct pol_direction *d, struct pat_build *b, const struct lit_set *lits,
                          const char *dir_name, struct policy_error *err)
{
    for (unsigned i = 0; i < d->npats; i++) {
        struct pol_pat *pat = &d->pats[i];
        if (pat->group == POL_GROUP_GATED && compile_db(d, b, POL_GROUP_GATED, false, i, NULL,
                                                        dir_name, err, &d->gated[pat->gate].db))
            return -1;
        if (pat->det && compile_db(d, b, pat->group, true, i, NULL, dir_name, err, &pat->som_db))
            return -1;
    }
    for (int k = 0; k < POL_GROUPS; k++)
        if (k != POL_GROUP_GATED &&
            compile_db(d, b, k, false, UINT_MAX, k == POL_GROUP_TOKENS ? lits : NULL, dir_name, err,
                       &d->scan_db[k]))
            return -1;
    return compile_db(d, b, USER_PATTERNS, true, UINT_MAX, NULL, dir_name, err, &d->user_som_db);
}

/* Up to this many keywords are compiled into the tokens group's database
 * rather than a literal database of their own when there is one: one scan
 * fewer. Measured on prose (random keywords, with the anchors and the stride
 * literal): the secrets and invisible-character patterns cost nothing extra
 * next to 500 to 4,000 keywords (at 1,000: 9.7 ms per 16 MiB together,
 * 9.3 + 2.4 ms apart), while 10,000 keywords scanned in 76 ms as patterns
 * against 48 ms as literals. */
#define MERGE_KEYWORDS 4000

/* Links the rules of each detector type of a direction (pii, secrets,
 * prompt_injection) into a chain led by the first of them (pol_rule.leader,
 * next_shared), and returns the pii entities the leader's patterns must
 * cover: those of every pii rule. Only leaders get detector patterns, which
 * keeps compile time independent of how many rules of a type a policy has:
 * with a copy of the detectors per rule, 1, 2, 4 and 8 prompt_injection
 * rules took 0.95, 1.85, 3.21 and 6.60 s to compile and 20 (a 2.4 KB
 * policy) 15 to 20 s; now any number take ~1 s. */
static unsigned link_shared(struct pol_direction *d)
{
    int last[3] = {-1, -1, -1}; /* the last rule of each chain: pii, secrets, injection */
    unsigned entities = 0;
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        rule->leader = r;
        rule->next_shared = -1;
        if (rule->type != POL_PII && rule->type != POL_SECRETS && rule->type != POL_INJECTION)
            continue;
        int k = rule->type == POL_PII ? 0 : rule->type == POL_SECRETS ? 1 : 2;
        if (last[k] >= 0) {
            rule->leader = d->rules[last[k]].leader;
            d->rules[last[k]].next_shared = r;
        }
        last[k] = r;
        if (rule->type == POL_PII)
            entities |= rule->entities;
    }
    return entities;
}

int pol_direction_compile(struct pol_direction *d, const char *dir_name, struct policy_error *err)
{
    struct pat_build b = {0};
    struct lit_set lits = {0};
    unsigned cap = 0;
    int rc = -1;
    unsigned pii_entities = link_shared(d);
    for (int r = 0; r < d->nrules; r++) {
        struct pol_rule *rule = &d->rules[r];
        size_t n;
        const struct pol_detector *dets;
        if (rule->type == POL_INJECTION)
            d->injection_rules++;
        if (rule->leader != r)
            continue; /* matched through its leader's patterns */
        switch (rule->type) {
        case POL_KEYWORDS:
            for (size_t k = 0; k < rule->nkeywords; k++) {
                const char *kw = rule->keywords[k];
                size_t l = strlen(kw);
                if (rule->case_sensitive || pol_is_ascii(kw, l))
                    continue; /* a literal */
                char *e = escape_keyword(kw);
                int bad =
                    !e ||
                    add_pattern(d, &b, &cap, e, HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_CASELESS, r,
                                NULL, POL_GROUP_TOKENS, keyword_bounds(kw, l, rule->whole_word));
                free(e);
                if (bad)
                    goto oom;
            }
            break;
        case POL_REGEX:
            if (add_pattern(d, &b, &cap, rule->pattern,
                            HS_FLAG_UTF8 | (rule->case_sensitive ? 0 : HS_FLAG_CASELESS), r, NULL,
                            POL_GROUP_USER, 0))
                goto oom;
            break;
        case POL_PII:
            dets = pii_detectors(&n);
            if (add_detectors(d, &b, &cap, r, dets, n, pii_entities))
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
            break;
        case POL_LENGTH:
            break;
        }
    }
    if (number_gated(d) || collect_literals(d, &lits))
        goto oom;
    bool tokens = false;
    for (unsigned i = 0; i < d->npats && !tokens; i++)
        tokens = d->pats[i].group == POL_GROUP_TOKENS;
    bool merge = tokens && lits.n > 0 && lits.nkw <= MERGE_KEYWORDS;
    d->lit_base = merge ? d->npats : 0;
    if (b.n && (pattern_info(d, &b, dir_name, err) ||
                compile_groups(d, &b, merge ? &lits : NULL, dir_name, err)))
        goto done;
    rc = !merge && lits.n > 0 ? compile_lit_db(d, &lits, dir_name, err) : 0;
    goto done;
oom:
    pol_error_set(err, "", dir_name, "out of memory");
done:
    lit_set_free(&lits);
    build_free(&b);
    return rc;
}

void pol_direction_free(struct pol_direction *d)
{
    pol_rules_free(d->rules, d->nrules);
    hs_free_database(d->lit_db);
    for (int k = 0; k < POL_GROUPS; k++)
        hs_free_database(d->scan_db[k]);
    hs_free_database(d->user_som_db);
    for (unsigned g = 0; g < d->ngated; g++)
        hs_free_database(d->gated[g].db);
    for (unsigned i = 0; i < d->npats; i++)
        hs_free_database(d->pats[i].som_db);
    free(d->gated);
    free(d->lits);
    free(d->anchor_first);
    free(d->anchor_gated);
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
        hs_database_t *dbs[POL_GROUPS + 2] = {d->lit_db, d->user_som_db};
        for (int k = 0; k < POL_GROUPS; k++)
            dbs[2 + k] = d->scan_db[k];
        bool oom = false;
        for (int k = 0; k < POL_GROUPS + 2; k++)
            oom = oom || (dbs[k] && hs_alloc_scratch(dbs[k], &p->proto) != HS_SUCCESS);
        for (unsigned g = 0; g < d->ngated; g++)
            oom = oom || hs_alloc_scratch(d->gated[g].db, &p->proto) != HS_SUCCESS;
        for (unsigned k = 0; k < d->npats; k++)
            oom = oom || (d->pats[k].som_db &&
                          hs_alloc_scratch(d->pats[k].som_db, &p->proto) != HS_SUCCESS);
        if (oom) {
            pol_error_set(err, "", names[i], "out of memory");
            goto fail;
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
