#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bg.h"
#include "blocking.h"
#include "conn.h"
#include "net.h"
#include "prefork.h"

#define SERVER_MAX_EVENTS 256

/* epoll data of the loop's own fds; connections carry their conn pointer. */
enum {
    SERVER_TAG_LISTEN = 1,
    SERVER_TAG_INBOX,
    SERVER_TAG_SIGNAL
};

/* One serving loop: a pool worker thread, the event loop, or a prefork
 * process. New connections come from listen_fd (accepted here) or from the
 * inbox pipe (fds written by the acceptor; -1 means stop). */
typedef struct {
    int epfd;
    int listen_fd;
    int inbox_fd;
    int inbox_write;
    int signal_fd;
    replay_thread rt;
    int rt_ready;
    conn_set conns;
    pthread_t thread;
    int started;
} server_loop;

static int server_add(int epfd, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = { .events = events };
    ev.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? TWIN_ERR : TWIN_OK;
}

int server_signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void server_child_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void server_loop_clear(server_loop *l)
{
    memset(l, 0, sizeof *l);
    l->epfd = l->listen_fd = l->inbox_fd = l->inbox_write = l->signal_fd = -1;
}

/* Makes the loop's epoll set and serving state; the fds it is given
 * (listen_fd, signal_fd) are not its own to close. */
static int server_loop_init(server_loop *l, const replay_plan *plan, uint64_t seed, int inbox, char *err,
                            size_t errlen)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return TWIN_ERR;
    }
    if (inbox) {
        int p[2];
        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
            snprintf(err, errlen, "pipe: %s", strerror(errno));
            return TWIN_ERR;
        }
        l->inbox_fd = p[0];
        l->inbox_write = p[1];
        net_set_nonblock(p[1], 0); /* the acceptor waits rather than drop a connection */
        if (server_add(l->epfd, l->inbox_fd, EPOLLIN, SERVER_TAG_INBOX) != TWIN_OK) {
            snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
            return TWIN_ERR;
        }
    }
    /* prefork processes share the listening socket: wake one per connection */
    if (l->listen_fd >= 0 &&
        server_add(l->epfd, l->listen_fd, EPOLLIN | EPOLLEXCLUSIVE, SERVER_TAG_LISTEN) != TWIN_OK) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return TWIN_ERR;
    }
    if (l->signal_fd >= 0 && server_add(l->epfd, l->signal_fd, EPOLLIN, SERVER_TAG_SIGNAL) != TWIN_OK) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return TWIN_ERR;
    }
    if (replay_thread_init(&l->rt, plan, seed, err, errlen) != TWIN_OK)
        return TWIN_ERR;
    l->rt_ready = 1;
    conn_set_init(&l->conns, plan, &l->rt, l->epfd);
    l->conns.defer = plan->has_turn;
    return TWIN_OK;
}

static void server_loop_free(server_loop *l)
{
    if (l->rt_ready) {
        conn_close_all(&l->conns);
        replay_thread_free(&l->rt);
        l->rt_ready = 0;
    }
    if (l->inbox_fd >= 0)
        close(l->inbox_fd);
    if (l->inbox_write >= 0)
        close(l->inbox_write);
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = l->inbox_fd = l->inbox_write = -1;
}

/* An fd held in reserve: out of fds, a pending connection would keep the
 * level-triggered listening socket readable forever. Giving the reserve up
 * lets it be accepted and closed instead. One accepting thread per process
 * uses it. */
static int server_spare_fd = -1;

static void server_shed(int listen_fd)
{
    if (server_spare_fd < 0)
        return;
    close(server_spare_fd);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    server_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accepts until EAGAIN; each connection goes round-robin to the pool's
 * inboxes (the acceptor) or, without a pool, into `own`. */
static void server_accept(int listen_fd, conn_set *own, server_loop *pool, uint32_t n_pool, uint32_t *next)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                server_shed(listen_fd);
            return;
        }
        if (pool) {
            server_loop *w = &pool[*next];
            *next = (*next + 1) % n_pool;
            if (write(w->inbox_write, &fd, sizeof fd) != (ssize_t)sizeof fd)
                close(fd);
        } else {
            conn_open(own, fd);
        }
    }
}

static int server_inbox(server_loop *l)
{
    int fds[64];
    for (;;) {
        ssize_t n = read(l->inbox_fd, fds, sizeof fds);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        for (size_t i = 0; i < (size_t)n / sizeof fds[0]; i++) {
            if (fds[i] < 0)
                return 1;
            conn_open(&l->conns, fds[i]);
        }
    }
}

/* The serving loop, until a stop signal or stop message. */
static void server_serve(server_loop *l)
{
    struct epoll_event ev[SERVER_MAX_EVENTS];
    int stop = 0;
    while (!stop) {
        int n = epoll_wait(l->epfd, ev, SERVER_MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = ev[i].data.u64;
            if (tag == SERVER_TAG_LISTEN) {
                server_accept(l->listen_fd, &l->conns, NULL, 0, NULL);
            } else if (tag == SERVER_TAG_INBOX) {
                stop |= server_inbox(l);
            } else if (tag == SERVER_TAG_SIGNAL) {
                stop = 1;
            } else {
                conn_event(&l->conns, ev[i].data.ptr, ev[i].events);
            }
        }
        if (l->conns.defer)
            conn_turn_end(&l->conns);
    }
}

static void *server_worker_main(void *arg)
{
    server_serve(arg);
    return NULL;
}

int server_ready(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen)
{
    if (bg_start(plan, err, errlen) != TWIN_OK)
        return TWIN_ERR;
    if (net_open(listen_fd) != TWIN_OK) {
        snprintf(err, errlen, "listen on port %d: %s", port, strerror(errno));
        return TWIN_ERR;
    }
    printf("listening on %s:%d\n", host, port);
    fflush(stdout);
    return TWIN_OK;
}

/* The acceptor's loop in WORKER_POOL: hands connections round-robin. */
static void server_acceptor(int listen_fd, int signal_fd, server_loop *pool, uint32_t n_pool)
{
    struct epoll_event ev[16];
    uint32_t next = 0;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0 || server_add(epfd, listen_fd, EPOLLIN, SERVER_TAG_LISTEN) != TWIN_OK ||
        server_add(epfd, signal_fd, EPOLLIN, SERVER_TAG_SIGNAL) != TWIN_OK) {
        fprintf(stderr, "clone: acceptor: %s\n", strerror(errno));
        goto out;
    }
    for (;;) {
        int n = epoll_wait(epfd, ev, 16, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == SERVER_TAG_SIGNAL)
                goto out;
            server_accept(listen_fd, NULL, pool, n_pool, &next);
        }
    }
out:
    if (epfd >= 0)
        close(epfd);
}

static int server_pool(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                       size_t errlen)
{
    uint32_t n = plan->cfg->workers ? plan->cfg->workers : 1;
    int rc = TWIN_ERR, signal_fd = server_signal_fd();
    server_loop *pool = calloc(n, sizeof *pool);

    if (!pool || signal_fd < 0) {
        snprintf(err, errlen, "cannot start: %s", pool ? strerror(errno) : "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        server_loop_clear(&pool[i]);
    for (uint32_t i = 0; i < n; i++) {
        server_loop *w = &pool[i];
        if (server_loop_init(w, plan, i + 1, 1, err, errlen) != TWIN_OK)
            goto stop;
        int e = pthread_create(&w->thread, NULL, server_worker_main, w);
        if (e != 0) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(e));
            goto stop;
        }
        w->started = 1;
    }
    if (server_ready(plan, listen_fd, host, port, err, errlen) != TWIN_OK)
        goto stop;
    server_acceptor(listen_fd, signal_fd, pool, n);
    rc = TWIN_OK;
stop:
    for (uint32_t i = 0; i < n; i++) {
        if (pool[i].started) {
            int bye = -1;
            while (write(pool[i].inbox_write, &bye, sizeof bye) < 0 && errno == EINTR)
                ;
            pthread_join(pool[i].thread, NULL);
        }
        server_loop_free(&pool[i]);
    }
out:
    if (signal_fd >= 0)
        close(signal_fd);
    free(pool);
    return rc;
}

static int server_event_loop(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                             size_t errlen)
{
    server_loop l;
    int rc = TWIN_ERR;
    server_loop_clear(&l);
    l.listen_fd = listen_fd;
    l.signal_fd = server_signal_fd();
    if (l.signal_fd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return TWIN_ERR;
    }
    if (server_loop_init(&l, plan, 1, 0, err, errlen) == TWIN_OK &&
        server_ready(plan, listen_fd, host, port, err, errlen) == TWIN_OK) {
        server_serve(&l);
        rc = TWIN_OK;
    }
    close(l.signal_fd);
    server_loop_free(&l);
    return rc;
}

/* A prefork process: one epoll loop on the shared listening socket, set up (its body's memory
 * too) before it writes one byte on `ready` and serves. */
static void server_child(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go)
{
    char err[256];
    server_loop l;
    close(go); /* an epoll loop waits for the port itself */
    server_loop_clear(&l);
    l.listen_fd = listen_fd;
    l.signal_fd = server_signal_fd();
    if (l.signal_fd < 0 || server_loop_init(&l, plan, index + 1, 0, err, sizeof err) != TWIN_OK) {
        fprintf(stderr, "clone: worker process %u: %s\n", index, l.signal_fd < 0 ? strerror(errno) : err);
        _exit(1);
    }
    while (write(ready, "", 1) < 0 && errno == EINTR)
        ;
    close(ready);
    server_serve(&l);
    server_loop_free(&l);
    _exit(0);
}

int server_run(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen)
{
    int rc = TWIN_ERR;
    server_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    switch (plan->cfg->net_model) {
    case TWIN_NET_WORKER_POOL:
        rc = server_pool(plan, listen_fd, host, port, err, errlen);
        break;
    case TWIN_NET_EVENT_LOOP:
        rc = server_event_loop(plan, listen_fd, host, port, err, errlen);
        break;
    case TWIN_NET_PREFORK:
        rc = prefork_run(plan, listen_fd, host, port, err, errlen, server_child, 0);
        break;
    case TWIN_NET_PROCESS_POOL:
        /* each process waits in accept: the socket blocks, as such a pool's does */
        net_set_nonblock(listen_fd, 0);
        if (blocking_pool_init() != TWIN_OK) {
            snprintf(err, errlen, "mmap: %s", strerror(errno));
            break;
        }
        rc =
            prefork_run(plan, listen_fd, host, port, err, errlen, blocking_pool_child, plan->cfg->pool_spare);
        break;
    case TWIN_NET_PROCESS_THREADS:
        net_set_nonblock(listen_fd, 0);
        rc = prefork_run(plan, listen_fd, host, port, err, errlen, blocking_threads_child, 0);
        break;
    case TWIN_NET_THREAD_PER_CONN:
        rc = blocking_thread_per_conn(plan, listen_fd, host, port, err, errlen);
        break;
    case TWIN_NET_PROCESS_PER_CONN:
        rc = blocking_process_per_conn(plan, listen_fd, host, port, err, errlen);
        break;
    default:
        snprintf(err, errlen, "unknown network model");
    }
    bg_stop(); /* whether or not the model got as far as starting them */
    if (server_spare_fd >= 0)
        close(server_spare_fd);
    server_spare_fd = -1;
    return rc;
}
