/* ring.h -- a data ring's layout: one cycle through every line of a block of lines, each
 * line's first word a pointer to the next line of the cycle, walked by chasing them. */
#ifndef TWIN_RING_H
#define TWIN_RING_H

#include <stdint.h>

static uint64_t body_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One cycle through the `lines` lines at `ring`: runs of `run` lines in address order (the
 * last run shorter), the runs in a random cyclic order (Sattolo's algorithm). Every line is
 * one step of the cycle, so its reuse distance is the ring's whatever the run; runs are what a
 * copy or a scan looks like to a core (its prefetch units and TLB), run 1 a pointer chase. */
static void body_ring_init(uint64_t *ring, uint64_t lines, uint64_t run, uint64_t *rng)
{
    if (run < 1)
        run = 1;
    uint64_t runs = (lines + run - 1) / run;
    /* The order of the runs, kept in each run's first line until it is linked. */
    for (uint64_t r = 0; r < runs; r++)
        ring[r * run * 8] = r;
    for (uint64_t r = runs - 1; r > 0; r--) {
        uint64_t j = body_rand(rng) % r, t = ring[r * run * 8];
        ring[r * run * 8] = ring[j * run * 8];
        ring[j * run * 8] = t;
    }
    for (uint64_t r = 0; r < runs; r++) {
        uint64_t next = ring[r * run * 8] * run, first = r * run;
        uint64_t end = first + run < lines ? first + run : lines;
        for (uint64_t i = first; i + 1 < end; i++)
            ring[i * 8] = (uint64_t)(uintptr_t)&ring[(i + 1) * 8];
        ring[(end - 1) * 8] = (uint64_t)(uintptr_t)&ring[next * 8];
    }
}

#endif
