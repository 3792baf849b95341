/* hist.c -- lossless log-linear histogram (see hist.h). */
#include "hist.h"

#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof *h);
}

size_t hist_bucket(uint64_t value)
{
    if (value < HIST_LINEAR)
        return (size_t)value;
    unsigned e = 63u - (unsigned)__builtin_clzll(value); /* value in [2^e, 2^(e+1)) */
    if (e >= HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    unsigned shift = e - HIST_SUB_BITS;               /* bucket width is 2^shift */
    size_t sub = (size_t)(value >> shift) - HIST_SUB; /* 0 .. HIST_SUB-1 */
    return HIST_LINEAR + (size_t)(e - HIST_SUB_BITS - 1) * HIST_SUB + sub;
}

uint64_t hist_bucket_low(size_t bucket)
{
    if (bucket < HIST_LINEAR)
        return bucket;
    size_t i = bucket - HIST_LINEAR;
    unsigned shift = (unsigned)(i / HIST_SUB) + 1;
    uint64_t sub = HIST_SUB + i % HIST_SUB;
    return sub << shift;
}

uint64_t hist_bucket_high(size_t bucket)
{
    if (bucket < HIST_LINEAR)
        return bucket;
    if (bucket == HIST_BUCKETS - 1)
        return UINT64_MAX;
    return hist_bucket_low(bucket + 1) - 1;
}

void hist_record(hist *h, uint64_t value)
{
    h->counts[hist_bucket(value)]++;
    if (h->total == 0 || value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    h->total++;
    h->sum += (double)value;
}

void hist_merge(hist *into, const hist *from)
{
    if (from->total == 0)
        return;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    if (into->total == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->total += from->total;
    into->sum += from->sum;
}

double hist_percentile(const hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p >= 100)
        return (double)h->max;
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
        if (lo < h->min)
            lo = h->min;
        if (hi > h->max)
            hi = h->max;
        return ((double)lo + (double)hi) / 2.0;
    }
    return (double)h->max;
}

double hist_mean(const hist *h)
{
    return h->total ? h->sum / (double)h->total : 0;
}
