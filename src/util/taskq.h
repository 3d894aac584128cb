/* A thread that runs slow tasks one at a time, off the HTTP threads.
 *
 * For work that a request must wait for but that can take seconds of CPU
 * (compiling a policy): run on one of the two HTTP threads, it held up
 * every connection of that thread, and two such requests stalled the API
 * (a 20-rule policy took 16 s to compile, and a legal 100,000-keyword one
 * takes ~24 s). The queue is bounded, so a flood of such requests is
 * refused (taskq_submit returns false) instead of piling up.
 *
 * Tasks name an owner (a project), and owners take turns: a task waits
 * behind at most one task of each other owner that has some waiting, not
 * behind everything one owner queued before it. */
#ifndef COLLIE_UTIL_TASKQ_H
#define COLLIE_UTIL_TASKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct taskq;

/* Runs a task: cancelled is true when the queue is stopping and the task
 * was never started; it must still release what ud owns (and answer its
 * request). */
typedef void (*taskq_fn)(void *ud, bool cancelled);

/* Starts the thread (named name, at the background priority of
 * util/thread.h) with room for max_pending tasks waiting. NULL on failure. */
struct taskq *taskq_start(const char *name, size_t max_pending);

/* Queues fn(ud) to run on the queue's thread for owner. Owners take
 * turns, in rounds: a round runs at most one task of each owner, the
 * tasks of a round in the order they came; an owner's next task goes to
 * the round after its last one, and the task of an owner with nothing
 * waiting or running goes to the round under way. false when max_pending
 * tasks are already waiting or the queue is stopping: fn is not called
 * then. */
bool taskq_submit(struct taskq *q, int64_t owner, taskq_fn fn, void *ud);

/* The same, but fn runs before every task queued by taskq_submit (after
 * those queued by taskq_submit_first before it), whatever their owners:
 * for work something else is blocked on, such as jobs waiting for their
 * policy. */
bool taskq_submit_first(struct taskq *q, taskq_fn fn, void *ud);

/* Calls every waiting task with cancelled = true and waits for the one
 * running. Later taskq_submit calls return false, so q can stay reachable
 * (from HTTP handlers still running) until taskq_free. NULL is a no-op. */
void taskq_stop(struct taskq *q);

/* Stops q if that was not done, and frees it. NULL is a no-op. */
void taskq_free(struct taskq *q);

#endif
