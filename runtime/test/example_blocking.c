/* example_blocking.c -- an example clone config of a blocking server: memcached
 * text protocol, the network model from TWIN_TEST_NET (3 a thread per
 * connection, 4 a pool of processes, 5 a process per connection, 6 processes
 * of 4 threads behind a listener), 3 workers,
 * blocking reads and sendmsg, 1 background thread. TWIN_TEST_SPARE=N: a pool
 * that keeps N processes idle, up to 8; TWIN_TEST_POLL=1: connections wait in
 * poll(2) and receive until EAGAIN; TWIN_TEST_POLL=epoll: they receive first
 * with recvfrom, once, and wait in an epoll set of their own, replies sent
 * with sendto (PostgreSQL's backends). TWIN_TEST_BGPROC=N (up to 4): N more
 * background threads, each in a process of its own, in turn: epoll_wait
 * every 200 ms, nanosleep every 100 ms and once more a request served (with a
 * WAL writer's disk calls). TWIN_TEST_LOCK=1: one serialized section of one
 * way, taken at a connection's first set and given at its next get; =latch:
 * its waiters sleep on latches. TWIN_TEST_COLD=N: a get's pread is a cold cache's
 * alone, one page of N touched a get. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "twin.h"

static const twin_bin get_sizes[] = { { 1030, 3 }, { 100, 1 } };
static const twin_bin set_sizes[] = { { 8, 1 } };
static const twin_bin pread_sizes[] = { { 4096, 1 } };
static const twin_bin log_sizes[] = { { 128, 1 } };

/* two opens and one close: one of the opens finds no file (once 16 are open) */
static const twin_syscall_step get_steps[] = {
    { TWIN_SC_PREAD, 1.0, pread_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_OPENAT, 2.0, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_CLOSE, 1.0, NULL, 0, 0, 0.0, 0 },
};
static const twin_syscall_step set_steps[] = {
    { TWIN_SC_WRITE_LOG, 1.0, log_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_FDATASYNC, 0.5, NULL, 0, 0, 0.0, 0 },
};

static const twin_op ops[] = {
    { "get", get_sizes, 2, get_steps, 3, NULL, 0 },
    { "set", set_sizes, 1, set_steps, 2, NULL, 0 },
};

/* a WAL writer's: half a write of 8 KiB and a quarter of an fdatasync a request served */
static const twin_bin wal_sizes[] = { { 8192, 1 } };
static const twin_syscall_step wal_steps[] = {
    { TWIN_SC_PWRITE, 0.5, wal_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_FDATASYNC, 0.25, NULL, 0, 0, 0.0, 0 },
};

static const twin_bg_thread bg[] = {
    { TWIN_SLEEP_CLOCK_NANOSLEEP, 100000, 1, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
    { TWIN_SLEEP_EPOLL_WAIT, 200000, 0, 0.0, 0.0, 0.0, 0, NULL, 1, NULL, 0 },
    { TWIN_SLEEP_NANOSLEEP, 100000, 1, 1.0, 0.0, 0.0, 0, NULL, 1, wal_steps, 2 },
    { TWIN_SLEEP_EPOLL_WAIT, 200000, 0, 0.0, 0.0, 0.0, 0, NULL, 1, NULL, 0 },
    { TWIN_SLEEP_NANOSLEEP, 100000, 1, 1.0, 0.0, 0.0, 0, NULL, 1, wal_steps, 2 },
};

static const twin_lock lock[] = { { 1, 1, 0, 1, 0 } };
static const twin_lock latched[] = { { 1, 1, 0, 1, 1 } };

static void body(uint32_t op, twin_body_ctx *ctx)
{
    ctx->mem[op % (ctx->mem_bytes / sizeof(uint64_t))] += ctx->rng++;
}

int main(int argc, char **argv)
{
    const char *net = getenv("TWIN_TEST_NET"), *spare = getenv("TWIN_TEST_SPARE"),
               *wait = getenv("TWIN_TEST_POLL"), *bgproc = getenv("TWIN_TEST_BGPROC"),
               *lock_on = getenv("TWIN_TEST_LOCK"), *cold = getenv("TWIN_TEST_COLD");
    twin_syscall_step cold_get[] = { { TWIN_SC_PREAD, 0.0, pread_sizes, 1, cold ? (uint32_t)atoi(cold) : 0,
                                       1.0, 0 } };
    twin_op cold_ops[] = { { "get", get_sizes, 2, cold_get, 1, NULL, 0 }, ops[1] };
    int epoll = wait && strcmp(wait, "epoll") == 0;
    uint32_t n_bgproc = bgproc ? (uint32_t)atoi(bgproc) : 0;
    twin_config config = {
        .protocol = TWIN_PROTO_MEMCACHED,
        .net_model = net ? (twin_net_model)atoi(net) : TWIN_NET_THREAD_PER_CONN,
        .workers = 3,
        .pool_spare = spare ? (uint32_t)atoi(spare) : 0,
        .pool_max = 8,
        .threads = 4,
        .wait_poll = wait != NULL && !epoll,
        .wait_epoll = epoll,
        .recv_call = epoll ? TWIN_RECV_RECV : TWIN_RECV_READ,
        .recv_until_eagain = wait != NULL && !epoll,
        .send_call = epoll ? TWIN_SEND_SENDTO : TWIN_SEND_SENDMSG,
        .ops = cold ? cold_ops : ops,
        .n_ops = 2,
        .bg = bg,
        .n_bg = 1 + (n_bgproc < 4 ? n_bgproc : 4),
        .data_file_bytes = 1 << 20,
        .body_mem_bytes = 64 << 10,
        .body = body,
        .locks = lock_on && strcmp(lock_on, "latch") == 0 ? latched : lock,
        .n_locks = lock_on ? 1 : 0,
    };
    return twin_main(&config, argc, argv);
}
