/* proto_memcached.c -- memcached text protocol: get and set.
 *
 * Responses: "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n" blocks
 * closed by "END\r\n", a bare "END\r\n" (miss), the storage replies, and the
 * error lines ERROR, SERVER_ERROR <msg>, CLIENT_ERROR <msg>. */
#include "proto.h"

#include <stdio.h>
#include <string.h>

/* A reply line longer than this cannot be one of ours: the key is at most
 * 250 bytes and the rest are numbers. Server error messages are short. */
#define MC_MAX_LINE 8192

static size_t mc_put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return n;
}

static size_t mc_format(char *out, const proto_request *req)
{
    size_t n = 0;
    if (req->verb == PROTO_GET) {
        n += mc_put(out + n, "get ", 4);
        n += mc_put(out + n, req->key, req->key_len);
        n += mc_put(out + n, "\r\n", 2);
        return n;
    }
    n += mc_put(out + n, "set ", 4);
    n += mc_put(out + n, req->key, req->key_len);
    n += (size_t)sprintf(out + n, " 0 0 %zu\r\n", req->value_len);
    n += mc_put(out + n, req->value, req->value_len);
    n += mc_put(out + n, "\r\n", 2);
    return n;
}

static int mc_line_is(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && memcmp(line, word, w) == 0;
}

/* word alone, or word followed by a space and anything. */
static int mc_line_has_word(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && memcmp(line, word, w) == 0 && (n == w || line[w] == ' ');
}

/* Checks "VALUE <key> <flags> <bytes>[ <cas>]" and returns <bytes>, or -1. */
static long long mc_value_header(const char *line, size_t n)
{
    const char *tok[5];
    size_t tlen[5];
    size_t ntok = 0, i = 0;
    while (i < n) {
        if (ntok == 5)
            return -1;
        size_t start = i;
        while (i < n && line[i] != ' ')
            i++;
        if (i == start)
            return -1; /* empty token: double or edge space */
        tok[ntok] = line + start;
        tlen[ntok++] = i - start;
        if (i < n) {
            i++;
            if (i == n)
                return -1; /* trailing space */
        }
    }
    if (ntok < 4 || !mc_line_is(tok[0], tlen[0], "VALUE"))
        return -1;
    unsigned long long flags, bytes, cas;
    if (proto_parse_uint(tok[2], tlen[2], &flags) < 0)
        return -1;
    if (proto_parse_uint(tok[3], tlen[3], &bytes) < 0)
        return -1;
    if (ntok == 5 && proto_parse_uint(tok[4], tlen[4], &cas) < 0)
        return -1;
    if (bytes > (1ull << 40))
        return -1;
    return (long long)bytes;
}

static proto_result mc_parse(const char *buf, size_t len, size_t *resp_len)
{
    size_t off = 0;
    int in_values = 0;
    *resp_len = 0;
    for (;;) {
        long crlf = proto_find_crlf(buf, off, len);
        if (crlf < 0)
            return len - off > MC_MAX_LINE ? PROTO_BAD : PROTO_INCOMPLETE;
        const char *line = buf + off;
        size_t n = (size_t)crlf - off, next = (size_t)crlf + 2;

        if (mc_line_has_word(line, n, "VALUE")) {
            long long bytes = mc_value_header(line, n);
            if (bytes < 0)
                return PROTO_BAD;
            size_t end = next + (size_t)bytes + 2;
            if (len < end) {
                *resp_len = end + 5; /* at least "END\r\n" follows */
                return PROTO_INCOMPLETE;
            }
            if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                return PROTO_BAD;
            off = end;
            in_values = 1;
            continue;
        }
        if (mc_line_is(line, n, "END")) {
            *resp_len = next;
            return PROTO_OK;
        }
        if (in_values)
            return PROTO_BAD;
        *resp_len = next;
        if (mc_line_is(line, n, "STORED") || mc_line_is(line, n, "NOT_STORED") ||
            mc_line_is(line, n, "EXISTS") || mc_line_is(line, n, "NOT_FOUND"))
            return PROTO_OK;
        if (mc_line_is(line, n, "ERROR") || mc_line_has_word(line, n, "SERVER_ERROR") ||
            mc_line_has_word(line, n, "CLIENT_ERROR"))
            return PROTO_SERVER_ERROR;
        *resp_len = 0;
        return PROTO_BAD;
    }
}

const proto_type proto_memcached = {
    .name = "memcached",
    .verbs = PROTO_VERB(PROTO_GET) | PROTO_VERB(PROTO_SET),
    .format = mc_format,
    .parse = mc_parse,
};
