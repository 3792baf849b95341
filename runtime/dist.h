/* dist.h -- size distributions and the per-thread random numbers that draw
 * from them. A twin_bin array is prepared once (cumulative weights) and then
 * read by every thread without locks. */
#ifndef DIST_H
#define DIST_H

#include <stdint.h>

#include "twin.h"

typedef struct {
    const twin_bin *bins;
    uint64_t *cum; /* cum[i]: sum of the weights of bins[0..i] */
    uint32_t n;
    uint32_t fallback; /* drawn when there are no bins or no weight */
    uint32_t max;      /* the largest size this table can draw */
} dist_table;

/* xorshift64: the state must be nonzero and stays nonzero. */
static inline uint64_t dist_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* A nonzero xorshift state from any number (splitmix64). */
uint64_t dist_seed(uint64_t x);

int dist_init(dist_table *d, const twin_bin *bins, uint32_t n, uint32_t fallback);
void dist_free(dist_table *d);
uint32_t dist_sample(const dist_table *d, uint64_t *rng);
uint32_t dist_sample_weyl(const dist_table *d, uint64_t *weyl);

#endif
