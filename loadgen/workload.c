/* workload.c -- request mix, keys and values (see workload.h). */
#include "workload.h"

#include <math.h>
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

int workload_key_dist_init(workload_spec *spec)
{
    spec->zipf_cdf = NULL;
    if (spec->zipf_s <= 0)
        return 0;
    spec->zipf_cdf = malloc(spec->keys * sizeof *spec->zipf_cdf);
    if (!spec->zipf_cdf)
        return -1;
    double sum = 0;
    for (uint64_t i = 0; i < spec->keys; i++) {
        sum += pow((double)(i + 1), -spec->zipf_s);
        spec->zipf_cdf[i] = sum;
    }
    for (uint64_t i = 0; i < spec->keys; i++)
        spec->zipf_cdf[i] /= sum;
    spec->zipf_cdf[spec->keys - 1] = 1; /* every draw below 1 lands on a key */
    return 0;
}

void workload_key_dist_free(workload_spec *spec)
{
    free(spec->zipf_cdf);
    spec->zipf_cdf = NULL;
}

uint64_t workload_draw_key(const workload_spec *spec, rng *r)
{
    if (!spec->zipf_cdf)
        return rng_below(r, spec->keys);
    double u = rng_unit(r);
    uint64_t lo = 0, hi = spec->keys - 1; /* the first i with cdf[i] > u */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (spec->zipf_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

char *workload_path(char *out, size_t len, const char *path, uint64_t key)
{
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)key);
    size_t n = 0;
    while (*path && n + 1 < len) {
        if (strncmp(path, "{key}", 5) == 0 && n + (size_t)nd + 1 < len) {
            memcpy(out + n, digits, (size_t)nd);
            n += (size_t)nd;
            path += 5;
        } else {
            out[n++] = *path++;
        }
    }
    out[n] = '\0';
    return out;
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
    req->key_num = i;
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
    uint64_t key = workload_draw_key(spec, &w->rng);
    workload_key(w, key, req);
    if (o->verb == PROTO_SET || o->verb == PROTO_LPUSH || o->verb == PROTO_HSET)
        workload_value(w, workload_value_size(o, key), req);
    if (o->verb == PROTO_HSET || o->verb == PROTO_HGET)
        req->field = (unsigned)rng_below(&w->rng, WORKLOAD_FIELDS);
    if (o->path && strstr(o->path, "{key}"))
        req->path = workload_path(w->path, sizeof w->path, o->path, key);
    return op;
}

void workload_set(workload *w, proto_verb verb, uint64_t i, size_t value_size, unsigned count,
                  proto_request *req)
{
    memset(req, 0, sizeof *req);
    req->verb = verb;
    req->count = count;
    req->host = w->spec->host;
    workload_key(w, i, req);
    workload_value(w, value_size, req);
}
