/* Shared by the policy tests: one rule compiled alone, the spans it
 * matches in a text, and a triggered rule looked up in a result. */
#ifndef COLLIE_TEST_POLICY_SPANS_H
#define COLLIE_TEST_POLICY_SPANS_H

#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

/* The entry of r's rules_triggered whose string member key is value
 * ("rule_id" or "type"), or NULL. */
static inline json_t *triggered_by(const struct policy_result *r, const char *key,
                                   const char *value)
{
    size_t i;
    json_t *t;
    json_array_foreach(r->rules_triggered, i, t)
    {
        const char *v = json_string_value(json_object_get(t, key));
        if (v && strcmp(v, value) == 0)
            return t;
    }
    return NULL;
}

/* Compiles a policy document; fails the test when it does not compile. */
static inline struct policy *compile_doc(const char *doc)
{
    struct policy_error err;
    struct policy *p = policy_compile(doc, strlen(doc), &err);
    if (!p)
        fail_msg("compile: %s %s %s", err.rule_id, err.field, err.message);
    return p;
}

/* Compiles a policy of the one inbound rule (a JSON object). */
static inline struct policy *compile_one(const char *rule)
{
    char doc[512];
    snprintf(doc, sizeof(doc), "{\"inbound\":[%s]}", rule);
    return compile_doc(doc);
}

/* Evaluates text against one rule and returns the matched spans as
 * "entity:text|entity:text" (static buffer), "" when nothing matched. */
static inline const char *spans(const char *rule, const char *text)
{
    static char out[2048];
    struct policy *p = compile_one(rule);
    struct policy_scratch *s = policy_scratch_new();
    struct policy_result r;
    assert_int_equal(policy_eval(p, s, POLICY_INBOUND, text, strlen(text), &r), 0);
    out[0] = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(json_array_get(r.rules_triggered, 0), "matches"), i, m)
    {
        /* offsets are code points; the texts here are ASCII until noted */
        long long st = json_integer_value(json_object_get(m, "start"));
        long long en = json_integer_value(json_object_get(m, "end"));
        size_t o = strlen(out);
        snprintf(out + o, sizeof(out) - o, "%s%s:%.*s", o ? "|" : "",
                 json_string_value(json_object_get(m, "entity")), (int)(en - st), text + st);
    }
    policy_result_clear(&r);
    policy_scratch_free(s);
    policy_release(p);
    return out;
}

#endif
