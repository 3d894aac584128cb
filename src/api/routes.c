#include "api/api.h"

const struct http_route api_routes[] = {
    {"POST", "/v1/jobs", api_jobs_create},
    {"GET", "/v1/jobs", api_jobs_list},
    {"GET", "/v1/jobs/{}", api_jobs_get},
    {"POST", "/v1/jobs/{}/response", api_jobs_response},
    {"POST", "/v1/jobs/{}/redeliver", api_jobs_redeliver},
    {"GET", "/v1/policy", api_policy_get},
    {"PUT", "/v1/policy", api_policy_put},
    {"POST", "/v1/filter", api_filter},
    {"GET", "/healthz", api_healthz},
    {"GET", "/readyz", api_readyz},
    {"GET", "/metrics", api_metrics},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
