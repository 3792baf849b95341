/* workload.h -- what requests a load thread sends: the request mix, keys
 * and values. One workload per thread; a fixed seed and thread index give a
 * fixed request sequence. Key popularity is uniform or Zipf; a Zipf draw
 * searches a table of the cumulative distribution, built once and shared
 * by the threads. */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rng.h"

#define WORKLOAD_MAX_OPS   64
#define WORKLOAD_MAX_KEY   250 /* memcached's key limit */
#define WORKLOAD_MAX_VALUE (64u << 20)
#define WORKLOAD_MAX_ZIPF  (1u << 24) /* keys under Zipf: the table takes 8 bytes a key */
#define WORKLOAD_FIELDS    10         /* HSET and HGET fields f0..f9 */
#define WORKLOAD_MAX_PATH  4096       /* an HTTP path with every {key} replaced */

/* One --req entry. */
typedef struct {
    proto_verb verb;
    double share;                  /* relative weight, > 0 */
    uint32_t value_min, value_max; /* SET, LPUSH, HSET value size, uniform over the keys */
    const char *path;              /* HTTP request target; each {key} becomes the key number */
} workload_op;

typedef struct {
    workload_op ops[WORKLOAD_MAX_OPS];
    size_t n_ops;
    uint64_t keys;    /* requests draw key numbers in [0, keys) */
    size_t key_size;  /* "key:" + zero-padded number, this long */
    const char *host; /* HTTP Host header */
    double zipf_s;    /* 0: uniform; else Zipf with this exponent, key 0 the most popular */
    double *zipf_cdf; /* under Zipf, keys entries: P(key <= i) (workload_key_dist_init) */
} workload_spec;

typedef struct {
    const workload_spec *spec;
    rng rng;
    double share_total;
    char key[WORKLOAD_MAX_KEY + 1];
    char path[WORKLOAD_MAX_PATH];
    char *values; /* printable bytes; values are slices of it */
    size_t values_len;
} workload;

/* The shortest key_size that can hold keys distinct keys. */
size_t workload_min_key_size(uint64_t keys);

/* Builds the Zipf table when spec->zipf_s > 0 (keys at most WORKLOAD_MAX_ZIPF);
 * 0, or -1 when out of memory. */
int workload_key_dist_init(workload_spec *spec);
void workload_key_dist_free(workload_spec *spec);

/* A key number drawn from the spec's distribution: one step of r either way. */
uint64_t workload_draw_key(const workload_spec *spec, rng *r);

/* Writes path into out (len bytes) with each "{key}" replaced by key in
 * decimal; returns out, cut short (still terminated) when it does not fit. */
char *workload_path(char *out, size_t len, const char *path, uint64_t key);

/* 0, or -1 when out of memory. */
int workload_init(workload *w, const workload_spec *spec, uint64_t seed, uint64_t stream);
void workload_free(workload *w);

/* Draws the next request; returns its index in the mix. req points into w
 * and stays valid until the next call. */
size_t workload_next(workload *w, proto_request *req);

/* The value size of key number i for a SET of op o: a function of the key alone, uniform
 * over the keys in [value_min, value_max], so that the data set is the workload's whatever
 * the seed and the order of the sets (a key keeps its size when it is set again). */
size_t workload_value_size(const workload_op *o, uint64_t i);

/* A write of key number i for preloading: SET, or LPUSH of count values, or
 * HSET of fields f0..f<count-1>, values of value_size bytes. */
void workload_set(workload *w, proto_verb verb, uint64_t i, size_t value_size, unsigned count,
                  proto_request *req);

#endif
