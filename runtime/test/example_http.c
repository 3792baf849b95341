/* example_http.c -- an nginx-like clone: HTTP/1.1 keep-alive, 2 prefork
 * worker processes on a shared socket, recvmsg until EAGAIN and writev, a
 * static-file pattern of calls, 3 background threads in the main process. */
#include <stdint.h>

#include "twin.h"

/* 217 bytes is a total the Content-Length digits skip (a padded reply). */
static const twin_bin get_sizes[] = { { 217, 1 }, { 250, 1 }, { 1000, 1 }, { 10000, 1 }, { 100000, 1 } };
static const twin_bin file_sizes[] = { { 16384, 1 } };

static const twin_syscall_step get_steps[] = {
    { TWIN_SC_OPENAT, 1.0, NULL, 0, 0, 0.0, 0 },      { TWIN_SC_FSTAT, 1.0, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_PREAD, 1.0, file_sizes, 1, 0, 0.0, 0 }, { TWIN_SC_CLOSE, 1.0, NULL, 0, 0, 0.0, 1 },
    { TWIN_SC_NEWFSTATAT, 0.5, NULL, 0, 0, 0.0, 0 },  { TWIN_SC_STATX, 0.5, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_SETSOCKOPT, 0.2, NULL, 0, 0, 0.0, 0 },  { TWIN_SC_GETSOCKOPT, 0.2, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_IOCTL, 0.2, NULL, 0, 0, 0.0, 0 },       { TWIN_SC_FCNTL, 0.2, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_MADVISE, 0.1, NULL, 0, 0, 0.0, 0 },     { TWIN_SC_GENERIC, 3.0, NULL, 0, 0, 0.0, 0 },
};

/* Keys 1 and 2 (run with --key-at 5: /file1.html, /file2.html) by their sizes;
 * key 0 and the rest from get_sizes. */
static const uint32_t get_key_sizes[] = { 0, 1000, 100000 };

static const twin_op ops[] = {
    { "GET", get_sizes, 5, get_steps, 12, get_key_sizes, 3 },
};

static const twin_bg_thread bg[] = {
    { TWIN_SLEEP_EPOLL_WAIT, 100000, 1, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
    { TWIN_SLEEP_SELECT, 20000, 0, 0.0, 20e6, 0.0, 0, NULL, 0, NULL,
      0 }, /* 50 wakes/s, 20 ms of CPU a second */
    { TWIN_SLEEP_NANOSLEEP, 100000, 1, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
};

static void body(uint32_t op, twin_body_ctx *ctx)
{
    uint64_t acc = op;
    for (size_t i = 0; i < ctx->mem_bytes / sizeof(uint64_t); i += 8)
        acc += ctx->mem[i]++;
    ctx->sink += acc;
}

static const twin_config config = {
    .protocol = TWIN_PROTO_HTTP,
    .net_model = TWIN_NET_PREFORK,
    .workers = 2,
    .recv_call = TWIN_RECV_RECVMSG,
    .recv_until_eagain = 1,
    .send_call = TWIN_SEND_WRITEV,
    .ops = ops,
    .n_ops = 1,
    .bg = bg,
    .n_bg = 3,
    .data_file_bytes = 4 << 20,
    .body_mem_bytes = 8192,
    .body = body,
};

int main(int argc, char **argv)
{
    return twin_main(&config, argc, argv);
}
