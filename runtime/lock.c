/* lock.c -- serialized sections. Each way of a section is a word in memory
 * shared by every process: 0 free, 1 held, 2 held with waiters (U. Drepper,
 * "Futexes Are Tricky", mutex 2). A waiter sleeps in one of two ways, as the
 * original's waits did:
 *   futex  in FUTEX_WAIT on the word (not private: the processes share it),
 *          woken by the giver's FUTEX_WAKE;
 *   latch  in epoll_wait on a signalfd of SIGURG of its thread's own, having
 *          put itself in the way's slots; the giver signals the first come
 *          with kill (tgkill to a thread of a process of threads), and the
 *          waiter reads the signal and tries the word again (the latches a
 *          PostgreSQL backend sleeps on when a row it updates is locked). */
#define _GNU_SOURCE
#include "lock.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int lock_model_ok(twin_net_model m)
{
    return m == TWIN_NET_THREAD_PER_CONN || m == TWIN_NET_PROCESS_POOL || m == TWIN_NET_PROCESS_PER_CONN ||
           m == TWIN_NET_PROCESS_THREADS;
}

static size_t lock_count(const twin_config *cfg)
{
    size_t n = 0;
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++)
        n += cfg->locks[i].ways;
    return n;
}

lock_way *lock_ways_map(const twin_config *cfg)
{
    size_t n = lock_count(cfg);
    void *m = n ? mmap(NULL, n * sizeof(lock_way), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                : MAP_FAILED;
    return m == MAP_FAILED ? NULL : m; /* (anonymous memory starts zeroed: every way free) */
}

void lock_ways_unmap(const twin_config *cfg, lock_way *ways)
{
    if (ways)
        munmap(ways, lock_count(cfg) * sizeof(lock_way));
}

static int64_t lock_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A thread's latch: its epoll set holding a signalfd of SIGURG (blocked in the
 * thread, so that the signal waits in the fd), and its ids for the giver. */
static __thread struct {
    int ep, sfd;
    int32_t pid, tid;
} latch = { -1, -1, 0, 0 };

static void latch_close(void)
{
    if (latch.ep >= 0)
        close(latch.ep);
    if (latch.sfd >= 0)
        close(latch.sfd);
    latch.ep = latch.sfd = -1;
}

static int latch_open(void)
{
    if (latch.ep >= 0)
        return 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    latch.sfd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
    latch.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    if (latch.sfd < 0 || latch.ep < 0 || epoll_ctl(latch.ep, EPOLL_CTL_ADD, latch.sfd, &ev) < 0) {
        latch_close();
        return 0;
    }
    latch.pid = (int32_t)getpid();
    latch.tid = (int32_t)syscall(SYS_gettid);
    return 1;
}

/* Sleeps until the thread's latch is signalled or `left_ns` pass, and takes
 * the signal. */
static void latch_wait(int64_t left_ns)
{
    struct epoll_event ev;
    int ms = (int)((left_ns + 999999) / 1000000);
    if (epoll_wait(latch.ep, &ev, 1, ms) > 0) {
        struct signalfd_siginfo si;
        if (read(latch.sfd, &si, sizeof si) < 0) {
            /* taken already: a stale signal woke it */
        }
    }
}

/* Puts the thread in w's slots, waiting; NULL where they are full. */
static lock_waiter *latch_enter(lock_way *w)
{
    for (int i = 0; i < LOCK_SLOTS; i++) {
        lock_waiter *s = &w->slots[i];
        uint32_t free_state = 0;
        if (__atomic_compare_exchange_n(&s->state, &free_state, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            s->pid = latch.pid;
            s->tid = latch.tid;
            s->ticket = __atomic_fetch_add(&w->tickets, 1, __ATOMIC_RELAXED);
            __atomic_store_n(&s->state, 2, __ATOMIC_SEQ_CST);
            return s;
        }
    }
    return NULL;
}

/* Signals w's first come waiter that has not been signalled yet. */
static void latch_wake(lock_way *w)
{
    lock_waiter *first = NULL;
    for (;;) {
        first = NULL;
        for (int i = 0; i < LOCK_SLOTS; i++) {
            lock_waiter *s = &w->slots[i];
            if (__atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == 2 &&
                (!first || (int32_t)(s->ticket - first->ticket) < 0))
                first = s;
        }
        if (!first)
            return;
        uint32_t waiting = 2;
        if (__atomic_compare_exchange_n(&first->state, &waiting, 3, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            break;
    }
    if (first->tid == first->pid)
        kill(first->pid, SIGURG);
    else
        syscall(SYS_tgkill, first->pid, first->tid, SIGURG);
}

/* Takes the word; 0 where LOCK_WAIT_MS passed first. */
static int lock_take(lock_way *w, int use_latch)
{
    uint32_t c = 0;
    if (__atomic_compare_exchange_n(&w->word, &c, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        return 1;
    const int64_t until = lock_now_ns() + (int64_t)LOCK_WAIT_MS * 1000000;
    lock_waiter *me = use_latch && latch_open() ? latch_enter(w) : NULL;
    const struct timespec nap = { .tv_sec = 0, .tv_nsec = LOCK_POLL_MS * 1000000 };
    /* A latch waiter is in the slots before it marks the word: a giver that
     * sees the mark sees the waiter. */
    c = __atomic_exchange_n(&w->word, 2, __ATOMIC_SEQ_CST);
    while (c != 0) {
        int64_t left = until - lock_now_ns();
        if (left <= 0)
            break; /* the word stays 2: its holder's give wakes one more, harmlessly */
        if (me) {
            latch_wait(left);
            __atomic_store_n(&me->state, 2, __ATOMIC_SEQ_CST); /* waiting again, in its turn */
        } else if (use_latch) {
            nanosleep(&nap, NULL); /* no slot (or no latch) for it: it looks again in turns */
        } else {
            struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
            syscall(SYS_futex, &w->word, FUTEX_WAIT, 2, &ts, NULL, 0);
        }
        c = __atomic_exchange_n(&w->word, 2, __ATOMIC_SEQ_CST);
    }
    if (me)
        __atomic_store_n(&me->state, 0, __ATOMIC_RELEASE);
    return c == 0;
}

static void lock_give(lock_way *w, int use_latch)
{
    if (__atomic_exchange_n(&w->word, 0, __ATOMIC_SEQ_CST) != 2)
        return;
    if (use_latch)
        latch_wake(w);
    else
        syscall(SYS_futex, &w->word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The first way of section i. */
static lock_way *lock_section(const twin_config *cfg, lock_way *ways, uint32_t i)
{
    for (uint32_t j = 0; j < i; j++)
        ways += cfg->locks[j].ways;
    return ways;
}

void lock_before(const twin_config *cfg, lock_way *ways, lock_hold *h, uint32_t op, uint64_t *rng)
{
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++) {
        const twin_lock *l = &cfg->locks[i];
        if (op != l->take || op == l->release || h->held[i] || ++h->seen[i] != l->nth)
            continue;
        /* a way at random (xorshift64: the thread's own sequence) */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        uint32_t way = (uint32_t)(*rng % l->ways);
        if (lock_take(lock_section(cfg, ways, i) + way, l->latch))
            h->held[i] = way + 1;
    }
}

/* Gives section i's way if held and starts its count again. */
static void lock_release(const twin_config *cfg, lock_way *ways, lock_hold *h, uint32_t i)
{
    if (h->held[i])
        lock_give(lock_section(cfg, ways, i) + h->held[i] - 1, cfg->locks[i].latch);
    h->held[i] = 0;
    h->seen[i] = 0;
}

void lock_after(const twin_config *cfg, lock_way *ways, lock_hold *h, uint32_t op)
{
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++)
        if (op == cfg->locks[i].release)
            lock_release(cfg, ways, h, i);
}

void lock_drop(const twin_config *cfg, lock_way *ways, lock_hold *h)
{
    latch_close();
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++)
        lock_release(cfg, ways, h, i);
}
