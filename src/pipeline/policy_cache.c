#include "pipeline/policy_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct entry {
    int64_t project_id;
    int64_t version;
    struct policy *policy;
};

struct policy_cache {
    struct store *st;
    struct policy *fallback; /* the built-in default, version 0 */
    pthread_mutex_t mu;      /* guards entries */
    struct entry *entries;
    size_t n, cap;
};

struct policy_cache *policy_cache_new(struct store *st)
{
    struct policy_cache *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return NULL;
    pc->st = st;
    pthread_mutex_init(&pc->mu, NULL);
    struct policy_error err;
    const char *def = policy_default_json();
    pc->fallback = policy_compile(def, strlen(def), &err);
    if (!pc->fallback) {
        log_error("policy", "default policy does not compile: %s: %s", err.rule_id, err.message);
        policy_cache_free(pc);
        return NULL;
    }
    return pc;
}

void policy_cache_free(struct policy_cache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < pc->n; i++)
        policy_release(pc->entries[i].policy);
    free(pc->entries);
    policy_release(pc->fallback);
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}

/* Looks up under the lock; returns a new reference or NULL. */
static struct policy *lookup(struct policy_cache *pc, int64_t project_id, int64_t version)
{
    struct policy *p = NULL;
    pthread_mutex_lock(&pc->mu);
    for (size_t i = 0; i < pc->n; i++) {
        if (pc->entries[i].project_id == project_id && pc->entries[i].version == version) {
            p = pc->entries[i].policy;
            policy_retain(p);
            break;
        }
    }
    pthread_mutex_unlock(&pc->mu);
    return p;
}

void policy_cache_put(struct policy_cache *pc, int64_t project_id, struct policy *p,
                      int64_t version)
{
    policy_retain(p);
    pthread_mutex_lock(&pc->mu);
    for (size_t i = 0; i < pc->n; i++) {
        if (pc->entries[i].project_id == project_id) {
            if (pc->entries[i].version > version) { /* a newer one won the race */
                pthread_mutex_unlock(&pc->mu);
                policy_release(p);
                return;
            }
            struct policy *old = pc->entries[i].policy;
            pc->entries[i].policy = p;
            pc->entries[i].version = version;
            pthread_mutex_unlock(&pc->mu);
            policy_release(old); /* in-flight evaluations hold their own reference */
            return;
        }
    }
    if (pc->n == pc->cap) {
        size_t cap = pc->cap ? pc->cap * 2 : 16;
        struct entry *e = realloc(pc->entries, cap * sizeof(*e));
        if (!e) {
            pthread_mutex_unlock(&pc->mu);
            policy_release(p);
            return; /* not cached; the next lookup compiles again */
        }
        pc->entries = e;
        pc->cap = cap;
    }
    pc->entries[pc->n++] = (struct entry){project_id, version, p};
    pthread_mutex_unlock(&pc->mu);
}

static int cache_get(struct policy_cache *pc, int64_t project_id, bool compile, struct policy **out,
                     int64_t *version)
{
    *out = NULL;
    int64_t v = 0;
    int rc = store_policy_version(pc->st, project_id, &v);
    if (rc != STORE_OK)
        return rc;
    *version = v;
    if (v == 0) {
        policy_retain(pc->fallback);
        *out = pc->fallback;
        return STORE_OK;
    }
    struct policy *p = lookup(pc, project_id, v);
    if (p || !compile) {
        *out = p;
        return STORE_OK;
    }
    char *json = NULL;
    rc = store_policy_get(pc->st, project_id, &json, &v);
    if (rc != STORE_OK)
        return rc;
    *version = v;
    struct policy_error err;
    p = json ? policy_compile(json, strlen(json), &err) : NULL;
    free(json);
    if (!p) {
        /* Stored policies were validated on PUT; this is a newer collie
         * refusing an old document, or memory ran out. */
        log_error("policy", "project %lld policy v%lld does not compile: %s %s",
                  (long long)project_id, (long long)v, err.rule_id, err.message);
        return STORE_IO;
    }
    policy_cache_put(pc, project_id, p, v);
    *out = p;
    return STORE_OK;
}

int policy_cache_get(struct policy_cache *pc, int64_t project_id, struct policy **out,
                     int64_t *version)
{
    return cache_get(pc, project_id, true, out, version);
}

int policy_cache_peek(struct policy_cache *pc, int64_t project_id, struct policy **out,
                      int64_t *version)
{
    return cache_get(pc, project_id, false, out, version);
}
