/* workload.h -- what requests a load thread sends: the request mix, keys
 * and values. One workload per thread; a fixed seed and thread index give a
 * fixed request sequence. */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rng.h"

#define WORKLOAD_MAX_OPS   64
#define WORKLOAD_MAX_KEY   250 /* memcached's key limit */
#define WORKLOAD_MAX_VALUE (64u << 20)

/* One --req entry. */
typedef struct {
    proto_verb verb;
    double share;                  /* relative weight, > 0 */
    uint32_t value_min, value_max; /* SET value size, uniform over the keys */
    const char *path;              /* HTTP request target */
} workload_op;

typedef struct {
    workload_op ops[WORKLOAD_MAX_OPS];
    size_t n_ops;
    uint64_t keys;    /* keys are uniform over [0, keys) */
    size_t key_size;  /* "key:" + zero-padded number, this long */
    const char *host; /* HTTP Host header */
} workload_spec;

typedef struct {
    const workload_spec *spec;
    rng rng;
    double share_total;
    char key[WORKLOAD_MAX_KEY + 1];
    char *values; /* printable bytes; values are slices of it */
    size_t values_len;
} workload;

/* The shortest key_size that can hold keys distinct keys. */
size_t workload_min_key_size(uint64_t keys);

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

/* A SET of key number i with a value of value_size bytes, for preloading. */
void workload_set(workload *w, uint64_t i, size_t value_size, proto_request *req);

#endif
