/* Parsing and validation of a policy document (SPEC section 5) into rules,
 * and the normalised form that GET /v1/policy returns. Validation is strict
 * (unknown rule fields and types are errors) because a typo such as
 * "case_sensitve" would otherwise silently change what a rule matches. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"
#include "util/jsonparse.h"

const char *const pii_entity_names[PII_ENTITY_COUNT] = {
    "email", "phone", "credit_card", "iban", "us_ssn", "ip_address",
};

static const char default_policy[] =
    "{\n"
    "  \"inbound\": [\n"
    "    {\"id\": \"prompt-injection\", \"type\": \"prompt_injection\", \"action\": \"flag\","
    " \"threshold\": 0.5},\n"
    "    {\"id\": \"secrets\", \"type\": \"secrets\", \"action\": \"redact\"},\n"
    "    {\"id\": \"pii\", \"type\": \"pii\", \"action\": \"redact\","
    " \"entities\": [\"credit_card\", \"us_ssn\"]}\n"
    "  ],\n"
    "  \"outbound\": [\n"
    "    {\"id\": \"secrets\", \"type\": \"secrets\", \"action\": \"redact\"},\n"
    "    {\"id\": \"pii\", \"type\": \"pii\", \"action\": \"redact\"}\n"
    "  ]\n"
    "}\n";

const char *policy_default_json(void)
{
    return default_policy;
}

static const char *const type_names[] = {
    [POL_KEYWORDS] = "keywords",
    [POL_REGEX] = "regex",
    [POL_PII] = "pii",
    [POL_SECRETS] = "secrets",
    [POL_INJECTION] = "prompt_injection",
    [POL_LENGTH] = "length",
};

const char *pol_type_name(enum pol_rule_type t)
{
    return type_names[t];
}

const char *policy_decision_name(enum policy_decision d)
{
    switch (d) {
    case POLICY_PASS:
        return "pass";
    case POLICY_FLAG:
        return "flag";
    case POLICY_REDACT:
        return "redact";
    case POLICY_BLOCK:
        return "block";
    }
    return "pass";
}

void pol_error_set(struct policy_error *err, const char *rule_id, const char *field,
                   const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->rule_id, sizeof(err->rule_id), "%s", rule_id ? rule_id : "");
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

void pol_rules_free(struct pol_rule *rules, int n)
{
    if (!rules)
        return;
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < rules[i].nkeywords; k++)
            free(rules[i].keywords[k]);
        free(rules[i].keywords);
        free(rules[i].pattern);
    }
    free(rules);
}

/* Context of the rule being validated, for error messages. */
struct rule_ctx {
    const char *dir;
    size_t index;
    char id[128]; /* the id, or "#<index>" */
    struct policy_error *err;
};

static int fail(struct rule_ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct rule_ctx *c, const char *field, const char *fmt, ...)
{
    char path[64], msg[256];
    if (field)
        snprintf(path, sizeof(path), "%s[%zu].%s", c->dir, c->index, field);
    else
        snprintf(path, sizeof(path), "%s[%zu]", c->dir, c->index);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pol_error_set(c->err, c->id, path, "%s", msg);
    return -1;
}

static bool id_char_ok(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == ':';
}

static int allowed_fields(struct rule_ctx *c, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok)
            return fail(c, key, "unknown field \"%s\" for a rule of type %s", key,
                        json_string_value(json_object_get(obj, "type")));
    }
    return 0;
}

static int get_bool(struct rule_ctx *c, json_t *obj, const char *name, bool dflt, bool *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return fail(c, name, "must be a boolean");
    *out = json_is_true(v);
    return 0;
}

static int parse_keywords(struct rule_ctx *c, json_t *obj, struct pol_rule *r, size_t *total)
{
    static const char *const fields[] = {"id",       "type",           "action",     "description",
                                         "keywords", "case_sensitive", "whole_word", NULL};
    if (allowed_fields(c, obj, fields))
        return -1;
    json_t *kw = json_object_get(obj, "keywords");
    if (!kw)
        return fail(c, "keywords", "is required for a keywords rule");
    if (!json_is_array(kw))
        return fail(c, "keywords", "must be an array of strings");
    size_t n = json_array_size(kw);
    if (n == 0)
        return fail(c, "keywords", "must not be empty");
    if (*total + n > POL_MAX_KEYWORDS)
        return fail(c, "keywords", "too many keywords in this direction (limit %d)",
                    POL_MAX_KEYWORDS);
    *total += n;
    r->keywords = calloc(n, sizeof(*r->keywords));
    if (!r->keywords)
        return fail(c, "keywords", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(kw, i);
        char f[32];
        snprintf(f, sizeof(f), "keywords[%zu]", i);
        if (!json_is_string(s))
            return fail(c, f, "must be a string");
        size_t l = json_string_length(s);
        if (l == 0)
            return fail(c, f, "must not be empty");
        if (l > POL_MAX_KEYWORD_BYTES)
            return fail(c, f, "longer than %d bytes", POL_MAX_KEYWORD_BYTES);
        r->keywords[i] = strdup(json_string_value(s));
        if (!r->keywords[i])
            return fail(c, f, "out of memory");
        r->nkeywords = i + 1;
    }
    if (get_bool(c, obj, "case_sensitive", false, &r->case_sensitive) ||
        get_bool(c, obj, "whole_word", true, &r->whole_word))
        return -1;
    return 0;
}

static int parse_regex(struct rule_ctx *c, json_t *obj, struct pol_rule *r)
{
    static const char *const fields[] = {"id",      "type",           "action", "description",
                                         "pattern", "case_sensitive", NULL};
    if (allowed_fields(c, obj, fields))
        return -1;
    json_t *p = json_object_get(obj, "pattern");
    if (!p)
        return fail(c, "pattern", "is required for a regex rule");
    if (!json_is_string(p))
        return fail(c, "pattern", "must be a string");
    size_t l = json_string_length(p);
    if (l == 0)
        return fail(c, "pattern", "must not be empty");
    if (l > POL_MAX_PATTERN_BYTES)
        return fail(c, "pattern", "longer than %d bytes", POL_MAX_PATTERN_BYTES);
    r->pattern = strdup(json_string_value(p));
    if (!r->pattern)
        return fail(c, "pattern", "out of memory");
    /* Regex rules are case-sensitive unless told otherwise, as regexes
     * usually are; "(?i)" inside the pattern works as well. */
    return get_bool(c, obj, "case_sensitive", true, &r->case_sensitive);
}

static int parse_pii(struct rule_ctx *c, json_t *obj, struct pol_rule *r)
{
    static const char *const fields[] = {"id", "type", "action", "description", "entities", NULL};
    if (allowed_fields(c, obj, fields))
        return -1;
    json_t *e = json_object_get(obj, "entities");
    if (!e) {
        r->entities = PII_ALL;
        return 0;
    }
    if (!json_is_array(e))
        return fail(c, "entities", "must be an array of entity names");
    if (json_array_size(e) == 0)
        return fail(c, "entities", "must not be empty (omit it for all entities)");
    for (size_t i = 0; i < json_array_size(e); i++) {
        json_t *s = json_array_get(e, i);
        char f[32];
        snprintf(f, sizeof(f), "entities[%zu]", i);
        if (!json_is_string(s))
            return fail(c, f, "must be a string");
        int found = -1;
        for (int k = 0; k < PII_ENTITY_COUNT; k++)
            if (strcmp(pii_entity_names[k], json_string_value(s)) == 0)
                found = k;
        if (found < 0)
            return fail(c, f,
                        "unknown entity \"%.64s\" (email, phone, credit_card, iban, us_ssn, "
                        "ip_address)",
                        json_string_value(s));
        r->entities |= 1u << found;
    }
    return 0;
}

static int parse_injection(struct rule_ctx *c, json_t *obj, struct pol_rule *r)
{
    static const char *const fields[] = {"id", "type", "action", "description", "threshold", NULL};
    if (allowed_fields(c, obj, fields))
        return -1;
    json_t *t = json_object_get(obj, "threshold");
    r->threshold = 0.5;
    if (!t)
        return 0;
    if (!json_is_number(t))
        return fail(c, "threshold", "must be a number between 0 and 1");
    r->threshold = json_number_value(t);
    if (!(r->threshold >= 0.0 && r->threshold <= 1.0))
        return fail(c, "threshold", "must be between 0 and 1");
    return 0;
}

static int parse_length(struct rule_ctx *c, json_t *obj, struct pol_rule *r)
{
    static const char *const fields[] = {"id", "type", "action", "description", "max_chars", NULL};
    if (allowed_fields(c, obj, fields))
        return -1;
    json_t *m = json_object_get(obj, "max_chars");
    if (!m)
        return fail(c, "max_chars", "is required for a length rule");
    if (!json_is_integer(m))
        return fail(c, "max_chars", "must be an integer");
    r->max_chars = json_integer_value(m);
    if (r->max_chars < 1)
        return fail(c, "max_chars", "must be at least 1");
    return 0;
}

/* Validates one rule object into r and appends its normalised form to out. */
static int parse_rule(struct rule_ctx *c, json_t *obj, struct pol_rule *r, size_t *kw_total,
                      json_t *out)
{
    if (!json_is_object(obj))
        return fail(c, NULL, "a rule must be an object");
    json_t *id = json_object_get(obj, "id");
    if (!id)
        return fail(c, "id", "is required");
    if (!json_is_string(id))
        return fail(c, "id", "must be a string");
    const char *ids = json_string_value(id);
    size_t idl = json_string_length(id);
    if (idl == 0 || idl > POL_ID_MAX)
        return fail(c, "id", "must be 1 to %d characters", POL_ID_MAX);
    for (size_t i = 0; i < idl; i++)
        if (!id_char_ok(ids[i]))
            return fail(c, "id", "may only contain letters, digits and _ - . :");
    snprintf(c->id, sizeof(c->id), "%s", ids);
    snprintf(r->id, sizeof(r->id), "%s", ids);

    json_t *type = json_object_get(obj, "type");
    if (!type)
        return fail(c, "type", "is required");
    if (!json_is_string(type))
        return fail(c, "type", "must be a string");
    int t = -1;
    for (int k = 0; k <= POL_LENGTH; k++)
        if (strcmp(type_names[k], json_string_value(type)) == 0)
            t = k;
    if (t < 0)
        return fail(c, "type",
                    "unknown type \"%.64s\" (keywords, regex, pii, secrets, prompt_injection, "
                    "length)",
                    json_string_value(type));
    r->type = (enum pol_rule_type)t;

    json_t *action = json_object_get(obj, "action");
    if (!action)
        return fail(c, "action", "is required");
    if (!json_is_string(action))
        return fail(c, "action", "must be a string");
    const char *a = json_string_value(action);
    if (strcmp(a, "block") == 0)
        r->action = POLICY_BLOCK;
    else if (strcmp(a, "redact") == 0)
        r->action = POLICY_REDACT;
    else if (strcmp(a, "flag") == 0)
        r->action = POLICY_FLAG;
    else
        return fail(c, "action", "unknown action \"%.64s\" (block, redact, flag)", a);

    json_t *desc = json_object_get(obj, "description");
    if (desc && !json_is_string(desc))
        return fail(c, "description", "must be a string");

    int rc = 0;
    switch (r->type) {
    case POL_KEYWORDS:
        rc = parse_keywords(c, obj, r, kw_total);
        break;
    case POL_REGEX:
        rc = parse_regex(c, obj, r);
        break;
    case POL_PII:
        rc = parse_pii(c, obj, r);
        break;
    case POL_SECRETS: {
        static const char *const fields[] = {"id", "type", "action", "description", NULL};
        rc = allowed_fields(c, obj, fields);
        break;
    }
    case POL_INJECTION:
        rc = parse_injection(c, obj, r);
        break;
    case POL_LENGTH:
        rc = parse_length(c, obj, r);
        break;
    }
    if (rc)
        return rc;

    /* The normalised rule: every field spelled out with its default. */
    json_t *n = json_pack("{s:s, s:s, s:s}", "id", r->id, "type", type_names[r->type], "action",
                          policy_decision_name(r->action));
    if (!n)
        return fail(c, NULL, "out of memory");
    if (desc)
        json_object_set(n, "description", desc);
    switch (r->type) {
    case POL_KEYWORDS: {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->nkeywords; i++)
            json_array_append_new(arr, json_string(r->keywords[i]));
        json_object_set_new(n, "keywords", arr);
        json_object_set_new(n, "case_sensitive", json_boolean(r->case_sensitive));
        json_object_set_new(n, "whole_word", json_boolean(r->whole_word));
        break;
    }
    case POL_REGEX:
        json_object_set_new(n, "pattern", json_string(r->pattern));
        json_object_set_new(n, "case_sensitive", json_boolean(r->case_sensitive));
        break;
    case POL_PII: {
        json_t *arr = json_array();
        for (int k = 0; k < PII_ENTITY_COUNT; k++)
            if (r->entities & (1u << k))
                json_array_append_new(arr, json_string(pii_entity_names[k]));
        json_object_set_new(n, "entities", arr);
        break;
    }
    case POL_INJECTION:
        json_object_set_new(n, "threshold", json_real(r->threshold));
        break;
    case POL_LENGTH:
        json_object_set_new(n, "max_chars", json_integer(r->max_chars));
        break;
    case POL_SECRETS:
        break;
    }
    json_array_append_new(out, n);
    return 0;
}

static int parse_direction(struct policy *p, enum policy_direction dir, const char *name,
                           json_t *list, struct policy_error *err)
{
    struct pol_direction *d = &p->dirs[dir];
    json_t *out = json_array();
    if (!out) {
        pol_error_set(err, "", name, "out of memory");
        return -1;
    }
    json_object_set_new(p->normalised, name, out);
    if (!list || json_is_null(list)) /* null is absent, as everywhere in the API */
        return 0;
    if (!json_is_array(list)) {
        pol_error_set(err, "", name, "must be an array of rules");
        return -1;
    }
    size_t n = json_array_size(list);
    if (n > POL_MAX_RULES) {
        pol_error_set(err, "", name, "too many rules (limit %d)", POL_MAX_RULES);
        return -1;
    }
    if (n == 0)
        return 0;
    d->rules = calloc(n, sizeof(*d->rules));
    if (!d->rules) {
        pol_error_set(err, "", name, "out of memory");
        return -1;
    }
    size_t kw_total = 0;
    for (size_t i = 0; i < n; i++) {
        struct rule_ctx c = {.dir = name, .index = i, .err = err};
        snprintf(c.id, sizeof(c.id), "#%zu", i);
        d->nrules = (int)i + 1; /* so that a partly filled rule is freed */
        if (parse_rule(&c, json_array_get(list, i), &d->rules[i], &kw_total, out))
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(d->rules[k].id, d->rules[i].id) == 0)
                return fail(&c, "id", "duplicate rule id \"%s\" in %s", d->rules[i].id, name);
    }
    return 0;
}

/* Finds a string holding a NUL in a rule (a member, or an element of a
 * member that is a list), as the rule's error: the validation below
 * compares strings as C strings, which a NUL would cut short. */
static int rules_nul_check(json_t *doc, struct policy_error *err)
{
    static const char *const dirs[] = {"inbound", "outbound", "legacy"};
    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        json_t *list = json_object_get(doc, dirs[d]);
        size_t i;
        json_t *rule;
        json_array_foreach(list, i, rule)
        {
            struct rule_ctx c = {.dir = dirs[d], .index = i, .err = err};
            json_t *id = json_object_get(rule, "id");
            if (json_is_string(id) && !jsonparse_string_has_nul(id))
                snprintf(c.id, sizeof(c.id), "%s", json_string_value(id));
            else
                snprintf(c.id, sizeof(c.id), "#%zu", i);
            const char *key;
            json_t *v;
            json_object_foreach(rule, key, v)
            {
                char f[96];
                if (jsonparse_string_has_nul(v))
                    return fail(&c, key, "must not contain NUL characters");
                size_t j;
                json_t *e;
                json_array_foreach(v, j, e)
                {
                    snprintf(f, sizeof(f), "%.64s[%zu]", key, j);
                    if (jsonparse_string_has_nul(e))
                        return fail(&c, f, "must not contain NUL characters");
                }
            }
        }
    }
    return 0;
}

int pol_parse(struct policy *p, const char *json, size_t len, struct policy_error *err)
{
    json_error_t jerr;
    /* NULs are let through the parser so that the error names the rule. */
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        if (json_error_code(&jerr) == json_error_null_byte_in_key)
            pol_error_set(err, "", "",
                          "member names must not contain NUL characters (line %d, column %d)",
                          jerr.line, jerr.column);
        else
            pol_error_set(err, "", "", "invalid JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(doc)) {
        pol_error_set(err, "", "", "a policy must be a JSON object");
        goto done;
    }
    if (rules_nul_check(doc, err))
        goto done;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        /* "version" is tolerated (and ignored) so that a document read with
         * GET can be sent back with PUT; the server assigns versions. */
        if (strcmp(key, "inbound") && strcmp(key, "outbound") && strcmp(key, "legacy") &&
            strcmp(key, "version")) {
            pol_error_set(err, "", key,
                          "unknown field \"%.64s\" (expected inbound, outbound, legacy)", key);
            goto done;
        }
    }
    p->normalised = json_object();
    if (!p->normalised) {
        pol_error_set(err, "", "", "out of memory");
        goto done;
    }
    if (parse_direction(p, POLICY_INBOUND, "inbound", json_object_get(doc, "inbound"), err) ||
        parse_direction(p, POLICY_OUTBOUND, "outbound", json_object_get(doc, "outbound"), err))
        goto done;
    json_t *legacy = json_object_get(doc, "legacy");
    if (legacy && !json_is_null(legacy)) {
        p->has_legacy = true;
        if (parse_direction(p, POLICY_LEGACY, "legacy", legacy, err))
            goto done;
    }
    rc = 0;
done:
    json_decref(doc);
    return rc;
}
