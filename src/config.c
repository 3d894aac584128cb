#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

/* One option: its flag, environment variable, and how to apply a value.
 * Flags without a value (booleans) have takes_value == false. */
struct option_def {
    const char *flag;
    const char *env;
    bool takes_value;
    int (*apply)(struct config *c, const char *v, char *err, size_t errlen);
    const char *help;
};

static int parse_size(const char *v, size_t *out, size_t min)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || n < min || v[0] == '-')
        return -1;
    *out = (size_t)n;
    return 0;
}

static int parse_int(const char *v, int64_t *out, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *v)
{
    if (!v || !*v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
        return 1;
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
        return 0;
    return -1;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static int apply_listen(struct config *c, const char *v, char *err, size_t errlen)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        FAIL("--listen wants HOST:PORT, got '%s'", v);
    size_t hlen = (size_t)(colon - v);
    /* [::1]:8080 */
    if (v[0] == '[' && hlen >= 2 && v[hlen - 1] == ']') {
        v++;
        hlen -= 2;
    }
    if (hlen >= sizeof(c->listen_host))
        FAIL("--listen host too long");
    int64_t port;
    if (parse_int(colon + 1, &port, 0, 65535) != 0)
        FAIL("--listen port must be 0..65535, got '%s'", colon + 1);
    memcpy(c->listen_host, v, hlen);
    c->listen_host[hlen] = '\0';
    c->listen_port = (int)port;
    return 0;
}

static int apply_database(struct config *c, const char *v, char *err, size_t errlen)
{
    if (!*v || strlen(v) >= sizeof(c->database))
        FAIL("--database must be a path or URL of at most %zu bytes", sizeof(c->database) - 1);
    snprintf(c->database, sizeof(c->database), "%s", v);
    return 0;
}

static int apply_dev(struct config *c, const char *v, char *err, size_t errlen)
{
    int b = parse_bool(v);
    if (b < 0)
        FAIL("COLLIE_DEV must be 0 or 1");
    c->dev = b;
    return 0;
}

static int apply_allow_http(struct config *c, const char *v, char *err, size_t errlen)
{
    int b = parse_bool(v);
    if (b < 0)
        FAIL("allow-http-webhooks must be 0 or 1");
    c->allow_http_webhooks = b;
    return 0;
}

static int apply_allow_private(struct config *c, const char *v, char *err, size_t errlen)
{
    int b = parse_bool(v);
    if (b < 0)
        FAIL("allow-private-webhooks must be 0 or 1");
    c->allow_private_webhooks = b;
    return 0;
}

static int apply_schedule(struct config *c, const char *v, char *err, size_t errlen)
{
    if (webhook_schedule_parse(v, &c->schedule) != 0)
        FAIL("--retry-schedule wants durations like 5s,5m,30m; got '%s'", v);
    return 0;
}

static int apply_timeout(struct config *c, const char *v, char *err, size_t errlen)
{
    if (duration_parse_ms(v, strlen(v), &c->webhook_timeout_ms) != 0)
        FAIL("--webhook-timeout wants a duration like 15s, got '%s'", v);
    return 0;
}

static int apply_max_body(struct config *c, const char *v, char *err, size_t errlen)
{
    if (parse_size(v, &c->max_body_bytes, 1024) != 0)
        FAIL("--max-body-bytes must be an integer >= 1024, got '%s'", v);
    return 0;
}

static int apply_max_message(struct config *c, const char *v, char *err, size_t errlen)
{
    if (parse_size(v, &c->max_message_bytes, 1) != 0)
        FAIL("--max-message-bytes must be a positive integer, got '%s'", v);
    return 0;
}

static int apply_expires(struct config *c, const char *v, char *err, size_t errlen)
{
    /* The API bounds what a client asks for (60 s at least); the operator's
     * default may be shorter, e.g. to exercise expiry in tests. */
    if (parse_int(v, &c->default_expires_s, 1, 604800) != 0)
        FAIL("--default-expires-in must be 1..604800 seconds, got '%s'", v);
    return 0;
}

static int apply_retention(struct config *c, const char *v, char *err, size_t errlen)
{
    if (parse_int(v, &c->retention_s, 0, 10LL * 365 * 86400) != 0)
        FAIL("--retention must be a number of seconds, got '%s'", v);
    return 0;
}

static int apply_workers(struct config *c, const char *v, char *err, size_t errlen)
{
    int64_t n;
    if (parse_int(v, &n, 1, 256) != 0)
        FAIL("--workers must be 1..256, got '%s'", v);
    c->workers = (int)n;
    return 0;
}

static int apply_http_threads(struct config *c, const char *v, char *err, size_t errlen)
{
    int64_t n;
    if (parse_int(v, &n, 1, 256) != 0)
        FAIL("--http-threads must be 1..256, got '%s'", v);
    c->http_threads = (int)n;
    return 0;
}

static int apply_background(struct config *c, const char *v, char *err, size_t errlen)
{
    if (!strcmp(v, "idle"))
        c->background = THREAD_BG_IDLE;
    else if (!strcmp(v, "nice"))
        c->background = THREAD_BG_NICE;
    else
        FAIL("--background must be idle or nice, got '%s'", v);
    return 0;
}

static int apply_log_level(struct config *c, const char *v, char *err, size_t errlen)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(v, names[i])) {
            c->log_level = (enum log_level)i;
            return 0;
        }
    }
    FAIL("--log-level must be debug, info, warn or error, got '%s'", v);
}

static const struct option_def options[] = {
    {"--listen", "COLLIE_LISTEN", true, apply_listen,
     "HOST:PORT to listen on (default 0.0.0.0:8080; 127.0.0.1:8080 with --dev)"},
    {"--database", "COLLIE_DATABASE", true, apply_database,
     "database: a file path or sqlite:PATH (default collie.db)"},
    {"--dev", "COLLIE_DEV", false, apply_dev,
     "development mode: loopback only, http:// and loopback webhooks, a dev project and key"},
    {"--allow-http-webhooks", "COLLIE_ALLOW_HTTP_WEBHOOKS", false, apply_allow_http,
     "accept http:// webhook URLs"},
    {"--allow-private-webhooks", "COLLIE_ALLOW_PRIVATE_WEBHOOKS", false, apply_allow_private,
     "deliver to loopback and private addresses"},
    {"--retry-schedule", "COLLIE_RETRY_SCHEDULE", true, apply_schedule,
     "delays before each webhook retry (default 5s,5m,30m,2h,5h,10h,10h)"},
    {"--webhook-timeout", "COLLIE_WEBHOOK_TIMEOUT", true, apply_timeout,
     "per-attempt webhook timeout (default 15s)"},
    {"--max-body-bytes", "COLLIE_MAX_BODY_BYTES", true, apply_max_body,
     "largest request body (default 4194304)"},
    {"--max-message-bytes", "COLLIE_MAX_MESSAGE_BYTES", true, apply_max_message,
     "largest message field (default 1048576)"},
    {"--default-expires-in", "COLLIE_DEFAULT_EXPIRES_IN", true, apply_expires,
     "job lifetime when a request gives none, seconds (default 3600)"},
    {"--retention", "COLLIE_RETENTION_SECONDS", true, apply_retention,
     "how long jobs are kept after expiry, seconds (default 604800)"},
    {"--workers", "COLLIE_WORKERS", true, apply_workers, "filtering worker threads (default 2)"},
    {"--http-threads", "COLLIE_HTTP_THREADS", true, apply_http_threads, "HTTP threads (default 2)"},
    {"--background", "COLLIE_BACKGROUND", true, apply_background,
     "CPU priority of filtering and delivery: idle (default) or nice"},
    {"--log-level", "COLLIE_LOG_LEVEL", true, apply_log_level,
     "debug, info, warn or error (default info)"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

void config_usage(FILE *out)
{
    fprintf(out, "usage: collie serve [options]\n\noptions (each also read from its environment "
                 "variable):\n");
    for (size_t i = 0; i < NOPTIONS; i++)
        fprintf(out, "  %-26s %-30s %s\n", options[i].flag, options[i].env, options[i].help);
}

static bool is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost") ||
           !strncmp(host, "127.", 4);
}

int config_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_host, sizeof(c->listen_host), "0.0.0.0");
    c->listen_port = 8080;
    snprintf(c->database, sizeof(c->database), "collie.db");
    webhook_schedule_default(&c->schedule);
    c->webhook_timeout_ms = 15000;
    c->max_body_bytes = 4u << 20;
    c->max_message_bytes = 1u << 20;
    c->default_expires_s = 3600;
    c->retention_s = 7 * 86400;
    c->sweep_interval_ms = 1000;
    c->http_threads = 0;
    c->workers = 2;
    c->background = THREAD_BG_IDLE;
    c->connection_limit = 20000;
    c->log_level = LOG_INFO;
    bool listen_given = false;

    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && *v) {
            if (options[i].apply(c, v, err, errlen) != 0)
                return -1;
            if (options[i].apply == apply_listen)
                listen_given = true;
        }
    }
    for (int a = 0; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            config_usage(stdout);
            return 1;
        }
        const struct option_def *o = NULL;
        const char *value = NULL;
        for (size_t i = 0; i < NOPTIONS; i++) {
            size_t fl = strlen(options[i].flag);
            if (!strcmp(argv[a], options[i].flag)) {
                o = &options[i];
                break;
            }
            if (options[i].takes_value && !strncmp(argv[a], options[i].flag, fl) &&
                argv[a][fl] == '=') {
                o = &options[i];
                value = argv[a] + fl + 1;
                break;
            }
        }
        if (!o)
            FAIL("unknown option '%s' (see collie serve --help)", argv[a]);
        if (o->takes_value && !value) {
            if (a + 1 >= argc)
                FAIL("%s needs a value", o->flag);
            value = argv[++a];
        }
        if (o->apply(c, o->takes_value ? value : "1", err, errlen) != 0)
            return -1;
        if (o->apply == apply_listen)
            listen_given = true;
    }
    if (c->dev) {
        c->allow_http_webhooks = true;
        c->allow_private_webhooks = true;
        if (!listen_given)
            snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
        else if (!is_loopback(c->listen_host))
            FAIL("--dev listens on loopback only; '%s' is not a loopback address", c->listen_host);
    }
    if (c->max_message_bytes > c->max_body_bytes)
        c->max_message_bytes = c->max_body_bytes;
    return 0;
}
