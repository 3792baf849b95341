/* blocking_pool.c -- the blocking models of a fixed set of processes
 * (blocking.h): a pool of processes that each accept and serve one
 * connection at a time, and processes of threads behind a listener. */
#define _GNU_SOURCE
#include "blocking.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

/* Processes of the pool serving a connection now (shared by the pool's processes). */
static uint32_t *blocking_busy;

int blocking_pool_init(void)
{
    blocking_busy =
        mmap(NULL, sizeof *blocking_busy, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (blocking_busy == MAP_FAILED) {
        blocking_busy = NULL;
        return TWIN_ERR;
    }
    *blocking_busy = 0;
    return TWIN_OK;
}

uint32_t blocking_pool_busy(void)
{
    return blocking_busy ? __atomic_load_n(blocking_busy, __ATOMIC_RELAXED) : 0;
}

void blocking_pool_child(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go)
{
    char err[256], b;
    replay_thread rt;
    server_child_signals();
    if (replay_thread_init(&rt, plan, index + 1, err, sizeof err) != TWIN_OK) {
        fprintf(stderr, "clone: worker process %u: %s\n", index, err);
        _exit(1);
    }
    while (write(ready, "", 1) < 0 && errno == EINTR)
        ;
    close(ready);
    while (read(go, &b, 1) < 0 && errno == EINTR)
        ;
    close(go);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            if (blocking_busy)
                __atomic_add_fetch(blocking_busy, 1, __ATOMIC_RELAXED);
            blocking_serve(&rt, plan, fd);
            if (blocking_busy)
                __atomic_sub_fetch(blocking_busy, 1, __ATOMIC_RELAXED);
        } else if (errno == EMFILE || errno == ENFILE)
            poll(NULL, 0, 10);
    }
}

/* Processes of threads behind a listener. */

#define QUEUE_MAX 1024

typedef struct {
    pthread_mutex_t mu;
    const replay_plan *plan;
    pthread_cond_t more;
    int fds[QUEUE_MAX]; /* accepted connections no thread has taken */
    uint32_t head, len;
    uint64_t seed;
    int listen_fd;
} pt_queue;

static void *pt_listener(void *arg);

static void *pt_worker(void *arg)
{
    pt_queue *q = arg;
    char err[256];
    replay_thread rt;
    pthread_mutex_lock(&q->mu);
    uint64_t seed = q->seed++;
    pthread_mutex_unlock(&q->mu);
    if (replay_thread_init(&rt, q->plan, seed, err, sizeof err) != TWIN_OK) {
        fprintf(stderr, "clone: serving thread: %s\n", err);
        _exit(1);
    }
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->len == 0)
            pthread_cond_wait(&q->more, &q->mu);
        int fd = q->fds[q->head];
        q->head = (q->head + 1) % QUEUE_MAX;
        q->len--;
        pthread_mutex_unlock(&q->mu);
        blocking_serve(&rt, q->plan, fd);
    }
    return NULL;
}

void blocking_threads_child(const replay_plan *plan, int listen_fd, uint32_t index, int ready, int go)
{
    static pt_queue q;
    uint32_t n = plan->cfg->threads ? plan->cfg->threads : 1;
    char b;
    server_child_signals();
    q.plan = plan;
    q.seed = (uint64_t)(index + 1) << 20;
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.more, NULL);
    for (uint32_t i = 0; i < n; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, pt_worker, &q);
        if (e != 0) {
            fprintf(stderr, "clone: worker process %u: cannot start a thread: %s\n", index, strerror(e));
            _exit(1);
        }
    }
    while (write(ready, "", 1) < 0 && errno == EINTR)
        ;
    close(ready);
    while (read(go, &b, 1) < 0 && errno == EINTR)
        ;
    close(go);
    /* A listener thread accepts; this one waits for the end, as Apache's does. */
    q.listen_fd = listen_fd;
    pthread_t t;
    int e = pthread_create(&t, NULL, pt_listener, &q);
    if (e != 0) {
        fprintf(stderr, "clone: worker process %u: cannot start its listener: %s\n", index, strerror(e));
        _exit(1);
    }
    for (;;)
        pause();
}

static void *pt_listener(void *arg)
{
    pt_queue *q = arg;
    for (;;) {
        int fd = accept4(q->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                poll(NULL, 0, 10);
            continue;
        }
        pthread_mutex_lock(&q->mu);
        if (q->len < QUEUE_MAX) {
            q->fds[(q->head + q->len) % QUEUE_MAX] = fd;
            q->len++;
            pthread_cond_signal(&q->more);
        } else {
            close(fd);
        }
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}
