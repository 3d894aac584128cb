/* The pipeline: worker threads that claim due jobs from the store, run the
 * project's policy for the step's direction, and store the result and its
 * webhook event in one transaction; plus a sweeper thread for expiry and
 * retention. All state lives in the store, so any step can be re-run after
 * a crash (its lease expires). */
#ifndef COLLIE_PIPELINE_PIPELINE_H
#define COLLIE_PIPELINE_PIPELINE_H

#include <stdint.h>

#include "pipeline/policy_cache.h"
#include "store/store.h"

struct taskq;

struct pipeline_options {
    int workers; /* filtering threads */
    /* Where a policy that is not compiled yet compiles, while the jobs
     * that need it wait (util/taskq.h). It must be stopped before
     * pipeline_stop. NULL: the worker compiles it, holding up the rest of
     * its batch. */
    struct taskq *compiler;
    int64_t lease_ms;          /* how long a claimed job stays with its worker */
    int64_t sweep_interval_ms; /* expiry / retention cadence */
    int64_t retention_ms;      /* jobs are deleted this long after expires_at */
};

struct pipeline;

/* Starts the threads. The store and cache must outlive the pipeline. */
struct pipeline *pipeline_start(struct store *st, struct policy_cache *pc,
                                const struct pipeline_options *o);

/* Tells the workers that work may be due (any thread; cheap). */
void pipeline_wake(struct pipeline *p);

/* Stops and joins every thread. Accepts NULL. */
void pipeline_stop(struct pipeline *p);

#endif
