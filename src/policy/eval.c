/* Evaluating a text against a direction: one scan per database without
 * start-of-match tracking, then the gated patterns in windows around the
 * anchors found, start offsets for the matches found (window re-scans with
 * the SOM databases), validation, prompt-injection scoring; pol_finish
 * (redact.c) turns the matches into the result. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy_internal.h"

#define START_UNKNOWN SIZE_MAX
/* A base64 run is decoded in pieces of B64_MAX characters, each starting
 * B64_OVERLAP before the end of the one before (both multiples of 4, so
 * every piece starts on a 4-character group of the run): a phrase that
 * straddles two pieces is whole in the second. */
#define B64_MAX 4096
#define B64_OVERLAP 256

/* Vectorscan 5.4.9 (the Debian package) on AVX-512 machines misses matches
 * that end within the last ~32 bytes of the buffer scanned (accelerator tail
 * bugs fixed upstream in vectorscan PRs #375/#378; measured here: an email
 * or SSN followed by fewer than 22 bytes was missed at about one offset in
 * seventy). Every scan therefore goes through scan_region, which never lets
 * a match that counts end within SCAN_PAD bytes of the end of the buffer
 * Vectorscan sees: a region followed by at least SCAN_PAD bytes of text is
 * scanned with them (matches ending there are dropped); one that reaches
 * the end of the text is scanned from a copy followed by SCAN_PAD zero
 * bytes. The copy is of the whole region: a copy of its last 8 KB alone
 * missed every match longer than that ending near the end of the text (a
 * 12 KB private key at the end of a message went through unredacted). */
#define SCAN_PAD 64
#define SCAN_DANGER 128 /* the end-of-data pass ("$") looks this far back */

struct window {
    unsigned g; /* gate windows: index into gated; start windows: the pattern, or UINT_MAX */
    size_t ws, we;
};

struct hit {
    unsigned id; /* index into lits (lit) or pats */
    bool lit;
    size_t start, end;
};

/* Vectorscan scratch per policy: hs_alloc_scratch costs far more than a
 * 2 KB scan even when the scratch already fits, so it is not called per
 * evaluation. Instead each thread keeps clones of the prototypes of the
 * policies it used last, holding a reference so that a policy (and the
 * databases its scratch was sized for) cannot be freed and its address
 * reused behind the cache's back. */
#define SCRATCH_CACHE 4

struct scratch_slot {
    struct policy *p;
    hs_scratch_t *hs;
    unsigned long used;
};

struct policy_scratch {
    struct scratch_slot slots[SCRATCH_CACHE];
    unsigned long tick;
    hs_scratch_t *hs; /* the slot's scratch of the current evaluation */
    struct hit *hits;
    size_t nhits, hcap;
    size_t *pending;    /* indices of hits that need a start, sorted by (end, id) */
    struct window *win; /* gate windows, in the order the anchors were found */
    size_t nwin, wcap;
    struct window *wsorted; /* the same, grouped by gated pattern */
    size_t wscap;
    unsigned *wfirst; /* ngated + 1 offsets into wsorted */
    size_t wfcap;
    unsigned char *gmark; /* decoded payloads: gated patterns whose anchors occur */
    size_t gmcap;
    size_t npending, pcap;
    size_t pending_used; /* npending of the last resolve_starts */
    struct pol_match *m;
    size_t nm, mcap;
    double *scores;
    size_t scap;
    unsigned *counts; /* injection detector counts of one rule */
    size_t ccap;
    char *pad; /* padded copy of a region that ends near the end of the text */
    size_t padcap;
    /* The whole text followed by SCAN_PAD zero bytes, made once per
     * evaluation for the regions that end where the text does (every
     * database's whole-text scan among them). */
    char *whole;
    size_t wholecap;
    bool whole_made;
    size_t peak; /* policy_scratch_peak_bytes */
    char b64[B64_MAX + SCAN_PAD];
};

struct policy_scratch *policy_scratch_new(void)
{
    return calloc(1, sizeof(struct policy_scratch));
}

void policy_scratch_free(struct policy_scratch *s)
{
    if (!s)
        return;
    for (int i = 0; i < SCRATCH_CACHE; i++) {
        hs_free_scratch(s->slots[i].hs);
        policy_release(s->slots[i].p);
    }
    free(s->hits);
    free(s->pending);
    free(s->win);
    free(s->wsorted);
    free(s->wfirst);
    free(s->gmark);
    free(s->pad);
    free(s->whole);
    free(s->m);
    free(s->scores);
    free(s->counts);
    free(s);
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

struct scan_ctx {
    struct policy_scratch *s;
    const struct pol_direction *d;
    const char *text;
    size_t len;
    size_t base; /* offset in text of the buffer being scanned */
    /* matches outside [min_end, max_end] belong to another pass of
     * scan_region (or end in its padding) */
    size_t min_end, max_end;
    bool dedupe; /* the end-of-data pass may repeat hits of the padded pass */
    int rule;    /* decoded-payload scans: the leader of the injection rule counted */
    bool oom;
};

#define OUTSIDE(c, end) ((end) < (c)->min_end || (end) > (c)->max_end)

static bool word_edge_ok(const char *text, size_t len, size_t start, size_t end,
                         unsigned char bounds)
{
    uint32_t cp;
    if ((bounds & 1) && start > 0 && pol_is_word_cp(pol_utf8_prev(text, start)))
        return false;
    if ((bounds & 2) && end < len) {
        pol_utf8_decode(text, len, end, &cp);
        if (pol_is_word_cp(cp))
            return false;
    }
    return true;
}

static int push_hit(struct scan_ctx *c, unsigned id, bool lit, size_t start, size_t end)
{
    struct policy_scratch *s = c->s;
    if (c->dedupe)
        for (size_t i = s->nhits; i-- > 0 && s->hits[i].end >= c->min_end;)
            if (s->hits[i].end == end && s->hits[i].id == id && s->hits[i].lit == lit)
                return 0;
    if (reserve((void **)&s->hits, &s->hcap, s->nhits + 1, sizeof(struct hit))) {
        c->oom = true;
        return 1; /* stops the scan */
    }
    s->hits[s->nhits++] = (struct hit){.id = id, .lit = lit, .start = start, .end = end};
    return 0;
}

/* An anchor word of gated patterns ends at end: a window around it for
 * each pattern it may belong to. */
static int on_anchor(struct scan_ctx *c, unsigned a, size_t end)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    unsigned first = d->anchor_first[a], last = d->anchor_first[a + 1];
    if (reserve((void **)&s->win, &s->wcap, s->nwin + (last - first), sizeof(struct window))) {
        c->oom = true;
        return 1;
    }
    for (unsigned k = first; k < last; k++) {
        const struct pol_gated *g = &d->gated[d->anchor_gated[k]];
        s->win[s->nwin++] = (struct window){
            .g = d->anchor_gated[k],
            .ws = end > g->back ? end - g->back : 0,
            .we = end + g->fwd < c->len ? end + g->fwd : c->len,
        };
    }
    return 0;
}

/* How far back among the hits ending where a keyword does lit_hit looks
 * for one of the same rule. */
#define LIT_SAME_END_LOOKBACK 8

/* A match of literal id (see pol_direction) ending at end. A keyword that
 * ends where another of its rule does is kept as one hit, the longer: the
 * shorter lies inside it, and a rule's overlapping spans are merged anyway
 * (redact.c). Nested keywords ("a", "aa", … 64 of them) over a run of one
 * letter made a hit per keyword and byte: 1 MiB of text took 4.8 GB. */
static int lit_hit(struct scan_ctx *c, unsigned id, size_t end)
{
    const struct pol_direction *d = c->d;
    if (id >= d->nlits) /* an anchor, or the stride literal (compile.c) */
        return id - d->nlits < d->nanchors ? on_anchor(c, id - d->nlits, end) : 0;
    const struct pol_lit *l = &d->lits[id];
    size_t start = end - l->len;
    if (l->word_bounds && !word_edge_ok(c->text, c->len, start, end, l->word_bounds))
        return 0;
    struct policy_scratch *s = c->s;
    for (size_t i = s->nhits, k = 0; i-- > 0 && k < LIT_SAME_END_LOOKBACK; k++) {
        struct hit *h = &s->hits[i];
        if (h->end != end)
            break;
        if (h->lit && d->lits[h->id].rule == l->rule) {
            if (start < h->start) {
                h->start = start;
                h->id = id;
            }
            return 0;
        }
    }
    return push_hit(c, id, true, start, end);
}

static int on_lit(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
    struct scan_ctx *c = ctx;
    size_t end = c->base + (size_t)to;
    return OUTSIDE(c, end) ? 0 : lit_hit(c, id, end);
}

static int on_re(unsigned int id, unsigned long long from, unsigned long long to,
                 unsigned int flags, void *ctx)
{
    struct scan_ctx *c = ctx;
    size_t end = c->base + (size_t)to;
    if (OUTSIDE(c, end))
        return 0;
    if (id >= c->d->npats) /* a literal compiled into the tokens group */
        return lit_hit(c, id - c->d->lit_base, end);
    const struct pol_pat *p = &c->d->pats[id];
    /* A maximal-munch guard: a match whose next byte would extend it is not
     * an end (Vectorscan has no lookahead), which keeps one hit per token. */
    if (p->det && p->det->guard != GUARD_NONE && end < c->len &&
        pol_guard_has(p->det->guard, (unsigned char)c->text[end]))
        return 0;
    size_t start = START_UNKNOWN;
    if (p->min_width == p->max_width && !p->confirm) {
        start = end - p->min_width;
        /* the \b that was left out; Vectorscan's \b outside UCP mode is ASCII */
        if (p->lead_wb && start > 0 && pol_guard_has(GUARD_WORD, (unsigned char)c->text[start - 1]))
            return 0;
    }
    return push_hit(c, id, false, start, end);
}

/* Scans db over text[rs, re) (see SCAN_PAD): with the SCAN_PAD bytes that
 * follow when there are that many; otherwise from a padded copy and, with
 * eod (the group has patterns that can match only at the end of data,
 * "$"), once more as it is, for matches ending near its end. */
static int scan_region(struct scan_ctx *c, const hs_database_t *db, size_t rs, size_t re,
                       match_event_handler cb, bool eod)
{
    struct policy_scratch *s = c->s;
    int rc = 0;
    c->min_end = rs;
    c->base = rs;
    c->max_end = re;
    if (re + SCAN_PAD <= c->len) {
        if (hs_scan(db, c->text + rs, (unsigned)(re + SCAN_PAD - rs), 0, s->hs, cb, c) !=
            HS_SUCCESS)
            rc = -1;
        goto done;
    }
    size_t n = re - rs;
    const char *buf = NULL;
    if (re == c->len) {
        if (!s->whole_made && !reserve((void **)&s->whole, &s->wholecap, c->len + SCAN_PAD, 1)) {
            memcpy(s->whole, c->text, c->len);
            memset(s->whole + c->len, 0, SCAN_PAD);
            s->whole_made = true;
        }
        buf = s->whole_made ? s->whole + rs : NULL;
    } else if (!reserve((void **)&s->pad, &s->padcap, n + SCAN_PAD, 1)) {
        memcpy(s->pad, c->text + rs, n);
        memset(s->pad + n, 0, SCAN_PAD);
        buf = s->pad;
    }
    if (!buf || hs_scan(db, buf, (unsigned)(n + SCAN_PAD), 0, s->hs, cb, c) != HS_SUCCESS)
        rc = -1;
    if (!rc && re == c->len && eod) {
        /* "$" matches end at the end of the data, which the padding hid:
         * once more as it is, keeping only ends near it, not found above */
        c->min_end = re > rs + SCAN_DANGER ? re - SCAN_DANGER : rs;
        c->dedupe = true;
        if (hs_scan(db, c->text + rs, (unsigned)n, 0, s->hs, cb, c) != HS_SUCCESS)
            rc = -1;
        c->dedupe = false;
    }
done:
    c->base = 0;
    c->min_end = 0;
    c->max_end = c->len;
    return rc || c->oom ? -1 : 0;
}

/* Scans each gated pattern in the windows around its anchors, merged where
 * they overlap. The windows arrive in the order of the anchors' ends, and
 * so sorted by start within each pattern; a counting sort groups them by
 * pattern without disturbing that order. */
static int scan_gated(struct scan_ctx *c)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    if (s->nwin == 0)
        return 0;
    if (reserve((void **)&s->wsorted, &s->wscap, s->nwin, sizeof(struct window)) ||
        reserve((void **)&s->wfirst, &s->wfcap, (size_t)d->ngated + 1, sizeof(unsigned)))
        return -1;
    unsigned *next = s->wfirst; /* next[g]: where the next window of g goes */
    memset(next, 0, ((size_t)d->ngated + 1) * sizeof(unsigned));
    for (size_t i = 0; i < s->nwin; i++)
        next[s->win[i].g + 1]++;
    for (unsigned g = 0; g < d->ngated; g++)
        next[g + 1] += next[g];
    for (size_t i = 0; i < s->nwin; i++)
        s->wsorted[next[s->win[i].g]++] = s->win[i];
    /* next[g] is now the end of g's windows */
    size_t i = 0;
    for (unsigned g = 0; g < d->ngated; g++) {
        while (i < next[g]) {
            size_t ws = s->wsorted[i].ws, we = s->wsorted[i].we;
            for (i++; i < next[g] && s->wsorted[i].ws <= we; i++)
                if (s->wsorted[i].we > we)
                    we = s->wsorted[i].we;
            if (scan_region(c, d->gated[g].db, ws, we, on_re, false))
                return -1;
        }
    }
    return 0;
}

static int pending_cmp_key(const struct hit *h, size_t end, unsigned id)
{
    if (h->end != end)
        return h->end < end ? -1 : 1;
    return (h->id > id) - (h->id < id);
}

static int on_som(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
    struct scan_ctx *c = ctx;
    struct policy_scratch *s = c->s;
    size_t end = c->base + (size_t)to, start = c->base + (size_t)from;
    if (OUTSIDE(c, end))
        return 0;
    /* A detector's span is looked for at most max_width back (max_len):
     * where windows merged, the leftmost start can lie further back, and
     * taking it made an email of a long dotted run span the whole text and
     * its check rescan all of it at every label (quadratic). The start is
     * put where a window of its own would have begun it, on a character
     * boundary. */
    unsigned maxw = id < c->d->npats ? c->d->pats[id].max_width : UINT_MAX;
    if (maxw != UINT_MAX && end - start > maxw) {
        start = end - maxw;
        while (start < end && ((unsigned char)c->text[start] & 0xC0) == 0x80)
            start++;
    }
    size_t lo = 0, hi = s->npending;
    while (lo < hi) { /* first pending hit with key >= (end, id) */
        size_t mid = (lo + hi) / 2;
        if (pending_cmp_key(&s->hits[s->pending[mid]], end, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->npending) {
        struct hit *h = &s->hits[s->pending[lo]];
        if (h->end == end && h->id == id && (h->start == START_UNKNOWN || start < h->start))
            h->start = start;
    }
    return 0;
}

/* qsort has no context argument (qsort_r is not C11), so the hits that need
 * a start are sorted as self-contained (end, id, index) keys. */
struct pend_key {
    size_t end;
    unsigned id;
    size_t idx;
};

static int pend_cmp(const void *a, const void *b)
{
    const struct pend_key *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int window_cmp(const void *a, const void *b)
{
    const struct window *x = a, *y = b;
    if (x->g != y->g)
        return x->g < y->g ? -1 : 1;
    return (x->ws > y->ws) - (x->ws < y->ws);
}

/* Finds the leftmost start of every hit that lacks one by re-scanning, with
 * the pattern's SOM database (user patterns: user_som_db), a window reaching
 * max_width (+ context) before its end. A match of at most max_width bytes
 * cannot begin at the window's artificial start, so the starts found are
 * those of a whole-text scan. */
static int resolve_starts(struct scan_ctx *c)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    size_t n = 0;
    for (size_t i = 0; i < s->nhits; i++)
        if (s->hits[i].start == START_UNKNOWN)
            n++;
    if (n == 0)
        return 0;
    struct pend_key *keys = malloc(n * sizeof(*keys));
    struct window *w = malloc(n * sizeof(*w));
    if (!keys || reserve((void **)&s->pending, &s->pcap, n, sizeof(size_t)) || !w) {
        free(keys);
        free(w);
        return -1;
    }
    n = 0;
    for (size_t i = 0; i < s->nhits; i++) {
        const struct hit *h = &s->hits[i];
        if (h->start != START_UNKNOWN)
            continue;
        const struct pol_pat *pat = &d->pats[h->id];
        unsigned maxw = pat->max_width;
        keys[n] = (struct pend_key){.end = h->end, .id = h->id, .idx = i};
        w[n].g = pat->det ? h->id : UINT_MAX;
        size_t back = maxw == UINT_MAX ? SIZE_MAX : (size_t)maxw + 8;
        w[n].ws = h->end > back ? h->end - back : 0;
        w[n].we = h->end + 16 < c->len ? h->end + 16 : c->len;
        n++;
    }
    qsort(keys, n, sizeof(*keys), pend_cmp);
    for (size_t i = 0; i < n; i++)
        s->pending[i] = keys[i].idx;
    s->npending = s->pending_used = n;
    free(keys);
    qsort(w, n, sizeof(*w), window_cmp);
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        unsigned g = w[i].g;
        size_t ws = w[i].ws, we = w[i].we;
        for (i++; i < n && w[i].g == g && w[i].ws <= we; i++)
            if (w[i].we > we)
                we = w[i].we;
        const hs_database_t *db = g == UINT_MAX ? d->user_som_db : d->pats[g].som_db;
        if (!db || scan_region(c, db, ws, we, on_som, g == UINT_MAX && d->eod)) {
            rc = -1;
            break;
        }
    }
    s->npending = 0;
    free(w);
    return rc;
}

static int push_match(struct policy_scratch *s, int rule, size_t start, size_t end,
                      const struct pol_detector *det)
{
    if (reserve((void **)&s->m, &s->mcap, s->nm + 1, sizeof(struct pol_match)))
        return -1;
    s->m[s->nm++] = (struct pol_match){.rule = rule, .start = start, .end = end, .det = det};
    return 0;
}

/* The database with the anchors over a decoded payload: marks the gated
 * patterns of the rule scored (its leader's) whose anchors occur. */
static int on_decoded_anchor(unsigned int id, unsigned long long from, unsigned long long to,
                             unsigned int flags, void *ctx)
{
    struct scan_ctx *c = ctx;
    const struct pol_direction *d = c->d;
    if ((size_t)to > c->max_end || id < d->lit_base + d->nlits ||
        id - d->lit_base - d->nlits >= d->nanchors)
        return 0;
    unsigned a = id - d->lit_base - d->nlits;
    for (unsigned k = d->anchor_first[a]; k < d->anchor_first[a + 1]; k++) {
        unsigned g = d->anchor_gated[k];
        if (d->pats[d->gated[g].pat].rule == c->rule)
            c->s->gmark[g] = 1;
    }
    return 0;
}

static int on_decoded(unsigned int id, unsigned long long from, unsigned long long to,
                      unsigned int flags, void *ctx)
{
    struct scan_ctx *c = ctx;
    const struct pol_pat *p = &c->d->pats[id];
    if ((size_t)to > c->max_end || p->rule != c->rule || !p->det || p->det->signal != SIG_PHRASE)
        return 0;
    size_t ndet;
    const struct pol_detector *base = injection_detectors(&ndet);
    c->s->counts[p->det - base]++;
    return 0;
}

/* Counts the phrases of leader's patterns in the decoded payload
 * s->b64[0, dl) the way they are found in the text: the anchors first, then
 * each pattern they may belong to, here over the whole payload. Returns how
 * many were found, or -1. */
static long decoded_phrases(struct scan_ctx *c, int leader, size_t dl)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    const hs_database_t *anchors = d->lit_db ? d->lit_db : d->scan_db[POL_GROUP_TOKENS];
    if (!anchors || d->ngated == 0)
        return 0;
    if (reserve((void **)&s->gmark, &s->gmcap, d->ngated, 1))
        return -1;
    memset(s->gmark, 0, d->ngated);
    memset(s->b64 + dl, 0, SCAN_PAD); /* see SCAN_PAD */
    c->rule = leader;
    c->max_end = dl;
    unsigned long before = 0, after = 0;
    size_t ndet;
    injection_detectors(&ndet);
    for (size_t k = 0; k < ndet; k++)
        before += s->counts[k];
    int rc = hs_scan(anchors, s->b64, (unsigned)(dl + SCAN_PAD), 0, s->hs, on_decoded_anchor, c);
    for (unsigned g = 0; rc == HS_SUCCESS && g < d->ngated; g++)
        if (s->gmark[g])
            rc =
                hs_scan(d->gated[g].db, s->b64, (unsigned)(dl + SCAN_PAD), 0, s->hs, on_decoded, c);
    c->max_end = c->len;
    if (rc != HS_SUCCESS)
        return -1;
    for (size_t k = 0; k < ndet; k++)
        after += s->counts[k];
    return (long)(after - before);
}

/* Scores a prompt_injection rule from the hits of its leader's patterns
 * (shared by every prompt_injection rule of the direction); base64 spans
 * count only when what they decode to contains an injection phrase. The
 * matches and the threshold are the rule's own. */
static int score_injection(struct scan_ctx *c, int rule, double *score)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    int leader = d->rules[rule].leader;
    size_t ndet;
    const struct pol_detector *base = injection_detectors(&ndet);
    if (reserve((void **)&s->counts, &s->ccap, ndet, sizeof(unsigned)))
        return -1;
    memset(s->counts, 0, ndet * sizeof(unsigned));
    size_t first_match = s->nm;
    for (size_t i = 0; i < s->nhits; i++) {
        const struct hit *h = &s->hits[i];
        if (h->lit || d->pats[h->id].rule != leader || h->start == START_UNKNOWN)
            continue;
        const struct pol_detector *det = d->pats[h->id].det;
        size_t st = h->start, en = h->end;
        if (det->validate && !det->validate(c->text, c->len, &st, &en))
            continue;
        if (det->signal == SIG_BASE64) {
            long found = 0;
            for (size_t ps = st; found == 0;) {
                size_t pe = en - ps > B64_MAX ? ps + B64_MAX : en;
                long dl = injection_b64_decode(c->text + ps, pe - ps, s->b64, B64_MAX);
                found = dl > 0 ? decoded_phrases(c, leader, (size_t)dl) : 0;
                if (found < 0)
                    return -1;
                if (pe == en)
                    break;
                ps = pe - B64_OVERLAP;
            }
            if (found == 0)
                continue;
        }
        s->counts[det - base]++;
        if (push_match(s, rule, st, en, det))
            return -1;
    }
    *score = injection_score(s->counts, ndet);
    if (*score <= 0.0 || *score < d->rules[rule].threshold)
        s->nm = first_match; /* below threshold: not triggered */
    return 0;
}

/* Does rule take the hits of det (a pii rule only those of its entities)? */
static bool rule_takes(const struct pol_rule *rule, const struct pol_detector *det)
{
    return !det || !det->entity_bit || (rule->entities & det->entity_bit);
}

static int collect_matches(struct scan_ctx *c)
{
    struct policy_scratch *s = c->s;
    const struct pol_direction *d = c->d;
    for (size_t i = 0; i < s->nhits; i++) {
        const struct hit *h = &s->hits[i];
        if (h->lit) {
            if (push_match(s, d->lits[h->id].rule, h->start, h->end, NULL))
                return -1;
            continue;
        }
        const struct pol_pat *p = &d->pats[h->id];
        if (h->start == START_UNKNOWN || d->rules[p->rule].type == POL_INJECTION)
            continue;
        size_t st = h->start, en = h->end;
        if (p->det && p->det->validate && !p->det->validate(c->text, c->len, &st, &en))
            continue;
        if (p->word_bounds && !word_edge_ok(c->text, c->len, st, en, p->word_bounds))
            continue;
        /* p->rule leads the rules that share its patterns (compile.c) */
        for (int r = p->rule; r >= 0; r = d->rules[r].next_shared)
            if (rule_takes(&d->rules[r], p->det) && push_match(s, r, st, en, p->det))
                return -1;
    }
    for (int r = 0; r < d->nrules; r++) {
        const struct pol_rule *rule = &d->rules[r];
        s->scores[r] = -1.0;
        if (rule->type == POL_INJECTION) {
            if (score_injection(c, r, &s->scores[r]))
                return -1;
        } else if (rule->type == POL_LENGTH && c->len > (size_t)rule->max_chars) {
            /* cheap test first: a text of n bytes has at most n code points */
            size_t cps = pol_utf8_count(c->text, c->len);
            if (cps > (size_t)rule->max_chars &&
                push_match(s, r, pol_utf8_cp_to_byte(c->text, c->len, (size_t)rule->max_chars),
                           c->len, NULL))
                return -1;
        }
    }
    return 0;
}

static int ensure_scratch(struct policy_scratch *s, const struct policy *p)
{
    struct scratch_slot *slot = NULL;
    s->tick++;
    for (int i = 0; i < SCRATCH_CACHE; i++)
        if (s->slots[i].p == p)
            slot = &s->slots[i];
    if (!slot) {
        slot = &s->slots[0];
        for (int i = 1; i < SCRATCH_CACHE; i++)
            if (s->slots[i].used < slot->used)
                slot = &s->slots[i];
        hs_free_scratch(slot->hs);
        policy_release(slot->p);
        slot->hs = NULL;
        slot->p = NULL;
        if (p->proto && hs_clone_scratch(p->proto, &slot->hs) != HS_SUCCESS)
            return -1;
        /* the policy is immutable; the reference count is its only
         * mutable part and is atomic */
        slot->p = (struct policy *)p;
        policy_retain(slot->p);
    }
    slot->used = s->tick;
    s->hs = slot->hs;
    return 0;
}

/* A working array over this many bytes that an evaluation used less than
 * a quarter of is given back after it: a worker's scratch lives as long as
 * the worker, and one large text would otherwise keep its peak for good
 * (gigabytes, for some), while texts of one size in a row keep theirs. */
#define SCRATCH_KEEP_BYTES (4u << 20)

static void shrink(void **p, size_t *cap, size_t used, size_t elem)
{
    if (*cap * elem > SCRATCH_KEEP_BYTES && used < *cap / 4) {
        free(*p);
        *p = NULL;
        *cap = 0;
    }
}

static void scratch_shrink(struct policy_scratch *s, size_t len)
{
    s->peak = policy_scratch_bytes(s);
    shrink((void **)&s->hits, &s->hcap, s->nhits, sizeof(*s->hits));
    shrink((void **)&s->pending, &s->pcap, s->pending_used, sizeof(*s->pending));
    shrink((void **)&s->win, &s->wcap, s->nwin, sizeof(*s->win));
    shrink((void **)&s->wsorted, &s->wscap, s->nwin, sizeof(*s->wsorted));
    shrink((void **)&s->pad, &s->padcap, 0, 1);
    shrink((void **)&s->whole, &s->wholecap, s->whole_made ? len + SCAN_PAD : 0, 1);
    shrink((void **)&s->m, &s->mcap, s->nm, sizeof(*s->m));
}

size_t policy_scratch_peak_bytes(const struct policy_scratch *s)
{
    return s->peak;
}

size_t policy_scratch_bytes(const struct policy_scratch *s)
{
    return s->hcap * sizeof(*s->hits) + s->pcap * sizeof(*s->pending) + s->wcap * sizeof(*s->win) +
           s->wscap * sizeof(*s->wsorted) + s->wfcap * sizeof(*s->wfirst) + s->gmcap + s->padcap +
           s->wholecap + s->mcap * sizeof(*s->m) + s->scap * sizeof(*s->scores) +
           s->ccap * sizeof(*s->counts);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int policy_eval(const struct policy *p, struct policy_scratch *s, enum policy_direction dir,
                const char *text, size_t len, struct policy_result *out)
{
    double t0 = now_ms();
    memset(out, 0, sizeof(*out));
    if (!p || !s || (!text && len) || len > UINT_MAX)
        return -1;
    if (!text)
        text = "";
    const struct pol_direction *d = pol_dir_get(p, dir);
    struct scan_ctx c = {.s = s, .d = d, .text = text, .len = len, .max_end = len, .rule = -1};
    s->nhits = s->nm = s->nwin = s->pending_used = 0;
    s->whole_made = false;
    if (ensure_scratch(s, p) ||
        reserve((void **)&s->scores, &s->scap, (size_t)d->nrules + 1, sizeof(double)))
        goto fail;
    if (d->lit_db && scan_region(&c, d->lit_db, 0, len, on_lit, false))
        goto fail;
    for (int k = 0; k < POL_GROUPS; k++)
        if (d->scan_db[k] &&
            scan_region(&c, d->scan_db[k], 0, len, on_re, k == POL_GROUP_USER && d->eod))
            goto fail;
    if (scan_gated(&c))
        goto fail;
    if (c.oom || resolve_starts(&c) || collect_matches(&c))
        goto fail;
    if (pol_finish(d, text, len, s->m, s->nm, s->scores, out))
        goto fail;
    scratch_shrink(s, len);
    out->latency_ms = now_ms() - t0;
    return 0;
fail:
    scratch_shrink(s, len);
    policy_result_clear(out);
    return -1;
}
