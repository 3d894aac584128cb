/* Internals shared by the files of the policy module; nothing outside
 * src/policy/ includes this.
 *
 * How a direction is matched: every rule of the direction contributes
 * patterns to Vectorscan databases that are scanned once each over the whole
 * text, without start-of-match tracking (it costs 3-11x in scan speed):
 *   scan_db[] the patterns, split into groups (enum pol_group) that are
 *             compiled and scanned apart, because mixing them makes
 *             Vectorscan build slower automata;
 *   literals  keywords, and the anchor words of the gated detectors (below);
 *             a literal's start is end - length, so it never needs SOM. Up
 *             to MERGE_KEYWORDS keywords (compile.c) they go into the tokens
 *             group's database, one scan fewer; beyond that into lit_db,
 *             compiled with hs_compile_lit_multi (fast to build even for
 *             tens of thousands of terms).
 * Gated detectors (the prompt-injection phrases) are not scanned over the
 * whole text: each is compiled alone and scanned only in windows around its
 * anchor words.
 * Only the few matches that are reported get a start offset: fixed-width
 * patterns compute it, the others are re-scanned over a small window with
 * the same pattern compiled with HS_FLAG_SOM_LEFTMOST (alone for a detector;
 * all user patterns together in user_som_db). */
#ifndef COLLIE_POLICY_INTERNAL_H
#define COLLIE_POLICY_INTERNAL_H

#include <hs.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"

#define POL_MAX_RULES 1000           /* per direction */
#define POL_MAX_KEYWORDS 100000      /* per direction, all keyword rules together */
#define POL_MAX_KEYWORD_BYTES 1024   /* one keyword */
#define POL_MAX_PATTERN_BYTES 8192   /* one user regex */
#define POL_MAX_REPORTED_MATCHES 100 /* per rule in rules_triggered; all are redacted */
#define POL_ID_MAX 64
#define POL_GATE_WINDOW 128 /* bytes scanned on each side of an anchor */
#define POL_ANCHOR_MAX 32   /* anchors are shorter than this */

/* The databases a direction's patterns are split into. Measured on 16 MiB
 * of prose: detectors that Vectorscan runs as character-class automata
 * (digit runs, base64 runs) made one database of all detectors more than
 * twice as slow as the same patterns in these groups (20 ms against 9 ms),
 * so each group is compiled and scanned on its own. User regexes get a
 * group of their own so that none can slow the detectors down. */
enum pol_group {
    /* led by literals or rare bytes: secrets, emails, invisible characters,
     * keywords that need Unicode case folding, and (compile.c,
     * MERGE_KEYWORDS) the literals */
    POL_GROUP_TOKENS,
    POL_GROUP_DIGITS, /* digit runs: cards, SSNs, phone numbers, IPv4 */
    POL_GROUP_IBAN,
    POL_GROUP_B64,
    POL_GROUP_USER,  /* regexes */
    POL_GROUP_GATED, /* scanned in windows (pol_detector.anchors), one database each */
    POL_GROUPS,
};

enum pol_rule_type { POL_KEYWORDS, POL_REGEX, POL_PII, POL_SECRETS, POL_INJECTION, POL_LENGTH };

/* PII entities, as bits of pol_rule.entities. Order matches pii_entity_names. */
enum {
    PII_EMAIL = 1u << 0,
    PII_PHONE = 1u << 1,
    PII_CREDIT_CARD = 1u << 2,
    PII_IBAN = 1u << 3,
    PII_US_SSN = 1u << 4,
    PII_IP_ADDRESS = 1u << 5,
    PII_ALL = (1u << 6) - 1,
};
#define PII_ENTITY_COUNT 6
extern const char *const pii_entity_names[PII_ENTITY_COUNT];

struct pol_rule {
    char id[POL_ID_MAX + 1];
    enum pol_rule_type type;
    enum policy_decision action; /* FLAG, REDACT or BLOCK */
    /* keywords */
    char **keywords;
    size_t nkeywords;
    bool case_sensitive;
    bool whole_word;
    /* regex */
    char *pattern;
    /* pii */
    unsigned entities;
    /* prompt_injection */
    double threshold;
    /* length */
    long long max_chars;
    /* Set by pol_direction_compile. The rules of one detector type (pii,
     * secrets, prompt_injection) share the detector patterns of the first of
     * them in the direction, their leader (the pii leader's cover the union
     * of their entities): a pattern's rule (pol_pat.rule) is the leader, and
     * its hits belong to every rule of the chain leader, next_shared, ...
     * (-1 ends it). Any other rule is its own leader, with no next. */
    int leader;
    int next_shared;
};

/* What a span that survived validation should be re-examined for. */
enum pol_guard {
    GUARD_NONE,
    GUARD_WORD,     /* [A-Za-z0-9_] */
    GUARD_DIGIT,    /* [0-9] */
    GUARD_B64,      /* [A-Za-z0-9+/=] */
    GUARD_B64CORE,  /* [A-Za-z0-9+/] */
    GUARD_B64URL,   /* [A-Za-z0-9_-] */
    GUARD_TOKEN,    /* [A-Za-z0-9_-] plus '.' (dotted tokens) */
    GUARD_IPV6,     /* [0-9A-Fa-f:] */
    GUARD_PEM,      /* base64 and whitespace */
    GUARD_NONSPACE, /* anything but whitespace and quotes/separators */
};

/* Where a gated detector's anchors sit in its matches (see
 * pol_direction_compile for the windows this gives). */
enum pol_anchor_at {
    POL_ANCHOR_INSIDE, /* anywhere */
    POL_ANCHOR_LEADS,  /* every match starts with one of them */
    POL_ANCHOR_ENDS,   /* every match ends with one, or up to 16 bytes after */
};

/* Injection signal kinds that the score treats specially. */
enum pol_signal { SIG_PHRASE, SIG_ZERO_WIDTH, SIG_TAGS, SIG_BIDI, SIG_BASE64 };

/* A validator may narrow [*start, *end) (byte offsets into text) and returns
 * true to keep the match. */
typedef bool (*pol_validate_fn)(const char *text, size_t len, size_t *start, size_t *end);

/* One built-in detector pattern (static const tables in pii.c, secrets.c,
 * injection.c). */
struct pol_detector {
    const char *entity; /* reported in matches, lower case: "credit_card" */
    const char *label;  /* redaction label: "CREDIT_CARD" */
    const char *expr;
    /* Optional: what re_db scans for instead of expr, a pattern whose match
     * ends include all of expr's (e.g. the email pattern from its '@' on).
     * Measured: a leading class such as [A-Za-z0-9._%+-]+ makes Vectorscan
     * run the whole database 20x slower on prose. Such hits are confirmed
     * by the SOM database, which compiles expr. */
    const char *fast;
    /* Optional, prompt-injection phrases: words of which every match
     * contains at least one ("ignore,disregard,forget"), matched without
     * case. Such a detector is in no scan_db: it is compiled alone and
     * scanned only in windows around where lit_db found one of these words,
     * because the phrases, full of common words, scan prose at about
     * 0.3 GB/s as one database. */
    const char *anchors;
    enum pol_anchor_at anchor_at;
    enum pol_group group; /* its scan_db when not gated */
    unsigned flags;       /* HS_FLAG_* */
    unsigned entity_bit;  /* PII_* for pii detectors, 0 otherwise */
    enum pol_guard guard; /* an end followed by this class is not a match end */
    pol_validate_fn validate;
    /* Longest span worth locating, for patterns written unbounded (bounded
     * repeats make SOM databases "too large"): the start of a longer match
     * is searched for only this far back from its end. */
    unsigned max_len;
    double weight; /* prompt injection only */
    enum pol_signal signal;
};

const struct pol_detector *pii_detectors(size_t *n);
const struct pol_detector *secrets_detectors(size_t *n);
const struct pol_detector *injection_detectors(size_t *n);

/* A pattern of scan_db[group], or of its own database when gated. */
struct pol_pat {
    int rule;                       /* index into the direction's rules; a detector's: the leader */
    const struct pol_detector *det; /* NULL for regex rules and keywords */
    unsigned min_width, max_width;  /* bytes; max_width UINT_MAX = unbounded */
    unsigned char word_bounds;      /* keywords: bit 0 start, bit 1 end must be a word edge */
    unsigned char group;            /* enum pol_group */
    bool lead_wb;                   /* scanned without its leading \\b (see compile.c) */
    bool confirm;  /* scanned as a superset (det->fast): always confirmed by the SOM scan */
    unsigned gate; /* POL_GROUP_GATED: index into pol_direction.gated */
    /* A detector's SOM database; NULL for a user pattern (user_som_db) and
     * when the start is end - width. */
    hs_database_t *som_db;
};

/* A keyword compiled as a literal. */
struct pol_lit {
    int rule;
    unsigned len;
    unsigned char word_bounds;
};

/* A gated pattern: compiled alone, scanned in windows around its anchors,
 * from back bytes before an anchor's end to fwd bytes after it. */
struct pol_gated {
    unsigned pat; /* index into pats */
    hs_database_t *db;
    unsigned back, fwd;
};

struct pol_direction {
    struct pol_rule *rules;
    int nrules;
    /* Literal ids: [0, nlits) keywords, [nlits, nlits + nanchors) anchors,
     * and one more for the literal that sets the stride (compile.c). They
     * are in lit_db, or, from id lit_base on, in scan_db[POL_GROUP_TOKENS]
     * when lit_db is NULL. */
    hs_database_t *lit_db;
    unsigned lit_base;
    struct pol_lit *lits;
    unsigned nlits;
    unsigned nanchors;
    unsigned *anchor_first; /* nanchors + 1 offsets into anchor_gated */
    unsigned *anchor_gated; /* indices into gated: the patterns each anchor opens windows for */
    hs_database_t *scan_db[POL_GROUPS]; /* NULL for an empty group, and for POL_GROUP_GATED */
    hs_database_t *user_som_db;         /* user patterns; NULL when every one has a fixed width */
    struct pol_gated *gated;
    unsigned ngated;
    struct pol_pat *pats;
    unsigned npats;
    int injection_rules; /* count: the base64 payload pass is skipped without them */
    bool eod;            /* a user pattern can match only at the end of data ("$") */
};

struct policy {
    atomic_int refs;
    struct pol_direction dirs[3]; /* indexed by enum policy_direction */
    bool has_legacy;
    json_t *normalised;
    /* Scratch fitted to every database of the policy, cloned (never used
     * directly) into the per-thread policy_scratch. NULL without databases. */
    hs_scratch_t *proto;
};

/* parse.c: fills rules of p->dirs[*] and p->normalised; on error fills err. */
int pol_parse(struct policy *p, const char *json, size_t len, struct policy_error *err);
void pol_rules_free(struct pol_rule *rules, int n);
const char *pol_type_name(enum pol_rule_type t);
void pol_error_set(struct policy_error *err, const char *rule_id, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* compile.c */
int pol_direction_compile(struct pol_direction *d, const char *dir_name, struct policy_error *err);
void pol_direction_free(struct pol_direction *d);

/* The rules a direction evaluates (legacy falls back to inbound). */
const struct pol_direction *pol_dir_get(const struct policy *p, enum policy_direction dir);

/* A validated match of one rule, in bytes of the original text. */
struct pol_match {
    int rule;
    size_t start, end;
    const struct pol_detector *det; /* NULL for keywords, regex and length */
};

/* redact.c: sorts and merges m (per rule), decides, builds the filtered text
 * and rules_triggered into out. scores[r] is the prompt-injection score of
 * rule r (or negative). Returns 0 or -1 when memory ran out. */
int pol_finish(const struct pol_direction *d, const char *text, size_t len, struct pol_match *m,
               size_t nm, const double *scores, struct policy_result *out);

/* utf8.c */
size_t pol_utf8_count(const char *s, size_t n);
/* Decodes the code point at s[i] (i < n); returns its length in bytes (>= 1;
 * invalid bytes decode as U+FFFD of length 1). */
size_t pol_utf8_decode(const char *s, size_t n, size_t i, uint32_t *cp);
/* The code point that ends just before s[i] (i > 0). */
uint32_t pol_utf8_prev(const char *s, size_t i);
/* Letters, digits and '_' (ASCII, Latin-1, Latin Extended, Greek, Cyrillic
 * and other letters above U+00BF except punctuation/symbol blocks). */
bool pol_is_word_cp(uint32_t cp);
bool pol_is_ascii(const char *s, size_t n);
/* Byte offset of code point index cp (clamped to n). */
size_t pol_utf8_cp_to_byte(const char *s, size_t n, size_t cp);

/* An offset to convert from bytes to code points, in place. */
struct pol_offref {
    size_t byte;
    size_t *out;
};
/* Converts every ref (sorts refs). */
void pol_utf8_bytes_to_cps(const char *s, size_t n, struct pol_offref *refs, size_t nrefs);

/* detectors: is c in the guard class? */
bool pol_guard_has(enum pol_guard g, unsigned char c);

/* injection.c: the score of one prompt_injection rule given, for each of its
 * detectors (indexed like injection_detectors()), how often it matched. */
double injection_score(const unsigned *counts, size_t n);
/* Decodes a base64 span into out (cap bytes); returns decoded length or -1
 * when it is not plausible text. */
long injection_b64_decode(const char *s, size_t n, char *out, size_t cap);

#endif
