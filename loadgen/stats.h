/* stats.h -- what one load thread measured, and the merge of all threads.
 *
 * Only requests whose intended send time falls in the measured window are
 * recorded (latency, op counts, bytes, errors); warm-up requests only add to
 * `sent`. A server-error response is still a response: it is counted in
 * `requests`, its op and the latency histogram, and in errors[SERVER]. */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

typedef enum {
    STATS_ERR_CONNECT = 0, /* a (re)connect failed; requests queued on it */
    STATS_ERR_CLOSED,      /* peer closed with the request outstanding, or no connection left */
    STATS_ERR_TIMEOUT,     /* no response within the timeout after sending */
    STATS_ERR_PROTOCOL,    /* response unparseable (the connection is then dropped) */
    STATS_ERR_SERVER,      /* well-formed error response */
    STATS_ERR_COUNT
} stats_error;

extern const char *const stats_error_names[STATS_ERR_COUNT];

/* Distinct sizes kept exactly; later new sizes fold into hist buckets. */
#define STATS_EXACT_SIZES 1024

typedef struct {
    uint64_t size;
    uint64_t count;
} stats_size;

typedef struct {
    stats_size *slots; /* open addressing, 2*STATS_EXACT_SIZES; count 0 = empty */
    size_t n_exact;
    uint64_t *folded; /* HIST_BUCKETS counts, allocated on first overflow */
} stats_sizes;

/* Keys whose responses are told apart by size: up to this many (the key number
 * below it); a workload of more keys gets no per-key sizes. */
#define STATS_KEY_SIZES_MAX 65536u
/* A key answered with more than one size. */
#define STATS_KEY_VARIED UINT32_MAX

typedef struct {
    uint64_t count;     /* responses */
    uint64_t req_bytes; /* request bytes of those responses' requests */
    uint64_t resp_bytes;
    stats_sizes resp_sizes;
    /* n_keys entries (NULL when n_keys is 0): each key's response size, 0 while
     * none was measured, STATS_KEY_VARIED once two differed. */
    uint32_t *key_sizes;
} stats_op;

typedef struct {
    hist latency_ns; /* from intended send time to response */
    uint64_t errors[STATS_ERR_COUNT];
    uint64_t sent;           /* all requests written, warm-up included */
    uint64_t requests;       /* measured responses */
    uint64_t in_window;      /* measured responses that came before the window closed */
    uint64_t bytes_sent;     /* measured requests written */
    uint64_t bytes_received; /* measured responses */
    stats_op *ops;
    size_t n_ops;
    uint64_t n_keys; /* of each op's key_sizes */
} stats;

/* 0, or -1 when out of memory. Sizes are kept per key where 0 < keys <=
 * STATS_KEY_SIZES_MAX. */
int stats_init(stats *s, size_t n_ops, uint64_t keys);
void stats_free(stats *s);

/* One measured response to a request of op for key number `key`. */
void stats_record(stats *s, size_t op, uint64_t key, uint64_t latency_ns, uint64_t req_bytes,
                  uint64_t resp_bytes);
/* Key k's response of `size` bytes into a per-key table. */
void stats_key_size(uint32_t *sizes, uint64_t k, uint32_t size);
void stats_size_add(stats_sizes *z, uint64_t size, uint64_t count);
/* 0, or -1 when out of memory. */
int stats_merge(stats *into, const stats *from);

/* The [size, count] pairs sorted by size, folded buckets shown at their
 * middle; *out is malloc'd (NULL when empty). Returns the number of pairs. */
size_t stats_size_list(const stats_sizes *z, stats_size **out);

#endif
