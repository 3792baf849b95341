/* unit_test.c -- response boundary tests for every protocol plug-in, the
 * histogram's bucket bounds, and the folding of response sizes.
 *
 * Each case is a byte stream and the expected result for its first
 * response. Every proper prefix of a stream whose first response is whole
 * must parse as PROTO_INCOMPLETE (with a length hint no larger than the
 * response), which is what a response split across reads looks like. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hist.h"
#include "../proto.h"
#include "../stats.h"

typedef struct {
    const proto_type *proto;
    const char *stream;
    proto_result want;
    size_t want_len; /* for OK and SERVER_ERROR */
} proto_case;

static const char *proto_test_names[] = { "INCOMPLETE", "OK", "SERVER_ERROR", "BAD" };

static const proto_case proto_cases[] = {
    /* memcached */
    { &proto_memcached, "END\r\n", PROTO_OK, 5 },
    { &proto_memcached, "VALUE key:1 0 10\r\n0123456789\r\nEND\r\n", PROTO_OK, 35 },
    { &proto_memcached, "VALUE k 5 3 99\r\nabc\r\nEND\r\nEND\r\n", PROTO_OK, 26 },
    { &proto_memcached, "VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\nyz\r\nEND\r\n", PROTO_OK, 38 },
    { &proto_memcached, "VALUE k 0 4\r\n\r\n\r\n\r\nEND\r\n", PROTO_OK, 24 },
    { &proto_memcached, "STORED\r\nSTORED\r\n", PROTO_OK, 8 },
    { &proto_memcached, "NOT_STORED\r\n", PROTO_OK, 12 },
    { &proto_memcached, "ERROR\r\n", PROTO_SERVER_ERROR, 7 },
    { &proto_memcached, "SERVER_ERROR out of memory\r\n", PROTO_SERVER_ERROR, 28 },
    { &proto_memcached, "CLIENT_ERROR bad data chunk\r\n", PROTO_SERVER_ERROR, 29 },
    { &proto_memcached, "VALUE k 0 3\r\nabcd\r\nEND\r\n", PROTO_BAD, 0 },
    { &proto_memcached, "VALUE k x 3\r\nabc\r\nEND\r\n", PROTO_BAD, 0 },
    { &proto_memcached, "VALUE k 0 3\r\nabc\r\nSTORED\r\n", PROTO_BAD, 0 },
    { &proto_memcached, "HELLO\r\n", PROTO_BAD, 0 },
    { &proto_memcached, "ERRORS\r\n", PROTO_BAD, 0 },
    /* RESP */
    { &proto_resp, "+OK\r\n", PROTO_OK, 5 },
    { &proto_resp, "-ERR wrong type\r\n", PROTO_SERVER_ERROR, 17 },
    { &proto_resp, ":-42\r\n", PROTO_OK, 6 },
    { &proto_resp, "$-1\r\n", PROTO_OK, 5 },
    { &proto_resp, "$0\r\n\r\n", PROTO_OK, 6 },
    { &proto_resp, "$10\r\n0123456789\r\n+OK\r\n", PROTO_OK, 17 },
    { &proto_resp, "$4\r\n\r\n\r\n\r\n", PROTO_OK, 10 },
    { &proto_resp, "*2\r\n$1\r\na\r\n*1\r\n:1\r\n", PROTO_OK, 19 },
    { &proto_resp, "*-1\r\n", PROTO_OK, 5 },
    { &proto_resp, "*0\r\n", PROTO_OK, 4 },
    { &proto_resp, "*2\r\n-ERR a\r\n+OK\r\n", PROTO_OK, 17 },
    { &proto_resp, "$3\r\nabcd\r\n", PROTO_BAD, 0 },
    { &proto_resp, ":x\r\n", PROTO_BAD, 0 },
    { &proto_resp, "!3\r\nabc\r\n", PROTO_BAD, 0 },
    /* HTTP */
    { &proto_http, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", PROTO_OK, 49 },
    { &proto_http, "HTTP/1.1 200 OK\r\ncontent-length:  3 \r\nX: y\r\n\r\nabcHTTP/1.1", PROTO_OK, 49 },
    { &proto_http, "HTTP/1.1 204 No Content\r\n\r\n", PROTO_OK, 27 },
    { &proto_http, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", PROTO_SERVER_ERROR, 45 },
    { &proto_http,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\na;x=1\r\n0123456789\r\n0\r\n\r\n",
      PROTO_OK, 81 },
    { &proto_http,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nTrailer: x\r\n\r\n",
      PROTO_OK, 64 },
    { &proto_http, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", PROTO_OK,
      64 },
    { &proto_http, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody", PROTO_BAD, 0 },
    { &proto_http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", PROTO_BAD, 0 },
    { &proto_http, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", PROTO_BAD, 0 },
    { &proto_http, "HTTP/2 200\r\nContent-Length: 0\r\n\r\n", PROTO_BAD, 0 },
    { &proto_http, "SSH-2.0-OpenSSH\r\n\r\n", PROTO_BAD, 0 },
};

static int proto_check(const proto_case *c)
{
    size_t len = strlen(c->stream), got_len = 0;
    proto_result got = c->proto->parse(c->stream, len, &got_len);
    if (got != c->want || ((got == PROTO_OK || got == PROTO_SERVER_ERROR) && got_len != c->want_len)) {
        printf("FAIL %s %.40s...: got %s/%zu, want %s/%zu\n", c->proto->name, c->stream,
               proto_test_names[got], got_len, proto_test_names[c->want], c->want_len);
        return 1;
    }
    if (c->want != PROTO_OK && c->want != PROTO_SERVER_ERROR)
        return 0;
    for (size_t cut = 0; cut < c->want_len; cut++) {
        size_t hint = 0;
        proto_result r = c->proto->parse(c->stream, cut, &hint);
        if (r != PROTO_INCOMPLETE || hint > c->want_len) {
            printf("FAIL %s %.40s... cut at %zu: got %s (hint %zu)\n", c->proto->name, c->stream, cut,
                   proto_test_names[r], hint);
            return 1;
        }
    }
    return 0;
}

static int hist_check(void)
{
    for (size_t b = 0; b + 1 < HIST_BUCKETS; b++) {
        uint64_t lo = hist_bucket_low(b), hi = hist_bucket_high(b);
        if (hist_bucket(lo) != b || hist_bucket(hi) != b || hist_bucket_low(b + 1) != hi + 1 ||
            (lo >= HIST_LINEAR && (hi - lo + 1) * HIST_SUB > lo)) {
            printf("FAIL hist bucket %zu [%llu, %llu]\n", b, (unsigned long long)lo, (unsigned long long)hi);
            return 1;
        }
    }
    hist h;
    hist_init(&h);
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(&h, v * 1000);
    double p50 = hist_percentile(&h, 50), p100 = hist_percentile(&h, 100);
    if (p50 < 500000 * (1 - 1.0 / 64) || p50 > 500000 * (1 + 1.0 / 64) || p100 != 1000000) {
        printf("FAIL hist percentiles p50=%f max=%f\n", p50, p100);
        return 1;
    }
    return 0;
}

/* Past STATS_EXACT_SIZES distinct sizes, new sizes fold into buckets; no
 * count is lost and the list stays sorted. */
static int stats_check(void)
{
    stats s;
    if (stats_init(&s, 1) < 0)
        return 1;
    uint64_t total = 0;
    for (uint64_t size = 1; size <= 5000; size++) {
        stats_size_add(&s.ops[0].resp_sizes, size, size % 3 + 1);
        total += size % 3 + 1;
    }
    stats merged;
    if (stats_init(&merged, 1) < 0 || stats_merge(&merged, &s) < 0)
        return 1;
    stats_size *list;
    size_t n = stats_size_list(&merged.ops[0].resp_sizes, &list);
    uint64_t seen = 0;
    int bad = n < STATS_EXACT_SIZES || n >= 5000;
    for (size_t i = 0; i < n; i++) {
        seen += list[i].count;
        if (i > 0 && list[i].size <= list[i - 1].size)
            bad = 1;
    }
    if (list[0].size != 1 || list[0].count != 2)
        bad = 1; /* the first sizes are exact */
    if (bad || seen != total)
        printf("FAIL stats sizes: %zu pairs, %llu of %llu counted\n", n, (unsigned long long)seen,
               (unsigned long long)total);
    free(list);
    stats_free(&s);
    stats_free(&merged);
    return bad || seen != total;
}

int main(void)
{
    int failed = 0;
    size_t n = sizeof proto_cases / sizeof proto_cases[0];
    for (size_t i = 0; i < n; i++)
        failed += proto_check(&proto_cases[i]);
    failed += hist_check();
    failed += stats_check();
    printf("unit-test: %zu parser cases, histogram bounds, size folding: %s\n", n, failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
