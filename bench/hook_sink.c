/* A webhook receiver for the creation benchmark that costs next to nothing:
 * answers every POST 200 with an empty body and counts it; GET answers
 * {"events":N}. In production the receiver runs elsewhere; on the bench
 * machine it shares the two cores with the server and wrk, and the Node
 * receiver (bench/receiver.mjs) spent ~25 us of CPU per event there.
 *
 * usage: hook_sink PORT   (listens on 127.0.0.1; exits on SIGTERM/SIGINT) */
#include <arpa/inet.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static atomic_ulong events;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req)
{
    (void)cls, (void)url, (void)version, (void)upload;
    if (!*req) { /* first call: headers only */
        *req = conn;
        return MHD_YES;
    }
    if (*upload_size) { /* body bytes: discard */
        *upload_size = 0;
        return MHD_YES;
    }
    char text[64] = "";
    if (strcmp(method, "POST") == 0)
        atomic_fetch_add(&events, 1);
    else
        snprintf(text, sizeof(text), "{\"events\":%lu}", atomic_load(&events));
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hook_sink PORT\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "hook_sink: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    printf("%lu events\n", atomic_load(&events));
    return 0;
}
