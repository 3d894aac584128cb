/* The slow-task thread: tasks run one at a time in order (those submitted
 * first ahead of the rest, owners taking turns), the queue is bounded,
 * stopping cancels what never started, and a stopped queue refuses new
 * tasks until it is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "util/taskq.h"

/* Tasks log their number (cancelled ones as -number); the first one can be
 * held running until released, so that others pile up behind it. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int log_[64];
static int nlog;
static bool holding;

static int ids[64];

static void task(void *ud, bool cancelled)
{
    int id = *(int *)ud;
    pthread_mutex_lock(&mu);
    log_[nlog++] = cancelled ? -id : id;
    pthread_cond_broadcast(&cv);
    while (!cancelled && id == 1 && holding)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void reset(void)
{
    nlog = 0;
    holding = true;
    for (int i = 0; i < 64; i++)
        ids[i] = i;
}

static void wait_for_log(int n)
{
    pthread_mutex_lock(&mu);
    while (nlog < n)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void release_first(void)
{
    pthread_mutex_lock(&mu);
    holding = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* A queue for max_pending tasks whose thread task 1 holds (release_first). */
static struct taskq *start_held(size_t max_pending)
{
    reset();
    struct taskq *q = taskq_start("test-q", max_pending);
    assert_non_null(q);
    assert_true(taskq_submit(q, 0, task, &ids[1]));
    wait_for_log(1);
    return q;
}

static void test_runs_in_order_and_bounds_the_queue(void **state)
{
    (void)state;
    struct taskq *q = start_held(3);
    assert_true(taskq_submit(q, 0, task, &ids[2]));
    assert_true(taskq_submit(q, 0, task, &ids[3]));
    assert_true(taskq_submit(q, 0, task, &ids[4]));
    assert_false(taskq_submit(q, 0, task, &ids[5])); /* three are waiting: refused */
    release_first();
    wait_for_log(4); /* the three waiting have run */
    taskq_stop(q);
    assert_int_equal(nlog, 4);
    int want[] = {1, 2, 3, 4};
    assert_memory_equal(log_, want, sizeof(want));
    /* stopped, not freed: a late submit is refused, never run */
    assert_false(taskq_submit(q, 0, task, &ids[6]));
    taskq_free(q);
    assert_int_equal(nlog, 4);
}

/* Tasks submitted first run before the others waiting, in their own
 * order; the last of them leaving the queue does not lose the rest. */
static void test_first_goes_before_the_others(void **state)
{
    (void)state;
    struct taskq *q = start_held(8);
    assert_true(taskq_submit(q, 0, task, &ids[2]));
    assert_true(taskq_submit_first(q, task, &ids[3]));
    assert_true(taskq_submit(q, 0, task, &ids[4]));
    assert_true(taskq_submit_first(q, task, &ids[5]));
    release_first();
    wait_for_log(5);
    /* the queue is empty: a first task alone, then one after it */
    assert_true(taskq_submit_first(q, task, &ids[6]));
    assert_true(taskq_submit(q, 0, task, &ids[7]));
    wait_for_log(7);
    taskq_free(q);
    int want[] = {1, 3, 5, 2, 4, 6, 7};
    assert_int_equal(nlog, 7);
    assert_memory_equal(log_, want, sizeof(want));
}

/* Owners take turns: one owner's queued tasks do not keep another's
 * waiting behind all of them. Task 1 (owner 0) runs while the rest come. */
static void test_owners_take_turns(void **state)
{
    (void)state;
    struct taskq *q = start_held(16);
    assert_true(taskq_submit(q, 0, task, &ids[2])); /* after its own running task */
    assert_true(taskq_submit(q, 0, task, &ids[3]));
    assert_true(taskq_submit(q, 0, task, &ids[4]));
    assert_true(taskq_submit(q, 2, task, &ids[5])); /* joins the round under way */
    assert_true(taskq_submit(q, 2, task, &ids[6]));
    assert_true(taskq_submit(q, 3, task, &ids[7]));
    assert_true(taskq_submit_first(q, task, &ids[8])); /* still ahead of all */
    release_first();
    wait_for_log(8);
    /* owner 3 comes back after its turn: the round under way is 0's last */
    assert_true(taskq_submit(q, 3, task, &ids[9]));
    wait_for_log(9);
    taskq_free(q);
    int want[] = {1, 8, 5, 7, 2, 6, 3, 4, 9};
    assert_int_equal(nlog, 9);
    assert_memory_equal(log_, want, sizeof(want));
}

static void *stop_thread(void *q)
{
    taskq_stop(q);
    return NULL;
}

static void test_stop_cancels_waiting_tasks(void **state)
{
    (void)state;
    struct taskq *q = start_held(8);
    assert_true(taskq_submit(q, 0, task, &ids[2]));
    assert_true(taskq_submit(q, 0, task, &ids[3]));
    /* stop while task 1 still runs: 2 and 3 are called cancelled, then
     * task 1 is let go and the thread is joined */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, q), 0);
    wait_for_log(3); /* 2 and 3 were cancelled */
    release_first();
    pthread_join(t, NULL);
    int want[] = {1, -2, -3};
    assert_int_equal(nlog, 3);
    assert_memory_equal(log_, want, sizeof(want));
    assert_false(taskq_submit(q, 0, task, &ids[4]));
    taskq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_in_order_and_bounds_the_queue),
        cmocka_unit_test(test_stop_cancels_waiting_tasks),
        cmocka_unit_test(test_first_goes_before_the_others),
        cmocka_unit_test(test_owners_take_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
