#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define NET_BACKLOG 1024

int net_bind(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve --host %s: %s; give an address of this machine", host,
                 gai_strerror(rc));
        return TWIN_ERR;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto err;
    }
    /* Lets a restarted clone bind while old connections sit in TIME_WAIT; a
     * live listener on the port still makes bind fail. TCP_NODELAY is
     * inherited by accepted connections, so they cost no call for it. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            snprintf(err, errlen, "port %d is in use: %s; pick another port", port, strerror(e));
            close(fd);
            freeaddrinfo(res);
            return NET_ERR_IN_USE;
        }
        snprintf(err, errlen, "cannot bind %s:%d: %s; check --host and --port", host, port, strerror(e));
        goto err;
    }
    freeaddrinfo(res);
    return fd;
err:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return TWIN_ERR;
}

int net_open(int fd)
{
    return listen(fd, NET_BACKLOG) < 0 ? TWIN_ERR : TWIN_OK;
}

int net_set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return TWIN_ERR;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags) < 0 ? TWIN_ERR : TWIN_OK;
}

ssize_t net_recv(twin_recv_call call, int fd, void *buf, size_t n)
{
    switch (call) {
    case TWIN_RECV_RECV:
        return recvfrom(fd, buf, n, 0, NULL, NULL);
    case TWIN_RECV_RECVMSG: {
        struct iovec iov = { .iov_base = buf, .iov_len = n };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        return recvmsg(fd, &msg, 0);
    }
    case TWIN_RECV_READ:
    default:
        return read(fd, buf, n);
    }
}

ssize_t net_send(twin_send_call call, int fd, const struct iovec *iov, int cnt)
{
    switch (call) {
    case TWIN_SEND_SENDTO:
        return sendto(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL, NULL, 0);
    case TWIN_SEND_SENDMSG: {
        struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
        return sendmsg(fd, &msg, MSG_NOSIGNAL);
    }
    case TWIN_SEND_WRITEV:
        return writev(fd, iov, cnt);
    case TWIN_SEND_WRITE:
    default:
        return write(fd, iov[0].iov_base, iov[0].iov_len);
    }
}
