/* proto_resp.c -- RESP (redis): arrays of bulk strings, and inline commands.
 *
 * GET is answered with a bulk string sized to the sampled total ($-1 when
 * the total is 5 or less; a simple string for the one total at each power of
 * ten that a bulk length cannot reach). SET answers +OK, PING +PONG, QUIT +OK
 * and closes. Other verbs answer a sized bulk string when they name one of
 * the clone's ops, else -ERR; below 6 bytes, where no bulk but the nil fits,
 * they answer an integer of total - 3 digits (:1, :10), as INCR, LPUSH and
 * HSET do. Malformed input gets -ERR Protocol error and the connection is
 * closed, as redis does. */
#define _GNU_SOURCE
#include <string.h>

#include "proto.h"

#define RESP_MAX_INLINE      65536
#define RESP_MAX_ARGS        (1024 * 1024)
#define RESP_MAX_NUMBER_LINE 32

#define RESP_REPLY(req, s) ((req)->reply = (s), (req)->reply_len = sizeof(s) - 1)

static long resp_bad(proto_req *req, const char *reply, size_t len)
{
    req->reply = reply;
    req->reply_len = len;
    return PROTO_BAD;
}

#define RESP_BAD(req, s) resp_bad((req), (s), sizeof(s) - 1)

/* Reads "<prefix><number>\r\n" at buf[*off]; advances *off past it. */
static int resp_number(const char *buf, size_t len, size_t *off, char prefix, int64_t *value)
{
    size_t start = *off;
    size_t limit = len - start < RESP_MAX_NUMBER_LINE ? len - start : RESP_MAX_NUMBER_LINE;
    const char *p = buf + start;
    const char *cr = memchr(p, '\r', limit);
    if (!cr || (size_t)(cr - p) + 1 >= limit)
        return limit == RESP_MAX_NUMBER_LINE ? PROTO_BAD : PROTO_MORE;
    if (p[0] != prefix || cr[1] != '\n')
        return PROTO_BAD;
    const char *digits = p + 1;
    int neg = 0;
    if (digits < cr && *digits == '-') {
        neg = 1;
        digits++;
    }
    uint64_t v;
    if (proto_parse_u64(digits, (size_t)(cr - digits), INT32_MAX, &v) != TWIN_OK)
        return PROTO_BAD;
    *value = neg ? -(int64_t)v : (int64_t)v;
    *off = (size_t)(cr - buf) + 2;
    return 1;
}

static void resp_command(proto_req *req, size_t argc)
{
    const char *v = req->verb;
    size_t n = req->verb_len;
    if (proto_token_is(v, n, "GET")) {
        if (argc != 2) {
            req->kind = PROTO_REQ_FIXED;
            RESP_REPLY(req, "-ERR wrong number of arguments for 'get' command\r\n");
            return;
        }
        req->kind = PROTO_REQ_SIZED;
    } else if (proto_token_is(v, n, "SET")) {
        req->kind = PROTO_REQ_FIXED;
        if (argc < 3)
            RESP_REPLY(req, "-ERR wrong number of arguments for 'set' command\r\n");
        else
            RESP_REPLY(req, "+OK\r\n");
    } else if (proto_token_is(v, n, "PING")) {
        req->kind = PROTO_REQ_FIXED;
        RESP_REPLY(req, "+PONG\r\n");
    } else if (proto_token_is(v, n, "QUIT")) {
        req->kind = PROTO_REQ_NONE;
        req->close = 1;
        RESP_REPLY(req, "+OK\r\n");
    } else {
        req->kind = PROTO_REQ_OTHER;
        RESP_REPLY(req, "-ERR unknown command\r\n");
    }
}

static long resp_parse_array(const char *buf, size_t len, proto_req *req)
{
    size_t off = 0;
    int64_t argc, blen;
    int rc = resp_number(buf, len, &off, '*', &argc);
    if (rc == PROTO_MORE)
        return PROTO_MORE;
    if (rc == PROTO_BAD || argc > RESP_MAX_ARGS)
        return RESP_BAD(req, "-ERR Protocol error: invalid multibulk length\r\n");
    if (argc <= 0) {
        req->kind = PROTO_REQ_NONE;
        return (long)off;
    }
    for (int64_t i = 0; i < argc; i++) {
        if (off >= len)
            return PROTO_MORE;
        if (buf[off] != '$')
            return RESP_BAD(req, "-ERR Protocol error: expected '$'\r\n");
        rc = resp_number(buf, len, &off, '$', &blen);
        if (rc == PROTO_MORE)
            return PROTO_MORE;
        if (rc == PROTO_BAD || blen < 0 || (uint64_t)blen > PROTO_MAX_REQUEST)
            return RESP_BAD(req, "-ERR Protocol error: invalid bulk length\r\n");
        size_t end = off + (size_t)blen + 2;
        if (len < end) {
            req->need = end;
            return PROTO_MORE;
        }
        if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
            return RESP_BAD(req, "-ERR Protocol error: bad bulk string\r\n");
        if (i == 0) {
            req->verb = buf + off;
            req->verb_len = (size_t)blen;
        } else if (i == 1) {
            req->key = buf + off;
            req->key_len = (size_t)blen;
        }
        off = end;
    }
    resp_command(req, (size_t)argc);
    return (long)off;
}

static long resp_parse_inline(const char *buf, size_t len, proto_req *req)
{
    const char *eol = memchr(buf, '\n', len < RESP_MAX_INLINE ? len : RESP_MAX_INLINE);
    if (!eol) {
        if (len >= RESP_MAX_INLINE)
            return RESP_BAD(req, "-ERR Protocol error: too big inline request\r\n");
        return PROTO_MORE;
    }
    size_t line_len = (size_t)(eol - buf) + 1, end = line_len - 1, i = 0, argc = 0;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    while (i < end) {
        while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        if (i == end)
            break;
        size_t start = i;
        while (i < end && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (argc == 0) {
            req->verb = buf + start;
            req->verb_len = i - start;
        } else if (argc == 1) {
            req->key = buf + start;
            req->key_len = i - start;
        }
        argc++;
    }
    if (argc == 0)
        req->kind = PROTO_REQ_NONE;
    else
        resp_command(req, argc);
    return (long)line_len;
}

static long resp_parse(const char *buf, size_t len, proto_req *req)
{
    memset(req, 0, sizeof *req);
    if (len == 0)
        return PROTO_MORE;
    if (buf[0] == '*')
        return resp_parse_array(buf, len, req);
    return resp_parse_inline(buf, len, req);
}

/* A sized reply: $<n>\r\n<n bytes>\r\n, 5 fixed bytes. */
static __attribute__((noinline)) int resp_bulk(uint32_t size, proto_buf *out)
{
    size_t n, pad;
    if (size <= 5 || proto_fit(size, 5, &n, &pad) != TWIN_OK)
        return proto_buf_appends(out, "$-1\r\n");
    if (proto_buf_reserve(out, size) != TWIN_OK)
        return TWIN_ERR;
    if (pad) { /* +<size - 3 bytes>\r\n */
        proto_buf_appends(out, "+");
        proto_buf_append_payload(out, size - 3);
        return proto_buf_appends(out, "\r\n");
    }
    proto_buf_appends(out, "$");
    proto_buf_append_u64(out, n);
    proto_buf_appends(out, "\r\n");
    proto_buf_append_payload(out, n);
    return proto_buf_appends(out, "\r\n");
}

/* A sized integer reply: ":1" and zeros, no leading zero (hiredis refuses
 * one); 4 bytes, the smallest reply, for totals below. */
static int resp_integer(uint32_t size, proto_buf *out)
{
    proto_buf_appends(out, ":1");
    for (uint32_t n = 4; n < size; n++)
        proto_buf_appends(out, "0");
    return proto_buf_appends(out, "\r\n");
}

static int resp_respond(const proto_req *req, int named, uint32_t size, proto_buf *out)
{
    if (req->kind != PROTO_REQ_SIZED && !(req->kind == PROTO_REQ_OTHER && named))
        return proto_buf_append(out, req->reply, req->reply_len);
    if (req->kind == PROTO_REQ_OTHER && size < 6)
        return resp_integer(size, out);
    return resp_bulk(size, out);
}

const proto_ops proto_resp = {
    .name = "resp",
    .parse = resp_parse,
    .respond = resp_respond,
};
