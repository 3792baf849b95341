/* proto.c -- protocol lookup and helpers shared by the parsers. */
#include "proto.h"

#include <string.h>

static const proto_type *const proto_all[] = { &proto_memcached, &proto_resp, &proto_http };

const char *const proto_verb_names[PROTO_VERBS] = { "get", "set", "incr", "lpush", "lrange", "hset", "hget" };

const proto_type *proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof proto_all / sizeof proto_all[0]; i++)
        if (strcmp(proto_all[i]->name, name) == 0)
            return proto_all[i];
    return NULL;
}

int proto_verb_find(const char *name)
{
    for (int v = 0; v < PROTO_VERBS; v++)
        if (strcmp(proto_verb_names[v], name) == 0)
            return v;
    return -1;
}

size_t proto_request_bound(const proto_request *req)
{
    size_t count = req->count ? req->count : 1;
    size_t n = 128 + req->key_len + count * (req->value_len + 48);
    if (req->path)
        n += strlen(req->path);
    if (req->host)
        n += strlen(req->host);
    return n;
}

long proto_find_crlf(const char *buf, size_t from, size_t len)
{
    while (from + 1 < len) {
        const char *cr = memchr(buf + from, '\r', len - from - 1);
        if (!cr)
            return -1;
        size_t at = (size_t)(cr - buf);
        if (buf[at + 1] == '\n')
            return (long)at;
        from = at + 1;
    }
    return -1;
}

int proto_parse_uint(const char *buf, size_t len, unsigned long long *out)
{
    if (len == 0 || len > 18)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(buf[i] - '0');
    }
    *out = v;
    return 0;
}
