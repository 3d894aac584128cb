/* /v1/policy: read and replace the project's policy. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* GET's and PUT's answer; doc (stolen) is the normalised policy. */
static json_t *policy_view(json_t *doc, int64_t version)
{
    return json_pack("{s:I, s:b, s:o}", "version", (json_int_t)version, "default", version == 0,
                     "policy", doc);
}

void api_policy_get(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    if (!api_auth_or_reply(rq, &project))
        return;
    struct policy *p;
    int64_t version;
    int rc = policy_cache_peek(app->policies, project, &p, &version);
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        return;
    }
    if (p) {
        http_reply_json(rq, 200, policy_view(policy_to_json(p), version));
        policy_release(p);
        return;
    }
    /* Not compiled yet (after a restart, or a newer version stored by
     * another node): the stored text is the normalised form, which is all
     * a GET shows, so it is answered without compiling. */
    char *json = NULL;
    rc = store_policy_get(app->st, project, &json, &version);
    json_t *doc = rc == STORE_OK && json ? json_loads(json, 0, NULL) : NULL;
    free(json);
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        return;
    }
    if (!doc) {
        http_reply_error(rq, 500, "internal_error", NULL, "the stored policy cannot be read");
        return;
    }
    http_reply_json(rq, 200, policy_view(doc, version));
}

/* A PUT waiting for the compiler thread (app->slow). */
struct policy_put {
    struct http_request *rq;
    struct app *app;
    int64_t project;
};

/* On the compiler thread: compile (seconds for a large policy), store the
 * normalised form, publish it to the cache, reply. */
static void policy_put_run(void *ud, bool cancelled)
{
    struct policy_put *t = ud;
    struct http_request *rq = t->rq;
    struct app *app = t->app;
    int64_t project = t->project;
    free(t);
    if (cancelled) {
        http_reply_shutting_down(rq);
        return;
    }
    size_t len;
    const char *text = http_request_body(rq, &len);
    struct policy_error err;
    memset(&err, 0, sizeof(err));
    struct policy *p = policy_compile(text, len, &err);
    if (!p) {
        if (err.rule_id[0])
            http_reply_error(rq, 422, "validation_error", err.field[0] ? err.field : NULL,
                             "rule %s: %s", err.rule_id, err.message);
        else
            http_reply_error(rq, 422, "validation_error", err.field[0] ? err.field : NULL, "%s",
                             err.message[0] ? err.message : "invalid policy");
        return;
    }
    /* The normalised form is stored, so GET shows what is enforced. */
    json_t *norm = policy_to_json(p);
    char *stored = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
    json_decref(norm);
    int64_t version = 0;
    int rc = stored ? store_policy_set(app->st, project, stored, &version) : STORE_NOMEM;
    free(stored);
    if (rc != STORE_OK) {
        policy_release(p);
        api_reply_store_error(rq, rc);
        return;
    }
    policy_cache_put(app->policies, project, p, version);
    http_reply_json(rq, 200, policy_view(policy_to_json(p), version));
    policy_release(p);
}

void api_policy_put(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    json_t *body = api_auth_json_or_reply(rq, &project);
    if (!body)
        return;
    json_decref(body); /* parsed only to give JSON errors the API's usual shape */
    struct policy_put *t = malloc(sizeof(*t));
    if (!t) {
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        return;
    }
    *t = (struct policy_put){.rq = rq, .app = app, .project = project};
    if (!api_queue_slow_or_reply(rq, project, policy_put_run, t))
        free(t);
}
