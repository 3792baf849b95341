/* server.c -- the privacy test's own target: a small HTTP/1.1 server that
 * carries planted secrets.
 *
 * It listens on 127.0.0.1:PORT (-p PORT), serves GET requests over keep-alive
 * connections (every request in a pipelined buffer is answered, in order,
 * "HTTP/1.1 200 OK" with a Content-Length body) from one epoll event loop, and
 * exits with status 0 on SIGTERM or SIGINT (read from a signalfd).
 *
 * The strings and symbols named planted_* below are the secrets: long,
 * distinctive, kept in .rodata (strings) and in the symbol table (functions and
 * variables with external linkage). They feed every response's computation --
 * the body is a hash of the path through the planted table, seeded from the
 * planted strings -- but none of them is ever sent. The privacy test asserts
 * that Twin's profile of this server, and the clone generated from it, carry
 * none of them.
 *
 * With -g KIB, every request also keeps KIB of freshly written memory: a target
 * whose memory never stops growing, which Twin must refuse to profile
 * (test/profile/settle.test.ts). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the planted secrets (external linkage: in .rodata and in nm's list) ---- */

const char planted_secret_banner_m2w[] = "PLANTED-SECRET-rodata-7f3a9c2e-do-not-leak";
const char planted_secret_config_path_v5n[] = "/etc/planted-secret-dir/zeta.conf";
const char planted_secret_api_key_h3d[] = "sk_live_PLANTED_51HkQ2xZ9vT4bR8mN3pLwY0qJ";
/* At most 15 characters: the kernel keeps this much of a thread's name (comm). */
const char planted_secret_thread_name_b6c[] = "plntd-loop-x7q";

uint32_t planted_secret_table_k4z[256];
uint64_t planted_secret_requests_served_t1g;

/* -g: bytes each request keeps, and the list that keeps them. */
static size_t grow_bytes;
static void *grown;

/* ---- connections ---- */

#define IN_CAP  16384
#define OUT_MAX (4u << 20)

struct conn {
    int fd;
    size_t in_len;
    char in[IN_CAP];
    char *out;
    size_t out_len, out_off, out_cap;
    int want_out;
};

static uint32_t fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Fills the planted table from the planted strings (and the planted config
 * file's bytes, if such a file exists: it never does). */
void planted_secret_init_table_j8w(void)
{
    uint32_t seed = fnv1a(planted_secret_banner_m2w, sizeof planted_secret_banner_m2w - 1, 2166136261u);
    seed = fnv1a(planted_secret_api_key_h3d, sizeof planted_secret_api_key_h3d - 1, seed);
    seed = fnv1a(planted_secret_config_path_v5n, sizeof planted_secret_config_path_v5n - 1, seed);
    FILE *f = fopen(planted_secret_config_path_v5n, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            seed = fnv1a(line, strlen(line), seed);
        fclose(f);
    }
    for (int i = 0; i < 256; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        planted_secret_table_k4z[i] = seed;
    }
}

/* The per-request work: the path hashed through the planted table, then a body
 * of hex digits drawn from a generator seeded by that hash. Returns the body
 * length written to `body` (at most `cap`). */
size_t planted_secret_handler_q9x(const char *path, size_t path_len, char *body, size_t cap)
{
    uint32_t h =
        (uint32_t)planted_secret_api_key_h3d[(path_len * 7) % (sizeof planted_secret_api_key_h3d - 1)];
    for (size_t i = 0; i < path_len; i++) {
        unsigned char c = (unsigned char)path[i];
        h = (h ^ planted_secret_table_k4z[(h ^ c) & 255u]) * 2654435761u;
        h ^= h >> 15;
    }
    size_t len = 256 + (size_t)(h % 4u) * 448;
    if (len > cap)
        len = cap;
    uint64_t x = ((uint64_t)h << 32) | planted_secret_table_k4z[h & 255u] | 1u;
    static const char hex[16] = { '0', '1', '2', '3', '4', '5', '6', '7',
                                  '8', '9', 'a', 'b', 'c', 'd', 'e', 'f' };
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body[i] = hex[(x ^ planted_secret_table_k4z[(x >> 24) & 255u]) & 15u];
    }
    if (len > 0)
        body[len - 1] = '\n';
    planted_secret_requests_served_t1g++;
    if (grow_bytes) {
        /* Kept on a list, so the allocation is neither freed nor optimized away. */
        void **m = malloc(grow_bytes);
        if (m) {
            memset(m, 1, grow_bytes);
            *m = grown;
            grown = m;
        }
    }
    return len;
}

static int out_append(struct conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 8192;
        while (cap < c->out_len + n)
            cap *= 2;
        if (cap > OUT_MAX)
            return -1;
        char *q = realloc(c->out, cap);
        if (!q)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static const char bad_request[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* Answers every complete request in c->in. Returns -1 to close the connection
 * (after what is queued is sent, on a bad request), 0 otherwise. */
static int serve_requests(struct conn *c)
{
    size_t off = 0;
    int close_after = 0;
    while (off < c->in_len) {
        const char *start = c->in + off;
        size_t avail = c->in_len - off;
        const char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head = (size_t)(end - start) + 4;
        const char *sp1 = memchr(start, ' ', head);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head - (size_t)(sp1 + 1 - start)) : NULL;
        if (!sp1 || !sp2 || sp1 - start != 3 || memcmp(start, "GET", 3) != 0) {
            out_append(c, bad_request, sizeof bad_request - 1);
            close_after = 1;
            off = c->in_len;
            break;
        }
        char body[2048];
        size_t n = planted_secret_handler_q9x(sp1 + 1, (size_t)(sp2 - sp1 - 1), body, sizeof body);
        char hdr[128];
        int hn = snprintf(hdr, sizeof hdr,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", n);
        if (out_append(c, hdr, (size_t)hn) < 0 || out_append(c, body, n) < 0)
            return -1;
        off += head;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == IN_CAP)
        return -1; /* a request head larger than the buffer */
    return close_after ? -1 : 0;
}

/* Sends what is queued; 1 if all of it went, 0 if the socket is full, -1 on error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    return 1;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

static int set_events(int ep, struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return 0;
    struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c };
    c->want_out = want_out;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(int ep, struct conn *c)
{
    for (;;) {
        if (c->in_len == IN_CAP) {
            conn_close(ep, c);
            return;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
        if (r == 0) {
            conn_close(ep, c);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(ep, c);
            return;
        }
        c->in_len += (size_t)r;
        if (c->in_len < IN_CAP)
            break; /* read what came; the loop calls again if more */
    }
    int closing = serve_requests(c) < 0;
    int sent = flush_out(c);
    if (sent < 0 || (closing && sent == 1)) {
        conn_close(ep, c);
        return;
    }
    if (set_events(ep, c, sent == 0) < 0)
        conn_close(ep, c);
}

static void on_writable(int ep, struct conn *c)
{
    int sent = flush_out(c);
    if (sent < 0 || set_events(ep, c, sent == 0) < 0)
        conn_close(ep, c);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 512) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "p:g:")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'g')
            grow_bytes = (size_t)atoi(optarg) * 1024u;
        else {
            fprintf(stderr, "usage: %s -p PORT [-g KIB]\n", argv[0]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s -p PORT (1-65535)\n", argv[0]);
        return 2;
    }
    planted_secret_init_table_j8w();
    prctl(PR_SET_NAME, planted_secret_thread_name_b6c, 0, 0, 0);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0)
        return 1;
    int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = listen_on(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || lfd < 0 || ep < 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    /* data.ptr NULL marks the listener; the signalfd is told apart by its fd. */
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static int sig_marker;
    ev.data.ptr = &sig_marker;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &sig_marker) {
                close(lfd);
                close(ep);
                close(sfd);
                return 0;
            }
            if (p == NULL) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    int one = 1;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c) {
                        close(cfd);
                        continue;
                    }
                    c->fd = cfd;
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) {
                        close(cfd);
                        free(c);
                    }
                }
                continue;
            }
            struct conn *c = p;
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN)) {
                conn_close(ep, c);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                on_writable(ep, c);
                continue; /* EPOLLIN too: level-triggered, it comes back */
            }
            if (evs[i].events & EPOLLIN)
                on_readable(ep, c);
        }
    }
}
