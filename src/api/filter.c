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

/* A validated /v1/filter request; text and dir_name point into body. */
struct filter_req {
    struct http_request *rq;
    struct app *app;
    int64_t project;
    json_t *body;
    enum policy_direction dir;
    const char *dir_name;
    const char *text;
    size_t len;
};

static void filter_req_free(struct filter_req *f)
{
    json_decref(f->body);
    free(f);
}

/* Evaluates p over the request's text and replies. */
static void filter_reply(struct filter_req *f, struct policy *p, int64_t version)
{
    struct policy_scratch *s = scratch_get(f->app->scratch);
    struct policy_result res = {0};
    if (!s || policy_eval(p, s, f->dir, f->text, f->len, &res) != 0) {
        http_reply_error(f->rq, 500, "internal_error", NULL, "the policy could not be evaluated");
    } else {
        json_t *result = policy_result_to_json(&res, version);
        http_reply_json(
            f->rq, 200,
            json_pack("{s:s, s:o, s:o}", "direction", f->dir_name, "result", result,
                      "filtered_content",
                      res.filtered ? json_stringn(res.filtered, res.filtered_len) : json_null()));
    }
    policy_result_clear(&res);
    if (s)
        scratch_put(f->app->scratch, s);
}

/* On the compiler thread, for a policy version not compiled yet. */
static void filter_run(void *ud, bool cancelled)
{
    struct filter_req *f = ud;
    struct policy *p = NULL;
    int64_t version;
    int rc;
    if (cancelled)
        http_reply_shutting_down(f->rq);
    else if ((rc = policy_cache_get(f->app->policies, f->project, &p, &version)) != STORE_OK)
        api_reply_store_error(f->rq, rc);
    else
        filter_reply(f, p, version);
    policy_release(p);
    filter_req_free(f);
}

void api_filter(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    int64_t project;
    json_t *body = api_auth_json_or_reply(rq, &project);
    if (!body)
        return;
    struct filter_req *f = calloc(1, sizeof(*f));
    if (!f) {
        json_decref(body);
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        return;
    }
    *f = (struct filter_req){.rq = rq, .app = app, .project = project, .body = body};
    if (!api_string_or_reply(rq, body, "direction", 16, &f->dir_name, NULL) ||
        !api_string_or_reply(rq, body, "text", app->cfg->max_message_bytes, &f->text, &f->len))
        goto out;
    if (!f->dir_name) {
        f->dir = POLICY_INBOUND;
        f->dir_name = "inbound";
    } else if (strcmp(f->dir_name, "inbound") == 0) {
        f->dir = POLICY_INBOUND;
    } else if (strcmp(f->dir_name, "outbound") == 0) {
        f->dir = POLICY_OUTBOUND;
    } else if (strcmp(f->dir_name, "legacy") == 0) {
        f->dir = POLICY_LEGACY;
    } else {
        http_reply_error(rq, 422, "validation_error", "direction",
                         "direction must be inbound, outbound or legacy");
        goto out;
    }
    if (!f->text) {
        http_reply_error(rq, 422, "validation_error", "text", "text is required");
        goto out;
    }
    struct policy *p;
    int64_t version;
    int rc = policy_cache_peek(app->policies, project, &p, &version);
    if (rc != STORE_OK) {
        api_reply_store_error(rq, rc);
        goto out;
    }
    if (p) {
        filter_reply(f, p, version);
        policy_release(p);
        goto out;
    }
    /* The project's policy is not compiled yet: that can take seconds,
     * which this thread's other connections must not wait for. */
    if (api_queue_slow_or_reply(rq, project, filter_run, f))
        return; /* f belongs to filter_run */
out:
    filter_req_free(f);
}
