#define _GNU_SOURCE
#include "proto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dist.h"

/* Response payloads are sent or copied from this buffer: pseudo-random, alphanumeric
 * so that any reply type (even a RESP simple string) can carry it. */
#define PROTO_PAYLOAD_BYTES 65536
static char proto_payload[PROTO_PAYLOAD_BYTES];

void proto_init(void)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t rng = dist_seed(0x7061796c6f6164ULL);
    for (size_t i = 0; i < PROTO_PAYLOAD_BYTES; i++)
        proto_payload[i] = alphabet[dist_next(&rng) % (sizeof alphabet - 1)];
}

const proto_ops *proto_get(twin_protocol protocol)
{
    switch (protocol) {
    case TWIN_PROTO_MEMCACHED:
        return &proto_memcached;
    case TWIN_PROTO_RESP:
        return &proto_resp;
    case TWIN_PROTO_HTTP:
        return &proto_http;
    case TWIN_PROTO_POSTGRES:
        return &proto_postgres;
    }
    return NULL;
}

int proto_buf_reserve(proto_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return TWIN_ERR;
    size_t need = b->len + n;
    if (b->cap >= need)
        return TWIN_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return TWIN_ERR;
    b->data = p;
    b->cap = cap;
    return TWIN_OK;
}

/* The few bytes of a reply's header, a key or a literal are copied in 8-byte
 * words (the last one overlapping the one before), and below 8 bytes one by one:
 * a call into the C library's vector copy costs more instructions than the
 * copy, and leaves SIMD instructions in the clone's mix that its original need
 * not have. (Kept loops: GCC would make them calls to memcpy.) */
#define PROTO_SMALL_COPY 32

__attribute__((optimize("no-tree-loop-distribute-patterns"))) int proto_buf_append(proto_buf *b,
                                                                                   const void *p, size_t n)
{
    if (proto_buf_reserve(b, n) != TWIN_OK)
        return TWIN_ERR;
    char *to = b->data + b->len;
    const char *from = p;
    if (n > PROTO_SMALL_COPY) {
        memcpy(to, from, n);
    } else if (n >= 8) {
        uint64_t w;
        for (size_t i = 0; i + 8 < n; i += 8) {
            __builtin_memcpy(&w, from + i, 8);
            __builtin_memcpy(to + i, &w, 8);
        }
        __builtin_memcpy(&w, from + n - 8, 8);
        __builtin_memcpy(to + n - 8, &w, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            to[i] = from[i];
    }
    b->len += n;
    b->wire += n;
    return TWIN_OK;
}

/* `n` payload bytes from byte `from` of the payload, by reference. */
static int proto_buf_ref(proto_buf *b, size_t from, size_t n)
{
    if (!n)
        return TWIN_OK;
    proto_ref *last = b->n_refs ? &b->refs[b->n_refs - 1] : NULL;
    if (last && last->at == b->len &&
        (last->from + last->n) % PROTO_PAYLOAD_BYTES == from % PROTO_PAYLOAD_BYTES) {
        last->n += n;
        b->wire += n;
        return TWIN_OK;
    }
    if (b->n_refs == b->refs_cap) {
        size_t cap = b->refs_cap ? 2 * b->refs_cap : 16;
        proto_ref *r = realloc(b->refs, cap * sizeof *r);
        if (!r)
            return TWIN_ERR;
        b->refs = r;
        b->refs_cap = cap;
    }
    b->refs[b->n_refs++] = (proto_ref){ .at = b->len, .from = from % PROTO_PAYLOAD_BYTES, .n = n };
    b->wire += n;
    return TWIN_OK;
}

int proto_buf_pieces(const proto_buf *b, size_t off, struct iovec *iov, int max)
{
    int n = 0;
    size_t pos = 0, at = 0; /* wire and data bytes before the next piece */
    for (size_t r = 0; n < max; r++) {
        size_t end = r < b->n_refs ? b->refs[r].at : b->len;
        if (end > at && off < pos + (end - at)) {
            size_t skip = off > pos ? off - pos : 0;
            iov[n++] = (struct iovec){ .iov_base = b->data + at + skip, .iov_len = end - at - skip };
        }
        pos += end - at;
        at = end;
        if (r == b->n_refs)
            break;
        const proto_ref *ref = &b->refs[r];
        size_t left = pos + ref->n > off ? pos + ref->n - (off > pos ? off : pos) : 0;
        size_t from = (ref->from + (ref->n - left)) % PROTO_PAYLOAD_BYTES;
        while (left && n < max) {
            size_t chunk = PROTO_PAYLOAD_BYTES - from < left ? PROTO_PAYLOAD_BYTES - from : left;
            iov[n++] = (struct iovec){ .iov_base = proto_payload + from, .iov_len = chunk };
            left -= chunk;
            from = 0;
        }
        pos += ref->n;
    }
    return n;
}

int proto_buf_append_tail(proto_buf *b, const proto_buf *src, size_t off)
{
    struct iovec iov[PROTO_IOV_MAX];
    for (int cnt; (cnt = proto_buf_pieces(src, off, iov, PROTO_IOV_MAX)) > 0;)
        for (int i = 0; i < cnt; i++) {
            /* A piece in the payload buffer is a reference, and stays one. */
            const char *p = iov[i].iov_base;
            int ok = p >= proto_payload && p < proto_payload + PROTO_PAYLOAD_BYTES
                         ? proto_buf_ref(b, (size_t)(p - proto_payload), iov[i].iov_len)
                         : proto_buf_append(b, p, iov[i].iov_len);
            if (ok != TWIN_OK)
                return TWIN_ERR;
            off += iov[i].iov_len;
        }
    return TWIN_OK;
}

int proto_buf_append_u64(proto_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return proto_buf_append(b, tmp + i, sizeof tmp - i);
}

int proto_buf_append_fill(proto_buf *b, char c, size_t n)
{
    if (proto_buf_reserve(b, n) != TWIN_OK)
        return TWIN_ERR;
    memset(b->data + b->len, c, n);
    b->len += n;
    b->wire += n;
    return TWIN_OK;
}

int proto_buf_append_payload(proto_buf *b, size_t n)
{
    if (b->gather)
        return proto_buf_ref(b, 0, n);
    if (proto_buf_reserve(b, n) != TWIN_OK)
        return TWIN_ERR;
    while (n) {
        size_t chunk = n < PROTO_PAYLOAD_BYTES ? n : PROTO_PAYLOAD_BYTES;
        memcpy(b->data + b->len, proto_payload, chunk);
        b->len += chunk;
        b->wire += chunk;
        n -= chunk;
    }
    return TWIN_OK;
}

void proto_buf_free(proto_buf *b)
{
    free(b->data);
    free(b->refs);
    b->data = NULL;
    b->refs = NULL;
    b->len = b->cap = b->n_refs = b->refs_cap = b->wire = 0;
}

size_t proto_digits(uint64_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

int proto_fit(uint32_t total, size_t fixed, size_t *n, size_t *pad)
{
    if ((uint64_t)total < fixed + 1)
        return TWIN_ERR;
    size_t room = total - fixed; /* digits(n) + n + pad */
    for (size_t d = 1; d <= 10 && d <= room; d++) {
        if (proto_digits(room - d) == d) {
            *n = room - d;
            *pad = 0;
            return TWIN_OK;
        }
    }
    size_t body = room - 1;
    while (proto_digits(body) + body > room)
        body--;
    *n = body;
    *pad = room - proto_digits(body) - body;
    return TWIN_OK;
}

int proto_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return TWIN_ERR;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return TWIN_ERR;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return TWIN_ERR;
    *out = v;
    return TWIN_OK;
}
