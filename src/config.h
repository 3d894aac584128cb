/* Server configuration: defaults, then COLLIE_* environment variables, then
 * command-line flags; validated once at start-up. */
#ifndef COLLIE_CONFIG_H
#define COLLIE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"
#include "util/thread.h"
#include "webhook/schedule.h"

struct config {
    char listen_host[256];
    int listen_port;
    char database[1024];
    bool dev;
    bool allow_http_webhooks;    /* http:// webhook URLs (dev mode) */
    bool allow_private_webhooks; /* loopback/private targets (dev mode) */
    struct webhook_schedule schedule;
    int64_t webhook_timeout_ms;
    size_t max_body_bytes;
    size_t max_message_bytes;
    int64_t default_expires_s;
    int64_t retention_s;
    int64_t sweep_interval_ms;
    int http_threads;
    int workers;
    enum thread_background background;
    unsigned connection_limit;
    enum log_level log_level;
};

/* Fills c from defaults, the environment and argv (the arguments after
 * "serve"). Returns 0, 1 when --help was asked (usage printed), or -1 with
 * a reason in err. */
int config_load(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* The usage text of "collie serve". */
void config_usage(FILE *out);

#endif
