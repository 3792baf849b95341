/* hist.h -- lossless log-linear histogram.
 *
 * Every recorded value is counted; none is sampled or dropped. Values below
 * HIST_LINEAR get a bucket each; above that, each power-of-two range
 * [2^e, 2^(e+1)) is cut into HIST_SUB equal buckets, so no bucket is wider
 * than 1/HIST_SUB of the values it holds. Values at or above 2^HIST_MAX_EXP
 * are counted in the last bucket (with nanoseconds that is about 18 minutes,
 * far beyond any latency the load generator keeps).
 *
 * The load generator records latencies in nanoseconds, which gives sub-
 * microsecond resolution from 1 us to 100 s within 1/64 relative error, and
 * reuses the bucket layout to fold response sizes (stats.c). */
#ifndef HIST_H
#define HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS) /* buckets per power of two */
#define HIST_LINEAR   (2u * HIST_SUB)       /* values with a bucket each */
#define HIST_MAX_EXP  40
#define HIST_BUCKETS  (HIST_LINEAR + (HIST_MAX_EXP - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t min; /* exact, valid when total > 0 */
    uint64_t max; /* exact */
    double sum;   /* exact up to double rounding, for the mean */
} hist;

void hist_init(hist *h);
void hist_record(hist *h, uint64_t value);
void hist_merge(hist *into, const hist *from);

/* The value at percentile p (0..100]: the middle of the bucket holding the
 * ceil(p% * total)-th smallest value, clamped to the exact min and max, so
 * p100 is the exact max. 0 when empty. */
double hist_percentile(const hist *h, double p);
double hist_mean(const hist *h);

/* The bucket layout, for callers that fold other values onto it. */
size_t hist_bucket(uint64_t value);
uint64_t hist_bucket_low(size_t bucket);  /* smallest value in the bucket */
uint64_t hist_bucket_high(size_t bucket); /* largest value in the bucket */

#endif
