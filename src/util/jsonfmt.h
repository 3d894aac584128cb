/* How Collie writes JSON. */
#ifndef COLLIE_UTIL_JSONFMT_H
#define COLLIE_UTIL_JSONFMT_H

#include <jansson.h>

/* Compact, and reals with 10 significant digits: jansson's default of 17
 * prints latency_ms 0.759 as 0.75900000000000001. */
#define JSONFMT_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

#endif
