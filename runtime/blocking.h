/* blocking.h -- the network models whose connections block: a thread per
 * connection, a process per connection (blocking.c), a pool of processes
 * that each accept and serve one connection at a time, processes of threads
 * behind a listener (blocking_pool.c). A connection is served by conn.c by
 * the thread that took it: one receive that waits for data (or a wait in
 * poll, or in an epoll set of its own: twin_config's wait_poll, wait_epoll),
 * the complete requests served, their replies sent in full. */
#ifndef BLOCKING_H
#define BLOCKING_H

#include <stddef.h>
#include <stdint.h>

#include "replay.h"

/* Serves one connection until the peer closes it; closes fd. */
void blocking_serve(replay_thread *rt, const replay_plan *plan, int fd);

/* THREAD_PER_CONN: accepts in the calling thread until SIGTERM or SIGINT;
 * then shuts every open connection down and waits for its thread. */
int blocking_thread_per_conn(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                             size_t errlen);
/* PROCESS_PER_CONN: accepts in the calling thread and forks a process for
 * each connection; on SIGTERM or SIGINT ends them and waits. */
int blocking_process_per_conn(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                              size_t errlen);
/* A process of PROCESS_POOL (a server_child_fn): accepts on the shared,
 * blocking listening socket and serves each connection to its end. */
void blocking_pool_child(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go);
/* A process of PROCESS_THREADS (a server_child_fn): a listener thread
 * accepts on the shared, blocking listening socket and queues each
 * connection for the first of cfg->threads serving threads to take. */
void blocking_threads_child(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go);
/* The pool's count of busy processes, in memory its processes share: made
 * before they are forked; then how many serve a connection now. */
int blocking_pool_init(void);
uint32_t blocking_pool_busy(void);

#endif
