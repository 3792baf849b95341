/* delay_server.c -- a test server that answers every request a fixed delay
 * after it arrived, in memcached, RESP or HTTP/1.1.
 *
 *   delay-server --protocol memcached|resp|http --port P [--delay-us D] [--host A]
 *
 * With --port 0 the kernel picks the port. Once listening, it prints
 * "port N" on stdout. It runs until killed.
 *
 * One thread, one epoll loop. Every request gets its response formatted at
 * once into its connection's output buffer, past a `released` mark, and an
 * entry in one global queue due at arrival + delay. Since the delay is the
 * same for all, the queue is already in due order and a ring suffices; a
 * timerfd wakes the loop at the head's due time, and the head's bytes are
 * released for sending. Pipelined requests on a connection are thus
 * answered in order. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DS_MAX_HEAD 65536
#define DS_LISTENER UINT64_MAX
#define DS_TIMER    (UINT64_MAX - 1)

typedef enum {
    DS_MEMCACHED,
    DS_RESP,
    DS_HTTP
} ds_protocol;

typedef struct {
    int open;
    uint32_t gen; /* bumped on close; stale queue entries are skipped */
    char *in;
    size_t in_len, in_cap;
    char *out; /* [out_off, released) may be sent; beyond waits */
    size_t out_off, released, out_len, out_cap;
    int polling_out;
} ds_conn;

typedef struct {
    uint64_t due_ns;
    int fd;
    uint32_t gen;
    size_t len;
} ds_due;

static ds_protocol ds_proto;
static uint64_t ds_delay_ns;
static int ds_epfd, ds_timerfd;
static ds_conn *ds_conns;
static size_t ds_n_conns;
static ds_due *ds_queue;
static size_t ds_q_head, ds_q_len, ds_q_cap;

static uint64_t ds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *ds_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        perror("delay-server: realloc");
        exit(1);
    }
    *cap = c;
    return q;
}

static void ds_append(ds_conn *c, const char *s, size_t n)
{
    c->out = ds_grow(c->out, &c->out_cap, c->out_len + n, 1);
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void ds_watch(int fd, ds_conn *c)
{
    struct epoll_event ev = { .events = EPOLLIN | (c->polling_out ? EPOLLOUT : 0), .data.u64 = (uint64_t)fd };
    epoll_ctl(ds_epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void ds_close(int fd)
{
    ds_conn *c = &ds_conns[fd];
    close(fd);
    c->open = 0;
    c->gen++;
    c->in_len = c->out_off = c->released = c->out_len = 0;
    c->polling_out = 0;
}

static void ds_flush(int fd)
{
    ds_conn *c = &ds_conns[fd];
    while (c->out_off < c->released) {
        ssize_t n = send(fd, c->out + c->out_off, c->released - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            ds_close(fd);
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off > 0 && c->out_off == c->released) { /* keep the unreleased tail */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->released -= c->out_off;
        c->out_off = 0;
    }
    int want = c->out_off < c->released;
    if (want != c->polling_out) {
        c->polling_out = want;
        ds_watch(fd, c);
    }
}

/* --- request parsers: bytes consumed, 0 when incomplete, -1 when bad ----- */

static long ds_crlf(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n')
            return (long)i;
    return -1;
}

static long ds_memcached(ds_conn *c, const char *buf, size_t len)
{
    long eol = ds_crlf(buf, len);
    if (eol < 0)
        return len > DS_MAX_HEAD ? -1 : 0;
    if (eol > DS_MAX_HEAD)
        return -1;
    char line[DS_MAX_HEAD + 1];
    memcpy(line, buf, (size_t)eol);
    line[eol] = '\0';
    char *save, *cmd = strtok_r(line, " ", &save);
    size_t used = (size_t)eol + 2;
    if (!cmd) {
        ds_append(c, "ERROR\r\n", 7);
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "gets") == 0) {
        for (char *k; (k = strtok_r(NULL, " ", &save));) {
            char head[300];
            int n = snprintf(head, sizeof head, "VALUE %.250s 0 10\r\n0123456789\r\n", k);
            ds_append(c, head, (size_t)n);
        }
        ds_append(c, "END\r\n", 5);
    } else if (strcmp(cmd, "set") == 0 || strcmp(cmd, "add") == 0 || strcmp(cmd, "replace") == 0) {
        char *f[5] = { 0 };
        for (int i = 0; i < 5; i++)
            f[i] = strtok_r(NULL, " ", &save);
        if (!f[3]) {
            ds_append(c, "CLIENT_ERROR bad command line format\r\n", 38);
            return (long)used;
        }
        size_t bytes = strtoull(f[3], NULL, 10);
        if (len < used + bytes + 2)
            return 0;
        used += bytes + 2;
        if (!f[4] || strcmp(f[4], "noreply") != 0)
            ds_append(c, "STORED\r\n", 8);
    } else if (strcmp(cmd, "version") == 0) {
        ds_append(c, "VERSION delay-server\r\n", 22);
    } else {
        ds_append(c, "ERROR\r\n", 7);
    }
    return (long)used;
}

static long ds_resp(ds_conn *c, const char *buf, size_t len)
{
    char cmd[16] = "";
    size_t off;
    if (buf[0] != '*') { /* inline command */
        long eol = ds_crlf(buf, len);
        if (eol < 0)
            return len > DS_MAX_HEAD ? -1 : 0;
        size_t n = 0;
        while (n < (size_t)eol && n < sizeof cmd - 1 && buf[n] != ' ')
            n++;
        memcpy(cmd, buf, n);
        off = (size_t)eol + 2;
    } else {
        long eol = ds_crlf(buf, len);
        if (eol < 0)
            return len > DS_MAX_HEAD ? -1 : 0;
        long argc = strtol(buf + 1, NULL, 10);
        if (argc < 1 || argc > 1024)
            return -1;
        off = (size_t)eol + 2;
        for (long i = 0; i < argc; i++) {
            if (off >= len)
                return 0;
            if (buf[off] != '$')
                return -1;
            eol = ds_crlf(buf + off, len - off);
            if (eol < 0)
                return 0;
            long n = strtol(buf + off + 1, NULL, 10);
            if (n < 0)
                return -1;
            size_t data = off + (size_t)eol + 2;
            if (len < data + (size_t)n + 2)
                return 0;
            if (i == 0) {
                size_t k = (size_t)n < sizeof cmd - 1 ? (size_t)n : sizeof cmd - 1;
                memcpy(cmd, buf + data, k);
                cmd[k] = '\0';
            }
            off = data + (size_t)n + 2;
        }
    }
    if (strcasecmp(cmd, "GET") == 0)
        ds_append(c, "$10\r\n0123456789\r\n", 17);
    else if (strcasecmp(cmd, "SET") == 0)
        ds_append(c, "+OK\r\n", 5);
    else if (strcasecmp(cmd, "PING") == 0)
        ds_append(c, "+PONG\r\n", 7);
    else
        ds_append(c, "-ERR unknown command\r\n", 22);
    return (long)off;
}

static long ds_http(ds_conn *c, const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len > DS_MAX_HEAD ? -1 : 0;
    size_t used = (size_t)(end - buf) + 4, body = 0;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
            body = strtoull(p + 15, NULL, 10);
    }
    if (len < used + body)
        return 0;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    ds_append(c, ok, sizeof ok - 1);
    return (long)(used + body);
}

/* --- loop ---------------------------------------------------------------- */

static void ds_arm(void)
{
    if (ds_q_len == 0)
        return;
    uint64_t at = ds_queue[ds_q_head].due_ns;
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(at / 1000000000ull),
                                            .tv_nsec = (long)(at % 1000000000ull) } };
    timerfd_settime(ds_timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void ds_enqueue(int fd, size_t len, uint64_t due)
{
    if (ds_q_len == ds_q_cap) {
        size_t cap = ds_q_cap ? ds_q_cap * 2 : 1024;
        ds_due *q = malloc(cap * sizeof *q);
        if (!q) {
            perror("delay-server: malloc");
            exit(1);
        }
        for (size_t i = 0; i < ds_q_len; i++)
            q[i] = ds_queue[(ds_q_head + i) % ds_q_cap];
        free(ds_queue);
        ds_queue = q;
        ds_q_cap = cap;
        ds_q_head = 0;
    }
    ds_queue[(ds_q_head + ds_q_len) % ds_q_cap] = (ds_due){ due, fd, ds_conns[fd].gen, len };
    if (ds_q_len++ == 0)
        ds_arm();
}

static void ds_release_due(void)
{
    uint64_t now = ds_now();
    while (ds_q_len > 0 && ds_queue[ds_q_head].due_ns <= now) {
        ds_due d = ds_queue[ds_q_head];
        ds_q_head = (ds_q_head + 1) % ds_q_cap;
        ds_q_len--;
        ds_conn *c = &ds_conns[d.fd];
        if (!c->open || c->gen != d.gen)
            continue;
        c->released += d.len;
        ds_flush(d.fd);
    }
    if (ds_q_len > 0)
        ds_arm();
}

static void ds_read(int fd)
{
    ds_conn *c = &ds_conns[fd];
    for (;;) {
        c->in = ds_grow(c->in, &c->in_cap, c->in_len + 16384, 1);
        ssize_t n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            ds_close(fd);
            return;
        }
        c->in_len += (size_t)n;
    }
    uint64_t due = ds_now() + ds_delay_ns;
    size_t off = 0;
    while (off < c->in_len) {
        size_t before = c->out_len;
        long used = ds_proto == DS_MEMCACHED ? ds_memcached(c, c->in + off, c->in_len - off)
                    : ds_proto == DS_RESP    ? ds_resp(c, c->in + off, c->in_len - off)
                                             : ds_http(c, c->in + off, c->in_len - off);
        if (used < 0) {
            ds_close(fd);
            return;
        }
        if (used == 0)
            break;
        off += (size_t)used;
        size_t produced = c->out_len - before;
        if (produced == 0)
            continue;
        if (ds_delay_ns == 0)
            c->released += produced;
        else
            ds_enqueue(fd, produced, due);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (ds_delay_ns == 0)
        ds_flush(fd);
}

static void ds_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((size_t)fd >= ds_n_conns) {
            size_t n = ds_n_conns;
            ds_conns = ds_grow(ds_conns, &ds_n_conns, (size_t)fd + 1, sizeof *ds_conns);
            memset(ds_conns + n, 0, (ds_n_conns - n) * sizeof *ds_conns);
        }
        ds_conns[fd].open = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)fd };
        epoll_ctl(ds_epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void ds_usage(const char *msg)
{
    fprintf(stderr, "delay-server: %s\n", msg);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "protocol", required_argument, NULL, 'P' },
        { "port", required_argument, NULL, 'p' },
        { "delay-us", required_argument, NULL, 'd' },
        { "host", required_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *host = "127.0.0.1", *proto = NULL;
    long port = -1;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'P':
            proto = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'd':
            ds_delay_ns = strtoull(optarg, NULL, 10) * 1000ull;
            break;
        case 'h':
            host = optarg;
            break;
        default:
            ds_usage("usage: delay-server --protocol memcached|resp|http --port P [--delay-us D]");
        }
    }
    if (!proto)
        ds_usage("--protocol is required");
    if (strcmp(proto, "memcached") == 0)
        ds_proto = DS_MEMCACHED;
    else if (strcmp(proto, "resp") == 0)
        ds_proto = DS_RESP;
    else if (strcmp(proto, "http") == 0)
        ds_proto = DS_HTTP;
    else
        ds_usage("unknown protocol");
    if (port < 0 || port > 65535)
        ds_usage("--port is required (0 picks a free one)");

    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        ds_usage("--host must be an IPv4 address");
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        fprintf(stderr, "delay-server: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
        return 2;
    }
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    ds_epfd = epoll_create1(EPOLL_CLOEXEC);
    ds_timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = DS_LISTENER };
    epoll_ctl(ds_epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.u64 = DS_TIMER;
    epoll_ctl(ds_epfd, EPOLL_CTL_ADD, ds_timerfd, &ev);
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ds_epfd, events, 64, -1);
        for (int i = 0; i < n; i++) {
            uint64_t id = events[i].data.u64;
            if (id == DS_LISTENER) {
                ds_accept(lfd);
            } else if (id == DS_TIMER) {
                uint64_t ticks;
                if (read(ds_timerfd, &ticks, sizeof ticks) < 0) { /* already consumed */
                }
                ds_release_due();
            } else {
                int fd = (int)id;
                if (!ds_conns[fd].open)
                    continue;
                if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    ds_read(fd);
                if (ds_conns[fd].open && (events[i].events & EPOLLOUT))
                    ds_flush(fd);
            }
        }
    }
}
