/* example_clone.c -- an example clone config in the shape the generator emits:
 * memcached text protocol, a pool of 4 worker threads behind an acceptor,
 * read until EAGAIN and sendmsg, 2 background threads. */
#include <stdint.h>

#include "twin.h"

static const twin_bin get_sizes[] = { { 1030, 3 }, { 100, 1 } };
static const twin_bin set_sizes[] = { { 8, 1 } };
static const twin_bin pread_sizes[] = { { 4096, 1 }, { 512, 1 } };
static const twin_bin log_sizes[] = { { 128, 1 } };

static const twin_syscall_step get_steps[] = {
    { TWIN_SC_PREAD, 1.0, pread_sizes, 2, 0, 0.0, 0 },
    { TWIN_SC_CLOCK_GETTIME, 0.5, NULL, 0, 0, 0.0, 0 },
};
static const twin_syscall_step set_steps[] = {
    { TWIN_SC_WRITE_LOG, 1.0, log_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_FDATASYNC, 0.25, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_FUTEX, 2.0, NULL, 0, 0, 0.0, 0 },
};

static const twin_op ops[] = {
    { "get", get_sizes, 2, get_steps, 2, NULL, 0 },
    { "set", set_sizes, 1, set_steps, 3, NULL, 0 },
};

static const twin_bg_thread bg[] = {
    { TWIN_SLEEP_CLOCK_NANOSLEEP, 100000, 1, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
    { TWIN_SLEEP_IDLE, 0, 0, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
};

/* A trivial body: a short walk over the thread's memory. */
static void body(uint32_t op, twin_body_ctx *ctx)
{
    uint64_t x = ctx->rng, acc = op;
    size_t words = ctx->mem_bytes / sizeof(uint64_t);
    for (int i = 0; i < 64; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t *slot = &ctx->mem[x % words];
        acc += *slot;
        *slot = acc;
    }
    ctx->rng = x;
    ctx->sink += acc;
}

static const twin_config config = {
    .protocol = TWIN_PROTO_MEMCACHED,
    .net_model = TWIN_NET_WORKER_POOL,
    .workers = 4,
    .recv_call = TWIN_RECV_READ,
    .recv_until_eagain = 1,
    .send_call = TWIN_SEND_SENDMSG,
    .ops = ops,
    .n_ops = 2,
    .bg = bg,
    .n_bg = 2,
    .data_file_bytes = 1 << 20,
    .body_mem_bytes = 64 << 10,
    .body = body,
};

int main(int argc, char **argv)
{
    return twin_main(&config, argc, argv);
}
