/* proto_resp.c -- RESP (the redis protocol, version 2): GET and SET.
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

static size_t resp_format(char *out, const proto_request *req)
{
    size_t n = 0;
    if (req->verb == PROTO_GET) {
        n += (size_t)sprintf(out, "*2\r\n$3\r\nGET\r\n$%zu\r\n", req->key_len);
    } else {
        n += (size_t)sprintf(out, "*3\r\n$3\r\nSET\r\n$%zu\r\n", req->key_len);
    }
    memcpy(out + n, req->key, req->key_len);
    n += req->key_len;
    memcpy(out + n, "\r\n", 2);
    n += 2;
    if (req->verb == PROTO_SET) {
        n += (size_t)sprintf(out + n, "$%zu\r\n", req->value_len);
        memcpy(out + n, req->value, req->value_len);
        n += req->value_len;
        memcpy(out + n, "\r\n", 2);
        n += 2;
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
    case ':':
        if (n > 0 && body[0] == '-')
            body++, n--;
        if (proto_parse_uint(body, n, &v) < 0)
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
    .has_set = 1,
    .format = resp_format,
    .parse = resp_parse,
};
