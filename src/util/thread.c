#include "util/thread.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

void thread_set_name(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}

static enum thread_background background_policy = THREAD_BG_IDLE;

void thread_set_background_policy(enum thread_background policy)
{
    background_policy = policy;
}

void thread_set_background(const char *name)
{
    thread_set_name(name);
    /* SCHED_IDLE: the thread runs on CPU time no normal thread wants, and a
     * waking HTTP or writer thread preempts it at once. Measured on two
     * cores with filtering and delivery running (bench/README.md): nice
     * +10 still left them a share of every timeslice and ~9,500 creates/s;
     * SCHED_IDLE gave ~13,700. The CPU never idles under a burst only when
     * creation alone saturates it, and then the backlog waits, as the API's
     * asynchronous contract allows. Locks they share with the HTTP threads
     * are held for microseconds; a preempted holder blocks those threads,
     * which frees the CPU it needs. On a host shared with other busy
     * processes, though, SCHED_IDLE work waits for all of them too: there
     * THREAD_BG_NICE keeps filtering and delivery a share. */
    struct sched_param sp = {0};
    if (background_policy == THREAD_BG_IDLE &&
        pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0)
        return;
    /* On Linux, nice is per thread when addressed by thread id. */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 10) != 0)
        log_debug("thread", "%s: cannot lower priority", name);
}
