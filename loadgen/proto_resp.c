/* proto_resp.c -- RESP (the redis protocol, version 2): GET and SET, and the
 * data-structure commands INCR, LPUSH, LRANGE, HSET and HGET.
 *
 * A response is one value: simple string (+), error (-), integer (:), bulk
 * string ($, with $-1 for nil) or array (*, with *-1 for nil) of values.
 * Only a top-level error counts as a server error; an array holding errors
 * (EXEC's reply) is a normal answer. */
#include "proto.h"

#include <stdio.h>
#include <string.h>

#define RESP_MAX_LINE  65536
#define RESP_MAX_DEPTH 16
#define RESP_MAX_ARRAY (1ull << 24)
#define RESP_MAX_BULK  (1ull << 40)

/* Each data structure lives under its own key prefix, so that no command meets
 * a key of another type (INCR of a string value, LPUSH of a hash: -WRONGTYPE). */
static const char *const resp_prefix[PROTO_VERBS] = {
    [PROTO_GET] = "",      [PROTO_SET] = "",    [PROTO_INCR] = "c:", [PROTO_LPUSH] = "l:",
    [PROTO_LRANGE] = "l:", [PROTO_HSET] = "h:", [PROTO_HGET] = "h:",
};

/* Appends one bulk string: $<n>\r\n<prefix><s>\r\n. */
static size_t resp_bulk(char *out, const char *prefix, const char *s, size_t len)
{
    size_t p = strlen(prefix);
    size_t n = (size_t)sprintf(out, "$%zu\r\n", p + len);
    memcpy(out + n, prefix, p);
    memcpy(out + n + p, s, len);
    n += p + len;
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

static size_t resp_bulk_str(char *out, const char *s)
{
    return resp_bulk(out, "", s, strlen(s));
}

/* GET k, SET k v, INCR c:k, LPUSH l:k v..., LRANGE l:k 0 9, HSET h:k f<n> v...,
 * HGET h:k f<n>; with count > 1, LPUSH sends count values and HSET count fields
 * from f<field> on (preloading), the same value each. */
static size_t resp_format(char *out, const proto_request *req)
{
    static const char *const upper[PROTO_VERBS] = { "GET", "SET", "INCR", "LPUSH", "LRANGE", "HSET", "HGET" };
    proto_verb v = req->verb;
    unsigned count = req->count ? req->count : 1;
    size_t args = v == PROTO_GET || v == PROTO_INCR   ? 2
                  : v == PROTO_SET || v == PROTO_HGET ? 3
                  : v == PROTO_LRANGE                 ? 4
                  : v == PROTO_LPUSH                  ? 2 + count
                                                      : 2 + 2 * (size_t)count;
    size_t n = (size_t)sprintf(out, "*%zu\r\n", args);
    n += resp_bulk_str(out + n, upper[v]);
    n += resp_bulk(out + n, resp_prefix[v], req->key, req->key_len);
    char field[16];
    switch (v) {
    case PROTO_SET:
        n += resp_bulk(out + n, "", req->value, req->value_len);
        break;
    case PROTO_LPUSH:
        for (unsigned i = 0; i < count; i++)
            n += resp_bulk(out + n, "", req->value, req->value_len);
        break;
    case PROTO_LRANGE:
        n += resp_bulk_str(out + n, "0");
        n += resp_bulk_str(out + n, "9");
        break;
    case PROTO_HSET:
        for (unsigned i = 0; i < count; i++) {
            snprintf(field, sizeof field, "f%u", req->field + i);
            n += resp_bulk_str(out + n, field);
            n += resp_bulk(out + n, "", req->value, req->value_len);
        }
        break;
    case PROTO_HGET:
        snprintf(field, sizeof field, "f%u", req->field);
        n += resp_bulk_str(out + n, field);
        break;
    default:
        break;
    }
    return n;
}

/* "-1" or a non-negative number; *nil tells which. */
static int resp_length(const char *s, size_t n, unsigned long long *v, int *nil)
{
    *nil = n == 2 && s[0] == '-' && s[1] == '1';
    *v = 0;
    if (*nil)
        return 0;
    return proto_parse_uint(s, n, v);
}

/* Parses the value at buf[off..len); on success *end is the offset after
 * it. On PROTO_INCOMPLETE, *need is the least total length known needed. */
static proto_result resp_value(const char *buf, size_t off, size_t len, int depth, size_t *end, size_t *need)
{
    if (depth > RESP_MAX_DEPTH)
        return PROTO_BAD;
    if (off >= len)
        return PROTO_INCOMPLETE;
    long crlf = proto_find_crlf(buf, off + 1, len);
    if (crlf < 0)
        return len - off > RESP_MAX_LINE ? PROTO_BAD : PROTO_INCOMPLETE;
    const char *body = buf + off + 1;
    size_t n = (size_t)crlf - off - 1, next = (size_t)crlf + 2;
    unsigned long long v;
    int nil;

    switch (buf[off]) {
    case '+':
        *end = next;
        return PROTO_OK;
    case '-':
        *end = next;
        return PROTO_SERVER_ERROR;
    case ':': /* a signed 64-bit integer: up to 19 digits, its value unused */
        if (n > 0 && body[0] == '-')
            body++, n--;
        if (n == 0 || n > 19)
            return PROTO_BAD;
        for (size_t i = 0; i < n; i++)
            if (body[i] < '0' || body[i] > '9')
                return PROTO_BAD;
        *end = next;
        return PROTO_OK;
    case '$':
        if (resp_length(body, n, &v, &nil) < 0 || v > RESP_MAX_BULK)
            return PROTO_BAD;
        if (nil) {
            *end = next;
            return PROTO_OK;
        }
        *end = next + (size_t)v + 2;
        if (len < *end) {
            *need = *end;
            return PROTO_INCOMPLETE;
        }
        if (buf[*end - 2] != '\r' || buf[*end - 1] != '\n')
            return PROTO_BAD;
        return PROTO_OK;
    case '*':
        if (resp_length(body, n, &v, &nil) < 0 || v > RESP_MAX_ARRAY)
            return PROTO_BAD;
        *end = next;
        for (unsigned long long i = 0; !nil && i < v; i++) {
            proto_result r = resp_value(buf, *end, len, depth + 1, end, need);
            if (r == PROTO_INCOMPLETE || r == PROTO_BAD)
                return r;
        }
        return PROTO_OK;
    default:
        return PROTO_BAD;
    }
}

static proto_result resp_parse(const char *buf, size_t len, size_t *resp_len)
{
    size_t end = 0, need = 0;
    proto_result r = resp_value(buf, 0, len, 0, &end, &need);
    *resp_len = r == PROTO_INCOMPLETE ? need : end;
    return r;
}

const proto_type proto_resp = {
    .name = "resp",
    .verbs = PROTO_VERB(PROTO_GET) | PROTO_VERB(PROTO_SET) | PROTO_VERB(PROTO_INCR) |
             PROTO_VERB(PROTO_LPUSH) | PROTO_VERB(PROTO_LRANGE) | PROTO_VERB(PROTO_HSET) |
             PROTO_VERB(PROTO_HGET),
    .format = resp_format,
    .parse = resp_parse,
};
