/* workload.c -- request mix, keys and values (see workload.h). */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values start at a random offset in the pool, so consecutive values of
 * one size differ. */
#define WORKLOAD_VALUE_SHIFT 256

size_t workload_min_key_size(uint64_t keys)
{
    size_t digits = 1;
    for (uint64_t top = keys > 0 ? keys - 1 : 0; top >= 10; top /= 10)
        digits++;
    return 4 + digits;
}

int workload_init(workload *w, const workload_spec *spec, uint64_t seed, uint64_t stream)
{
    static const char printable[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memset(w, 0, sizeof *w);
    w->spec = spec;
    rng_seed(&w->rng, seed, stream);
    size_t longest = 100; /* the preload default */
    for (size_t i = 0; i < spec->n_ops; i++) {
        w->share_total += spec->ops[i].share;
        if (spec->ops[i].value_max > longest)
            longest = spec->ops[i].value_max;
    }
    w->values_len = longest + WORKLOAD_VALUE_SHIFT;
    w->values = malloc(w->values_len);
    if (!w->values)
        return -1;
    for (size_t i = 0; i < w->values_len; i++)
        w->values[i] = printable[rng_below(&w->rng, sizeof printable - 1)];
    return 0;
}

void workload_free(workload *w)
{
    free(w->values);
    w->values = NULL;
}

static void workload_key(workload *w, uint64_t i, proto_request *req)
{
    int digits = (int)w->spec->key_size - 4;
    snprintf(w->key, sizeof w->key, "key:%0*llu", digits, (unsigned long long)i);
    req->key = w->key;
    req->key_len = w->spec->key_size;
}

static void workload_value(workload *w, size_t size, proto_request *req)
{
    if (size > w->values_len - WORKLOAD_VALUE_SHIFT)
        size = w->values_len - WORKLOAD_VALUE_SHIFT;
    req->value = w->values + rng_below(&w->rng, WORKLOAD_VALUE_SHIFT);
    req->value_len = size;
}

size_t workload_value_size(const workload_op *o, uint64_t i)
{
    rng r;
    rng_seed(&r, i, 0x76616c7565); /* one splitmix64 step of the key number */
    return o->value_min + (size_t)(rng_next(&r) % ((uint64_t)o->value_max - o->value_min + 1));
}

size_t workload_next(workload *w, proto_request *req)
{
    const workload_spec *spec = w->spec;
    size_t op = spec->n_ops - 1;
    double pick = rng_unit(&w->rng) * w->share_total;
    for (size_t i = 0; i < spec->n_ops; i++) {
        if (pick < spec->ops[i].share) {
            op = i;
            break;
        }
        pick -= spec->ops[i].share;
    }
    const workload_op *o = &spec->ops[op];
    memset(req, 0, sizeof *req);
    req->verb = o->verb;
    req->path = o->path;
    req->host = spec->host;
    uint64_t key = rng_below(&w->rng, spec->keys);
    workload_key(w, key, req);
    if (o->verb == PROTO_SET)
        workload_value(w, workload_value_size(o, key), req);
    return op;
}

void workload_set(workload *w, uint64_t i, size_t value_size, proto_request *req)
{
    memset(req, 0, sizeof *req);
    req->verb = PROTO_SET;
    req->host = w->spec->host;
    workload_key(w, i, req);
    workload_value(w, value_size, req);
}
