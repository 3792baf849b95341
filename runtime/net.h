/* net.h -- the listening socket and the receive/send calls a clone is
 * configured to make. net_recv and net_send issue exactly one system call of
 * the configured kind, so that per-request counts match the profile. */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "twin.h"

#define NET_ERR_IN_USE -2

/* Binds a socket to host:port, non-blocking and close-on-exec (net_open then
 * listens on it). Returns the fd, NET_ERR_IN_USE when the port is taken, or
 * TWIN_ERR; err gets a message in both error cases. */
int net_bind(const char *host, int port, char *err, size_t errlen);
/* Starts listening on a socket net_bind bound: once the server can serve (its workers set
 * up), so that a client that finds the port open finds it ready. */
int net_open(int fd);

int net_set_nonblock(int fd, int on);
ssize_t net_recv(twin_recv_call call, int fd, void *buf, size_t n);
/* Sends `cnt` pieces in one call: sendmsg and writev gather them; write and
 * sendto send the first alone. */
ssize_t net_send(twin_send_call call, int fd, const struct iovec *iov, int cnt);

#endif
