/* body.h -- the fixed helpers of a generated body, included by clone.c after its parts.
 *
 * clone.c defines, before including this: N_RINGS, N_CROWD, CONFLICT_BURST, STATE_BYTES,
 * FILLER_BYTES, UNUSED, the state-word enum (ST_INIT, ST_PRNG, ...), n_rings, ring_lines,
 * ring_run, ring_chains, RING_CHAINS, ring_cur, n_crowd, crowd_lines, crowd_stride, crowd_offset, crowd_cur
 * and rings_once, and declares these helpers. They come after the parts in the object (the build keeps the
 * order written), so that no knob moves a part's code. */
#ifndef TWIN_BODY_H
#define TWIN_BODY_H

#include "ring.h"

/* The walks follow pointers without a test: without their memory the body cannot run. */
static void body_no_memory(void)
{
    fputs("twin clone: no memory for the body's rings: free memory or lower the profile's ring sizes\n",
          stderr);
    exit(2);
}

/* The rings are laid out farthest first (they come in order of reuse distance): a ring's
 * first walk after start-up then finds between its lines' writing and their first use the
 * nearer rings, as its steady walks do, and not the farther ones' megabytes, whose lines
 * its steady walks see few of. A ring that takes longer than the warm-up to come round
 * would otherwise miss at every cache size until it did. */
static void body_rings_init(void)
{
    uint64_t lines = 0, rng = 0x9e3779b97f4a7c15u;
    for (unsigned i = 0; i < n_rings; i++)
        lines += ring_lines[i];
    uint64_t *r = lines ? aligned_alloc(64, lines * 64) : NULL;
    if (lines && !r)
        body_no_memory();
    for (unsigned i = n_rings; i-- > 0;) {
        body_ring_init(r, ring_lines[i], ring_run[i], &rng);
        /* Cursor k at step k * lines / chains of the cycle from the ring's first line. */
        uint64_t *at = r, chains = ring_chains[i];
        for (uint64_t k = 0, step = 0; k < chains; k++) {
            for (; step < k * ring_lines[i] / chains; step++)
                at = (uint64_t *)(uintptr_t)*at;
            __atomic_store_n(&ring_cur[i * RING_CHAINS + k], (uint64_t)(uintptr_t)at, __ATOMIC_RELAXED);
        }
        r += ring_lines[i] * 8;
    }
    for (unsigned g = 0; g < n_crowd; g++) {
        uint64_t n = crowd_lines[g], s = crowd_stride[g];
        char *c = aligned_alloc(s, n * s), *at;
        if (!c)
            body_no_memory();
        at = c + crowd_offset[g];
        for (uint64_t i = 0; i < n; i++)
            *(uint64_t *)(at + i * s) = (uint64_t)(uintptr_t)(at + (i + 1) % n * s);
        __atomic_store_n(&crowd_cur[g], (uint64_t)(uintptr_t)at, __ATOMIC_RELAXED);
    }
}

/* Once per serving thread, before its first request (and once per process for the rings):
 * memory is laid out here, so that its cost is start-up work, not per-request work. */
static void clone_body_init(twin_body_ctx *ctx)
{
    uint64_t *st = ctx->mem;
    pthread_once(&rings_once, body_rings_init);
    if (st == NULL || ctx->mem_bytes < STATE_BYTES + FILLER_BYTES || st[ST_INIT])
        return;
    st[ST_PRNG] = ctx->rng | 1;
    st[ST_INIT] = 1;
}

/* Whole units of a part this call: the per-request rate in 1,024ths, at the call's share
 * of the request's body (body_share, 1,024ths), with the remainder carried to the next
 * (a multiply, shifts and a mask: the calls between the body's parts are instructions the
 * mix does not choose). */
static uint64_t body_units(uint64_t *acc, uint64_t rate)
{
    uint64_t n;
    *acc += rate * body_share >> 10;
    n = *acc >> 10;
    *acc &= 1023u;
    return n;
}

/* Whole units of a conflict part, run in bursts of at least CONFLICT_BURST: the
 * rate (at the call's share, as body_units') carried in 1,024ths until a burst is
 * due. Its lines miss a cache of few ways on every use; in one of more ways, only
 * where a request's other lines evicted them since their last burst, and bursts
 * make that rare. */
static UNUSED uint64_t body_burst(uint64_t *acc, uint64_t rate)
{
    uint64_t n;
    *acc += rate * body_share >> 10;
    if (*acc < CONFLICT_BURST * 1024u)
        return 0;
    n = *acc >> 10;
    *acc &= 1023u;
    return n;
}

#endif
