/* conn.h -- one client connection served by one thread's epoll loop.
 *
 * Level-triggered. A readable connection is received from with the
 * configured call; every complete request in the buffer is served (steps,
 * body, reply appended) and all replies of that batch go out in one call of
 * the configured send. With recv_until_eagain it then receives again until
 * EAGAIN. A send that cannot finish switches the connection to EPOLLOUT
 * (and stops reading it) until its output is gone: the only epoll_ctl a
 * connection costs after it is added, besides the profile's own.
 *
 * Without an epoll set (epfd -1) a connection is served by a thread of its
 * own, which waits for it (blocking.c): conn_event on a blocking socket
 * receives once (waiting for data), serves and sends in full;
 * recv_until_eagain is applied to a non-blocking one only. Such a thread may
 * also wait in an epoll set of the connection's own (wait_epoll), given as
 * epfd: conn_event's result tells it when to.
 *
 * Where the profile has steps made once a turn (TWIN_STEP_TURN), an event loop
 * that sets `defer` holds each connection's replies until conn_turn_end, which
 * makes those steps once and then sends them all (Redis writes and syncs its
 * log, then replies, once a turn); elsewhere a connection's batch is its turn. */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <stdint.h>

#include "lock.h"
#include "proto.h"
#include "replay.h"

typedef struct conn {
    int fd;
    uint32_t events; /* current epoll interest */
    char *in;
    size_t in_len;
    size_t in_cap;
    proto_buf out;  /* what a send could not finish */
    size_t out_off; /* bytes of out already sent */
    int closing;    /* close once out is sent */
    struct conn *prev;
    struct conn *next;
    uint64_t *body_mem; /* the body's lines of this connection (twin_body_ctx) */
    lock_hold locks;    /* its serialized sections (twin_lock) */
    int held;           /* its replies wait in out for the turn's end (conn_set.turn) */
} conn;

#define CONN_SPARES   8
#define CONN_TURN_MAX 256 /* connections whose replies wait for a turn's end */

/* The connections of one serving thread (or prefork process). */
typedef struct {
    const twin_config *cfg;
    const replay_plan *plan;
    const proto_ops *proto;
    replay_thread *rt;
    int epfd;     /* the loop's set, or the connection's own; -1: none (a blocking model) */
    int blocking; /* its socket blocks: receive once */
    conn *head;
    /* This batch's replies: one buffer per thread, so that the lines replies are
     * written to stay few and hot, as they are where an original sends from its
     * own buffers or from files. */
    proto_buf out;
    /* Input buffers no connection holds, the last given back first taken: a
     * connection holds one only while it has bytes to serve, so that requests
     * are parsed from the same few hot lines whichever connection they came
     * on, as where an original reads into a buffer it frees once served. */
    char *spare[CONN_SPARES];
    uint32_t n_spare;
    /* Replies held to the turn's end (defer: an event loop with once-a-turn steps). */
    int defer;
    conn *turn[CONN_TURN_MAX];
    uint32_t n_turn;
    uint64_t errors;   /* connections dropped on an error */
    uint64_t requests; /* complete requests served */
} conn_set;

/* conn_event's result when its last receive found nothing (EAGAIN) and it
 * served no request: the connection waits for input. */
#define CONN_IDLE 1

void conn_set_init(conn_set *s, const replay_plan *plan, replay_thread *rt, int epfd);
/* Takes a new non-blocking connection; closes fd on failure. */
conn *conn_open(conn_set *s, int fd);
/* Receives, serves and sends (or sends what waited); CONN_IDLE, or 0 (also
 * once it has closed the connection). */
int conn_event(conn_set *s, conn *c, uint32_t events);
void conn_close(conn_set *s, conn *c);
/* The end of an event loop's turn: its once-a-turn steps, then the replies held for it. */
void conn_turn_end(conn_set *s);
void conn_close_all(conn_set *s);

#endif
