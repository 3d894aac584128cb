/* POST /v1/filter: evaluate text against the current policy, synchronously
 * (a policy playground; no job is created). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* Matcher scratch for HTTP threads: allocating one per request would cost
 * more than the scan, so finished requests hand theirs back here. */
struct scratch_pool {
    pthread_mutex_t mu;
    struct policy_scratch *free_list[64];
    int n;
};

struct scratch_pool *scratch_pool_new(void)
{
    struct scratch_pool *sp = calloc(1, sizeof(*sp));
    if (sp)
        pthread_mutex_init(&sp->mu, NULL);
    return sp;
}

void scratch_pool_free(struct scratch_pool *sp)
{
    if (!sp)
        return;
    for (int i = 0; i < sp->n; i++)
        policy_scratch_free(sp->free_list[i]);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

static struct policy_scratch *scratch_get(struct scratch_pool *sp)
{
    pthread_mutex_lock(&sp->mu);
    struct policy_scratch *s = sp->n > 0 ? sp->free_list[--sp->n] : NULL;
    pthread_mutex_unlock(&sp->mu);
    return s ? s : policy_scratch_new();
}

static void scratch_put(struct scratch_pool *sp, struct policy_scratch *s)
{
    pthread_mutex_lock(&sp->mu);
    if (sp->n < (int)(sizeof(sp->free_list) / sizeof(sp->free_list[0]))) {
        sp->free_list[sp->n++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&sp->mu);
    policy_scratch_free(s);
}

void api_filter(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    json_t *body = api_auth_json_or_reply(rq, &project);
    if (!body)
        return;
    const char *dir_name, *text;
    size_t len;
    struct policy *p = NULL;
    struct policy_scratch *s = NULL;
    struct policy_result res = {0};
    if (!api_string_or_reply(rq, body, "direction", 16, &dir_name, NULL) ||
        !api_string_or_reply(rq, body, "text", app->cfg->max_message_bytes, &text, &len))
        goto out;
    enum policy_direction dir;
    if (!dir_name) {
        dir = POLICY_INBOUND;
        dir_name = "inbound";
    } else if (strcmp(dir_name, "inbound") == 0) {
        dir = POLICY_INBOUND;
    } else if (strcmp(dir_name, "outbound") == 0) {
        dir = POLICY_OUTBOUND;
    } else if (strcmp(dir_name, "legacy") == 0) {
        dir = POLICY_LEGACY;
    } else {
        http_reply_error(rq, 422, "validation_error", "direction",
                         "direction must be inbound, outbound or legacy");
        goto out;
    }
    if (!text) {
        http_reply_error(rq, 422, "validation_error", "text", "text is required");
        goto out;
    }
    int64_t version;
    int rc = policy_cache_get(app->policies, project, &p, &version);
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        goto out;
    }
    s = scratch_get(app->scratch);
    if (!s || policy_eval(p, s, dir, text, len, &res) != 0) {
        http_reply_error(rq, 500, "internal_error", NULL, "the policy could not be evaluated");
        goto out;
    }
    json_t *result = policy_result_to_json(&res, version);
    http_reply_json(rq, 200,
                    json_pack("{s:s, s:o, s:o}", "direction", dir_name, "result", result,
                              "filtered_content",
                              res.filtered ? json_stringn(res.filtered, res.filtered_len)
                                           : json_null()));
out:
    policy_result_clear(&res);
    if (s)
        scratch_put(app->scratch, s);
    policy_release(p);
    json_decref(body);
}
