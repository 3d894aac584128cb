/* Operations endpoints: no authentication (SPEC 3.7). */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "util/metrics.h"

void api_healthz(struct http_request *rq)
{
    http_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct http_request *rq)
{
    struct app *app = http_request_app(rq);
    if (store_ping(app->st) != STORE_OK) {
        http_reply_error(rq, 503, "unavailable", NULL, "storage is not reachable");
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:s}", "status", "ready"));
}

void api_metrics(struct http_request *rq)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        http_reply_error(rq, 500, "internal_error", NULL, "out of memory");
        return;
    }
    metrics_render(f);
    fclose(f);
    http_reply_raw(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
