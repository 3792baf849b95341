/* proto_http.c -- HTTP/1.x requests, keep-alive.
 *
 * Every method is answered 200 with an application/octet-stream body, the
 * header and body together sized to the sampled total (the Server value
 * takes a padding byte for the one total at each power of ten that the
 * Content-Length digits skip). HEAD gets the headers only. A request with a
 * body (Content-Length) is read whole; chunked bodies are refused (501).
 * HTTP/1.0 without keep-alive, or Connection: close, closes after the reply.
 * Malformed requests get a 4xx and the connection is closed. */
#define _GNU_SOURCE
#include <string.h>

#include "proto.h"

#define HTTP_MAX_HEAD 16384

#define HTTP_ERROR(status)                                                                                   \
    "HTTP/1.1 " status "\r\nServer: twin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

static long http_bad(proto_req *req, const char *reply, size_t len)
{
    req->reply = reply;
    req->reply_len = len;
    return PROTO_BAD;
}

#define HTTP_BAD(req, status) http_bad((req), HTTP_ERROR(status), sizeof(HTTP_ERROR(status)) - 1)

static int http_is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether the comma-separated header value contains `word`. */
static int http_value_has(const char *v, size_t len, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= len; i++)
        if (proto_token_eq(v + i, wl, word, wl))
            return 1;
    return 0;
}

static long http_parse(const char *buf, size_t len, proto_req *req)
{
    memset(req, 0, sizeof *req);
    size_t skip = 0; /* empty lines before a request are ignored (RFC 9112 2.2) */
    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    if (skip > 0) {
        req->kind = PROTO_REQ_NONE;
        return (long)skip;
    }
    size_t scan = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    if (!end) {
        if (len >= HTTP_MAX_HEAD)
            return HTTP_BAD(req, "431 Request Header Fields Too Large");
        return PROTO_MORE;
    }
    size_t head_len = (size_t)(end - buf) + 4;

    /* request line: method SP target SP HTTP/1.x CRLF */
    const char *p = buf, *line_end = memchr(buf, '\r', head_len);
    const char *sp = p;
    while (sp < line_end && http_is_tchar(*sp))
        sp++;
    if (sp == p || sp >= line_end || *sp != ' ')
        return HTTP_BAD(req, "400 Bad Request");
    req->verb = p;
    req->verb_len = (size_t)(sp - p);
    const char *target = sp + 1, *tend = target;
    while (tend<line_end && * tend> ' ' && *tend != 0x7f)
        tend++;
    if (tend == target || tend >= line_end || *tend != ' ')
        return HTTP_BAD(req, "400 Bad Request");
    const char *version = tend + 1;
    if (line_end[1] != '\n' || line_end - version != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
        (version[7] != '0' && version[7] != '1'))
        return HTTP_BAD(req, "400 Bad Request");
    int http10 = version[7] == '0', keep_alive = 0, close = 0;

    /* header fields: name ":" OWS value OWS CRLF */
    uint64_t body = 0;
    const char *h = line_end + 2;
    while (h < end + 2) {
        const char *eol = memchr(h, '\r', (size_t)(end + 2 - h));
        const char *colon = h;
        while (colon < eol && http_is_tchar(*colon))
            colon++;
        if (colon == h || colon >= eol || *colon != ':' || eol[1] != '\n')
            return HTTP_BAD(req, "400 Bad Request");
        size_t name_len = (size_t)(colon - h);
        const char *v = colon + 1, *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        if (proto_token_is(h, name_len, "Content-Length")) {
            if (proto_parse_u64(v, (size_t)(vend - v), UINT64_MAX, &body) != TWIN_OK)
                return HTTP_BAD(req, "400 Bad Request");
            if (body > PROTO_MAX_REQUEST)
                return HTTP_BAD(req, "413 Content Too Large");
        } else if (proto_token_is(h, name_len, "Transfer-Encoding")) {
            return HTTP_BAD(req, "501 Not Implemented");
        } else if (proto_token_is(h, name_len, "Connection")) {
            close |= http_value_has(v, (size_t)(vend - v), "close");
            keep_alive |= http_value_has(v, (size_t)(vend - v), "keep-alive");
        }
        h = eol + 2;
    }
    size_t total = head_len + (size_t)body;
    if (len < total) {
        req->need = total;
        return PROTO_MORE;
    }
    req->kind = PROTO_REQ_SIZED;
    req->key = target;
    req->key_len = (size_t)(tend - target);
    req->head = proto_token_is(req->verb, req->verb_len, "HEAD");
    req->close = close || (http10 && !keep_alive);
    return (long)total;
}

static int http_respond(const proto_req *req, int named, uint32_t size, proto_buf *out)
{
    static const char status[] = "HTTP/1.1 200 OK\r\nServer: twin";
    static const char middle[] = "\r\nContent-Type: application/octet-stream\r\nContent-Length: ";
    static const char close[] = "\r\nConnection: close\r\n\r\n";
    static const char keep[] = "\r\nConnection: keep-alive\r\n\r\n";
    const char *connection = req->close ? close : keep;
    size_t connection_len = req->close ? sizeof close - 1 : sizeof keep - 1;
    size_t fixed = sizeof status - 1 + sizeof middle - 1 + connection_len;
    size_t n = 0, pad = 0;
    (void)named;

    if (req->kind != PROTO_REQ_SIZED)
        return proto_buf_append(out, req->reply, req->reply_len);
    if (req->head || proto_fit(size, fixed, &n, &pad) != TWIN_OK)
        n = pad = 0; /* smallest valid reply */
    if (proto_buf_reserve(out, fixed + 24 + n + pad) != TWIN_OK)
        return TWIN_ERR;
    proto_buf_appends(out, status);
    proto_buf_append(out, "----", pad);
    proto_buf_appends(out, middle);
    proto_buf_append_u64(out, n);
    proto_buf_append(out, connection, connection_len);
    return req->head ? TWIN_OK : proto_buf_append_payload(out, n);
}

const proto_ops proto_http = {
    .name = "http",
    .parse = http_parse,
    .respond = http_respond,
};
