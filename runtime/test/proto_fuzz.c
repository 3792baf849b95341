/* proto_fuzz.c -- feeds the four parsers valid, split and damaged input
 * and checks what they promise: a consumed length within the buffer,
 * pointers inside it, PROTO_MORE only while a request is incomplete, and
 * sized replies of exactly the requested size (PostgreSQL: well-formed
 * messages, exact where the verb's reply can be padded). Built with the
 * address and undefined-behaviour sanitizers by `make -C runtime fuzz`. */
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

/* Requests with NUL bytes in them. */
typedef struct {
    const char *p;
    size_t len;
} fuzz_bytes;

#define BYTES(s)                                                                                             \
    {                                                                                                        \
        s, sizeof(s) - 1                                                                                     \
    }

static const fuzz_bytes pg_reqs[] = {
    BYTES("\0\0\0\x08\x04\xd2\x16\x2f"), /* SSLRequest */
    BYTES("\0\0\0\x08\x04\xd2\x16\x30"), /* GSSENCRequest */
    BYTES("\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\0\0\0\x02"),
    BYTES("\0\0\0\x42\0\x03\0\0user\0postgres\0database\0postgres\0application_name\0pgbench\0\0"),
    BYTES("Q\0\0\0\x0b"
          "BEGIN;\0"),
    BYTES("Q\0\0\0\x3d"
          "SELECT abalance FROM pgbench_accounts WHERE aid = 26151;\0"),
    BYTES("Q\0\0\0\x2a"
          "select count(*) from pgbench_branches\0"),
    BYTES("Q\0\0\0\x50"
          "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from c group by 1, 2\0"),
    BYTES("Q\0\0\0\x24"
          " /* a, b */ (select 'x,y', \"z\")\0"),
    BYTES("Q\0\0\0\x1f"
          "UPDATE t SET v = 1, w = 2;\0"),
    BYTES("Q\0\0\0\x20"
          "insert into h values (1, 2)\0"),
    BYTES("Q\0\0\0\x09"
          "END;\0"),
    BYTES("Q\0\0\0\x0d"
          "vacuum x\0"),
    BYTES("Q\0\0\0\x07 ;\0"),
    BYTES("Q\0\0\0\x07(1\0"),
    BYTES("P\0\0\0\x10\0select 1\0\0\0"),
    BYTES("X\0\0\0\x04"),
};

typedef struct {
    const proto_ops *ops;
    const char *const *reqs;
    size_t n_reqs;
    const fuzz_bytes *bytes; /* instead of reqs */
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

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A PostgreSQL reply: messages whose lengths tile it, those libpq limits to
 * 30000 bytes within it, ReadyForQuery last; the reply of a verb that pads
 * (rows, row counts, the start-up) of exactly `size` bytes above any minimum. */
static void check_pg(const proto_req *req, uint32_t size, const proto_buf *out, const char *buf, size_t len)
{
    if (req->kind != PROTO_REQ_SIZED)
        return;
    unsigned char *r = malloc(out->wire);
    size_t n = flatten(out, 0, (char *)r), at = 0, last = 0;
    while (at + 5 <= n) {
        uint32_t m = be32(r + at + 1);
        if (m < 4 || at + 1 + m > n || (m > 30000 && strchr("TDE", r[at]) == NULL))
            fail("a message of a bad length", "postgres", buf, len);
        last = at;
        at += 1 + m;
    }
    if (at != n || r[last] != 'Z' || n - last != 6 || (r[n - 1] != 'I' && r[n - 1] != 'T'))
        fail("a reply not ended by ReadyForQuery", "postgres", buf, len);
    free(r);
    const char *v = req->verb;
    size_t vl = req->verb_len;
    int rows = proto_token_is(v, vl, "select") || proto_token_is(v, vl, "startup");
    int counted = proto_token_is(v, vl, "update") || proto_token_is(v, vl, "insert");
    if (size >= 1600 && (rows || (counted && size < 30000)) && out->wire != size)
        fail("sized reply of the wrong size", "postgres", buf, len);
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
            int named_verb = req.verb_len == 7 && memcmp(req.verb, "startup", 7) == 0; /* a constant */
            if ((!inside(req.verb, req.verb_len, buf + off, (size_t)n) && !named_verb) ||
                !inside(req.key, req.key_len, buf + off, (size_t)n))
                fail("pointer outside the request", fc->ops->name, buf, len);
            uint32_t size = pick(4) ? pick(600) : pick(200000);
            proto_buf_clear(&out);
            out.gather = (int)pick(2);
            if (req.kind != PROTO_REQ_NONE && fc->ops->respond(&req, (int)pick(2), size, &out) != TWIN_OK)
                fail("respond failed", fc->ops->name, buf, len);
            if (fc->ops == &proto_postgres)
                check_pg(&req, size, &out, buf, len);
            else if (req.kind == PROTO_REQ_SIZED && !req.head && size >= 300 && out.wire != size)
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
        { &proto_memcached, memcached_reqs, sizeof memcached_reqs / sizeof *memcached_reqs, NULL },
        { &proto_resp, resp_reqs, sizeof resp_reqs / sizeof *resp_reqs, NULL },
        { &proto_http, http_reqs, sizeof http_reqs / sizeof *http_reqs, NULL },
        { &proto_postgres, NULL, sizeof pg_reqs / sizeof *pg_reqs, pg_reqs },
    };
    const size_t n_cases = sizeof cases / sizeof *cases;
    static char input[8192];
    proto_init();
    for (size_t c = 0; c < n_cases; c++) /* each listed request is whole: served, or refused */
        for (size_t k = 0; k < cases[c].n_reqs; k++) {
            const char *q = cases[c].bytes ? cases[c].bytes[k].p : cases[c].reqs[k];
            size_t ql = cases[c].bytes ? cases[c].bytes[k].len : strlen(q);
            proto_req req;
            for (long n, off = 0; off < (long)ql; off += n)
                if ((n = cases[c].ops->parse(q + off, ql - (size_t)off, &req)) == PROTO_MORE)
                    fail("a listed request not parsed whole", cases[c].ops->name, q, ql);
                else if (n < 0)
                    break;
        }
    for (long r = 0; r < rounds; r++) {
        const fuzz_case *fc = &cases[r % n_cases];
        size_t len = 0;
        uint32_t n = 1 + pick(6);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = pick((uint32_t)fc->n_reqs);
            const char *q = fc->bytes ? fc->bytes[k].p : fc->reqs[k];
            size_t ql = fc->bytes ? fc->bytes[k].len : strlen(q);
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
