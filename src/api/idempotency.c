/* Idempotency keys of creates still in flight (not yet committed). A
 * committed key is found in the store; one still in flight answers 409. The
 * set is small (bounded by concurrent requests), so a list suffices. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

struct idem_entry {
    int64_t project;
    char *key;
    struct idem_entry *next;
};

struct idem_table {
    pthread_mutex_t mu;
    struct idem_entry *head;
};

struct idem_table *idem_table_new(void)
{
    struct idem_table *t = calloc(1, sizeof(*t));
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

void idem_table_free(struct idem_table *t)
{
    if (!t)
        return;
    while (t->head) {
        struct idem_entry *e = t->head;
        t->head = e->next;
        free(e->key);
        free(e);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

enum idem_begin_result idem_begin(struct idem_table *t, int64_t project, const char *key)
{
    struct idem_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return IDEM_NOMEM;
    }
    e->project = project;
    pthread_mutex_lock(&t->mu);
    for (struct idem_entry *i = t->head; i; i = i->next) {
        if (i->project == project && strcmp(i->key, key) == 0) {
            pthread_mutex_unlock(&t->mu);
            free(e->key);
            free(e);
            return IDEM_IN_FLIGHT;
        }
    }
    e->next = t->head;
    t->head = e;
    pthread_mutex_unlock(&t->mu);
    return IDEM_BEGUN;
}

void idem_end(struct idem_table *t, int64_t project, const char *key)
{
    pthread_mutex_lock(&t->mu);
    for (struct idem_entry **p = &t->head; *p; p = &(*p)->next) {
        if ((*p)->project == project && strcmp((*p)->key, key) == 0) {
            struct idem_entry *e = *p;
            *p = e->next;
            free(e->key);
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
}
