/* collie: the command line. serve, project, key, policy, migrate. */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "config.h"
#include "http/server.h"
#include "pipeline/pipeline.h"
#include "pipeline/policy_cache.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/secretbox.h"
#include "util/taskq.h"
#include "util/thread.h"
#include "webhook/dispatch.h"

#include <openssl/crypto.h>

/* PUT /v1/policy requests that may wait for the compiler thread; more get
 * 503 with Retry-After. Compiles take up to tens of seconds for the
 * largest policies, so a deeper queue would only make clients time out. */
#define POLICY_COMPILES_WAITING 16

static void usage(FILE *out)
{
    fprintf(out, "usage:\n"
                 "  collie serve [--listen HOST:PORT] [--database PATH] [--dev] [--retry-schedule "
                 "5s,5m,...]\n"
                 "               (collie serve --help lists every option)\n"
                 "  collie project create NAME [--database PATH]\n"
                 "  collie key create --project NAME [--database PATH]\n"
                 "  collie key list --project NAME [--database PATH]\n"
                 "  collie key revoke --project NAME PREFIX [--database PATH]\n"
                 "  collie policy get --project NAME [--database PATH]\n"
                 "  collie policy set --project NAME [FILE] [--database PATH]   (FILE or stdin)\n"
                 "  collie migrate [--database PATH]\n"
                 "\nThe database defaults to $COLLIE_DATABASE, else collie.db.\n");
}

/* ---- shared argument handling for the admin commands --------------------- */

struct cli_args {
    const char *database;
    const char *project;
    const char *positional[2];
    int npositional;
};

static int cli_parse(int argc, char **argv, struct cli_args *a)
{
    memset(a, 0, sizeof(*a));
    a->database = getenv("COLLIE_DATABASE");
    if (!a->database || !*a->database)
        a->database = "collie.db";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--database") && i + 1 < argc) {
            a->database = argv[++i];
        } else if (!strncmp(argv[i], "--database=", 11)) {
            a->database = argv[i] + 11;
        } else if (!strcmp(argv[i], "--project") && i + 1 < argc) {
            a->project = argv[++i];
        } else if (!strncmp(argv[i], "--project=", 10)) {
            a->project = argv[i] + 10;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "collie: unknown or incomplete option '%s'\n", argv[i]);
            return -1;
        } else if (a->npositional < 2) {
            a->positional[a->npositional++] = argv[i];
        } else {
            fprintf(stderr, "collie: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static struct store *cli_open(const char *database)
{
    char err[256];
    struct store *st = store_open(database, NULL, err, sizeof(err));
    if (!st)
        fprintf(stderr, "collie: %s\n", err);
    return st;
}

static int cli_project_id(struct store *st, const char *name, int64_t *id)
{
    if (!name) {
        fprintf(stderr, "collie: --project NAME is required\n");
        return -1;
    }
    int rc = store_project_find(st, name, id);
    if (rc != STORE_OK) {
        fprintf(stderr, "collie: project '%s': %s\n", name, store_strerror(rc));
        return -1;
    }
    return 0;
}

/* The preamble of the commands that act on one project: parses the
 * arguments after the verb, opens the database and resolves --project.
 * Returns the open store (caller closes it), or NULL with *status set (2 for
 * a usage error, 1 otherwise). */
static struct store *cli_open_project(int argc, char **argv, const char *usage_text,
                                      struct cli_args *a, int64_t *project, int *status)
{
    *status = 2;
    if (argc < 1 || cli_parse(argc - 1, argv + 1, a) != 0) {
        fprintf(stderr, "usage: %s\n", usage_text);
        return NULL;
    }
    *status = 1;
    struct store *st = cli_open(a->database);
    if (st && cli_project_id(st, a->project, project) != 0) {
        store_close(st);
        return NULL;
    }
    return st;
}

static char *read_all(FILE *f)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
        }
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int cmd_project(int argc, char **argv)
{
    struct cli_args a;
    if (argc < 1 || strcmp(argv[0], "create") != 0 || cli_parse(argc - 1, argv + 1, &a) != 0 ||
        a.npositional != 1) {
        fprintf(stderr, "usage: collie project create NAME [--database PATH]\n");
        return 2;
    }
    struct store *st = cli_open(a.database);
    if (!st)
        return 1;
    int64_t id;
    int rc = store_project_create(st, a.positional[0], &id);
    store_close(st);
    if (rc != STORE_OK) {
        fprintf(stderr, "collie: cannot create project '%s': %s\n", a.positional[0],
                rc == STORE_CONSTRAINT ? "a project with this name exists" : store_strerror(rc));
        return 1;
    }
    printf("created project %s\n", a.positional[0]);
    return 0;
}

static int cmd_key(int argc, char **argv)
{
    static const char usage_text[] = "collie key create|list|revoke --project NAME [PREFIX]";
    struct cli_args a;
    int64_t project;
    int status;
    struct store *st = cli_open_project(argc, argv, usage_text, &a, &project, &status);
    if (!st)
        return status;
    status = 1;
    if (!strcmp(argv[0], "create")) {
        char key[API_KEY_LEN + 1];
        int rc = api_key_create(st, project, key);
        if (rc != STORE_OK) {
            fprintf(stderr, "collie: cannot create key: %s\n", store_strerror(rc));
            goto out;
        }
        printf("%s\n", key); /* alone on stdout: scripts capture it */
        status = 0;
    } else if (!strcmp(argv[0], "list")) {
        struct store_key_info *keys;
        size_t n;
        if (store_key_list(st, project, &keys, &n) != STORE_OK)
            goto out;
        for (size_t i = 0; i < n; i++) {
            char c[CLOCK_RFC3339_LEN], r[CLOCK_RFC3339_LEN];
            printf("%s…  created %s%s%s\n", keys[i].prefix,
                   clock_format_rfc3339(keys[i].created_at, c),
                   keys[i].revoked_at ? "  revoked " : "",
                   keys[i].revoked_at ? clock_format_rfc3339(keys[i].revoked_at, r) : "");
        }
        free(keys);
        status = 0;
    } else if (!strcmp(argv[0], "revoke") && a.npositional == 1) {
        int rc = store_key_revoke(st, project, a.positional[0]);
        if (rc != STORE_OK) {
            fprintf(stderr, "collie: cannot revoke '%s': %s\n", a.positional[0],
                    store_strerror(rc));
            goto out;
        }
        printf("revoked %s\n", a.positional[0]);
        status = 0;
    } else {
        fprintf(stderr, "usage: %s\n", usage_text);
        status = 2;
    }
out:
    store_close(st);
    return status;
}

static int cmd_policy(int argc, char **argv)
{
    static const char usage_text[] = "collie policy get|set --project NAME [FILE]";
    struct cli_args a;
    int64_t project;
    int status;
    struct store *st = cli_open_project(argc, argv, usage_text, &a, &project, &status);
    if (!st)
        return status;
    status = 1;
    if (!strcmp(argv[0], "get")) {
        char *json = NULL;
        int64_t version;
        if (store_policy_get(st, project, &json, &version) != STORE_OK)
            goto out;
        const char *text = json ? json : policy_default_json();
        json_t *doc = json_loads(text, 0, NULL);
        char *pretty = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        printf("%s\n", pretty ? pretty : text);
        fprintf(stderr, "policy version %lld%s\n", (long long)version, json ? "" : " (default)");
        free(pretty);
        json_decref(doc);
        free(json);
        status = 0;
    } else if (!strcmp(argv[0], "set")) {
        FILE *f = a.npositional ? fopen(a.positional[0], "rb") : stdin;
        if (!f) {
            perror(a.positional[0]);
            goto out;
        }
        char *text = read_all(f);
        if (f != stdin)
            fclose(f);
        if (!text)
            goto out;
        struct policy_error err;
        memset(&err, 0, sizeof(err));
        struct policy *p = policy_compile(text, strlen(text), &err);
        free(text);
        if (!p) {
            fprintf(stderr, "collie: invalid policy: %s%s%s%s%s%s\n", err.rule_id[0] ? "rule " : "",
                    err.rule_id, err.rule_id[0] ? ": " : "", err.field, err.field[0] ? ": " : "",
                    err.message);
            goto out;
        }
        json_t *norm = policy_to_json(p);
        char *stored = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
        json_decref(norm);
        policy_release(p);
        int64_t version;
        if (!stored || store_policy_set(st, project, stored, &version) != STORE_OK) {
            free(stored);
            goto out;
        }
        free(stored);
        printf("policy version %lld\n", (long long)version);
        status = 0;
    } else {
        fprintf(stderr, "usage: %s\n", usage_text);
        status = 2;
    }
out:
    store_close(st);
    return status;
}

static int cmd_migrate(int argc, char **argv)
{
    struct cli_args a;
    if (cli_parse(argc, argv, &a) != 0)
        return 2;
    struct store *st = cli_open(a.database); /* opening migrates */
    if (!st)
        return 1;
    store_close(st);
    printf("database %s is up to date\n", a.database);
    return 0;
}

/* ---- serve ---------------------------------------------------------------- */

static void wake_work(void *ud)
{
    pipeline_wake(((void **)ud)[0]);
}

static void wake_events(void *ud)
{
    webhook_dispatcher_wake(((void **)ud)[1]);
}

/* First start in dev mode: a "dev" project and a key, printed once. */
static int dev_bootstrap(struct store *st, const struct config *c, int port)
{
    int64_t id;
    if (store_project_find(st, "dev", &id) == STORE_OK) {
        printf("Development project 'dev' exists (its key was printed on first start).\n"
               "A new key: collie key create --project dev --database %s\n",
               c->database);
        fflush(stdout);
        return 0;
    }
    char key[API_KEY_LEN + 1];
    if (store_project_create(st, "dev", &id) != STORE_OK || api_key_create(st, id, key) != STORE_OK)
        return -1;
    printf("\nDevelopment project 'dev' created. Its API key (shown once):\n\n  %s\n\n"
           "Try it (webhooks go to any http:// receiver in dev mode):\n\n"
           "  curl -s http://%s:%d/v1/jobs \\\n"
           "    -H 'Authorization: Bearer %s' \\\n"
           "    -H 'Content-Type: application/json' \\\n"
           "    -d '{\"message_input\":\"My card is 4111 1111 1111 1111\","
           "\"webhook_url\":\"http://127.0.0.1:9000/hook\",\"inbound_only\":true}'\n\n",
           key, c->listen_host, port, key);
    fflush(stdout);
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    int rc = config_load(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "collie: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    raise_fd_limit();

    /* Signals go to this thread only (sigwait below); every thread started
     * from here inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    struct store *st = NULL;
    struct policy_cache *pc = NULL;
    struct pipeline *pl = NULL;
    struct webhook_dispatcher *wd = NULL;
    struct http_server *http = NULL;
    struct app app = {.cfg = &cfg, .slow_mu = PTHREAD_MUTEX_INITIALIZER};
    void *wake_ud[2] = {NULL, NULL};
    struct secretbox *box = NULL;

    /* Webhook secrets are sealed at rest with a server key: from the
     * environment, else a key file beside the database (made on first
     * start). The room beyond the path keeps gcc sure of no truncation. */
    char key_file[sizeof(cfg.database) + 512];
    const char *db_path = store_file_path(cfg.database);
    if (!db_path) { /* said first: the key would be the wrong complaint */
        fprintf(stderr, "collie: PostgreSQL is not supported by this build yet\n");
        goto out;
    }
    snprintf(key_file, sizeof(key_file), "%s.key", db_path);
    uint8_t key[SECRETBOX_KEY_LEN];
    if (secretbox_open_key(getenv("COLLIE_SECRET_KEY"), key_file, key, err, sizeof(err)) != 0) {
        fprintf(stderr, "collie: %s\n", err);
        goto out;
    }
    box = secretbox_new(key);
    OPENSSL_cleanse(key, sizeof(key));
    if (!box)
        goto out;
    struct store_options so = {.synchronous_full = true, .box = box};
    st = store_open(cfg.database, &so, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "collie: %s\n", err);
        goto out;
    }
    if (store_recover(st, clock_now_ms()) != STORE_OK) {
        fprintf(stderr, "collie: cannot take over %s (see the log above)\n", cfg.database);
        goto out;
    }
    pc = policy_cache_new(st);
    app.st = st;
    app.policies = pc;
    app.idem = idem_table_new();
    app.scratch = scratch_pool_new();
    if (!pc || !app.idem || !app.scratch)
        goto out;

    struct pipeline_options po = {.workers = cfg.workers,
                                  .lease_ms = 60000,
                                  .sweep_interval_ms = cfg.sweep_interval_ms,
                                  .retention_ms = cfg.retention_s * 1000};
    struct webhook_options wo;
    webhook_options_default(&wo);
    wo.schedule = cfg.schedule;
    wo.timeout_ms = cfg.webhook_timeout_ms;
    wo.allow_http = cfg.allow_http_webhooks;
    wo.allow_private = cfg.allow_private_webhooks;
    thread_set_background_policy(cfg.background);
    app.slow = taskq_start("policy-compile", POLICY_COMPILES_WAITING);
    po.compiler = app.slow;
    pl = app.slow ? pipeline_start(st, pc, &po) : NULL;
    wd = webhook_dispatcher_start(st, &wo);
    if (!pl || !wd || !app.slow)
        goto out;
    wake_ud[0] = pl;
    wake_ud[1] = wd;
    store_set_wakeups(st, wake_work, wake_events, wake_ud);

    struct http_options ho = {.host = cfg.listen_host,
                              .port = cfg.listen_port,
                              .threads = cfg.http_threads ? cfg.http_threads : 2,
                              .max_body_bytes = cfg.max_body_bytes,
                              .connection_limit = cfg.connection_limit,
                              .timeout_s = 60};
    http = http_server_start(&ho, api_routes, api_nroutes, &app, err, sizeof(err));
    if (!http) {
        fprintf(stderr, "collie: %s\n", err);
        goto out;
    }
    int port = http_server_port(http);
    if (cfg.dev && dev_bootstrap(st, &cfg, port) != 0) {
        fprintf(stderr, "collie: cannot create the dev project\n");
        goto out;
    }
    log_info("collie", "listening on http://%s:%d (database %s%s)", cfg.listen_host, port,
             cfg.database, cfg.dev ? ", dev mode" : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("collie", "signal %d: shutting down", sig);
    /* New requests get 503 from here on: they would wait behind a policy
     * compile and be answered by a server that no longer filters. */
    http_server_drain(http);
    status = 0;

out:
    if (st)
        store_set_wakeups(st, NULL, NULL, NULL);
    /* Order matters: the HTTP server waits for replies that the store's
     * writer produces, so it stops before the store; the pipeline and the
     * dispatcher use the store, so they stop first. The compiler thread
     * stops before the pipeline, whose jobs it compiles for, and answers
     * what it holds before HTTP stops; the queue itself lives on,
     * refusing, while HTTP handlers may still run. */
    taskq_stop(app.slow);
    pipeline_stop(pl);
    webhook_dispatcher_stop(wd);
    http_server_stop(http);
    taskq_free(app.slow);
    store_close(st);
    policy_cache_free(pc);
    idem_table_free(app.idem);
    scratch_pool_free(app.scratch);
    secretbox_free(box);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    /* serve lists its own options; the other commands' usage is the one above. */
    for (int i = 2; i < argc && strcmp(cmd, "serve") != 0; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(cmd, "serve"))
        rc = cmd_serve(argc - 2, argv + 2);
    else if (!strcmp(cmd, "project"))
        rc = cmd_project(argc - 2, argv + 2);
    else if (!strcmp(cmd, "key"))
        rc = cmd_key(argc - 2, argv + 2);
    else if (!strcmp(cmd, "policy"))
        rc = cmd_policy(argc - 2, argv + 2);
    else if (!strcmp(cmd, "migrate"))
        rc = cmd_migrate(argc - 2, argv + 2);
    else {
        fprintf(stderr, "collie: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
