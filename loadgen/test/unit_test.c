/* unit_test.c -- response boundary tests for every protocol plug-in, the
 * exact bytes of every RESP command, the key distributions and HTTP path
 * templates, the histogram's bucket bounds, and the folding of response
 * sizes.
 *
 * Each case is a byte stream and the expected result for its first
 * response. Every proper prefix of a stream whose first response is whole
 * must parse as PROTO_INCOMPLETE (with a length hint no larger than the
 * response), which is what a response split across reads looks like. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hist.h"
#include "../proto.h"
#include "../stats.h"
#include "../workload.h"

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
    { &proto_resp, ":7\r\n", PROTO_OK, 4 },                    /* INCR, LPUSH, HSET */
    { &proto_resp, ":0001\r\n", PROTO_OK, 7 },                 /* leading zeros */
    { &proto_resp, ":9223372036854775807\r\n", PROTO_OK, 22 }, /* 19 digits */
    { &proto_resp, ":-9223372036854775808\r\n", PROTO_OK, 23 },
    { &proto_resp, "*3\r\n$2\r\nab\r\n$0\r\n\r\n$3\r\nxyz\r\n:1\r\n", PROTO_OK, 27 }, /* LRANGE */
    { &proto_resp, "*3\r\n$-1\r\n*-1\r\n*2\r\n*1\r\n+x\r\n*0\r\n", PROTO_OK, 30 },    /* nested, nil */
    { &proto_resp, "*1\r\n*1\r\n*1\r\n:-5\r\n$-1\r\n", PROTO_OK, 17 },
    { &proto_resp, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
      PROTO_SERVER_ERROR, 68 },
    { &proto_resp, "$3\r\nabcd\r\n", PROTO_BAD, 0 },
    { &proto_resp, ":x\r\n", PROTO_BAD, 0 },
    { &proto_resp, ":\r\n", PROTO_BAD, 0 },
    { &proto_resp, ":12345678901234567890\r\n", PROTO_BAD, 0 }, /* 20 digits: no 64-bit integer */
    { &proto_resp, "*2\r\n:1\r\n?\r\n", PROTO_BAD, 0 },
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

/* The exact bytes of each RESP command, and memcached's and HTTP's requests. */
static int format_check(void)
{
    static const struct {
        const proto_type *proto;
        proto_request req;
        const char *want;
    } cases[] = {
        { &proto_resp,
          { .verb = PROTO_GET, .key = "key:07", .key_len = 6 },
          "*2\r\n$3\r\nGET\r\n$6\r\nkey:07\r\n" },
        { &proto_resp,
          { .verb = PROTO_SET, .key = "key:07", .key_len = 6, .value = "abc", .value_len = 3 },
          "*3\r\n$3\r\nSET\r\n$6\r\nkey:07\r\n$3\r\nabc\r\n" },
        { &proto_resp,
          { .verb = PROTO_INCR, .key = "key:07", .key_len = 6 },
          "*2\r\n$4\r\nINCR\r\n$8\r\nc:key:07\r\n" },
        { &proto_resp,
          { .verb = PROTO_LPUSH, .key = "key:07", .key_len = 6, .value = "abc", .value_len = 3 },
          "*3\r\n$5\r\nLPUSH\r\n$8\r\nl:key:07\r\n$3\r\nabc\r\n" },
        { &proto_resp,
          { .verb = PROTO_LPUSH, .key = "key:07", .key_len = 6, .value = "ab", .value_len = 2, .count = 3 },
          "*5\r\n$5\r\nLPUSH\r\n$8\r\nl:key:07\r\n$2\r\nab\r\n$2\r\nab\r\n$2\r\nab\r\n" },
        { &proto_resp,
          { .verb = PROTO_LRANGE, .key = "key:07", .key_len = 6 },
          "*4\r\n$6\r\nLRANGE\r\n$8\r\nl:key:07\r\n$1\r\n0\r\n$1\r\n9\r\n" },
        { &proto_resp,
          { .verb = PROTO_HSET, .key = "key:07", .key_len = 6, .value = "abc", .value_len = 3, .field = 4 },
          "*4\r\n$4\r\nHSET\r\n$8\r\nh:key:07\r\n$2\r\nf4\r\n$3\r\nabc\r\n" },
        { &proto_resp,
          { .verb = PROTO_HSET, .key = "key:07", .key_len = 6, .value = "v", .value_len = 1, .count = 2 },
          "*6\r\n$4\r\nHSET\r\n$8\r\nh:key:07\r\n$2\r\nf0\r\n$1\r\nv\r\n$2\r\nf1\r\n$1\r\nv\r\n" },
        { &proto_resp,
          { .verb = PROTO_HGET, .key = "key:07", .key_len = 6, .field = 9 },
          "*3\r\n$4\r\nHGET\r\n$8\r\nh:key:07\r\n$2\r\nf9\r\n" },
        { &proto_memcached, { .verb = PROTO_GET, .key = "key:07", .key_len = 6 }, "get key:07\r\n" },
        { &proto_memcached,
          { .verb = PROTO_SET, .key = "key:07", .key_len = 6, .value = "abc", .value_len = 3 },
          "set key:07 0 0 3\r\nabc\r\n" },
        { &proto_http,
          { .verb = PROTO_GET, .path = "/site/137.html", .host = "h" },
          "GET /site/137.html HTTP/1.1\r\nHost: h\r\n\r\n" },
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const proto_request *req = &cases[i].req;
        size_t bound = proto_request_bound(req);
        char *out = malloc(bound);
        size_t n = cases[i].proto->format(out, req);
        size_t want = strlen(cases[i].want);
        if (n != want || n > bound || memcmp(out, cases[i].want, n) != 0) {
            printf("FAIL format %s %s: got %zu bytes '%.*s', want '%s'\n", cases[i].proto->name,
                   proto_verb_names[req->verb], n, (int)n, out, cases[i].want);
            failed = 1;
        }
        free(out);
    }
    return failed;
}

/* Zipf(1) over 100 keys puts 1/H(100) = 19.3% of the draws on key 0 and 1/(k+1) of
 * that on key k; uniform puts 1% on each key and keeps drawing what rng_below draws
 * (the request sequences of uniform workloads are unchanged). */
static int key_dist_check(void)
{
    enum {
        KEYS = 100,
        DRAWS = 100000
    };
    int failed = 0;
    workload_spec spec = { .keys = KEYS, .zipf_s = 1 };
    if (workload_key_dist_init(&spec) < 0)
        return 1;
    double h = 0;
    for (int k = 1; k <= KEYS; k++)
        h += 1.0 / k;
    unsigned count[KEYS] = { 0 };
    rng r;
    rng_seed(&r, 1, 2);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = workload_draw_key(&spec, &r);
        if (k >= KEYS) {
            printf("FAIL zipf: drew key %llu of %d\n", (unsigned long long)k, KEYS);
            return 1;
        }
        count[k]++;
    }
    for (int k = 0; k < 5; k++) {
        double want = DRAWS / h / (k + 1);
        if (fabs(count[k] - want) > 0.03 * want) {
            printf("FAIL zipf:1 key %d drawn %u times, want %.0f (within 3%%)\n", k, count[k], want);
            failed = 1;
        }
    }
    workload_key_dist_free(&spec);

    spec.zipf_s = 0;
    memset(count, 0, sizeof count);
    rng a, b;
    rng_seed(&a, 1, 2);
    rng_seed(&b, 1, 2);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = workload_draw_key(&spec, &a);
        if (k != rng_below(&b, KEYS)) {
            printf("FAIL uniform: draw %d is not rng_below's\n", i);
            return 1;
        }
        count[k]++;
    }
    for (int k = 0; k < KEYS; k++)
        if (count[k] < DRAWS / KEYS * 0.85 || count[k] > DRAWS / KEYS * 1.15) {
            printf("FAIL uniform: key %d drawn %u times of %d\n", k, count[k], DRAWS);
            failed = 1;
        }
    return failed;
}

/* {key} in an HTTP path becomes the drawn key number; other paths stay as they are. */
static int path_check(void)
{
    char out[64];
    int failed = 0;
    static const struct {
        const char *path;
        uint64_t key;
        const char *want;
    } cases[] = {
        { "/site/{key}.html", 137, "/site/137.html" },
        { "/{key}/{key}", 0, "/0/0" },
        { "/a/b?x=1", 5, "/a/b?x=1" },
        { "/{ke}/{key", 5, "/{ke}/{key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(workload_path(out, sizeof out, cases[i].path, cases[i].key), cases[i].want) != 0) {
            printf("FAIL path '%s' with key %llu: got '%s'\n", cases[i].path,
                   (unsigned long long)cases[i].key, out);
            failed = 1;
        }
    if (strcmp(workload_path(out, 8, "/abcdefghij", 1), "/abcdef") != 0) {
        printf("FAIL path cut short: got '%s'\n", out);
        failed = 1;
    }

    /* Through the workload: each request's path names its own key. */
    workload_spec spec = { .keys = 1000, .key_size = 8, .host = "h", .n_ops = 1 };
    spec.ops[0] = (workload_op){ .verb = PROTO_GET, .share = 1, .path = "/site/{key}.html" };
    workload w;
    if (workload_init(&w, &spec, 1, 2) < 0)
        return 1;
    for (int i = 0; i < 100 && !failed; i++) {
        proto_request req;
        workload_next(&w, &req);
        char want[64];
        snprintf(want, sizeof want, "/site/%llu.html", strtoull(req.key + 4, NULL, 10));
        if (strcmp(req.path, want) != 0) {
            printf("FAIL path of key %.*s: '%s', want '%s'\n", (int)req.key_len, req.key, req.path, want);
            failed = 1;
        }
    }
    workload_free(&w);
    return failed;
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
    if (stats_init(&s, 1, 0) < 0)
        return 1;
    uint64_t total = 0;
    for (uint64_t size = 1; size <= 5000; size++) {
        stats_size_add(&s.ops[0].resp_sizes, size, size % 3 + 1);
        total += size % 3 + 1;
    }
    stats merged;
    if (stats_init(&merged, 1, 0) < 0 || stats_merge(&merged, &s) < 0)
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

/* Each key's one size, kept over threads; a key answered with two sizes, on one
 * thread or across two, is marked varied; a workload past the bound keeps none. */
static int key_sizes_check(void)
{
    stats a, b, merged, big;
    if (stats_init(&a, 1, 4) < 0 || stats_init(&b, 1, 4) < 0 || stats_init(&merged, 1, 4) < 0 ||
        stats_init(&big, 1, (uint64_t)STATS_KEY_SIZES_MAX + 1) < 0)
        return 1;
    stats_record(&a, 0, 0, 1000, 10, 100);
    stats_record(&a, 0, 0, 1000, 10, 100);
    stats_record(&a, 0, 1, 1000, 10, 200);
    stats_record(&a, 0, 1, 1000, 10, 201);
    stats_record(&a, 0, 2, 1000, 10, 300);
    stats_record(&b, 0, 2, 1000, 10, 301);
    stats_record(&b, 0, 9, 1000, 10, 900); /* past the keys: not kept */
    int bad = stats_merge(&merged, &a) < 0 || stats_merge(&merged, &b) < 0;
    const uint32_t *k = merged.ops[0].key_sizes;
    bad = bad || !k || k[0] != 100 || k[1] != STATS_KEY_VARIED || k[2] != STATS_KEY_VARIED || k[3] != 0;
    bad = bad || big.ops[0].key_sizes != NULL || big.n_keys != 0;
    if (bad)
        printf("FAIL key sizes\n");
    stats_free(&a);
    stats_free(&b);
    stats_free(&merged);
    stats_free(&big);
    return bad;
}

int main(void)
{
    int failed = 0;
    size_t n = sizeof proto_cases / sizeof proto_cases[0];
    for (size_t i = 0; i < n; i++)
        failed += proto_check(&proto_cases[i]);
    failed += format_check();
    failed += key_dist_check();
    failed += path_check();
    failed += hist_check();
    failed += stats_check();
    failed += key_sizes_check();
    printf("unit-test: %zu parser cases, request formats, key distributions, path templates, histogram "
           "bounds, size folding, key sizes: %s\n",
           n, failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
