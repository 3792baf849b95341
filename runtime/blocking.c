#define _GNU_SOURCE
#include "blocking.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "net.h"
#include "server.h"

/* How long a stop waits for connection threads to end. */
#define BLOCKING_STOP_MS 5000

/* A blocking receive waits for data; with wait_poll, poll(2) waits before each receive; with
 * wait_epoll, the connection's own epoll set (conn_open adds the socket to it, conn_event
 * switches it to EPOLLOUT while a send waits) is waited in only when a receive found nothing. */
void blocking_serve(replay_thread *rt, const replay_plan *plan, int fd)
{
    const twin_config *cfg = plan->cfg;
    int epfd = -1, idle = 0;
    conn_set s;
    if (cfg->wait_epoll && (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        close(fd);
        return;
    }
    conn_set_init(&s, plan, rt, epfd);
    s.blocking = !cfg->wait_poll && !cfg->wait_epoll;
    if (!s.blocking)
        net_set_nonblock(fd, 1);
    if (conn_open(&s, fd)) {
        while (s.head) {
            if (cfg->wait_poll) {
                struct pollfd p = { .fd = fd, .events = s.head->events & EPOLLOUT ? POLLOUT : POLLIN };
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                    break;
            } else if (epfd >= 0 && (idle || s.head->events & EPOLLOUT)) {
                struct epoll_event ev;
                if (epoll_wait(epfd, &ev, 1, -1) < 0) {
                    if (errno == EINTR)
                        continue;
                    break;
                }
            }
            idle = conn_event(&s, s.head, EPOLLIN) == CONN_IDLE;
        }
    }
    conn_close_all(&s);
    if (epfd >= 0)
        close(epfd);
}

/* Waits for a connection or a stop signal (signal_fd readable): the new
 * connection's fd (blocking), or -1 to stop. SIGCHLD, when signal_fd takes
 * it, calls reap. */
static int blocking_accept(int listen_fd, int signal_fd, void (*reap)(void *), void *arg)
{
    for (;;) {
        struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = signal_fd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            int stop = 0;
            while (read(signal_fd, &si, sizeof si) == (ssize_t)sizeof si)
                if (si.ssi_signo == SIGCHLD && reap)
                    reap(arg);
                else if (si.ssi_signo != SIGCHLD)
                    stop = 1;
            if (stop)
                return -1;
        }
        if (p[0].revents) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                return fd;
            if (errno == EMFILE || errno == ENFILE)
                poll(NULL, 0, 10); /* the pending connection waits for an fd */
        }
    }
}

/* A thread per connection. */

typedef struct tpc_conn {
    struct tpc_server *srv;
    int fd; /* -1 once its thread has served it */
    uint64_t seed;
    struct tpc_conn *prev, *next;
} tpc_conn;

typedef struct tpc_server {
    const replay_plan *plan;
    pthread_mutex_t mu;
    pthread_cond_t gone;
    tpc_conn *head; /* connections whose threads run */
} tpc_server;

static void *tpc_main(void *arg)
{
    tpc_conn *c = arg;
    tpc_server *srv = c->srv;
    char err[256];
    replay_thread rt;
    if (replay_thread_init(&rt, srv->plan, c->seed, err, sizeof err) == TWIN_OK) {
        blocking_serve(&rt, srv->plan, c->fd);
        replay_thread_free(&rt);
    } else {
        fprintf(stderr, "clone: connection thread: %s\n", err);
        close(c->fd);
    }
    pthread_mutex_lock(&srv->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_cond_broadcast(&srv->gone);
    pthread_mutex_unlock(&srv->mu);
    free(c);
    return NULL;
}

int blocking_thread_per_conn(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                             size_t errlen)
{
    tpc_server srv = { .plan = plan };
    pthread_attr_t attr;
    uint64_t seed = 1;
    int signal_fd = server_signal_fd();
    if (signal_fd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return TWIN_ERR;
    }
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.gone, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = server_ready(plan, listen_fd, host, port, err, errlen);
    if (rc == TWIN_OK) {
        for (int fd; (fd = blocking_accept(listen_fd, signal_fd, NULL, NULL)) >= 0;) {
            tpc_conn *c = calloc(1, sizeof *c);
            if (!c) {
                close(fd);
                continue;
            }
            *c = (tpc_conn){ .srv = &srv, .fd = fd, .seed = seed++ };
            pthread_mutex_lock(&srv.mu);
            c->next = srv.head;
            if (srv.head)
                srv.head->prev = c;
            srv.head = c;
            pthread_t t;
            int e = pthread_create(&t, &attr, tpc_main, c);
            if (e != 0) {
                srv.head = c->next;
                if (c->next)
                    c->next->prev = NULL;
                close(fd);
                free(c);
            }
            pthread_mutex_unlock(&srv.mu);
        }
        /* Stop: a connection's thread waits in a receive; shutting its socket down ends it. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += BLOCKING_STOP_MS / 1000;
        pthread_mutex_lock(&srv.mu);
        for (tpc_conn *c = srv.head; c; c = c->next)
            shutdown(c->fd, SHUT_RDWR);
        while (srv.head && pthread_cond_timedwait(&srv.gone, &srv.mu, &until) == 0)
            ;
        pthread_mutex_unlock(&srv.mu);
    }
    pthread_attr_destroy(&attr);
    close(signal_fd);
    return rc;
}

/* A process per connection. */

typedef struct {
    pid_t *pids;
    uint32_t n, cap;
} ppc_children;

static void ppc_reap(void *arg)
{
    ppc_children *k = arg;
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        for (uint32_t i = 0; i < k->n; i++)
            if (k->pids[i] == pid) {
                k->pids[i] = k->pids[--k->n];
                break;
            }
}

int blocking_process_per_conn(const replay_plan *plan, int listen_fd, const char *host, int port, char *err,
                              size_t errlen)
{
    ppc_children kids = { 0 };
    pid_t parent = getpid();
    uint64_t seed = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    int signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return TWIN_ERR;
    }
    /* Each connection's process starts from a copy of this one, its body memory set up once:
     * setting it up in every process cost as much as a request's work many times over (a
     * database's footprint, 200 ms a connection). */
    replay_thread tmpl;
    if (replay_thread_init(&tmpl, plan, seed, err, errlen) != TWIN_OK) {
        close(signal_fd);
        return TWIN_ERR;
    }
    int rc = server_ready(plan, listen_fd, host, port, err, errlen);
    if (rc != TWIN_OK) {
        replay_thread_free(&tmpl);
        close(signal_fd);
        return rc;
    }
    for (int fd; (fd = blocking_accept(listen_fd, signal_fd, ppc_reap, &kids)) >= 0; close(fd)) {
        if (kids.n == kids.cap) {
            uint32_t cap = kids.cap ? 2 * kids.cap : 64;
            pid_t *p = realloc(kids.pids, cap * sizeof *p);
            if (!p)
                continue;
            kids.pids = p;
            kids.cap = cap;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            char cerr[256];
            replay_thread rt = tmpl;
            close(signal_fd);
            close(listen_fd);
            server_child_signals();
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(0);
            if (replay_thread_forked(&rt, seed, cerr, sizeof cerr) != TWIN_OK) {
                fprintf(stderr, "clone: connection process: %s\n", cerr);
                _exit(1);
            }
            blocking_serve(&rt, plan, fd);
            _exit(0);
        }
        if (pid > 0)
            kids.pids[kids.n++] = pid;
        seed++;
    }
    for (uint32_t i = 0; i < kids.n; i++)
        kill(kids.pids[i], SIGTERM);
    for (uint32_t i = 0; i < kids.n; i++)
        while (waitpid(kids.pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    free(kids.pids);
    replay_thread_free(&tmpl);
    close(signal_fd);
    return TWIN_OK;
}
