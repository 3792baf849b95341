/* stats.c -- per-thread measurements and their merge (see stats.h). */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#define STATS_SLOTS (2 * STATS_EXACT_SIZES)

const char *const stats_error_names[STATS_ERR_COUNT] = {
    "connect", "closed", "timeout", "protocol", "server",
};

int stats_init(stats *s, size_t n_ops, uint64_t keys)
{
    memset(s, 0, sizeof *s);
    hist_init(&s->latency_ns);
    s->ops = calloc(n_ops ? n_ops : 1, sizeof *s->ops);
    if (!s->ops)
        return -1;
    s->n_ops = n_ops;
    s->n_keys = keys <= STATS_KEY_SIZES_MAX ? keys : 0;
    for (size_t i = 0; i < n_ops; i++) {
        s->ops[i].resp_sizes.slots = calloc(STATS_SLOTS, sizeof(stats_size));
        if (s->n_keys)
            s->ops[i].key_sizes = calloc(s->n_keys, sizeof(uint32_t));
        if (!s->ops[i].resp_sizes.slots || (s->n_keys && !s->ops[i].key_sizes)) {
            stats_free(s);
            return -1;
        }
    }
    return 0;
}

void stats_free(stats *s)
{
    for (size_t i = 0; s->ops && i < s->n_ops; i++) {
        free(s->ops[i].resp_sizes.slots);
        free(s->ops[i].resp_sizes.folded);
        free(s->ops[i].key_sizes);
    }
    free(s->ops);
    s->ops = NULL;
}

void stats_size_add(stats_sizes *z, uint64_t size, uint64_t count)
{
    size_t i = (size_t)((size * 0x9e3779b97f4a7c15ull) >> 32) & (STATS_SLOTS - 1);
    for (;; i = (i + 1) & (STATS_SLOTS - 1)) {
        stats_size *slot = &z->slots[i];
        if (slot->count && slot->size == size) {
            slot->count += count;
            return;
        }
        if (!slot->count)
            break;
    }
    if (z->n_exact < STATS_EXACT_SIZES) {
        z->slots[i].size = size;
        z->slots[i].count = count;
        z->n_exact++;
        return;
    }
    if (!z->folded) {
        z->folded = calloc(HIST_BUCKETS, sizeof *z->folded);
        if (!z->folded)
            return; /* out of memory: the size goes uncounted */
    }
    z->folded[hist_bucket(size)] += count;
}

void stats_key_size(uint32_t *sizes, uint64_t k, uint32_t size)
{
    if (!size || sizes[k] == STATS_KEY_VARIED)
        return;
    sizes[k] = !sizes[k] || sizes[k] == size ? size : STATS_KEY_VARIED;
}

void stats_record(stats *s, size_t op, uint64_t key, uint64_t latency_ns, uint64_t req_bytes,
                  uint64_t resp_bytes)
{
    stats_op *o = &s->ops[op];
    hist_record(&s->latency_ns, latency_ns);
    s->requests++;
    s->bytes_received += resp_bytes;
    o->count++;
    o->req_bytes += req_bytes;
    o->resp_bytes += resp_bytes;
    stats_size_add(&o->resp_sizes, resp_bytes, 1);
    if (o->key_sizes && key < s->n_keys)
        stats_key_size(o->key_sizes, key, resp_bytes < STATS_KEY_VARIED ? (uint32_t)resp_bytes : 0);
}

int stats_merge(stats *into, const stats *from)
{
    hist_merge(&into->latency_ns, &from->latency_ns);
    for (int e = 0; e < STATS_ERR_COUNT; e++)
        into->errors[e] += from->errors[e];
    into->sent += from->sent;
    into->requests += from->requests;
    into->in_window += from->in_window;
    into->bytes_sent += from->bytes_sent;
    into->bytes_received += from->bytes_received;
    for (size_t i = 0; i < into->n_ops && i < from->n_ops; i++) {
        stats_op *a = &into->ops[i];
        const stats_op *b = &from->ops[i];
        a->count += b->count;
        a->req_bytes += b->req_bytes;
        a->resp_bytes += b->resp_bytes;
        for (uint64_t k = 0; a->key_sizes && b->key_sizes && k < into->n_keys && k < from->n_keys; k++)
            stats_key_size(a->key_sizes, k, b->key_sizes[k]);
        for (size_t k = 0; k < STATS_SLOTS; k++)
            if (b->resp_sizes.slots[k].count)
                stats_size_add(&a->resp_sizes, b->resp_sizes.slots[k].size, b->resp_sizes.slots[k].count);
        if (!b->resp_sizes.folded)
            continue;
        if (!a->resp_sizes.folded) {
            a->resp_sizes.folded = calloc(HIST_BUCKETS, sizeof(uint64_t));
            if (!a->resp_sizes.folded)
                return -1;
        }
        for (size_t k = 0; k < HIST_BUCKETS; k++)
            a->resp_sizes.folded[k] += b->resp_sizes.folded[k];
    }
    return 0;
}

static int stats_size_cmp(const void *a, const void *b)
{
    uint64_t x = ((const stats_size *)a)->size, y = ((const stats_size *)b)->size;
    return x < y ? -1 : x > y;
}

size_t stats_size_list(const stats_sizes *z, stats_size **out)
{
    size_t cap = z->n_exact + (z->folded ? HIST_BUCKETS : 0), n = 0;
    *out = NULL;
    if (cap == 0)
        return 0;
    stats_size *list = malloc(cap * sizeof *list);
    if (!list)
        return 0;
    for (size_t k = 0; k < STATS_SLOTS; k++)
        if (z->slots[k].count)
            list[n++] = z->slots[k];
    for (size_t b = 0; z->folded && b < HIST_BUCKETS; b++) {
        if (!z->folded[b])
            continue;
        uint64_t lo = hist_bucket_low(b), hi = hist_bucket_high(b);
        list[n].size = lo + (hi - lo) / 2;
        list[n++].count = z->folded[b];
    }
    qsort(list, n, sizeof *list, stats_size_cmp);
    size_t w = 0; /* a folded middle may equal an exact size */
    for (size_t r = 0; r < n; r++) {
        if (w > 0 && list[w - 1].size == list[r].size)
            list[w - 1].count += list[r].count;
        else
            list[w++] = list[r];
    }
    *out = list;
    return w;
}
