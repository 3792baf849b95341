#define _GNU_SOURCE
#include "dist.h"

#include <stdlib.h>

uint64_t dist_seed(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x ? x : 0x2545f4914f6cdd1dULL;
}

int dist_init(dist_table *d, const twin_bin *bins, uint32_t n, uint32_t fallback)
{
    d->bins = bins;
    d->cum = NULL;
    d->n = 0;
    d->fallback = fallback;
    d->max = fallback;
    if (!bins || n == 0)
        return TWIN_OK;
    d->cum = malloc(sizeof *d->cum * n);
    if (!d->cum)
        return TWIN_ERR;
    uint64_t sum = 0;
    uint32_t max = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += bins[i].weight;
        d->cum[i] = sum;
        if (bins[i].weight && bins[i].size > max)
            max = bins[i].size;
    }
    if (sum == 0) {
        free(d->cum);
        d->cum = NULL;
        return TWIN_OK;
    }
    d->n = n;
    d->max = max;
    return TWIN_OK;
}

void dist_free(dist_table *d)
{
    free(d->cum);
    d->cum = NULL;
    d->n = 0;
}

/* The bin whose cumulative weight first exceeds r (0 <= r < total). */
static uint32_t dist_find(const dist_table *d, uint64_t r)
{
    uint32_t lo = 0, hi = d->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->cum[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return d->bins[lo].size;
}

uint32_t dist_sample(const dist_table *d, uint64_t *rng)
{
    if (d->n == 0)
        return d->fallback;
    if (d->n == 1)
        return d->bins[0].size;
    return dist_find(d, dist_next(rng) % d->cum[d->n - 1]);
}

/* Response sizes come from a Weyl sequence (golden-ratio steps) rather than independent
 * draws: any run of n requests then holds each size within about one of its expected
 * count, so a short measurement already has the distribution's mean (independent draws
 * would leave an error of about one standard deviation over sqrt(n)). */
uint32_t dist_sample_weyl(const dist_table *d, uint64_t *weyl)
{
    if (d->n == 0)
        return d->fallback;
    if (d->n == 1)
        return d->bins[0].size;
    *weyl += 0x9e3779b97f4a7c15ULL;
    return dist_find(d, (uint64_t)(((unsigned __int128)*weyl * d->cum[d->n - 1]) >> 64));
}
