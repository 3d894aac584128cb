/* Thread naming and scheduling hints. */
#ifndef COLLIE_UTIL_THREAD_H
#define COLLIE_UTIL_THREAD_H

/* Names the calling thread (shown by top -H, perf, gdb). */
void thread_set_name(const char *name);

/* How background threads yield the CPU (thread_set_background). */
enum thread_background {
    THREAD_BG_IDLE, /* SCHED_IDLE: only CPU time nothing else wants */
    THREAD_BG_NICE, /* nice +10: a smaller share, but a share */
};

/* Sets the policy for background threads started afterwards; call it once,
 * before starting them. The default is THREAD_BG_IDLE. */
void thread_set_background_policy(enum thread_background policy);

/* Names the calling thread and lowers its priority by the policy above
 * (nice +10 where SCHED_IDLE is refused). For work that is asynchronous by
 * contract — filtering and webhook delivery — so that under a burst the
 * CPU goes first to accepting and durably storing requests; the background
 * catches up once the burst is over. */
void thread_set_background(const char *name);

#endif
