/* conn.c -- one load connection (see conn.h). */
#define _GNU_SOURCE
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_READ_CHUNK 65536

void conn_init(conn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

void conn_free(conn *c)
{
    conn_close(c);
    free(c->out);
    free(c->in);
    free(c->fifo);
    conn_init(c);
}

int conn_connect(conn *c, const struct sockaddr *addr, socklen_t addr_len, int wait_ms)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = CONN_OPEN;
    if (connect(fd, addr, addr_len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        goto err;
    c->state = CONN_CONNECTING;
    if (wait_ms < 0)
        return 0;
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int n;
    do
        n = poll(&pfd, 1, wait_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        goto err;
    if (n == 0) {
        errno = ETIMEDOUT;
        goto err;
    }
    if (conn_finish_connect(c) < 0)
        goto err;
    return 0;

err:;
    int saved = errno;
    conn_close(c);
    errno = saved;
    return -1;
}

int conn_finish_connect(conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -1;
    if (soerr) {
        errno = soerr;
        return -1;
    }
    c->state = CONN_OPEN;
    return 0;
}

void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->polling_out = 0;
    c->out_off = c->out_len = 0;
    c->in_off = c->in_len = c->in_need = 0;
    c->fifo_head = c->fifo_len = c->expired = 0;
}

char *conn_out_reserve(conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return c->out + c->out_len;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= n)
            return c->out + c->out_len;
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < n)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return NULL;
    c->out = p;
    c->out_cap = cap;
    return c->out + c->out_len;
}

void conn_out_commit(conn *c, size_t n)
{
    c->out_len += n;
}

ssize_t conn_flush(conn *c)
{
    ssize_t total = 0;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->out_off += (size_t)n;
        total += n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    return total;
}

ssize_t conn_fill(conn *c)
{
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    if (c->in_cap - c->in_len < CONN_READ_CHUNK) {
        if (c->in_off > 0) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (c->in_cap - c->in_len < CONN_READ_CHUNK) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 2 * CONN_READ_CHUNK;
            char *p = realloc(c->in, cap);
            if (!p) {
                errno = ENOMEM;
                return -1;
            }
            c->in = p;
            c->in_cap = cap;
        }
    }
    ssize_t n;
    do
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        c->in_len += (size_t)n;
    return n;
}

void conn_in_consume(conn *c, size_t n)
{
    c->in_off += n;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
}

int conn_push(conn *c, const conn_pending *p)
{
    if (c->fifo_len == c->fifo_cap) {
        size_t cap = c->fifo_cap ? c->fifo_cap * 2 : 64;
        conn_pending *f = malloc(cap * sizeof *f);
        if (!f)
            return -1;
        for (size_t i = 0; i < c->fifo_len; i++)
            f[i] = *conn_at(c, i);
        free(c->fifo);
        c->fifo = f;
        c->fifo_cap = cap;
        c->fifo_head = 0;
    }
    *conn_at(c, c->fifo_len) = *p;
    c->fifo_len++;
    return 0;
}

void conn_pop(conn *c)
{
    c->fifo_head = (c->fifo_head + 1) & (c->fifo_cap - 1);
    c->fifo_len--;
    if (c->expired)
        c->expired--;
}
