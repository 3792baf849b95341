/* example_pg.c -- a PostgreSQL-like clone serving pgbench's simple queries:
 * one event loop thread, recvfrom until EAGAIN and sendto, a page read per
 * SELECT, a page written per UPDATE and INSERT, a flush per commit, and 1
 * background thread. */
#include <stdint.h>

#include "twin.h"

static const twin_bin startup_sizes[] = { { 417, 1 } };
static const twin_bin begin_sizes[] = { { 17, 1 } };
static const twin_bin update_sizes[] = { { 20, 1 } };
static const twin_bin select_sizes[] = { { 70, 3 }, { 72, 1 } };
static const twin_bin insert_sizes[] = { { 22, 1 } };
static const twin_bin end_sizes[] = { { 18, 1 } };
static const twin_bin page_sizes[] = { { 8192, 1 } };

static const twin_syscall_step read_page[] = {
    { TWIN_SC_PREAD, 1.0, page_sizes, 1, 0, 0.0, 0 },
};
static const twin_syscall_step write_page[] = {
    { TWIN_SC_PWRITE, 1.0, page_sizes, 1, 0, 0.0, 0 },
};
static const twin_syscall_step flush[] = {
    { TWIN_SC_FDATASYNC, 1.0, NULL, 0, 0, 0.0, 0 },
};

static const twin_op ops[] = {
    { "startup", startup_sizes, 1, NULL, 0, NULL, 0 },
    { "begin", begin_sizes, 1, NULL, 0, NULL, 0 },
    { "update", update_sizes, 1, write_page, 1, NULL, 0 },
    { "select", select_sizes, 2, read_page, 1, NULL, 0 },
    { "insert", insert_sizes, 1, write_page, 1, NULL, 0 },
    { "end", end_sizes, 1, flush, 1, NULL, 0 },
};

static const twin_bg_thread bg[] = {
    { TWIN_SLEEP_NANOSLEEP, 200000, 1, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },
};

static const twin_config config = {
    .protocol = TWIN_PROTO_POSTGRES,
    .net_model = TWIN_NET_EVENT_LOOP,
    .workers = 0,
    .recv_call = TWIN_RECV_RECV,
    .recv_until_eagain = 1,
    .send_call = TWIN_SEND_SENDTO,
    .ops = ops,
    .n_ops = 6,
    .bg = bg,
    .n_bg = 1,
    .data_file_bytes = 0,
    .body_mem_bytes = 0,
    .body = NULL,
};

int main(int argc, char **argv)
{
    return twin_main(&config, argc, argv);
}
