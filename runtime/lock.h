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

typedef struct {
    uint32_t seen[LOCK_MAX]; /* requests of the section's take type since its release */
    uint32_t held[LOCK_MAX]; /* the way held, plus 1; 0: none */
} lock_hold;

/* Whether the network model serves one connection at a time on a thread: the
 * only ones a section may block (an event loop would wait on itself). */
int lock_model_ok(twin_net_model m);

/* The lock words of cfg's sections, mapped shared before any fork; NULL
 * where it has none (or the mapping failed). */
uint32_t *lock_words_map(const twin_config *cfg);
void lock_words_unmap(const twin_config *cfg, uint32_t *words);

/* Before and after a request of type `op` is served on a connection. */
void lock_before(const twin_config *cfg, uint32_t *words, lock_hold *h, uint32_t op, uint64_t *rng);
void lock_after(const twin_config *cfg, uint32_t *words, lock_hold *h, uint32_t op);
/* A connection that closes gives what it holds. */
void lock_drop(const twin_config *cfg, uint32_t *words, lock_hold *h);

#endif
