#define _GNU_SOURCE
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_mem.h"
#include "net.h"

#define CONN_IN_START 16384
#define CONN_IN_MAX   (PROTO_MAX_REQUEST + 65536)
/* Receiving until EAGAIN stops early, to send and to let other connections
 * be served, after this many receives or this much output. */
#define CONN_MAX_RECVS 64
#define CONN_OUT_HIGH  (1u << 20)
/* A batch's replies go out once they reach this much, and serving goes on
 * after: however many requests arrive pipelined (a server that falls behind,
 * as under Valgrind, finds dozens), the replies are written to the same few
 * lines, so that the lines a request touches do not depend on how many came
 * with it. */
#define CONN_OUT_BATCH 8192u

enum {
    CONN_FLUSHED,
    CONN_PENDING,
    CONN_DEAD
};
/* conn_serve's outcomes besides TWIN_OK and TWIN_ERR. */
enum {
    SERVE_STALLED = 1,
    SERVE_GONE = 2
};

void conn_set_init(conn_set *s, const replay_plan *plan, replay_thread *rt, int epfd)
{
    memset(s, 0, sizeof *s);
    s->cfg = plan->cfg;
    s->plan = plan;
    s->proto = proto_get(plan->cfg->protocol);
    s->rt = rt;
    s->epfd = epfd;
    s->out.gather = s->cfg->send_call == TWIN_SEND_SENDMSG || s->cfg->send_call == TWIN_SEND_WRITEV;
}

/* The connection's input buffer, the spare last given back if any. */
static int conn_take_in(conn_set *s, conn *c)
{
    if (c->in)
        return TWIN_OK;
    c->in = s->n_spare ? s->spare[--s->n_spare] : malloc(CONN_IN_START);
    if (!c->in)
        return TWIN_ERR;
    c->in_cap = CONN_IN_START;
    c->in_len = 0;
    return TWIN_OK;
}

/* Gives an emptied input buffer back (one grown past the start size is freed). */
static void conn_give_in(conn_set *s, conn *c)
{
    if (!c->in || c->in_len)
        return;
    if (c->in_cap == CONN_IN_START && s->n_spare < CONN_SPARES)
        s->spare[s->n_spare++] = c->in;
    else
        free(c->in);
    c->in = NULL;
    c->in_cap = 0;
}

conn *conn_open(conn_set *s, int fd)
{
    /* (the size first: calloc(1, 88) after this prologue is a byte run found
     * in other programs' code) */
    conn *c = calloc(sizeof *c, 1);
    if (!c)
        goto err;
    c->fd = fd;
    c->events = EPOLLIN;
    if (s->cfg->body_conn_lines && !(c->body_mem = conn_body_mem(s->cfg->body_conn_lines)))
        goto err;
    struct epoll_event ev = { .events = c->events, .data.ptr = c };
    if (s->epfd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        goto err;
    c->next = s->head;
    if (s->head)
        s->head->prev = c;
    s->head = c;
    return c;
err:
    if (c)
        free(c->body_mem);
    free(c);
    close(fd);
    s->errors++;
    return NULL;
}

void conn_close(conn_set *s, conn *c)
{
    for (uint32_t i = 0; c->held && i < s->n_turn; i++)
        if (s->turn[i] == c)
            s->turn[i] = NULL;
    if (s->plan->locks)
        lock_drop(s->cfg, s->plan->locks, &c->locks);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd); /* also leaves the epoll set */
    c->in_len = 0;
    conn_give_in(s, c);
    proto_buf_free(&c->out);
    free(c->body_mem);
    free(c);
}

void conn_close_all(conn_set *s)
{
    while (s->head)
        conn_close(s, s->head);
    proto_buf_free(&s->out);
    while (s->n_spare)
        free(s->spare[--s->n_spare]);
}

static int conn_want(conn_set *s, conn *c, uint32_t events)
{
    if (c->events == events || s->epfd < 0) {
        c->events = events;
        return TWIN_OK;
    }
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return TWIN_ERR;
    c->events = events;
    return TWIN_OK;
}

/* One send call for everything pending: the connection's own output, left by
 * a send that could not finish, or else the thread's, this batch's replies. What
 * a send leaves of the thread's output moves to the connection's. */
static __thread struct iovec conn_iov[PROTO_IOV_MAX]; /* the pieces of a send */

static int conn_flush(conn_set *s, conn *c)
{
    proto_buf *b = &s->out;
    size_t off = 0;
    if (c->out.wire) {
        b = &c->out;
        off = c->out_off;
    }
    if (off < b->wire) {
        int cnt = proto_buf_pieces(b, off, conn_iov, PROTO_IOV_MAX);
        ssize_t n;
        do
            n = net_send(s->cfg->send_call, c->fd, conn_iov, cnt);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            proto_buf_clear(&s->out);
            return CONN_DEAD;
        }
        if (n > 0)
            off += (size_t)n;
    }
    if (off < b->wire) {
        if (b == &s->out) {
            int ok = proto_buf_append_tail(&c->out, &s->out, off);
            proto_buf_clear(&s->out);
            if (ok != TWIN_OK)
                return CONN_DEAD;
            off = 0;
        }
        c->out_off = off;
        return conn_want(s, c, EPOLLOUT) == TWIN_OK ? CONN_PENDING : CONN_DEAD;
    }
    proto_buf_clear(b);
    c->out_off = 0;
    if (c->closing)
        return CONN_DEAD;
    return conn_want(s, c, EPOLLIN) == TWIN_OK ? CONN_FLUSHED : CONN_DEAD;
}

static int conn_grow(conn *c, size_t need)
{
    size_t cap = c->in_cap * 2;
    if (cap < need)
        cap = need;
    if (cap > CONN_IN_MAX)
        cap = CONN_IN_MAX;
    if (cap <= c->in_cap)
        return TWIN_ERR;
    char *p = realloc(c->in, cap);
    if (!p)
        return TWIN_ERR;
    c->in = p;
    c->in_cap = cap;
    return TWIN_OK;
}

/* Serves every complete request in the input buffer, its replies into the
 * thread's output (a connection is served only once its own is sent), sent
 * on whenever they reach CONN_OUT_BATCH. Returns TWIN_OK; SERVE_STALLED when
 * such a send could not finish, the rest waiting in the buffer until it has;
 * SERVE_GONE when the peer is gone; TWIN_ERR on an error of the server's. */
static int conn_serve(conn_set *s, conn *c)
{
    size_t off = 0, need = 0;
    int stalled = 0;
    replay_sock sock = { .epfd = s->epfd, .fd = c->fd, .ptr = c };

    while (off < c->in_len && !c->closing) {
        proto_req req;
        long n = s->proto->parse(c->in + off, c->in_len - off, &req);
        if (n == PROTO_MORE) {
            need = req.need;
            break;
        }
        if (n < 0) { /* answer the error, drop the rest, close once it is sent */
            if (proto_buf_append(&s->out, req.reply, req.reply_len) != TWIN_OK)
                return TWIN_ERR;
            c->closing = 1;
            break;
        }
        off += (size_t)n;
        s->requests++;
        if (req.kind != PROTO_REQ_NONE) {
            int named;
            uint32_t op = replay_op_of(s->plan, req.verb, req.verb_len, &named);
            sock.events = c->events;
            s->rt->body.conn_mem = c->body_mem;
            if (s->plan->locks)
                lock_before(s->cfg, s->plan->locks, &c->locks, op, &s->rt->rng);
            replay_request(s->rt, op, &sock);
            if (s->plan->locks)
                lock_after(s->cfg, s->plan->locks, &c->locks, op);
            uint32_t size = replay_resp_size(s->rt, op, req.key, req.key_len);
            if (!req.noreply && s->proto->respond(&req, named, size, &s->out) != TWIN_OK)
                return TWIN_ERR;
        } else if (req.reply_len && proto_buf_append(&s->out, req.reply, req.reply_len) != TWIN_OK) {
            return TWIN_ERR;
        }
        if (req.close)
            c->closing = 1;
        if (s->out.wire >= CONN_OUT_BATCH && off < c->in_len && !c->closing) {
            int r = conn_flush(s, c);
            replay_after(s->rt, &sock);
            if (r == CONN_DEAD)
                return SERVE_GONE;
            if (r == CONN_PENDING) {
                stalled = 1;
                break;
            }
        }
    }
    if (c->closing) {
        c->in_len = 0;
        return TWIN_OK;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (stalled)
        return SERVE_STALLED;
    if ((c->in_len == c->in_cap || need > c->in_cap) && conn_grow(c, need) != TWIN_OK)
        return TWIN_ERR; /* the parsers refuse requests larger than the buffer can grow */
    return TWIN_OK;
}

/* Serves the connection's complete requests; whether its event goes on: not
 * when a send stalled (the rest waits for it) or the connection was closed (the
 * peer gone, or an error of the server's, counted). */
static int conn_serve_on(conn_set *s, conn *c)
{
    int r = conn_serve(s, c);
    if (r == TWIN_OK)
        return 1;
    if (r != SERVE_STALLED) {
        if (r != SERVE_GONE)
            s->errors++;
        proto_buf_clear(&s->out);
        conn_close(s, c);
    }
    return 0;
}

/* conn_flush, then what the server does once its replies are sent (replay_after). */
static __attribute__((noinline)) int conn_send(conn_set *s, conn *c)
{
    int r = conn_flush(s, c);
    replay_sock sock = { .epfd = s->epfd, .fd = c->fd, .events = c->events, .ptr = c };
    replay_after(s->rt, &sock);
    return r;
}

int conn_event(conn_set *s, conn *c, uint32_t events)
{
    int more = 1, recvs = 0, eagain = 0, r;
    uint64_t requests = s->requests;
    (void)events; /* level-triggered: the interest set says what to do */
    if (c->events & EPOLLOUT) {
        r = conn_flush(s, c);
        if (r == CONN_DEAD)
            conn_close(s, c);
        /* Requests left waiting by a stalled batch are served now. */
        if (r != CONN_FLUSHED || c->in_len == 0) {
            if (r != CONN_DEAD)
                conn_give_in(s, c);
            return 0;
        }
        more = 0;
    }
    if (conn_take_in(s, c) != TWIN_OK) {
        s->errors++;
        conn_close(s, c);
        return 0;
    }
    /* Receive (until EAGAIN if so configured), serve the batch, send once.
     * The EAGAIN receive comes before the send, so that a client waiting
     * for its reply cannot race it: 2 receives per request at low load. */
    while (more && !c->closing) {
        if (c->in_len == c->in_cap) { /* make room: serve what is complete */
            if (!conn_serve_on(s, c))
                return 0;
            if (c->closing)
                break;
        }
        ssize_t n = net_recv(s->cfg->recv_call, c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            more = s->cfg->recv_until_eagain && !s->blocking && ++recvs < CONN_MAX_RECVS &&
                   s->out.wire < CONN_OUT_HIGH;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            more = 0;
            eagain = 1;
        } else { /* end of stream or a socket error: answer what came, then close */
            if (!conn_serve_on(s, c))
                return 0;
            c->closing = 1;
            more = 0;
        }
    }
    if (!conn_serve_on(s, c))
        return 0;
    if (s->defer && s->n_turn < CONN_TURN_MAX && !c->closing) {
        /* held for the turn's end: moved to the connection's own output */
        if (s->out.wire && proto_buf_append_tail(&c->out, &s->out, 0) != TWIN_OK) {
            s->errors++;
            conn_close(s, c);
            return 0;
        }
        proto_buf_clear(&s->out);
        if (!c->held && c->out.wire) {
            c->held = 1;
            s->turn[s->n_turn++] = c;
        }
        conn_give_in(s, c);
        return eagain && s->requests == requests ? CONN_IDLE : 0;
    }
    replay_turn(s->rt);
    if (conn_send(s, c) == CONN_DEAD) {
        conn_close(s, c);
        return 0;
    }
    conn_give_in(s, c);
    return eagain && s->requests == requests ? CONN_IDLE : 0;
}

void conn_turn_end(conn_set *s)
{
    replay_turn(s->rt);
    for (uint32_t i = 0; i < s->n_turn; i++) {
        conn *c = s->turn[i];
        if (!c)
            continue;
        c->held = 0;
        if (conn_send(s, c) == CONN_DEAD)
            conn_close(s, c);
    }
    s->n_turn = 0;
}
