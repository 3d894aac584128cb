/* A store on a new database file in its own temporary directory, for the
 * store's unit tests (header only: each test program includes it once). */
#ifndef COLLIE_TESTS_STORE_SCRATCH_H
#define COLLIE_TESTS_STORE_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

struct scratch {
    char dir[64];
    char path[128]; /* the database file */
    struct store *st;
};

/* Makes the directory and opens the store: 0, or -1 with the reason on
 * stderr. */
static inline int scratch_open(struct scratch *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/collie-store-XXXXXX");
    if (!mkdtemp(s->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(s->path, sizeof(s->path), "%s/t.db", s->dir);
    char err[256];
    s->st = store_open(s->path, NULL, err, sizeof(err));
    if (!s->st) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

/* Closes the store and removes the directory with everything in it. */
static inline int scratch_close(struct scratch *s)
{
    store_close(s->st);
    s->st = NULL;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* cmocka setup and teardown for tests that need just the store: the state
 * is a struct scratch. */
static inline int scratch_setup(void **state)
{
    struct scratch *s = calloc(1, sizeof(*s));
    if (!s || scratch_open(s) != 0)
        return -1;
    *state = s;
    return 0;
}

static inline int scratch_teardown(void **state)
{
    struct scratch *s = *state;
    int rc = scratch_close(s);
    free(s);
    return rc;
}

#endif
