#define _GNU_SOURCE
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define REPLAY_DEFAULT_SIZE 4096
#define REPLAY_MAX_IO       (64u << 20)   /* a file step reads or writes at most this */
#define REPLAY_LOG_CAP      (64ull << 20) /* the log file wraps to offset 0 past this */
#define REPLAY_MAX_PER_REQ  1e6

/* Bytes written to the log by WRITE_LOG in this process, to wrap it. */
static _Atomic uint64_t replay_log_written;

static int replay_sized(twin_syscall call)
{
    return call == TWIN_SC_PREAD || call == TWIN_SC_READ_FILE || call == TWIN_SC_WRITE_LOG ||
           call == TWIN_SC_PWRITE;
}

static int replay_check(const twin_config *cfg, char *err, size_t errlen)
{
    if ((unsigned)cfg->protocol > TWIN_PROTO_HTTP || (unsigned)cfg->net_model > TWIN_NET_PROCESS_THREADS ||
        (unsigned)cfg->recv_call > TWIN_RECV_RECVMSG || (unsigned)cfg->send_call > TWIN_SEND_WRITEV) {
        snprintf(err, errlen, "unknown protocol, network model, receive or send call");
        return TWIN_ERR;
    }
    if (cfg->n_ops == 0 || !cfg->ops) {
        snprintf(err, errlen, "no ops");
        return TWIN_ERR;
    }
    for (uint32_t i = 0; i < cfg->n_ops; i++) {
        const twin_op *o = &cfg->ops[i];
        if (!o->name || !o->name[0] || (o->n_resp_sizes && !o->resp_sizes) || (o->n_steps && !o->steps) ||
            (o->n_key_sizes && !o->key_sizes)) {
            snprintf(err, errlen, "op %u: missing name, sizes or steps", i);
            return TWIN_ERR;
        }
        for (uint32_t j = 0; j < o->n_steps; j++) {
            const twin_syscall_step *s = &o->steps[j];
            if ((unsigned)s->call >= TWIN_SC_COUNT_ || !isfinite(s->per_req) || s->per_req < 0 ||
                s->per_req > REPLAY_MAX_PER_REQ || (s->n_sizes && !s->sizes)) {
                snprintf(err, errlen, "op %s step %u: bad call, rate or sizes", o->name, j);
                return TWIN_ERR;
            }
        }
    }
    if (cfg->n_bg && !cfg->bg) {
        snprintf(err, errlen, "n_bg is %u but bg is missing", cfg->n_bg);
        return TWIN_ERR;
    }
    for (uint32_t i = 0; i < cfg->n_bg; i++)
        if ((unsigned)cfg->bg[i].sleep > TWIN_SLEEP_SELECT) {
            snprintf(err, errlen, "background thread %u: unknown sleep", i);
            return TWIN_ERR;
        }
    return TWIN_OK;
}

int replay_plan_init(replay_plan *p, const twin_config *cfg, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (replay_check(cfg, err, errlen) != TWIN_OK)
        return TWIN_ERR;
    p->cfg = cfg;
    p->key_at = -1;
    p->scratch_bytes = REPLAY_DEFAULT_SIZE;
    p->ops = calloc(cfg->n_ops, sizeof *p->ops);
    if (!p->ops)
        goto nomem;
    for (uint32_t i = 0; i < cfg->n_ops; i++) {
        const twin_op *o = &cfg->ops[i];
        replay_op *ro = &p->ops[i];
        ro->name_len = strlen(o->name);
        ro->first_acc = p->n_acc;
        p->n_acc += o->n_steps;
        if (dist_init(&ro->resp, o->resp_sizes, o->n_resp_sizes, 0) != TWIN_OK)
            goto nomem;
        ro->sizes = calloc(o->n_steps ? o->n_steps : 1, sizeof *ro->sizes);
        if (!ro->sizes)
            goto nomem;
        for (uint32_t j = 0; j < o->n_steps; j++) {
            const twin_syscall_step *s = &o->steps[j];
            if (dist_init(&ro->sizes[j], s->sizes, s->n_sizes, REPLAY_DEFAULT_SIZE) != TWIN_OK)
                goto nomem;
            if (replay_sized(s->call) && ro->sizes[j].max > p->scratch_bytes)
                p->scratch_bytes = ro->sizes[j].max;
        }
    }
    if (p->scratch_bytes > REPLAY_MAX_IO)
        p->scratch_bytes = REPLAY_MAX_IO;
    p->scratch_bytes = (p->scratch_bytes + 4095) & ~(size_t)4095;
    /* Shared before any fork, so prefork children count into the parent's view. */
    p->served = mmap(NULL, sizeof *p->served, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->served == MAP_FAILED)
        goto nomem;
    *p->served = 0;
    return TWIN_OK;
nomem:
    if (p->served == MAP_FAILED)
        p->served = NULL;
    snprintf(err, errlen, "out of memory");
    replay_plan_free(p);
    return TWIN_ERR;
}

void replay_plan_free(replay_plan *p)
{
    if (p->ops) {
        for (uint32_t i = 0; i < p->cfg->n_ops; i++) {
            dist_free(&p->ops[i].resp);
            if (p->ops[i].sizes)
                for (uint32_t j = 0; j < p->cfg->ops[i].n_steps; j++)
                    dist_free(&p->ops[i].sizes[j]);
            free(p->ops[i].sizes);
        }
    }
    free(p->ops);
    p->ops = NULL;
    if (p->served)
        munmap(p->served, sizeof *p->served);
    p->served = NULL;
}

int replay_thread_init(replay_thread *t, const replay_plan *p, uint64_t seed, char *err, size_t errlen)
{
    const twin_config *cfg = p->cfg;
    void *mem = NULL;

    memset(t, 0, sizeof *t);
    t->plan = p;
    t->data_fd = -1;
    t->rng = dist_seed(seed);
    t->body.rng = dist_seed(seed ^ 0x626f6479ULL);
    for (int i = 0; i < REPLAY_WEYL_OPS; i++)
        t->weyl[i] = dist_seed(seed + 7919u * (uint64_t)(i + 1));
    t->acc = calloc(p->n_acc ? p->n_acc : 1, sizeof *t->acc);
    if (!t->acc || posix_memalign(&mem, 4096, p->scratch_bytes) != 0)
        goto nomem;
    t->scratch = mem;
    memset(t->scratch, 0, p->scratch_bytes);
    if (cfg->body_mem_bytes) {
        size_t bytes = (cfg->body_mem_bytes + 63) & ~(size_t)63;
        if (posix_memalign(&mem, 4096, bytes) != 0)
            goto nomem;
        memset(mem, 0, bytes);
        t->body.mem = mem;
        t->body.mem_bytes = cfg->body_mem_bytes;
    }
    if (cfg->body_init)
        cfg->body_init(&t->body);
    t->data_fd = open(p->files->data_path, O_RDONLY | O_CLOEXEC);
    if (t->data_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", p->files->data_path, strerror(errno));
        replay_thread_free(t);
        return TWIN_ERR;
    }
    return TWIN_OK;
nomem:
    snprintf(err, errlen, "out of memory for a serving thread");
    replay_thread_free(t);
    return TWIN_ERR;
}

void replay_thread_free(replay_thread *t)
{
    while (t->n_open)
        close(t->open_fds[--t->n_open]);
    while (t->n_maps) {
        t->n_maps--;
        munmap(t->maps[t->n_maps], t->map_len[t->n_maps]);
    }
    if (t->data_fd >= 0)
        close(t->data_fd);
    t->data_fd = -1;
    free(t->acc);
    free(t->scratch);
    free(t->body.mem);
    t->acc = NULL;
    t->scratch = NULL;
    t->body.mem = NULL;
}

uint32_t replay_op_of(const replay_plan *p, const char *verb, size_t len, int *named)
{
    for (uint32_t i = 0; i < p->cfg->n_ops; i++) {
        if (p->ops[i].name_len == len && strncasecmp(p->cfg->ops[i].name, verb, len) == 0) {
            *named = 1;
            return i;
        }
    }
    *named = 0;
    return 0;
}

uint32_t replay_resp_size(replay_thread *t, uint32_t op, const char *key, size_t key_len)
{
    const twin_op *o = &t->plan->cfg->ops[op];
    size_t at = (size_t)t->plan->key_at;
    if (o->n_key_sizes && t->plan->key_at >= 0 && key && key_len > at && key[at] >= '0' && key[at] <= '9') {
        uint64_t k = 0;
        for (size_t i = at; i < key_len && key[i] >= '0' && key[i] <= '9' && k < o->n_key_sizes; i++)
            k = 10 * k + (uint64_t)(key[i] - '0');
        if (k < o->n_key_sizes && o->key_sizes[k])
            return o->key_sizes[k];
    }
    return dist_sample_weyl(&t->plan->ops[op].resp, &t->weyl[op % REPLAY_WEYL_OPS]);
}

static uint64_t replay_offset(replay_thread *t, uint64_t space, size_t size)
{
    if (space <= size)
        return 0;
    return (dist_next(&t->rng) % (space - size + 1)) & ~(uint64_t)4095;
}

/* One system call of the step's kind. Failures are expected for some (close
 * of -1, munmap of nothing) and harmless for the rest: they still cost the
 * call, which is what is being reproduced. */
static void replay_step(replay_thread *t, twin_syscall call, const dist_table *sizes, const replay_sock *sock)
{
    const files_set *f = t->plan->files;
    int sock_fd = sock ? sock->fd : -1;
    size_t size = 0;
    ssize_t r = 0;

    if (replay_sized(call) || call == TWIN_SC_MMAP) {
        size = dist_sample(sizes, &t->rng);
        if (call != TWIN_SC_MMAP && size > t->plan->scratch_bytes)
            size = t->plan->scratch_bytes;
    }
    switch (call) {
    case TWIN_SC_OPENAT:
        /* More opens than closes: the rest fail, as a server's opens of files that are not
         * there do (Apache: 4 opens a request, 1 close), each close making room for one. */
        if (t->n_open == REPLAY_MAX_OPEN) {
            r = openat(AT_FDCWD, f->missing_path, O_RDONLY | O_CLOEXEC);
            break;
        }
        r = openat(AT_FDCWD, f->data_path, O_RDONLY | O_CLOEXEC);
        if (r >= 0)
            t->open_fds[t->n_open++] = (int)r;
        break;
    case TWIN_SC_CLOSE:
        r = close(t->n_open ? t->open_fds[--t->n_open] : -1);
        break;
    case TWIN_SC_FSTAT: {
        struct stat st;
        r = syscall(SYS_fstat, t->data_fd, &st);
        break;
    }
    case TWIN_SC_NEWFSTATAT: {
        struct stat st;
        r = syscall(SYS_newfstatat, AT_FDCWD, f->data_path, &st, 0);
        break;
    }
    case TWIN_SC_STATX: {
        struct statx stx;
        r = syscall(SYS_statx, AT_FDCWD, f->data_path, 0, STATX_BASIC_STATS, &stx);
        break;
    }
    case TWIN_SC_PREAD:
        r = pread(t->data_fd, t->scratch, size, (off_t)replay_offset(t, f->data_bytes, size));
        break;
    case TWIN_SC_READ_FILE:
        if (t->read_off > 0 && t->read_off + size > f->data_bytes) {
            lseek(t->data_fd, 0, SEEK_SET);
            t->read_off = 0;
        }
        r = read(t->data_fd, t->scratch, size);
        if (r > 0)
            t->read_off += (uint64_t)r;
        break;
    case TWIN_SC_WRITE_LOG: {
        r = write(f->log_fd, t->scratch, size);
        uint64_t before = atomic_fetch_add(&replay_log_written, size);
        if ((before + size) / REPLAY_LOG_CAP != before / REPLAY_LOG_CAP)
            lseek(f->log_fd, 0, SEEK_SET);
        break;
    }
    case TWIN_SC_PWRITE:
        r = pwrite(f->log_fd, t->scratch, size, (off_t)replay_offset(t, REPLAY_LOG_CAP, size));
        break;
    case TWIN_SC_FSYNC:
        r = fsync(f->log_fd);
        break;
    case TWIN_SC_FDATASYNC:
        r = fdatasync(f->log_fd);
        break;
    case TWIN_SC_LSEEK:
        r = lseek(t->data_fd, 0, SEEK_CUR);
        break;
    case TWIN_SC_FUTEX:
        r = syscall(SYS_futex, &t->futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        break;
    case TWIN_SC_EPOLL_CTL: {
        struct epoll_event ev = { .events = sock ? sock->events : 0 };
        ev.data.ptr = sock ? sock->ptr : NULL;
        r = epoll_ctl(sock ? sock->epfd : -1, EPOLL_CTL_MOD, sock_fd, &ev);
        break;
    }
    case TWIN_SC_SETSOCKOPT: {
        int one = 1;
        r = setsockopt(sock_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        break;
    }
    case TWIN_SC_GETSOCKOPT: {
        int e = 0;
        socklen_t len = sizeof e;
        r = getsockopt(sock_fd, SOL_SOCKET, SO_ERROR, &e, &len);
        break;
    }
    case TWIN_SC_IOCTL: {
        int pending = 0;
        r = ioctl(sock_fd, FIONREAD, &pending);
        break;
    }
    case TWIN_SC_FCNTL:
        r = fcntl(sock_fd, F_GETFL);
        break;
    case TWIN_SC_CLOCK_GETTIME: {
        struct timespec ts;
        r = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
        break;
    }
    case TWIN_SC_GETPID:
        r = syscall(SYS_getpid);
        break;
    case TWIN_SC_MMAP: {
        if (t->n_maps == REPLAY_MAX_MAPS) { /* more maps than unmaps: drop the oldest */
            munmap(t->maps[0], t->map_len[0]);
            memmove(t->maps, t->maps + 1, sizeof t->maps[0] * (REPLAY_MAX_MAPS - 1));
            memmove(t->map_len, t->map_len + 1, sizeof t->map_len[0] * (REPLAY_MAX_MAPS - 1));
            t->n_maps--;
        }
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            t->maps[t->n_maps] = m;
            t->map_len[t->n_maps++] = size;
        } else {
            r = -1;
        }
        break;
    }
    case TWIN_SC_MUNMAP:
        if (t->n_maps) {
            t->n_maps--;
            r = munmap(t->maps[t->n_maps], t->map_len[t->n_maps]);
        } else {
            r = munmap((void *)(uintptr_t)1, 4096); /* unaligned: EINVAL */
        }
        break;
    case TWIN_SC_MADVISE:
        if (t->body.mem && t->body.mem_bytes >= 4096)
            r = madvise(t->body.mem, t->body.mem_bytes & ~(size_t)4095, MADV_NORMAL);
        else
            r = madvise(t->scratch, 4096, MADV_NORMAL);
        break;
    case TWIN_SC_GENERIC:
    default:
        r = syscall(SYS_getppid);
        break;
    }
    t->errors += (uint64_t)(r < 0);
}

void replay_request(replay_thread *t, uint32_t op, const replay_sock *sock)
{
    const twin_config *cfg = t->plan->cfg;
    const twin_op *o = &cfg->ops[op];
    const replay_op *ro = &t->plan->ops[op];
    double *acc = t->acc + ro->first_acc;

    /* acc carries the fraction: per_req 0.25 issues on every fourth request,
     * 2.5 issues 2 and 3 alternately. */
    for (uint32_t i = 0; i < o->n_steps; i++) {
        acc[i] += o->steps[i].per_req;
        while (acc[i] >= 1.0) {
            replay_step(t, o->steps[i].call, &ro->sizes[i], sock);
            acc[i] -= 1.0;
        }
    }
    if (t->plan->served)
        __atomic_fetch_add(t->plan->served, 1, __ATOMIC_RELAXED);
    if (cfg->body)
        cfg->body(op, &t->body);
}
