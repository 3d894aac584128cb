/* The SQLite writer's grouping rules, through the backend's internal task
 * interface (store/sqlite_int.h), against a real database file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "store_scratch.h"

/* A task that notes which group (commit number) ran it, and optionally
 * writes a row or fails. */
struct probe {
    struct wtask t;
    uint64_t group;      /* 0: never ran */
    const char *row;     /* a meta row to insert, or NULL */
    int fail;            /* returned instead of writing, when nonzero */
    struct probe *relay; /* a request to queue while this one runs */
};

static int probe_fn(struct conn *c, struct wtask *t);
static void probe_done(void *ud, int rc);

static void probe_init(struct probe *p, bool background)
{
    p->t.fn = probe_fn;
    p->t.arg = p;
    p->t.done = probe_done;
    p->t.background = background;
}

static int probe_fn(struct conn *c, struct wtask *t)
{
    struct probe *p = t->arg;
    p->group = c->owner->groups + 1;
    if (p->relay) {
        probe_init(p->relay, false);
        if (store_submit(c->owner, &p->relay->t) != STORE_OK)
            return STORE_IO;
    }
    if (p->fail)
        return p->fail;
    if (p->row) {
        char sql[128];
        snprintf(sql, sizeof(sql), "INSERT INTO meta(name, value) VALUES ('%s', 'x')", p->row);
        return conn_exec(c, sql);
    }
    return STORE_OK;
}

static atomic_int finished;

static void probe_done(void *ud, int rc)
{
    (void)ud;
    (void)rc;
    atomic_fetch_add(&finished, 1);
}

static void submit(struct store *st, struct probe *p, bool background)
{
    probe_init(p, background);
    assert_int_equal(store_submit(st, &p->t), STORE_OK);
}

/* Holds the writer inside a task until released, so that what is queued
 * meanwhile forms the next groups. */
static atomic_int gate_state; /* 0 closed, 1 writer inside, 2 open */

static int gate_fn(struct conn *c, struct wtask *t)
{
    (void)c;
    (void)t;
    atomic_store(&gate_state, 1);
    while (atomic_load(&gate_state) != 2)
        usleep(1000);
    return STORE_OK;
}

static void close_gate(struct store *st, struct wtask *gate)
{
    atomic_store(&finished, 0);
    atomic_store(&gate_state, 0);
    memset(gate, 0, sizeof(*gate));
    gate->fn = gate_fn;
    gate->done = probe_done;
    assert_int_equal(store_submit(st, gate), STORE_OK);
    while (atomic_load(&gate_state) != 1)
        usleep(1000);
}

/* Lets the writer go on, and waits until n tasks (the gate's included) are
 * done. */
static void open_gate(int n)
{
    atomic_store(&gate_state, 2);
    while (atomic_load(&finished) < n)
        usleep(1000);
}

static bool meta_has(struct scratch *f, const char *name)
{
    struct conn *c = store_reader(f->st);
    sqlite3_stmt *s = conn_stmt(c, "SELECT 1 FROM meta WHERE name = ?1");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    store_reader_put(f->st, c);
    return found;
}

/* While requests wait, a group takes them all and one background task, the
 * oldest; with none waiting, the rest of the background tasks go together. */
static void test_requests_wait_for_one_background_task(void **state)
{
    struct scratch *f = *state;
    struct wtask gate;
    struct probe bg[3], fg[2];
    memset(bg, 0, sizeof(bg));
    memset(fg, 0, sizeof(fg));
    close_gate(f->st, &gate);
    submit(f->st, &bg[0], true);
    submit(f->st, &bg[1], true);
    submit(f->st, &fg[0], false);
    submit(f->st, &bg[2], true);
    submit(f->st, &fg[1], false);
    open_gate(6);

    uint64_t first = fg[0].group;
    assert_true(first > 0);
    assert_int_equal(fg[1].group, first);
    assert_int_equal(bg[0].group, first);
    assert_int_equal(bg[1].group, first + 1);
    assert_int_equal(bg[2].group, first + 1);
}

/* Under a steady stream of requests (each one queues the next while it
 * runs), background work still advances one task every group. */
static void test_background_advances_every_group(void **state)
{
    struct scratch *f = *state;
    struct wtask gate;
    enum { N = 4 };
    struct probe bg[N], fg[N];
    memset(bg, 0, sizeof(bg));
    memset(fg, 0, sizeof(fg));
    for (int i = 0; i + 1 < N; i++)
        fg[i].relay = &fg[i + 1];
    close_gate(f->st, &gate);
    for (int i = 0; i < N; i++)
        submit(f->st, &bg[i], true);
    submit(f->st, &fg[0], false);
    open_gate(1 + 2 * N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fg[i].group, fg[0].group + (uint64_t)i);
        assert_int_equal(bg[i].group, fg[i].group);
    }
}

/* A chain commits in order and stops at the first failure: what was
 * written is a prefix, also when the failing task shares a group. */
static void test_chain_stops_at_first_failure(void **state)
{
    struct scratch *f = *state;
    struct probe p[3] = {
        {.row = "chain-a"}, {.row = "chain-b", .fail = STORE_IO}, {.row = "chain-c"}};
    struct wtask t[3];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 3; i++) {
        t[i].fn = probe_fn;
        t[i].arg = &p[i];
    }
    int rc;
    assert_int_equal(store_write_chain(f->st, t, 3, &rc), 1);
    assert_int_equal(rc, STORE_IO);
    assert_true(p[1].group > 0);
    assert_int_equal(p[2].group, 0); /* never ran */
    assert_true(meta_has(f, "chain-a"));
    assert_false(meta_has(f, "chain-b"));
    assert_false(meta_has(f, "chain-c"));

    struct probe q[2] = {{.row = "ok-a"}, {.row = "ok-b"}};
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 2; i++) {
        t[i].fn = probe_fn;
        t[i].arg = &q[i];
    }
    assert_int_equal(store_write_chain(f->st, t, 2, &rc), 2);
    assert_int_equal(rc, STORE_OK);
    assert_true(meta_has(f, "ok-a") && meta_has(f, "ok-b"));
}

/* Items 0..9 as chunks: which chunk saw which items, in which group; the
 * item whose value is `poison` fails its chunk. */
struct chunk_log {
    int first[8], n[8];
    uint64_t group[8];
    int chunks;
    int poison;
};
static struct chunk_log chunk_log;

static int chunk_fn(struct conn *c, struct wtask *t)
{
    const struct wchunk *ch = t->arg;
    const int *items = ch->items;
    int k = chunk_log.chunks++;
    chunk_log.first[k] = items[0];
    chunk_log.n[k] = (int)ch->n;
    chunk_log.group[k] = c->owner->groups + 1;
    for (size_t i = 0; i < ch->n; i++)
        if (items[i] == chunk_log.poison)
            return STORE_IO;
    return STORE_OK;
}

/* store_write_chunks cuts the array into chunks of at most `per` items,
 * committed in order; a failing chunk stops the rest, and the count
 * committed is the items before it. */
static void test_chunks_cut_in_order_and_stop_at_failure(void **state)
{
    struct scratch *f = *state;
    int items[10];
    for (int i = 0; i < 10; i++)
        items[i] = i;
    int rc;
    memset(&chunk_log, 0, sizeof(chunk_log));
    chunk_log.poison = -1;
    assert_int_equal(store_write_chunks(f->st, chunk_fn, items, sizeof(int), 10, 4, &rc), 10);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(chunk_log.chunks, 3);
    assert_int_equal(chunk_log.first[0], 0);
    assert_int_equal(chunk_log.n[0], 4);
    assert_int_equal(chunk_log.first[1], 4);
    assert_int_equal(chunk_log.n[1], 4);
    assert_int_equal(chunk_log.first[2], 8);
    assert_int_equal(chunk_log.n[2], 2);
    assert_true(chunk_log.group[0] <= chunk_log.group[1] &&
                chunk_log.group[1] <= chunk_log.group[2]);

    memset(&chunk_log, 0, sizeof(chunk_log));
    chunk_log.poison = 5;
    assert_int_equal(store_write_chunks(f->st, chunk_fn, items, sizeof(int), 10, 4, &rc), 4);
    assert_int_equal(rc, STORE_IO);
    assert_int_equal(chunk_log.chunks, 2); /* the third never ran */

    memset(&chunk_log, 0, sizeof(chunk_log));
    assert_int_equal(store_write_chunks(f->st, chunk_fn, items, sizeof(int), 0, 4, &rc), 0);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(chunk_log.chunks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_wait_for_one_background_task, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_background_advances_every_group, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_chain_stops_at_first_failure, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_cut_in_order_and_stop_at_failure, scratch_setup,
                                        scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
