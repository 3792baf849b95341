/* prefork.h -- the models whose main process forks `workers` worker processes
 * that share its listening socket (PREFORK, PROCESS_POOL, PROCESS_THREADS),
 * then waits for a stop signal or a worker that exits. */
#ifndef PREFORK_H
#define PREFORK_H

#include <stddef.h>
#include <stdint.h>

#include "replay.h"
#include "server.h"

/* Forks the workers, each running `child` (which never returns), opens the port once each has
 * said it is set up, and serves until SIGTERM or SIGINT (TWIN_OK) or a worker's exit (TWIN_ERR);
 * then ends the workers and waits for them. With `spare`, a process pool keeps that many
 * processes idle beside the busy ones, up to pool_max. */
int prefork_run(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen,
                server_child_fn child, uint32_t spare);

#endif
