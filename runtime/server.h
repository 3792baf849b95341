/* server.h -- the network models of twin.h over one listening socket.
 *
 * Threads: WORKER_POOL runs the acceptor in the calling thread plus
 * `workers` serving threads; EVENT_LOOP serves in the calling thread;
 * PREFORK and PROCESS_POOL fork `workers` single-threaded processes and
 * wait (prefork.h); THREAD_PER_CONN and PROCESS_PER_CONN accept in the
 * calling thread and start a thread or a process for each connection
 * (blocking.h). In every model the background threads start (bg.h) once the
 * model is set up, just before the port opens: threads of the calling
 * process, or processes it forks. SIGTERM and SIGINT must be blocked in the
 * calling thread before server_run (every thread inherits the mask); they
 * stop it. */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "replay.h"

/* Serves until SIGTERM or SIGINT, printing "listening on HOST:PORT" once
 * ready. TWIN_ERR with a message in err if it could not start or a worker
 * process died. */
int server_run(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen);

/* The model is set up (every worker): starts the background threads and
 * processes, opens the port (listen) and prints "listening on HOST:PORT".
 * Called by each model once, from the main thread; server_run stops the
 * background threads when the model returns. */
int server_ready(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                 size_t errlen);
/* A non-blocking signalfd for SIGTERM and SIGINT. */
int server_signal_fd(void);
/* In a forked process that serves or runs in the background: stop signals end
 * it at once (it holds nothing to clean). */
void server_child_signals(void);

/* A worker process of a pool: set up, it writes one byte on `ready`; it may serve once `go`
 * reads end of file (the port open). It never returns. */
typedef void (*server_child_fn)(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go);

#endif
