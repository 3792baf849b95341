/* load.c -- the open-loop load (see load.h).
 *
 * Each thread runs one epoll loop over its connections and a timerfd. The
 * timerfd, armed at an absolute time, wakes the thread for the next
 * intended send (epoll_wait's millisecond timeout is too coarse for gaps of
 * tens of microseconds). Timer wake-ups come late by a few to tens of
 * microseconds (more in VMs), so the thread learns the usual lateness and
 * arms that much plus LOAD_SPIN_NS early, then polls epoll without
 * blocking until the send is due. Polling is capped at a quarter of the
 * mean gap between sends: at high rates, spinning through every gap would
 * take the CPU from the server under test on small machines, so there the
 * thread sleeps and sends the requests that came due together. */
#define _GNU_SOURCE
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

#define LOAD_SPIN_NS          20000ull
#define LOAD_MAX_WAKE_LATE_NS 500000ull
#define LOAD_START_DELAY_NS   20000000ull /* lets every thread start before the first send */
#define LOAD_CONNECT_GAP_NS   50000000ull /* between connects under --max-inflight */
#define LOAD_MAX_EVENTS       64

typedef struct {
    const load_config *cfg;
    conn *conns;
    int n_conns;
    int next_conn; /* round-robin position */
    int epfd;
    int timerfd;
    int wakefd;            /* eventfd: another thread's request was answered */
    uint64_t timer_at;     /* absolute time the timerfd is armed for, 0 when idle */
    uint64_t wake_late_ns; /* running mean of how late timer wake-ups come */
    workload work;
    rng schedule;
    double gap_ns;        /* mean gap between this thread's sends */
    uint64_t spin_cap_ns; /* most time to poll before a send: a quarter of the gap */
    uint64_t first_ns, measured_ns, end_ns;
    uint64_t timeout_ns;
    int sending;
    uint64_t live; /* pending requests not yet answered or expired */
    stats stats;
    int failed; /* out of memory: stop sending */
} load_thread;

/* Tickets for --max-requests, shared by all threads. */
static atomic_uint_fast64_t load_tickets;

/* Unanswered requests of all threads, for --max-inflight. */
static atomic_uint_fast64_t load_inflight;
static load_thread *load_all;
static int load_n_all;

static uint64_t load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void load_connect_message(const load_config *cfg, int err, char *buf, size_t len)
{
    snprintf(buf, len, "cannot connect to %s:%d: %s", cfg->host, cfg->port, strerror(err));
}

/* --- the in-flight bound ------------------------------------------------ */

/* Takes a place under --max-inflight; 0 when all are taken. */
static int load_reserve(const load_config *cfg)
{
    if (!cfg->max_inflight)
        return 1;
    uint_fast64_t cur = atomic_load(&load_inflight);
    while (cur < cfg->max_inflight)
        if (atomic_compare_exchange_weak(&load_inflight, &cur, cur + 1))
            return 1;
    return 0;
}

/* Gives a place back and wakes the other threads, which may be waiting for it. */
static void load_release(load_thread *t)
{
    if (!t->cfg->max_inflight)
        return;
    atomic_fetch_sub(&load_inflight, 1);
    uint64_t one = 1;
    for (int i = 0; i < load_n_all; i++)
        if (&load_all[i] != t &&
            write(load_all[i].wakefd, &one, sizeof one) < 0) { /* counter full: already awake */
        }
}

/* A request answered, expired or lost. */
static void load_done(load_thread *t)
{
    t->live--;
    load_release(t);
}

/* --- connections --------------------------------------------------------- */

static void load_watch(load_thread *t, conn *c, int op)
{
    struct epoll_event ev = { .events = EPOLLIN | (c->polling_out ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(t->epfd, op, c->fd, &ev);
}

static void load_open(load_thread *t, conn *c);

/* Drops a connection: its unanswered requests are errors of class err.
 * While sending, it is opened again if it has a reconnect left. */
static void load_lost(load_thread *t, conn *c, stats_error err)
{
    for (size_t i = c->expired; i < c->fifo_len; i++) {
        load_done(t);
        if (conn_at(c, i)->measured)
            t->stats.errors[err]++;
    }
    conn_close(c);
    if (t->sending && c->reconnects_left > 0) {
        c->reconnects_left--;
        load_open(t, c);
    }
}

static void load_open(load_thread *t, conn *c)
{
    const load_config *cfg = t->cfg;
    if (conn_connect(c, (const struct sockaddr *)&cfg->addr, cfg->addr_len, -1) < 0) {
        t->stats.errors[STATS_ERR_CONNECT]++;
        return;
    }
    c->polling_out = c->state == CONN_CONNECTING;
    load_watch(t, c, EPOLL_CTL_ADD);
}

static void load_flush(load_thread *t, conn *c)
{
    if (conn_flush(c) < 0) {
        load_lost(t, c, STATS_ERR_CLOSED);
        return;
    }
    int want_out = conn_out_pending(c) > 0;
    if (want_out != c->polling_out) {
        c->polling_out = want_out;
        load_watch(t, c, EPOLL_CTL_MOD);
    }
}

/* Matches buffered responses to pending requests. Returns -1 when the
 * connection was dropped. */
static int load_parse(load_thread *t, conn *c, uint64_t now)
{
    while (conn_in_size(c) > 0) {
        if (c->in_need && conn_in_size(c) < c->in_need)
            return 0;
        size_t len = 0;
        proto_result r = t->cfg->proto->parse(conn_in_data(c), conn_in_size(c), &len);
        if (r == PROTO_INCOMPLETE) {
            c->in_need = len;
            return 0;
        }
        c->in_need = 0;
        if (r == PROTO_BAD || c->fifo_len == 0) {
            if (c->fifo_len == 0)
                t->stats.errors[STATS_ERR_PROTOCOL]++; /* unasked-for bytes */
            load_lost(t, c, STATS_ERR_PROTOCOL);
            return -1;
        }
        const conn_pending *p = conn_at(c, 0);
        if (c->expired == 0) { /* a late answer to an expired request is dropped */
            load_done(t);
            if (p->measured) {
                uint64_t latency = now > p->intended_ns ? now - p->intended_ns : 0;
                stats_record(&t->stats, p->op, p->key, latency, p->req_bytes, len);
                if (now <= t->end_ns)
                    t->stats.in_window++;
                if (r == PROTO_SERVER_ERROR)
                    t->stats.errors[STATS_ERR_SERVER]++;
            }
        }
        conn_pop(c);
        conn_in_consume(c, len);
    }
    return 0;
}

static void load_read(load_thread *t, conn *c)
{
    for (;;) {
        size_t room = c->in_cap - c->in_len;
        ssize_t n = conn_fill(c);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* end of stream or reset */
            if (n == 0 && load_parse(t, c, load_now()) < 0)
                return;
            load_lost(t, c, STATS_ERR_CLOSED);
            return;
        }
        if (load_parse(t, c, load_now()) < 0)
            return;
        if ((size_t)n < room)
            return; /* drained; level-triggered epoll reports more */
    }
}

static void load_event(load_thread *t, conn *c, uint32_t events)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (conn_finish_connect(c) < 0) {
            t->stats.errors[STATS_ERR_CONNECT]++;
            c->reconnects_left = 0;
            load_lost(t, c, STATS_ERR_CONNECT);
            return;
        }
        load_flush(t, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        load_read(t, c);
    if (c->state == CONN_OPEN && (events & EPOLLOUT))
        load_flush(t, c);
}

/* Counts requests unanswered timeout_ns after sending. They stay in the
 * FIFO so that a late response still lines up with its request. */
static void load_expire(load_thread *t, uint64_t now)
{
    for (int i = 0; i < t->n_conns; i++) {
        conn *c = &t->conns[i];
        while (c->expired < c->fifo_len) {
            const conn_pending *p = conn_at(c, c->expired);
            if (p->sent_ns + t->timeout_ns > now)
                break;
            c->expired++;
            load_done(t);
            if (p->measured)
                t->stats.errors[STATS_ERR_TIMEOUT]++;
        }
    }
}

/* --- schedule ------------------------------------------------------------ */

static uint64_t load_gap(load_thread *t)
{
    if (!t->cfg->poisson)
        return (uint64_t)t->gap_ns;
    return (uint64_t)(-log1p(-rng_unit(&t->schedule)) * t->gap_ns);
}

/* At a mark, the server idle (one request at a time, all answered): says so on stdout and
 * waits for a line on stdin (whoever drives the run reads the server's counts meanwhile). */
static void load_mark(const load_config *cfg, uint64_t k)
{
    for (int i = 0; i < cfg->n_marks; i++)
        if (cfg->marks[i] == k) {
            printf("mark %" PRIu64 "\n", k);
            fflush(stdout);
            for (;;) { /* until a line, or stdin's end */
                char c;
                ssize_t got = read(STDIN_FILENO, &c, 1);
                if ((got == 1 && c == '\n') || (got < 0 && errno != EINTR) || got == 0)
                    return;
            }
        }
}

static int load_ticket(const load_config *cfg)
{
    uint64_t k = atomic_fetch_add(&load_tickets, 1);
    if (cfg->max_requests && k >= cfg->max_requests)
        return 0;
    load_mark(cfg, k);
    return 1;
}

static void load_send(load_thread *t, uint64_t intended, uint64_t now)
{
    conn *c = NULL;
    for (int k = 0; k < t->n_conns && !c; k++) {
        conn *cand = &t->conns[(t->next_conn + k) % t->n_conns];
        if (cand->state != CONN_CLOSED) {
            c = cand;
            t->next_conn = (t->next_conn + k + 1) % t->n_conns;
        }
    }
    proto_request req;
    size_t op = workload_next(&t->work, &req);
    int measured = intended >= t->measured_ns;
    if (!c) {
        if (measured)
            t->stats.errors[STATS_ERR_CLOSED]++;
        return;
    }
    char *out = conn_out_reserve(c, proto_request_bound(&req));
    if (!out) {
        t->failed = 1;
        return;
    }
    conn_pending p = { .intended_ns = intended,
                       .sent_ns = now,
                       .op = (uint16_t)op,
                       .key = req.key_num < UINT32_MAX ? (uint32_t)req.key_num : UINT32_MAX,
                       .measured = (uint8_t)measured,
                       .req_bytes = (uint32_t)t->cfg->proto->format(out, &req) };
    if (conn_push(c, &p) < 0) {
        t->failed = 1;
        return;
    }
    conn_out_commit(c, p.req_bytes);
    t->live++;
    t->stats.sent++;
    if (measured)
        t->stats.bytes_sent += p.req_bytes;
    if (c->state == CONN_OPEN && !c->polling_out)
        load_flush(t, c);
}

/* Arms the timerfd to fire at absolute time at (CLOCK_MONOTONIC). */
static void load_arm(load_thread *t, uint64_t at)
{
    if (t->timer_at == at)
        return;
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(at / 1000000000ull),
                                            .tv_nsec = (long)(at % 1000000000ull) } };
    timerfd_settime(t->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
    t->timer_at = at;
}

/* Keeps a running mean of how late timer wake-ups come. */
static void load_learn_wake(load_thread *t, uint64_t now)
{
    if (t->timer_at == 0 || now < t->timer_at)
        return;
    uint64_t late = now - t->timer_at;
    if (late > LOAD_MAX_WAKE_LATE_NS)
        late = LOAD_MAX_WAKE_LATE_NS;
    t->wake_late_ns = (t->wake_late_ns * 7 + late) / 8;
}

static void *load_thread_main(void *arg)
{
    load_thread *t = arg;
    struct epoll_event events[LOAD_MAX_EVENTS];
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake-ups as close to the timer as the kernel allows */

    uint64_t check_every = t->timeout_ns / 8;
    if (check_every > 10000000ull)
        check_every = 10000000ull;
    if (check_every < 100000ull)
        check_every = 100000ull;
    uint64_t next = t->first_ns, next_check = 0;
    t->sending = 1;

    for (;;) {
        uint64_t now = load_now();
        int room = 1;
        while (t->sending && next <= now) {
            if (!load_reserve(t->cfg)) {
                room = 0;
                break;
            }
            if (next >= t->end_ns || t->failed || !load_ticket(t->cfg)) {
                load_release(t);
                t->sending = 0;
                break;
            }
            uint64_t live = t->live;
            load_send(t, next, now);
            if (t->live == live)
                load_release(t); /* nothing went out */
            next += load_gap(t);
        }
        if (now >= next_check) {
            load_expire(t, now);
            next_check = now + check_every;
        }
        if (!t->sending && t->live == 0)
            break;

        /* At the bound, only an answer (or the expiry check) can let a send out. */
        uint64_t wake = t->sending && room && next < next_check ? next : next_check;
        int timeout_ms = 0;
        uint64_t early = t->wake_late_ns + LOAD_SPIN_NS;
        if (early > t->spin_cap_ns)
            early = t->spin_cap_ns;
        if (wake > now + early) {
            load_arm(t, wake - early);
            timeout_ms = -1;
        }
        int n = epoll_wait(t->epfd, events, LOAD_MAX_EVENTS, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == &t->wakefd) {
                uint64_t count;
                if (read(t->wakefd, &count, sizeof count) < 0) { /* spurious: nothing to do */
                }
                continue;
            }
            if (events[i].data.ptr == NULL) {
                uint64_t ticks;
                if (read(t->timerfd, &ticks, sizeof ticks) < 0) { /* spurious: nothing to do */
                }
                load_learn_wake(t, load_now());
                t->timer_at = 0;
                continue;
            }
            load_event(t, events[i].data.ptr, events[i].events);
        }
    }
    return NULL;
}

/* --- run ----------------------------------------------------------------- */

static void load_thread_free(load_thread *t)
{
    for (int i = 0; t->conns && i < t->n_conns; i++)
        conn_free(&t->conns[i]);
    free(t->conns);
    workload_free(&t->work);
    stats_free(&t->stats);
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->timerfd >= 0)
        close(t->timerfd);
    if (t->wakefd >= 0)
        close(t->wakefd);
}

/* Builds thread i with its connections, connected. */
static load_status load_thread_init(load_thread *t, const load_config *cfg, int i, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->epfd = t->timerfd = t->wakefd = -1;
    t->timeout_ns = (uint64_t)cfg->timeout_ms * 1000000ull;
    t->gap_ns = 1e9 * cfg->threads / cfg->rate;
    t->spin_cap_ns = (uint64_t)(t->gap_ns / 4);
    rng_seed(&t->schedule, cfg->seed, 2 * (uint64_t)i + 1);
    int lo = i * cfg->connections / cfg->threads, hi = (i + 1) * cfg->connections / cfg->threads;
    t->n_conns = hi - lo;
    t->conns = calloc((size_t)t->n_conns, sizeof *t->conns);
    for (int k = 0; t->conns && k < t->n_conns; k++)
        conn_init(&t->conns[k]);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!t->conns || t->epfd < 0 || t->timerfd < 0 || t->wakefd < 0 ||
        workload_init(&t->work, &cfg->work, cfg->seed, 2 * (uint64_t)i + 2) < 0 ||
        stats_init(&t->stats, cfg->work.n_ops, cfg->work.keys) < 0) {
        snprintf(err, errlen, "cannot set up thread %d: %s", i, strerror(errno ? errno : ENOMEM));
        return LOAD_ERR_RUN;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timerfd, &ev);
    struct epoll_event wake = { .events = EPOLLIN, .data.ptr = &t->wakefd };
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &wake);
    for (int k = 0; k < t->n_conns; k++) {
        conn *c = &t->conns[k];
        /* Under --max-inflight the connections open one by one, a gap apart, so that a
         * server's idle worker takes each: opened together, its workers race for them,
         * and which worker serves what changes from run to run. */
        if (cfg->max_inflight && (i > 0 || k > 0)) {
            struct timespec gap = { .tv_sec = 0, .tv_nsec = (long)LOAD_CONNECT_GAP_NS };
            while (nanosleep(&gap, &gap) < 0 && errno == EINTR) {
            }
        }
        if (conn_connect(c, (const struct sockaddr *)&cfg->addr, cfg->addr_len, cfg->timeout_ms) < 0) {
            load_connect_message(cfg, errno, err, errlen);
            return LOAD_ERR_CONNECT;
        }
        c->reconnects_left = 1;
        load_watch(t, c, EPOLL_CTL_ADD);
    }
    return LOAD_OK;
}

load_status load_run(const load_config *cfg, stats *result, char *err, size_t errlen)
{
    load_status status = LOAD_OK;
    load_thread *threads = calloc((size_t)cfg->threads, sizeof *threads);
    pthread_t *tids = calloc((size_t)cfg->threads, sizeof *tids);
    int made = 0, started = 0;
    if (stats_init(result, cfg->work.n_ops, cfg->work.keys) < 0 || !threads || !tids) {
        snprintf(err, errlen, "out of memory");
        status = LOAD_ERR_RUN;
        goto done;
    }
    while (made < cfg->threads) {
        status = load_thread_init(&threads[made], cfg, made, err, errlen);
        made++;
        if (status != LOAD_OK)
            goto done;
    }

    atomic_store(&load_tickets, 0);
    atomic_store(&load_inflight, 0);
    load_all = threads;
    load_n_all = cfg->threads;
    uint64_t start = load_now() + LOAD_START_DELAY_NS;
    uint64_t measured = start + (uint64_t)(cfg->warmup_s * 1e9);
    uint64_t end = measured + (uint64_t)(cfg->duration_s * 1e9);
    for (int i = 0; i < cfg->threads; i++) {
        load_thread *t = &threads[i];
        t->measured_ns = measured;
        t->end_ns = end;
        /* Constant gaps: threads interleave so that the total stream is
         * evenly spaced too. Poisson: the first arrival is one gap in. */
        t->first_ns = start + (cfg->poisson ? load_gap(t) : (uint64_t)(1e9 * i / cfg->rate));
    }
    for (; started < cfg->threads; started++) {
        if (pthread_create(&tids[started], NULL, load_thread_main, &threads[started]) != 0) {
            snprintf(err, errlen, "cannot start a load thread");
            status = LOAD_ERR_RUN;
            break;
        }
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        if (threads[i].failed && status == LOAD_OK) {
            snprintf(err, errlen, "out of memory during the run");
            status = LOAD_ERR_RUN;
        }
        if (stats_merge(result, &threads[i].stats) < 0 && status == LOAD_OK) {
            snprintf(err, errlen, "out of memory");
            status = LOAD_ERR_RUN;
        }
    }

done:
    for (int i = 0; i < made; i++)
        load_thread_free(&threads[i]);
    free(threads);
    free(tids);
    return status;
}
