/* replay_step.c -- the system calls of a request's steps (replay.h). */
#define _GNU_SOURCE
#include "replay.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define REPLAY_LOG_CAP (64ull << 20) /* the log file wraps to offset 0 past this */

/* Bytes written to the log by WRITE_LOG in this process, to wrap it. */
static _Atomic uint64_t replay_log_written;

int replay_sized(twin_syscall call)
{
    return call == TWIN_SC_PREAD || call == TWIN_SC_READ_FILE || call == TWIN_SC_WRITE_LOG ||
           call == TWIN_SC_PWRITE;
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
void replay_step(replay_thread *t, twin_syscall call, const dist_table *sizes, const replay_sock *sock)
{
    int map = call == TWIN_SC_MMAP || call == TWIN_SC_MMAP_FILE;
    replay_step_size(t, call, replay_sized(call) || map ? dist_sample(sizes, &t->rng) : 0, sock);
}

void replay_step_size(replay_thread *t, twin_syscall call, size_t size, const replay_sock *sock)
{
    const files_set *f = t->plan->files;
    int sock_fd = sock ? sock->fd : -1;
    ssize_t r = 0;

    int map = call == TWIN_SC_MMAP || call == TWIN_SC_MMAP_FILE;
    if (!map && size > t->plan->scratch_bytes)
        size = t->plan->scratch_bytes;
    if (map && t->n_maps == REPLAY_MAX_MAPS) { /* more maps than unmaps: drop the oldest */
        munmap(t->maps[0], t->map_len[0]);
        memmove(t->maps, t->maps + 1, sizeof t->maps[0] * (REPLAY_MAX_MAPS - 1));
        memmove(t->map_len, t->map_len + 1, sizeof t->map_len[0] * (REPLAY_MAX_MAPS - 1));
        t->n_maps--;
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
        /* in the blocks the log was given at the start (REPLAY_LOG_SPAN) */
        r = pwrite(f->log_fd, t->scratch, size,
                   (off_t)replay_offset(t, f->log_bytes ? f->log_bytes : REPLAY_LOG_CAP, size));
        break;
    case TWIN_SC_FSYNC:
        r = fsync(f->log_fd);
        break;
    case TWIN_SC_FDATASYNC:
        r = fdatasync(f->log_fd);
        break;
    case TWIN_SC_SYNC_FILE_RANGE:
        r = sync_file_range(f->log_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
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
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            t->maps[t->n_maps] = m;
            t->map_len[t->n_maps++] = size;
        } else {
            r = -1;
        }
        break;
    }
    case TWIN_SC_MMAP_FILE: {
        /* A server that sends a file from its map (Apache) has each page faulted in from the
         * page cache as the send copies it, and unmapped again: the same pages read here. */
        if (size == 0 || size > f->data_bytes)
            size = f->data_bytes ? (size_t)f->data_bytes : 4096;
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, t->data_fd,
                       (off_t)replay_offset(t, f->data_bytes, size));
        if (m != MAP_FAILED) {
            const volatile unsigned char *b = m;
            for (size_t o = 0; o < size; o += 4096)
                (void)b[o];
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

/* The after-reply steps of the requests served since the last call (replay_request), and
 * the part of their bodies run after the reply (body_after). */
void replay_after(replay_thread *t, const replay_sock *sock)
{
    for (uint32_t k = 0; k < t->n_after; k++) {
        uint32_t op = t->after_ops[k];
        const twin_op *o = &t->plan->cfg->ops[op];
        const replay_op *ro = &t->plan->ops[op];
        double *acc = t->acc + ro->first_acc;
        for (uint32_t i = 0; i < o->n_steps; i++) {
            if (o->steps[i].when != TWIN_STEP_AFTER)
                continue;
            acc[i] += o->steps[i].per_req;
            while (acc[i] >= 1.0) {
                replay_step(t, o->steps[i].call, &ro->sizes[i], sock);
                acc[i] -= 1.0;
            }
        }
        if (t->plan->cfg->body && t->plan->cfg->body_after) {
            t->body.share = t->plan->cfg->body_after;
            t->plan->cfg->body(op, &t->body);
        }
    }
    t->n_after = 0;
}

void replay_turn(replay_thread *t)
{
    if (!t->turn_marked)
        return;
    t->turn_marked = 0;
    const twin_config *cfg = t->plan->cfg;
    for (uint32_t op = 0; op < cfg->n_ops; op++) {
        const twin_op *o = &cfg->ops[op];
        const replay_op *ro = &t->plan->ops[op];
        for (uint32_t i = 0; ro->has_turn && i < o->n_steps; i++) {
            uint32_t at = ro->first_acc + i;
            if (!t->turn_marks[at])
                continue;
            if (replay_sized(o->steps[i].call))
                replay_step_size(t, o->steps[i].call, (size_t)t->turn_bytes[at], NULL);
            else
                replay_step(t, o->steps[i].call, &ro->sizes[i], NULL);
            t->turn_marks[at] = 0;
            t->turn_bytes[at] = 0;
        }
    }
}
