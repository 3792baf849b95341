/* conn.h -- one load connection: a non-blocking TCP socket, its byte
 * buffers, and the FIFO of requests waiting for their responses.
 *
 * Responses come back in request order, so the FIFO head is always the
 * request the next response answers. The event loop that drives a conn
 * (epoll registration, timers) belongs to load.c. */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct {
    uint64_t intended_ns; /* when the schedule meant to send it */
    uint64_t sent_ns;     /* when it was handed to the socket */
    uint32_t req_bytes;
    uint32_t key;     /* the key's number, UINT32_MAX past it */
    uint16_t op;      /* index in the request mix */
    uint8_t measured; /* intended inside the measured window */
} conn_pending;

typedef enum {
    CONN_CLOSED = 0,
    CONN_CONNECTING, /* non-blocking connect in progress */
    CONN_OPEN
} conn_state;

typedef struct {
    int fd;
    conn_state state;
    int reconnects_left;
    int polling_out; /* EPOLLOUT registered: output waits for room */

    char *out; /* [out_off, out_len) not yet accepted by the socket */
    size_t out_off, out_len, out_cap;

    char *in; /* [in_off, in_len) received, not yet matched */
    size_t in_off, in_len, in_cap;
    size_t in_need; /* parse again once in_len - in_off reaches this */

    conn_pending *fifo; /* ring of requests awaiting responses, oldest first */
    size_t fifo_head, fifo_len, fifo_cap;
    size_t expired; /* leading entries already counted as timeouts */
} conn;

void conn_init(conn *c);
void conn_free(conn *c);

/* Opens a non-blocking TCP socket with TCP_NODELAY to addr. With wait_ms
 * >= 0, waits up to that long and returns 0 only when connected; with
 * wait_ms < 0 the conn may be left CONNECTING (finish with
 * conn_finish_connect once writable). On failure returns -1 with errno set
 * and the conn CLOSED. */
int conn_connect(conn *c, const struct sockaddr *addr, socklen_t addr_len, int wait_ms);
/* After a CONNECTING conn became writable: 0 and OPEN, or -1 with errno. */
int conn_finish_connect(conn *c);
/* Closes the socket and drops buffered bytes and pending requests. */
void conn_close(conn *c);

/* Room for n more output bytes at the returned pointer, or NULL. */
char *conn_out_reserve(conn *c, size_t n);
void conn_out_commit(conn *c, size_t n);
/* Writes buffered output until done or the socket is full. Returns the
 * bytes written, or -1 with errno when the connection failed. */
ssize_t conn_flush(conn *c);
static inline size_t conn_out_pending(const conn *c)
{
    return c->out_len - c->out_off;
}

/* One read into the input buffer: bytes read, 0 at end of stream, -1 with
 * errno (EAGAIN when nothing is there). */
ssize_t conn_fill(conn *c);
static inline const char *conn_in_data(const conn *c)
{
    return c->in + c->in_off;
}
static inline size_t conn_in_size(const conn *c)
{
    return c->in_len - c->in_off;
}
void conn_in_consume(conn *c, size_t n);

/* 0, or -1 when out of memory. */
int conn_push(conn *c, const conn_pending *p);
/* The i-th oldest pending request (i < fifo_len). */
static inline conn_pending *conn_at(conn *c, size_t i)
{
    return &c->fifo[(c->fifo_head + i) & (c->fifo_cap - 1)];
}
void conn_pop(conn *c);

#endif
