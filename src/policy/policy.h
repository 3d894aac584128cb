/* The policy engine: parse, validate and compile a project's policy document
 * (SPEC section 5), then evaluate text against one direction's rules.
 *
 * Threading: a compiled struct policy is immutable and may be shared by any
 * number of threads (reference counted). A struct policy_scratch belongs to
 * one thread at a time; each worker keeps its own. */
#ifndef COLLIE_POLICY_POLICY_H
#define COLLIE_POLICY_POLICY_H

#include <jansson.h>
#include <stddef.h>

enum policy_direction { POLICY_INBOUND, POLICY_OUTBOUND, POLICY_LEGACY };

/* Ordered by severity: the decision of a direction is the highest action that
 * triggered, or PASS. */
enum policy_decision { POLICY_PASS, POLICY_FLAG, POLICY_REDACT, POLICY_BLOCK };

struct policy;
struct policy_scratch;

/* Why a document was refused: which rule (id, or "#<index>" when the rule has
 * no usable id; empty for document-level problems), which field, and a
 * human-readable reason (e.g. a regex compile error with its offset). */
struct policy_error {
    char rule_id[128];
    char field[64];
    char message[256];
};

/* Parses, validates and compiles a policy document (JSON text of len bytes).
 * Returns a new policy with one reference owned by the caller, or NULL with
 * err filled when the document is invalid or resources ran out. */
struct policy *policy_compile(const char *json, size_t len, struct policy_error *err);

/* The built-in default policy of SPEC section 5, as JSON text (static). */
const char *policy_default_json(void);

/* Reference counting; release accepts NULL and frees on the last reference. */
void policy_retain(struct policy *p);
void policy_release(struct policy *p);

/* The policy as a JSON document (new reference, owned by the caller), in the
 * normalised form that GET /v1/policy returns. */
json_t *policy_to_json(const struct policy *p);

/* Number of rules evaluated for a direction (legacy falls back to inbound
 * when the document has no "legacy" list). */
int policy_rule_count(const struct policy *p, enum policy_direction dir);

/* Per-thread scratch space. free accepts NULL. A scratch holds a reference
 * to each of the (up to four) policies it evaluated last, so that their
 * Vectorscan scratch is reused; policy_scratch_free releases them. */
struct policy_scratch *policy_scratch_new(void);
void policy_scratch_free(struct policy_scratch *s);
/* Bytes of working arrays s holds between evaluations (not counting
 * Vectorscan's scratch; arrays over 4 MiB are given back after each
 * evaluation), and the most they took during the last evaluation. */
size_t policy_scratch_bytes(const struct policy_scratch *s);
size_t policy_scratch_peak_bytes(const struct policy_scratch *s);

/* The outcome of evaluating one text. All members are owned by the struct and
 * released by policy_result_clear. */
struct policy_result {
    enum policy_decision decision;
    int rules_evaluated;
    json_t *rules_triggered; /* array of
                                {"rule_id","type","action","matches":[{"start","end","entity"?}]},
                                offsets in code points of the original text */
    char *filtered;          /* filtered text (NUL-terminated); NULL when decision is BLOCK */
    size_t filtered_len;
    double latency_ms; /* wall time of the evaluation */
};

/* Evaluates text (len bytes of valid UTF-8) against dir's rules. Fills out
 * (which the caller later clears). Returns 0, or -1 when memory ran out or
 * the matcher failed (out is then cleared). */
int policy_eval(const struct policy *p, struct policy_scratch *s, enum policy_direction dir,
                const char *text, size_t len, struct policy_result *out);

/* Releases what a result owns and zeroes it. Accepts a zeroed result. */
void policy_result_clear(struct policy_result *r);

/* The result object of SPEC 3.3: {"decision","rules_evaluated",
 * "rules_triggered","latency_ms","policy_version"}. New reference. */
json_t *policy_result_to_json(const struct policy_result *r, long long policy_version);

/* "pass", "flag", "redact", "block". */
const char *policy_decision_name(enum policy_decision d);

#endif
