/* Compiled policies per project, keyed by the policy version in the store.
 * Compiling is expensive (Vectorscan databases); evaluating is not. A
 * version check per lookup keeps every node of a cluster current. */
#ifndef COLLIE_PIPELINE_POLICY_CACHE_H
#define COLLIE_PIPELINE_POLICY_CACHE_H

#include <stdint.h>

#include "policy/policy.h"
#include "store/store.h"

struct policy_cache;

/* Compiles the default policy up front. NULL on failure. */
struct policy_cache *policy_cache_new(struct store *st);
void policy_cache_free(struct policy_cache *pc);

/* The project's current compiled policy (a new reference: policy_release it)
 * and its version (0 = the built-in default). STORE_* code. */
int policy_cache_get(struct policy_cache *pc, int64_t project_id, struct policy **out,
                     int64_t *version);

/* The same without compiling: *out = NULL (and STORE_OK) when the current
 * version is not compiled yet. For the HTTP threads, which must not spend
 * seconds compiling (util/taskq.h). */
int policy_cache_peek(struct policy_cache *pc, int64_t project_id, struct policy **out,
                      int64_t *version);

/* Installs a policy just stored as version (after PUT); takes a reference. */
void policy_cache_put(struct policy_cache *pc, int64_t project_id, struct policy *p,
                      int64_t version);

#endif
