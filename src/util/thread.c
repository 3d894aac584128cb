#include "util/thread.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

void thread_set_name(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}

void thread_set_background(const char *name)
{
    thread_set_name(name);
    /* On Linux, nice is per thread when addressed by thread id. */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 10) != 0)
        log_debug("thread", "%s: cannot lower priority", name);
}
