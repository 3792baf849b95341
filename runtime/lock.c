/* lock.c -- serialized sections. Each way of a section is one 32-bit word in
 * memory shared by every process: 0 free, 1 held, 2 held with waiters, a
 * waiter sleeping in FUTEX_WAIT on it (not private: the processes share it)
 * until the holder's FUTEX_WAKE (U. Drepper, "Futexes Are Tricky", mutex 2). */
#define _GNU_SOURCE
#include "lock.h"

#include <linux/futex.h>
#include <sys/mman.h>
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

uint32_t *lock_words_map(const twin_config *cfg)
{
    size_t n = lock_count(cfg);
    if (!n)
        return NULL;
    void *m = mmap(NULL, n * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m; /* (anonymous memory starts zeroed: every way free) */
}

void lock_words_unmap(const twin_config *cfg, uint32_t *words)
{
    if (words)
        munmap(words, lock_count(cfg) * sizeof(uint32_t));
}

static int64_t lock_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Takes the word; 0 where LOCK_WAIT_MS passed first. */
static int lock_take(uint32_t *w)
{
    uint32_t c = 0;
    if (__atomic_compare_exchange_n(w, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 1;
    const int64_t until = lock_now_ns() + (int64_t)LOCK_WAIT_MS * 1000000;
    if (c != 2)
        c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        int64_t left = until - lock_now_ns();
        if (left <= 0)
            return 0; /* the word stays 2: its holder's give wakes one more, harmlessly */
        struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
        syscall(SYS_futex, w, FUTEX_WAIT, 2, &ts, NULL, 0);
        c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
    }
    return 1;
}

static void lock_give(uint32_t *w)
{
    if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) == 2)
        syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The first word of section i. */
static uint32_t *lock_section(const twin_config *cfg, uint32_t *words, uint32_t i)
{
    for (uint32_t j = 0; j < i; j++)
        words += cfg->locks[j].ways;
    return words;
}

void lock_before(const twin_config *cfg, uint32_t *words, lock_hold *h, uint32_t op, uint64_t *rng)
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
        if (lock_take(lock_section(cfg, words, i) + way))
            h->held[i] = way + 1;
    }
}

/* Gives section i's way if held and starts its count again. */
static void lock_release(const twin_config *cfg, uint32_t *words, lock_hold *h, uint32_t i)
{
    if (h->held[i])
        lock_give(lock_section(cfg, words, i) + h->held[i] - 1);
    h->held[i] = 0;
    h->seen[i] = 0;
}

void lock_after(const twin_config *cfg, uint32_t *words, lock_hold *h, uint32_t op)
{
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++)
        if (op == cfg->locks[i].release)
            lock_release(cfg, words, h, i);
}

void lock_drop(const twin_config *cfg, uint32_t *words, lock_hold *h)
{
    for (uint32_t i = 0; i < cfg->n_locks && i < LOCK_MAX; i++)
        lock_release(cfg, words, h, i);
}
