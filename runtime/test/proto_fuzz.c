/* proto_fuzz.c -- feeds the three parsers valid, split and damaged input
 * and checks what they promise: a consumed length within the buffer,
 * pointers inside it, PROTO_MORE only while a request is incomplete, and
 * sized replies of exactly the requested size. Built with the address and
 * undefined-behaviour sanitizers by `make -C runtime fuzz`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "proto.h"

static uint64_t rng = 42;

static uint32_t pick(uint32_t n)
{
    return (uint32_t)(dist_next(&rng) % n);
}

static const char *const memcached_reqs[] = {
    "get foo\r\n",
    "gets a b c\r\n",
    "set k 0 0 5\r\nhello\r\n",
    "set k 1 2 3 noreply\r\nabc\r\n",
    "cas k 0 0 1 99\r\nx\r\n",
    "gat 10 key\r\n",
    "delete k\r\n",
    "quit\r\n",
    "\r\n",
    "version\r\n",
    "GET upper\r\n",
    "set k 0 0 0\r\n\r\n",
};
static const char *const resp_reqs[] = {
    "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n",
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
    "*1\r\n$4\r\nPING\r\n",
    "PING\r\n",
    "get inline\r\n",
    "*0\r\n",
    "*-1\r\n",
    "*1\r\n$4\r\nINCR\r\n",
    "\r\n",
    "*1\r\n$4\r\nQUIT\r\n",
};
static const char *const http_reqs[] = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /a HTTP/1.0\r\n\r\n",
    "HEAD /b HTTP/1.1\r\nConnection: close\r\n\r\n",
    "POST /c HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
    "GET /d HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nX-Long:   v  \r\n\r\n",
    "\r\nGET / HTTP/1.1\r\n\r\n",
};

typedef struct {
    const proto_ops *ops;
    const char *const *reqs;
    size_t n_reqs;
} fuzz_case;

static void fail(const char *what, const char *proto, const char *buf, size_t len)
{
    fprintf(stderr, "proto_fuzz: %s: %s on input of %zu bytes: ", proto, what, len);
    fwrite(buf, 1, len < 200 ? len : 200, stderr);
    fputc('\n', stderr);
    exit(1);
}

/* The wire bytes of `b` from `off` on, gathered piece by piece; their count. */
static size_t flatten(const proto_buf *b, size_t off, char *to)
{
    size_t n = 0;
    for (;;) {
        struct iovec iov[PROTO_IOV_MAX];
        int cnt = proto_buf_pieces(b, off + n, iov, PROTO_IOV_MAX);
        if (!cnt)
            return n;
        for (int i = 0; i < cnt; i++) {
            memcpy(to + n, iov[i].iov_base, iov[i].iov_len);
            n += iov[i].iov_len;
        }
    }
}

/* A reply's pieces are its wire bytes, and its tail from any offset moves to
 * another buffer whole, references kept as references. */
static void check_pieces(const proto_buf *out, const char *proto)
{
    char *all = malloc(out->wire + 1), *tail = malloc(out->wire + 1);
    if (flatten(out, 0, all) != out->wire)
        fail("pieces of another length than the reply", proto, "", 0);
    size_t off = out->wire ? pick((uint32_t)out->wire) : 0;
    proto_buf moved = { 0 };
    if (proto_buf_append_tail(&moved, out, off) != TWIN_OK || moved.wire != out->wire - off ||
        flatten(&moved, 0, tail) != moved.wire || memcmp(tail, all + off, moved.wire) != 0)
        fail("a reply's tail moved otherwise", proto, "", 0);
    if (out->gather && moved.len > out->len)
        fail("a reference copied", proto, "", 0);
    proto_buf_free(&moved);
    free(all);
    free(tail);
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return !p || (p >= buf && p + n <= buf + len);
}

/* Parses like a connection does, one growing prefix at a time (the split
 * points), and builds replies of random sizes. */
static void run(const fuzz_case *fc, const char *input, size_t len)
{
    /* copy into an exact-size heap block so that reads past len are caught */
    char *buf = malloc(len ? len : 1);
    memcpy(buf, input, len);
    size_t off = 0, avail = 0;
    proto_buf out = { 0 };
    while (avail < len) {
        avail += 1 + pick((uint32_t)(len - avail < 64 ? len - avail : 64));
        for (;;) {
            proto_req req;
            long n = fc->ops->parse(buf + off, avail - off, &req);
            if (n == PROTO_MORE)
                break;
            if (n < 0) {
                if (!req.reply || !req.reply_len)
                    fail("PROTO_BAD without an error reply", fc->ops->name, buf, len);
                goto done;
            }
            if ((size_t)n > avail - off)
                fail("consumed past the end", fc->ops->name, buf, len);
            if (!inside(req.verb, req.verb_len, buf + off, (size_t)n) ||
                !inside(req.key, req.key_len, buf + off, (size_t)n))
                fail("pointer outside the request", fc->ops->name, buf, len);
            uint32_t size = pick(4) ? pick(600) : pick(200000);
            proto_buf_clear(&out);
            out.gather = (int)pick(2);
            if (req.kind != PROTO_REQ_NONE && fc->ops->respond(&req, (int)pick(2), size, &out) != TWIN_OK)
                fail("respond failed", fc->ops->name, buf, len);
            if (req.kind == PROTO_REQ_SIZED && !req.head && size >= 300 && out.wire != size)
                fail("sized reply of the wrong size", fc->ops->name, buf, len);
            if (pick(16) == 0)
                check_pieces(&out, fc->ops->name);
            off += (size_t)n;
            if (off == avail)
                break;
        }
    }
done:
    proto_buf_free(&out);
    free(buf);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 200000;
    fuzz_case cases[] = {
        { &proto_memcached, memcached_reqs, sizeof memcached_reqs / sizeof *memcached_reqs },
        { &proto_resp, resp_reqs, sizeof resp_reqs / sizeof *resp_reqs },
        { &proto_http, http_reqs, sizeof http_reqs / sizeof *http_reqs },
    };
    static char input[8192];
    proto_init();
    for (long r = 0; r < rounds; r++) {
        const fuzz_case *fc = &cases[r % 3];
        size_t len = 0;
        uint32_t n = 1 + pick(6);
        for (uint32_t i = 0; i < n; i++) {
            const char *q = fc->reqs[pick((uint32_t)fc->n_reqs)];
            size_t ql = strlen(q);
            if (len + ql < sizeof input) {
                memcpy(input + len, q, ql);
                len += ql;
            }
        }
        uint32_t damage = pick(3) ? 0 : 1 + pick(4);
        for (uint32_t d = 0; d < damage && len; d++) {
            switch (pick(4)) {
            case 0: /* flip a byte */
                input[pick((uint32_t)len)] = (char)pick(256);
                break;
            case 1: /* cut */
                len = pick((uint32_t)len);
                break;
            case 2: /* a digit becomes a large number */
                for (size_t i = 0; i < len; i++)
                    if (input[i] >= '0' && input[i] <= '9' && len + 10 < sizeof input) {
                        memmove(input + i + 10, input + i, len - i);
                        memset(input + i, '9', 10);
                        len += 10;
                        break;
                    }
                break;
            default: /* a run of random bytes */
                for (uint32_t k = pick(32); k > 0 && len + 1 < sizeof input; k--)
                    input[len++] = (char)pick(256);
            }
        }
        run(fc, input, len);
    }
    printf("proto_fuzz: %ld inputs, no failures\n", rounds);
    return 0;
}
