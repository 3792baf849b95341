/* preload.h -- sets every key once before the load, so that GETs hit (and
 * fills its list and hash, and makes its counter, when the mix reads or writes
 * those). */
#ifndef PRELOAD_H
#define PRELOAD_H

#include <stddef.h>

#include "load.h"

/* Sets keys 0..keys-1 in order, one request at a time on one connection,
 * with values drawn from the first SET in the mix (100 bytes when none).
 * When the mix has LPUSH or LRANGE, each key's list also gets a few values
 * sized by the first LPUSH, and with HSET or HGET its hash every field,
 * sized by the first HSET (100 bytes when none).
 * Does nothing for protocols without SET. Any failure or error response
 * stops it: LOAD_ERR_CONNECT when the server cannot be reached, else
 * LOAD_ERR_RUN, with one line in err. */
load_status preload_run(const load_config *cfg, char *err, size_t errlen);

#endif
