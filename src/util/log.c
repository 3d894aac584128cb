#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/clock.h"

/* Set once before threads start; read-only afterwards. */
static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char ts[CLOCK_RFC3339_LEN];
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "%s %s %s: %s\n", clock_format_rfc3339(clock_now_ms(), ts), names[level],
            module, line);
}
