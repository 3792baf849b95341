/* load.h -- the open-loop load: connections, threads and the send schedule.
 *
 * Each thread owns its share of the connections and its own schedule of
 * intended send times (exponential gaps for Poisson arrivals, or fixed
 * gaps), at rate/threads. A request goes to the thread's next connection,
 * round-robin, whether or not earlier ones were answered (pipelining),
 * unless --max-inflight bounds the unanswered requests of all threads.
 * Latency runs from the intended send time, so a generator or server that
 * falls behind shows up as latency instead of as fewer requests sent. */
#ifndef LOAD_H
#define LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto.h"
#include "stats.h"
#include "workload.h"

#define LOAD_MAX_MARKS 8

typedef struct {
    const proto_type *proto;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const char *host; /* as given, for messages */
    int port;
    double rate;       /* intended requests/s over all threads */
    double duration_s; /* measured window */
    double warmup_s;   /* sent before the window, not recorded */
    int connections;
    int threads; /* <= connections */
    int poisson; /* else constant gaps */
    workload_spec work;
    int preload;
    uint64_t max_requests; /* bound on requests sent in all, 0 for none */
    uint64_t max_inflight; /* bound on unanswered requests over all threads, 0 for
                              none: a send due at the bound waits for an answer
                              (one at a time when it is 1) */
    uint64_t seed;
    int timeout_ms;
    /* --mark-at: before request marks[i] (0-based) goes out, every one before it answered
     * (needs --max-inflight 1), "mark K" on stdout, then a line on stdin lets it go */
    uint64_t marks[LOAD_MAX_MARKS];
    int n_marks;
} load_config;

typedef enum {
    LOAD_OK = 0,
    LOAD_ERR_CONNECT, /* the server could not be reached at start */
    LOAD_ERR_RUN      /* anything else that stops the run */
} load_status;

/* Formats the message for a failed connect to the target. */
void load_connect_message(const load_config *cfg, int err, char *buf, size_t len);

/* Connects all connections, runs warm-up and measured window, waits for the
 * last responses, and merges every thread's stats into *result, which
 * load_run initializes (the caller frees it with stats_free). */
load_status load_run(const load_config *cfg, stats *result, char *err, size_t errlen);

#endif
