/* proto_http.c -- HTTP/1.1 GET over keep-alive connections.
 *
 * A response is a status line and headers, then a body framed by
 * Content-Length or Transfer-Encoding: chunked (204, 304 and 1xx carry no
 * body; interim 1xx responses are folded into the final one). A body framed
 * only by the server closing the connection cannot be delimited on a
 * pipelined connection and is a protocol error. Status >= 400 is a server
 * error. */
#define _GNU_SOURCE
#include "proto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_HEAD 65536
#define HTTP_MAX_BODY (1ull << 40)

static size_t http_format(char *out, const proto_request *req)
{
    return (size_t)sprintf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", req->path ? req->path : "/",
                           req->host ? req->host : "127.0.0.1");
}

/* Header value with surrounding spaces and tabs removed. */
static void http_trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Whether the comma-separated list s[0..n) ends with "chunked". */
static int http_is_chunked(const char *s, size_t n)
{
    const char *last = s;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',')
            last = s + i + 1;
    size_t ln = n - (size_t)(last - s);
    http_trim(&last, &ln);
    return ln == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* The end of a chunked body starting at off, or PROTO_INCOMPLETE/BAD. */
static proto_result http_chunks(const char *buf, size_t off, size_t len, size_t *end, size_t *need)
{
    for (;;) {
        long crlf = proto_find_crlf(buf, off, len);
        if (crlf < 0)
            return len - off > HTTP_MAX_HEAD ? PROTO_BAD : PROTO_INCOMPLETE;
        unsigned long long size = 0;
        size_t i = off, digits = 0;
        for (; i < (size_t)crlf; i++, digits++) {
            char c = buf[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (digits >= 12)
                return PROTO_BAD;
            size = size * 16 + (unsigned)d;
        }
        if (digits == 0 || (i < (size_t)crlf && buf[i] != ';' && buf[i] != ' ' && buf[i] != '\t'))
            return PROTO_BAD;
        off = (size_t)crlf + 2;
        if (size == 0)
            break;
        size_t data_end = off + (size_t)size + 2;
        if (len < data_end) {
            *need = data_end;
            return PROTO_INCOMPLETE;
        }
        if (buf[data_end - 2] != '\r' || buf[data_end - 1] != '\n')
            return PROTO_BAD;
        off = data_end;
    }
    for (;;) { /* trailer fields, then an empty line */
        long crlf = proto_find_crlf(buf, off, len);
        if (crlf < 0)
            return len - off > HTTP_MAX_HEAD ? PROTO_BAD : PROTO_INCOMPLETE;
        size_t line = (size_t)crlf - off;
        off = (size_t)crlf + 2;
        if (line == 0)
            break;
    }
    *end = off;
    return PROTO_OK;
}

/* One response head at off; *status and *end (body start) on success. */
static proto_result http_message(const char *buf, size_t off, size_t len, size_t *end, size_t *need)
{
    const char *head_end = memmem(buf + off, len - off, "\r\n\r\n", 4);
    if (!head_end)
        return len - off > HTTP_MAX_HEAD ? PROTO_BAD : PROTO_INCOMPLETE;
    size_t body = (size_t)(head_end - buf) + 4;

    const char *s = buf + off;
    if (body - off < 16 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return PROTO_BAD;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PROTO_BAD;
        status = status * 10 + (s[i] - '0');
    }
    if (s[12] != ' ' && s[12] != '\r')
        return PROTO_BAD;

    long long content_length = -1;
    int chunked = 0;
    size_t line = (size_t)proto_find_crlf(buf, off, len) + 2;
    while (line < body - 2) {
        size_t eol = (size_t)proto_find_crlf(buf, line, len);
        const char *colon = memchr(buf + line, ':', eol - line);
        if (!colon)
            return PROTO_BAD;
        size_t name_len = (size_t)(colon - (buf + line));
        const char *value = colon + 1;
        size_t value_len = eol - (size_t)(value - buf);
        http_trim(&value, &value_len);
        if (name_len == 14 && strncasecmp(buf + line, "Content-Length", 14) == 0) {
            unsigned long long v;
            if (proto_parse_uint(value, value_len, &v) < 0 || v > HTTP_MAX_BODY)
                return PROTO_BAD;
            if (content_length >= 0 && (unsigned long long)content_length != v)
                return PROTO_BAD;
            content_length = (long long)v;
        } else if (name_len == 17 && strncasecmp(buf + line, "Transfer-Encoding", 17) == 0) {
            chunked = http_is_chunked(value, value_len);
            if (!chunked)
                return PROTO_BAD; /* framed by close only */
        }
        line = eol + 2;
    }

    proto_result ok = status >= 400 ? PROTO_SERVER_ERROR : PROTO_OK;
    if ((status >= 100 && status < 200) || status == 204 || status == 304) {
        *end = body;
        return ok;
    }
    if (chunked) {
        proto_result r = http_chunks(buf, body, len, end, need);
        return r == PROTO_OK ? ok : r;
    }
    if (content_length < 0)
        return PROTO_BAD;
    *end = body + (size_t)content_length;
    if (len < *end) {
        *need = *end;
        return PROTO_INCOMPLETE;
    }
    return ok;
}

static proto_result http_parse(const char *buf, size_t len, size_t *resp_len)
{
    size_t off = 0, need = 0;
    *resp_len = 0;
    for (;;) {
        size_t end = 0;
        proto_result r = http_message(buf, off, len, &end, &need);
        if (r == PROTO_INCOMPLETE) {
            *resp_len = need;
            return r;
        }
        if (r == PROTO_BAD)
            return r;
        /* An interim 1xx response (not 101) precedes the real one. */
        if (len - off >= 12 && buf[off + 9] == '1' && memcmp(buf + off + 9, "101", 3) != 0) {
            off = end;
            continue;
        }
        *resp_len = end;
        return r;
    }
}

const proto_type proto_http = {
    .name = "http",
    .verbs = PROTO_VERB(PROTO_GET),
    .format = http_format,
    .parse = http_parse,
};
