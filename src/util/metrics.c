#include "util/metrics.h"

#include <stdatomic.h>

static const struct {
    const char *name;
    const char *help;
} counter_info[METRIC_COUNTER_COUNT] = {
    [METRIC_HTTP_REQUESTS] = {"collie_http_requests_total", "HTTP requests answered."},
    [METRIC_HTTP_ERRORS_4XX] = {"collie_http_client_errors_total", "HTTP 4xx answers."},
    [METRIC_HTTP_ERRORS_5XX] = {"collie_http_server_errors_total", "HTTP 5xx answers."},
    [METRIC_JOBS_CREATED] = {"collie_jobs_created_total", "Jobs accepted (202)."},
    [METRIC_JOBS_COMPLETED] = {"collie_jobs_completed_total", "Jobs that reached completed."},
    [METRIC_JOBS_FAILED] = {"collie_jobs_failed_total", "Jobs that reached failed."},
    [METRIC_JOBS_EXPIRED] = {"collie_jobs_expired_total", "Jobs that expired."},
    [METRIC_FILTER_EVALUATIONS] = {"collie_filter_evaluations_total", "Policy evaluations."},
    [METRIC_WEBHOOK_ATTEMPTS] = {"collie_webhook_attempts_total", "Webhook delivery attempts."},
    [METRIC_WEBHOOK_DELIVERED] = {"collie_webhook_delivered_total", "Webhook events delivered."},
    [METRIC_WEBHOOK_FAILED] = {"collie_webhook_failed_total",
                               "Webhook events that exhausted their retries or got 410."},
    [METRIC_STORE_COMMITS] = {"collie_store_commits_total", "Store transactions committed."},
    [METRIC_STORE_BATCHED_WRITES] = {"collie_store_writes_total",
                                     "Writes committed (several per group commit)."},
};

static const struct {
    const char *name;
    const char *help;
} histogram_info[METRIC_HISTOGRAM_COUNT] = {
    [METRIC_H_HTTP_REQUEST_SECONDS] = {"collie_http_request_seconds",
                                       "From a request's headers to its answer being ready."},
    [METRIC_H_STORE_COMMIT_SECONDS] = {"collie_store_commit_seconds", "Group commit duration."},
    [METRIC_H_FILTER_SECONDS] = {"collie_filter_seconds", "Policy evaluation duration."},
    [METRIC_H_WEBHOOK_SECONDS] = {"collie_webhook_attempt_seconds", "Webhook attempt duration."},
};

#define NBUCKETS 12
static const double bucket_bounds[NBUCKETS] = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                               0.025,  0.05,   0.1,   0.5,    1.0,   5.0};

/* The registry: process-global by design (DESIGN.md, Habits). */
static _Atomic uint64_t counters[METRIC_COUNTER_COUNT];
static struct {
    _Atomic uint64_t buckets[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} histograms[METRIC_HISTOGRAM_COUNT];

void metrics_inc(enum metric_counter c)
{
    atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

void metrics_add(enum metric_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

void metrics_observe(enum metric_histogram h, double seconds)
{
    for (int i = 0; i < NBUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            atomic_fetch_add_explicit(&histograms[h].buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&histograms[h].count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histograms[h].sum_us, (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

void metrics_render(FILE *out)
{
    for (int i = 0; i < METRIC_COUNTER_COUNT; i++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_info[i].name,
                counter_info[i].help, counter_info[i].name, counter_info[i].name,
                (unsigned long long)atomic_load(&counters[i]));
    }
    for (int h = 0; h < METRIC_HISTOGRAM_COUNT; h++) {
        const char *name = histogram_info[h].name;
        fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, histogram_info[h].help, name);
        uint64_t cumulative = 0;
        for (int i = 0; i < NBUCKETS; i++) {
            cumulative += atomic_load(&histograms[h].buckets[i]);
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i],
                    (unsigned long long)cumulative);
        }
        uint64_t count = atomic_load(&histograms[h].count);
        fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                (unsigned long long)count, name, (double)atomic_load(&histograms[h].sum_us) / 1e6,
                name, (unsigned long long)count);
    }
}
