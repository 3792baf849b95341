/* preload.c -- fills the server before the load (see preload.h).
 *
 * Closed loop on purpose: one request, wait for its response, next key, so
 * a slow server is filled completely rather than flooded. */
#define _GNU_SOURCE
#include "preload.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"

/* The data set is the workload's, not the load's: every load seed preloads the same values,
 * so another seed changes which keys are asked for and in what order, not what the server
 * holds (validation's held-out seed checks the clone on the requests, not on a new data set). */
#define PRELOAD_SEED 1

/* Values LPUSHed to each key's list when the mix has LPUSH or LRANGE: LRANGE's whole window
 * (0 to 9), so that it answers ten values from the start, as in a steady state, and not more
 * as LPUSHes fill the lists (redis's bytes a request rose 16% from one load to the next). */
#define PRELOAD_LIST_LEN 10

/* 1 when fd is ready for events, 0 after timeout_ms, -1 on error. */
static int preload_poll(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Sends one request and waits for its whole response. */
static load_status preload_one(const load_config *cfg, conn *c, const proto_request *req, char *err,
                               size_t errlen)
{
    char *out = conn_out_reserve(c, proto_request_bound(req));
    if (!out) {
        snprintf(err, errlen, "preload: out of memory");
        return LOAD_ERR_RUN;
    }
    conn_out_commit(c, cfg->proto->format(out, req));
    while (conn_out_pending(c) > 0) {
        if (conn_flush(c) < 0) {
            snprintf(err, errlen, "preload: send failed: %s", strerror(errno));
            return LOAD_ERR_RUN;
        }
        if (conn_out_pending(c) > 0 && preload_poll(c->fd, POLLOUT, cfg->timeout_ms) <= 0) {
            snprintf(err, errlen, "preload: send timed out");
            return LOAD_ERR_RUN;
        }
    }
    size_t len = 0;
    proto_result r;
    while ((r = cfg->proto->parse(conn_in_data(c), conn_in_size(c), &len)) == PROTO_INCOMPLETE) {
        if (preload_poll(c->fd, POLLIN, cfg->timeout_ms) <= 0) {
            snprintf(err, errlen, "preload: no response within %d ms", cfg->timeout_ms);
            return LOAD_ERR_RUN;
        }
        ssize_t n = conn_fill(c);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            snprintf(err, errlen, "preload: connection closed by the server");
            return LOAD_ERR_RUN;
        }
    }
    if (r != PROTO_OK) {
        snprintf(err, errlen, "preload: %s response to a%s %s of %.*s",
                 r == PROTO_BAD ? "unparseable" : "error", req->verb == PROTO_SET ? "" : "n",
                 proto_verb_names[req->verb], (int)req->key_len, req->key);
        return LOAD_ERR_RUN;
    }
    conn_in_consume(c, len);
    return LOAD_OK;
}

/* The first op of the mix with verb, or NULL. */
static const workload_op *preload_op(const load_config *cfg, proto_verb verb)
{
    for (size_t i = 0; i < cfg->work.n_ops; i++)
        if (cfg->work.ops[i].verb == verb)
            return &cfg->work.ops[i];
    return NULL;
}

/* One write of key i: its value size from the first op of the verb in the mix, else 100 bytes. */
static load_status preload_write(const load_config *cfg, workload *w, conn *c, proto_verb verb, uint64_t i,
                                 unsigned count, char *err, size_t errlen)
{
    const workload_op *op = preload_op(cfg, verb);
    proto_request req;
    workload_set(w, verb, i, op ? workload_value_size(op, i) : 100, count, &req);
    return preload_one(cfg, c, &req, err, errlen);
}

load_status preload_run(const load_config *cfg, char *err, size_t errlen)
{
    if (!(cfg->proto->verbs & PROTO_VERB(PROTO_SET)))
        return LOAD_OK;
    int lists = preload_op(cfg, PROTO_LPUSH) || preload_op(cfg, PROTO_LRANGE);
    int hashes = preload_op(cfg, PROTO_HSET) || preload_op(cfg, PROTO_HGET);
    /* A counter's first INCR makes it; preloaded, every INCR of the load is one of a counter
     * that exists, as in a steady state. */
    int counters = preload_op(cfg, PROTO_INCR) != NULL;

    load_status status = LOAD_OK;
    workload w;
    conn c;
    conn_init(&c);
    if (workload_init(&w, &cfg->work, PRELOAD_SEED, 0) < 0) {
        snprintf(err, errlen, "preload: out of memory");
        return LOAD_ERR_RUN;
    }
    if (conn_connect(&c, (const struct sockaddr *)&cfg->addr, cfg->addr_len, cfg->timeout_ms) < 0) {
        load_connect_message(cfg, errno, err, errlen);
        status = LOAD_ERR_CONNECT;
        goto done;
    }
    for (uint64_t i = 0; i < cfg->work.keys && status == LOAD_OK; i++) {
        status = preload_write(cfg, &w, &c, PROTO_SET, i, 1, err, errlen);
        if (status == LOAD_OK && lists)
            status = preload_write(cfg, &w, &c, PROTO_LPUSH, i, PRELOAD_LIST_LEN, err, errlen);
        if (status == LOAD_OK && hashes)
            status = preload_write(cfg, &w, &c, PROTO_HSET, i, WORKLOAD_FIELDS, err, errlen);
        if (status == LOAD_OK && counters)
            status = preload_write(cfg, &w, &c, PROTO_INCR, i, 1, err, errlen);
    }

done:
    conn_free(&c);
    workload_free(&w);
    return status;
}
