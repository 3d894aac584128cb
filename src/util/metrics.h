/* The process's metrics registry: the one piece of global mutable state the
 * design allows. Counters and gauges are lock-free atomics; histograms use
 * fixed buckets. Rendered in the Prometheus text format by /metrics. */
#ifndef COLLIE_UTIL_METRICS_H
#define COLLIE_UTIL_METRICS_H

#include <stdint.h>
#include <stdio.h>

enum metric_counter {
    METRIC_HTTP_REQUESTS,
    METRIC_HTTP_ERRORS_4XX,
    METRIC_HTTP_ERRORS_5XX,
    METRIC_JOBS_CREATED,
    METRIC_JOBS_COMPLETED,
    METRIC_JOBS_FAILED,
    METRIC_JOBS_EXPIRED,
    METRIC_FILTER_EVALUATIONS,
    METRIC_WEBHOOK_ATTEMPTS,
    METRIC_WEBHOOK_DELIVERED,
    METRIC_WEBHOOK_FAILED,
    METRIC_STORE_COMMITS,
    METRIC_STORE_BATCHED_WRITES,
    METRIC_COUNTER_COUNT
};

enum metric_histogram {
    METRIC_H_HTTP_REQUEST_SECONDS,
    METRIC_H_STORE_COMMIT_SECONDS,
    METRIC_H_FILTER_SECONDS,
    METRIC_H_WEBHOOK_SECONDS,
    METRIC_HISTOGRAM_COUNT
};

void metrics_inc(enum metric_counter c);
void metrics_add(enum metric_counter c, uint64_t n);
void metrics_observe(enum metric_histogram h, double seconds);

/* Writes the whole registry in Prometheus text exposition format. */
void metrics_render(FILE *out);

#endif
