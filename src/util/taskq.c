#include "util/taskq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/thread.h"

struct task {
    struct task *next;
    taskq_fn fn;
    void *ud;
};

struct taskq {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *head, *tail;
    struct task *first_tail; /* the last task queued by taskq_submit_first */
    size_t pending, max_pending;
    bool stopping;
    char name[16];
};

static void *taskq_main(void *arg)
{
    struct taskq *q = arg;
    thread_set_background(q->name);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stopping)
            break; /* what is left is cancelled by taskq_stop */
        struct task *t = q->head;
        q->head = t->next;
        if (!q->head)
            q->tail = NULL;
        if (q->first_tail == t)
            q->first_tail = NULL;
        q->pending--;
        pthread_mutex_unlock(&q->mu);
        t->fn(t->ud, false);
        free(t);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

struct taskq *taskq_start(const char *name, size_t max_pending)
{
    struct taskq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->max_pending = max_pending;
    snprintf(q->name, sizeof(q->name), "%s", name);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, taskq_main, q) != 0) {
        log_error("taskq", "%s: cannot start its thread", name);
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q);
        return NULL;
    }
    return q;
}

static bool submit(struct taskq *q, taskq_fn fn, void *ud, bool first)
{
    struct task *t = malloc(sizeof(*t));
    if (!t)
        return false;
    *t = (struct task){.fn = fn, .ud = ud};
    pthread_mutex_lock(&q->mu);
    bool ok = !q->stopping && q->pending < q->max_pending;
    if (ok) {
        /* after the last task that came first, else at the end */
        struct task **link = !first ? (q->tail ? &q->tail->next : &q->head)
                             : q->first_tail ? &q->first_tail->next
                                             : &q->head;
        t->next = *link;
        *link = t;
        if (!t->next)
            q->tail = t;
        if (first)
            q->first_tail = t;
        q->pending++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (!ok)
        free(t);
    return ok;
}

bool taskq_submit(struct taskq *q, taskq_fn fn, void *ud)
{
    return submit(q, fn, ud, false);
}

bool taskq_submit_first(struct taskq *q, taskq_fn fn, void *ud)
{
    return submit(q, fn, ud, true);
}

void taskq_stop(struct taskq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->stopping = true;
    struct task *t = q->head;
    q->head = q->tail = q->first_tail = NULL;
    q->pending = 0;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    while (t) {
        struct task *next = t->next;
        t->fn(t->ud, true);
        free(t);
        t = next;
    }
    pthread_join(q->thread, NULL);
}

void taskq_free(struct taskq *q)
{
    if (!q)
        return;
    taskq_stop(q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
