/* server.h -- the three network models of twin.h (worker pool, event loop,
 * prefork) over one listening socket.
 *
 * Threads: WORKER_POOL runs the acceptor in the calling thread plus
 * `workers` serving threads; EVENT_LOOP serves in the calling thread;
 * PREFORK forks `workers` single-threaded processes and waits. Background
 * threads run in the calling process in every model. SIGTERM and SIGINT
 * must be blocked in the calling thread before server_run (every thread
 * inherits the mask); they stop it. */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>

#include "replay.h"

/* Serves until SIGTERM or SIGINT, printing "listening on HOST:PORT" once
 * ready. TWIN_ERR with a message in err if it could not start or a worker
 * process died. */
int server_run(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen);

#endif
