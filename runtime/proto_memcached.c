/* proto_memcached.c -- the memcached text protocol.
 *
 * Retrieval (get, gets, gat, gats) is answered with one VALUE of the first
 * key, sized to the sampled total; storage (set, add, replace, append,
 * prepend, cas) reads its data block and answers STORED; delete answers
 * DELETED; quit closes; any other verb answers ERROR, as memcached does.
 * Malformed input gets a CLIENT_ERROR and the connection is closed. */
#define _GNU_SOURCE
#include <string.h>

#include "proto.h"

#define MC_MAX_LINE   2048
#define MC_MAX_KEY    250
#define MC_MAX_TOKENS 8

#define MC_REPLY(req, s) ((req)->reply = (s), (req)->reply_len = sizeof(s) - 1)

typedef struct {
    const char *p;
    size_t len;
} mc_token;

static long mc_bad(proto_req *req, const char *reply, size_t len)
{
    req->reply = reply;
    req->reply_len = len;
    return PROTO_BAD;
}

#define MC_BAD(req, s) mc_bad((req), (s), sizeof(s) - 1)

/* Splits line[0..len) at spaces; returns how many tokens there were (only
 * the first MC_MAX_TOKENS are stored). */
static size_t mc_tokens(const char *line, size_t len, mc_token *tok)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        if (n < MC_MAX_TOKENS) {
            tok[n].p = line + start;
            tok[n].len = i - start;
        }
        n++;
    }
    return n;
}

static int mc_is_storage(const mc_token *t)
{
    return proto_token_is(t->p, t->len, "set") || proto_token_is(t->p, t->len, "add") ||
           proto_token_is(t->p, t->len, "replace") || proto_token_is(t->p, t->len, "append") ||
           proto_token_is(t->p, t->len, "prepend") || proto_token_is(t->p, t->len, "cas");
}

static long mc_parse(const char *buf, size_t len, proto_req *req)
{
    mc_token tok[MC_MAX_TOKENS];
    memset(req, 0, sizeof *req);

    const char *eol = memchr(buf, '\n', len < MC_MAX_LINE ? len : MC_MAX_LINE);
    if (!eol) {
        if (len >= MC_MAX_LINE)
            return MC_BAD(req, "CLIENT_ERROR request line over the limit\r\n");
        return PROTO_MORE;
    }
    size_t line_len = (size_t)(eol - buf) + 1;
    size_t end = line_len - 1;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    size_t n = mc_tokens(buf, end, tok);
    if (n == 0) {
        req->kind = PROTO_REQ_NONE;
        MC_REPLY(req, "ERROR\r\n");
        return (long)line_len;
    }
    req->verb = tok[0].p;
    req->verb_len = tok[0].len;
    size_t stored = n < MC_MAX_TOKENS ? n : MC_MAX_TOKENS;

    if (mc_is_storage(&tok[0])) {
        /* <verb> <key> <flags> <exptime> <bytes> [<cas unique>] [noreply] */
        size_t bytes_at = 4, want = proto_token_is(tok[0].p, tok[0].len, "cas") ? 6 : 5;
        uint64_t bytes, ignored;
        if (n < want || n > want + 1 || tok[1].len > MC_MAX_KEY ||
            proto_parse_u64(tok[2].p, tok[2].len, UINT32_MAX, &ignored) != TWIN_OK ||
            proto_parse_u64(tok[bytes_at].p, tok[bytes_at].len, UINT64_MAX, &bytes) != TWIN_OK)
            return MC_BAD(req, "CLIENT_ERROR malformed request\r\n");
        if (bytes > PROTO_MAX_REQUEST)
            return MC_BAD(req, "SERVER_ERROR value over the limit\r\n");
        if (n == want + 1) {
            if (!proto_token_is(tok[want].p, tok[want].len, "noreply"))
                return MC_BAD(req, "CLIENT_ERROR malformed request\r\n");
            req->noreply = 1;
        }
        size_t total = line_len + (size_t)bytes + 2;
        if (len < total) {
            req->need = total;
            return PROTO_MORE;
        }
        if (buf[total - 2] != '\r' || buf[total - 1] != '\n')
            return MC_BAD(req, "CLIENT_ERROR data block not ended by CRLF\r\n");
        req->key = tok[1].p;
        req->key_len = tok[1].len;
        req->kind = PROTO_REQ_FIXED;
        MC_REPLY(req, "STORED\r\n");
        return (long)total;
    }

    int touch = proto_token_is(tok[0].p, tok[0].len, "gat") || proto_token_is(tok[0].p, tok[0].len, "gats");
    if (touch || proto_token_is(tok[0].p, tok[0].len, "get") ||
        proto_token_is(tok[0].p, tok[0].len, "gets")) {
        size_t key_at = touch ? 2 : 1; /* gat <exptime> <key>... */
        if (stored <= key_at)
            return MC_BAD(req, "ERROR\r\n");
        for (size_t i = key_at; i < stored; i++)
            if (tok[i].len > MC_MAX_KEY)
                return MC_BAD(req, "CLIENT_ERROR malformed request\r\n");
        req->key = tok[key_at].p;
        req->key_len = tok[key_at].len;
        req->kind = PROTO_REQ_SIZED;
        return (long)line_len;
    }

    if (proto_token_is(tok[0].p, tok[0].len, "quit")) {
        req->kind = PROTO_REQ_NONE;
        req->close = 1;
        return (long)line_len;
    }

    if (proto_token_is(tok[0].p, tok[0].len, "delete") && n >= 2) {
        req->kind = PROTO_REQ_FIXED;
        req->noreply = proto_token_is(tok[stored - 1].p, tok[stored - 1].len, "noreply");
        MC_REPLY(req, "DELETED\r\n");
        return (long)line_len;
    }

    req->kind = PROTO_REQ_OTHER;
    MC_REPLY(req, "ERROR\r\n");
    return (long)line_len;
}

/* A sized reply: VALUE <key> <flags> <n>\r\n<n bytes>\r\nEND\r\n. */
static __attribute__((noinline)) int mc_value(const proto_req *req, uint32_t size, proto_buf *out)
{
    /* 18 fixed bytes with a one-digit flags field; the one unreachable total at each power
     * of ten is met with a leading zero in the flags. */
    size_t n, pad;
    if (proto_fit(size, 18 + req->key_len, &n, &pad) != TWIN_OK)
        return proto_buf_appends(out, "END\r\n");
    if (proto_buf_reserve(out, size) != TWIN_OK)
        return TWIN_ERR;
    proto_buf_appends(out, "VALUE ");
    proto_buf_append(out, req->key, req->key_len);
    if (pad)
        proto_buf_appends(out, " 00 ");
    else
        proto_buf_appends(out, " 0 ");
    proto_buf_append_u64(out, n);
    proto_buf_appends(out, "\r\n");
    proto_buf_append_payload(out, n);
    return proto_buf_appends(out, "\r\nEND\r\n");
}

static int mc_respond(const proto_req *req, int named, uint32_t size, proto_buf *out)
{
    (void)named;
    if (req->kind != PROTO_REQ_SIZED)
        return proto_buf_append(out, req->reply, req->reply_len);
    return mc_value(req, size, out);
}

const proto_ops proto_memcached = {
    .name = "memcached",
    .parse = mc_parse,
    .respond = mc_respond,
};
