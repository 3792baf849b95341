/* lock.h -- serialized sections: locks shared by every thread and process of
 * a clone, taken and given on a connection's requests (see twin_lock). */
#ifndef TWIN_LOCK_H
#define TWIN_LOCK_H

#include <stdint.h>

#include "twin.h"

/* Sections a clone may have, and a connection's hold on them. */
#define LOCK_MAX 8

/* A waiter gives up after this long and serves on without the lock: a client
 * that leaves a section open (a take without its release) slows the others
 * but never stalls them for good. */
#define LOCK_WAIT_MS 1000

/* Latch waiters a way keeps track of; more wait in turns of LOCK_POLL_MS. */
#define LOCK_SLOTS   64
#define LOCK_POLL_MS 1

/* One waiter of a way, latch style: `state` 0 free, 1 claimed, 2 waiting, 3
 * woken (a giver sent it its signal). */
typedef struct {
    uint32_t state, ticket;
    int32_t pid, tid;
} lock_waiter;

/* One way of a section, in memory shared by every process: `word` 0 free, 1
 * held, 2 held with waiters; latch waiters in `slots`, first come first woken. */
typedef struct {
    uint32_t word, tickets;
    lock_waiter slots[LOCK_SLOTS];
} lock_way;

typedef struct {
    uint32_t seen[LOCK_MAX]; /* requests of the section's take type since its release */
    uint32_t held[LOCK_MAX]; /* the way held, plus 1; 0: none */
} lock_hold;

/* Whether the network model serves one connection at a time on a thread: the
 * only ones a section may block (an event loop would wait on itself). */
int lock_model_ok(twin_net_model m);

/* The ways of cfg's sections, mapped shared before any fork; NULL where it
 * has none (or the mapping failed). */
lock_way *lock_ways_map(const twin_config *cfg);
void lock_ways_unmap(const twin_config *cfg, lock_way *ways);

/* Before and after a request of type `op` is served on a connection. */
void lock_before(const twin_config *cfg, lock_way *ways, lock_hold *h, uint32_t op, uint64_t *rng);
void lock_after(const twin_config *cfg, lock_way *ways, lock_hold *h, uint32_t op);
/* A connection that closes gives what it holds (and its thread's latch). */
void lock_drop(const twin_config *cfg, lock_way *ways, lock_hold *h);

#endif
