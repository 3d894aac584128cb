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
    int64_t owner;
    uint64_t round; /* the turn it runs in; unused for tasks that go first */
    bool first;
};

struct taskq {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *head, *tail;
    struct task *first_tail; /* the last task queued by taskq_submit_first */
    size_t pending, max_pending;
    uint64_t round; /* of the last task started by taskq_submit */
    int64_t owner;  /* of that task, while it runs */
    bool owner_running;
    bool stopping;
    char name[16];
};

/* Unlinks and returns the task to run next: the head if it went first,
 * else the earliest of the lowest round. q->mu held, q->head not NULL. */
static struct task *take_next(struct taskq *q)
{
    struct task **link = &q->head;
    if (!q->head->first) {
        for (struct task **l = &q->head; *l; l = &(*l)->next)
            if ((*l)->round < (*link)->round)
                link = l;
    }
    struct task *t = *link, *prev = NULL;
    if (t == q->tail || t == q->first_tail) /* both need the task before t */
        for (prev = q->head; prev && prev->next != t; prev = prev->next)
            ;
    *link = t->next;
    if (q->tail == t)
        q->tail = prev;
    if (q->first_tail == t)
        q->first_tail = prev;
    q->pending--;
    if (!t->first) {
        q->round = t->round;
        q->owner = t->owner;
        q->owner_running = true;
    }
    return t;
}

/* The round a new task of owner goes to (q->mu held): the round under way,
 * or the one after the owner's last task, waiting or running. */
static uint64_t round_for(const struct taskq *q, int64_t owner)
{
    uint64_t r = q->round + (q->owner_running && q->owner == owner);
    for (const struct task *t = q->head; t; t = t->next)
        if (!t->first && t->owner == owner && t->round + 1 > r)
            r = t->round + 1;
    return r;
}

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
        struct task *t = take_next(q);
        pthread_mutex_unlock(&q->mu);
        t->fn(t->ud, false);
        free(t);
        pthread_mutex_lock(&q->mu);
        q->owner_running = false;
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

static bool submit(struct taskq *q, int64_t owner, taskq_fn fn, void *ud, bool first)
{
    struct task *t = malloc(sizeof(*t));
    if (!t)
        return false;
    *t = (struct task){.fn = fn, .ud = ud, .owner = owner, .first = first};
    pthread_mutex_lock(&q->mu);
    bool ok = !q->stopping && q->pending < q->max_pending;
    if (ok) {
        if (!first)
            t->round = round_for(q, owner);
        /* after the last task that came first, else at the end */
        struct task **link = !first          ? (q->tail ? &q->tail->next : &q->head)
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

bool taskq_submit(struct taskq *q, int64_t owner, taskq_fn fn, void *ud)
{
    return submit(q, owner, fn, ud, false);
}

bool taskq_submit_first(struct taskq *q, taskq_fn fn, void *ud)
{
    return submit(q, 0, fn, ud, true);
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
