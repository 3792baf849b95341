/* example_resp.c -- a redis-like clone: RESP, one event loop thread,
 * recvfrom once per readable event and write, 2 background threads; a SET's
 * log written and synced once a turn for the turn's SETs. */
#include <stdint.h>

#include "twin.h"

static const twin_bin get_sizes[] = { { 5, 1 }, { 16, 1 }, { 107, 1 }, { 4000, 2 } };
static const twin_bin set_sizes[] = { { 5, 1 } };
static const twin_bin read_sizes[] = { { 8192, 1 } };
static const twin_bin map_sizes[] = { { 65536, 1 } };
static const twin_bin log_sizes[] = { { 300, 1 } };

static const twin_syscall_step get_steps[] = {
    { TWIN_SC_READ_FILE, 1.0, read_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_LSEEK, 0.5, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_GETPID, 0.25, NULL, 0, 0, 0.0, 0 },
};
static const twin_syscall_step set_steps[] = {
    { TWIN_SC_EPOLL_CTL, 1.0, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_MMAP, 0.5, map_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_MMAP_FILE, 0.5, map_sizes, 1, 0, 0.0, 0 },
    { TWIN_SC_MUNMAP, 1.0, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_PWRITE, 1.0, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_FSYNC, 0.1, NULL, 0, 0, 0.0, 0 },
    { TWIN_SC_WRITE_LOG, 1.0, log_sizes, 1, 0, 0.0, TWIN_STEP_TURN },
    { TWIN_SC_FDATASYNC, 1.0, NULL, 0, 0, 0.0, TWIN_STEP_TURN },
};

static const twin_op ops[] = {
    { "GET", get_sizes, 4, get_steps, 3, NULL, 0 },
    { "SET", set_sizes, 1, set_steps, 8, NULL, 0 },
};

static const twin_bg_thread bg[] = {
    { TWIN_SLEEP_FUTEX, 100000, 2, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
    { TWIN_SLEEP_POLL, 50000, 0, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
};

static const twin_config config = {
    .protocol = TWIN_PROTO_RESP,
    .net_model = TWIN_NET_EVENT_LOOP,
    .workers = 0,
    .recv_call = TWIN_RECV_RECV,
    .recv_until_eagain = 0,
    .send_call = TWIN_SEND_WRITE,
    .ops = ops,
    .n_ops = 2,
    .bg = bg,
    .n_bg = 2,
    .data_file_bytes = 0,
    .body_mem_bytes = 0,
    .body = NULL,
};

int main(int argc, char **argv)
{
    return twin_main(&config, argc, argv);
}
