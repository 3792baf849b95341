/* rng.h -- small deterministic pseudo-random generator (splitmix64).
 *
 * A fixed seed gives a fixed sequence on every machine, which is what makes
 * a load run's request sequence repeatable. Not for anything secret. */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} rng;

static inline void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    r->state = seed ^ (stream * 0xd1b54a32d192ed03ull);
}

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

#endif
