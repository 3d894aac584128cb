/* Thread naming and scheduling hints. */
#ifndef COLLIE_UTIL_THREAD_H
#define COLLIE_UTIL_THREAD_H

/* Names the calling thread (shown by top -H, perf, gdb). */
void thread_set_name(const char *name);

/* Names the calling thread and gives it only otherwise idle CPU time
 * (SCHED_IDLE; nice +10 where that is refused). For work
 * that is asynchronous by contract — filtering and webhook delivery — so
 * that under a burst the CPU goes first to accepting and durably storing
 * requests; the background catches up once the burst is over. */
void thread_set_background(const char *name);

#endif
