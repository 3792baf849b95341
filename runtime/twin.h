/* twin.h -- the contract between a generated clone and the Twin runtime.
 *
 * A generated clone is one C file that fills a constant twin_config from its
 * profile and calls twin_main(). Everything the original's skeleton did
 * (process and thread model, network model, protocol, per-request system
 * calls, background threads) is described here as data; the per-request user
 * work (the body) is generated code reached through cfg->body.
 *
 * Nothing in a twin_config comes from the original's code or data: it holds
 * counts, rates and size distributions only. */
#ifndef TWIN_H
#define TWIN_H

#include <stddef.h>
#include <stdint.h>

#define TWIN_OK  0
#define TWIN_ERR -1

typedef enum {
    TWIN_PROTO_MEMCACHED = 0, /* memcached text: get, set */
    TWIN_PROTO_RESP = 1,      /* RESP arrays: GET, SET (and PING) */
    TWIN_PROTO_HTTP = 2,      /* HTTP/1.1 GET, keep-alive */
    TWIN_PROTO_POSTGRES = 3   /* PostgreSQL v3 simple query */
} twin_protocol;

typedef enum {
    /* main thread accepts and hands each connection to one of `workers`
     * threads, each running its own epoll loop (memcached-like). */
    TWIN_NET_WORKER_POOL = 0,
    /* one thread runs one epoll loop that both accepts and serves
     * (redis-like); `workers` is ignored. */
    TWIN_NET_EVENT_LOOP = 1,
    /* main process listens, forks `workers` processes that each run an epoll
     * loop on the shared listening socket (nginx-like); the main process
     * waits for its children. */
    TWIN_NET_PREFORK = 2,
    /* main thread accepts with blocking calls and starts a thread per
     * connection that serves it with blocking receives (Thrift's
     * TThreadedServer, MariaDB); `workers` is ignored. */
    TWIN_NET_THREAD_PER_CONN = 3,
    /* main process forks `workers` processes that each accept on the shared
     * listening socket and serve one connection at a time with blocking
     * receives (Apache prefork, PHP-FPM). */
    TWIN_NET_PROCESS_POOL = 4,
    /* main process accepts and forks a process per connection that serves it
     * with blocking receives and exits with it (PostgreSQL); `workers` is
     * ignored. */
    TWIN_NET_PROCESS_PER_CONN = 5,
    /* main process forks `workers` processes, each a listener thread that
     * accepts on the shared listening socket and `threads` threads that each
     * serve one connection at a time with blocking receives (Apache's worker
     * MPM). */
    TWIN_NET_PROCESS_THREADS = 6
} twin_net_model;

/* The system call a connection handler receives with. */
typedef enum {
    TWIN_RECV_READ = 0,
    TWIN_RECV_RECV = 1, /* recvfrom(fd, buf, n, 0, NULL, NULL) shows as recvfrom */
    TWIN_RECV_RECVMSG = 2
} twin_recv_call;

/* The system call a connection handler sends a response with. */
typedef enum {
    TWIN_SEND_WRITE = 0,
    TWIN_SEND_SENDTO = 1,
    TWIN_SEND_SENDMSG = 2,
    TWIN_SEND_WRITEV = 3
} twin_send_call;

/* System calls replayed per request, beyond the skeleton's receive, send and
 * epoll_wait. Each is issued `per_req` times per request on average (a
 * per-thread accumulator carries the fraction, so 0.25 means every fourth
 * request). Files are the clone's own (made at start in its work folder). */
typedef enum {
    TWIN_SC_OPENAT = 0,      /* open the data file read-only; fd kept for the request */
    TWIN_SC_CLOSE,           /* close the fd opened by OPENAT, or close(-1) if none */
    TWIN_SC_FSTAT,           /* fstat on the data file */
    TWIN_SC_NEWFSTATAT,      /* fstatat on the data file's path */
    TWIN_SC_STATX,           /* statx on the data file's path */
    TWIN_SC_PREAD,           /* pread64 of `size` bytes from the data file */
    TWIN_SC_READ_FILE,       /* read of `size` bytes from the data file (rewinds at EOF) */
    TWIN_SC_WRITE_LOG,       /* write of `size` bytes to the log file */
    TWIN_SC_PWRITE,          /* pwrite64 of `size` bytes to the log file */
    TWIN_SC_FSYNC,           /* fsync of the log file */
    TWIN_SC_FDATASYNC,       /* fdatasync of the log file */
    TWIN_SC_SYNC_FILE_RANGE, /* sync_file_range(SYNC_FILE_RANGE_WRITE) of the log file, whole */
    TWIN_SC_LSEEK,           /* lseek on the data file */
    TWIN_SC_FUTEX,           /* FUTEX_WAKE on a private word nobody waits on */
    TWIN_SC_EPOLL_CTL,       /* EPOLL_CTL_MOD of the connection with its own events */
    TWIN_SC_SETSOCKOPT,      /* TCP_NODELAY=1 on the connection */
    TWIN_SC_GETSOCKOPT,      /* SO_ERROR on the connection */
    TWIN_SC_IOCTL,           /* FIONREAD on the connection */
    TWIN_SC_FCNTL,           /* F_GETFL on the connection */
    TWIN_SC_CLOCK_GETTIME,   /* syscall(SYS_clock_gettime) (never the vDSO) */
    TWIN_SC_GETPID,          /* syscall(SYS_getpid) */
    TWIN_SC_MMAP,            /* anonymous mmap of `size` bytes, unmapped by MUNMAP */
    TWIN_SC_MMAP_FILE,       /* read-only map of `size` bytes of the data file, each page read */
    TWIN_SC_MUNMAP,          /* munmap of the last MMAP, or of nothing (EINVAL) */
    TWIN_SC_MADVISE,         /* madvise(MADV_NORMAL) on the thread's body memory */
    TWIN_SC_GENERIC,         /* any other call: syscall(SYS_getppid), keeps the count */
    TWIN_SC_COUNT_
} twin_syscall;

/* A size distribution: `size` bytes with relative `weight`. */
typedef struct {
    uint32_t size;
    uint32_t weight;
} twin_bin;

/* When a step's call is made. */
typedef enum {
    TWIN_STEP_REQUEST = 0, /* as the request is served, before its reply */
    /* after the reply is sent, before the connection's next request (Apache unmaps the
     * file it sent, writes its log line and closes the file then): out of the latency */
    TWIN_STEP_AFTER,
    /* once an event loop's turn for the turn's requests that mark it (per_req: the share
     * that do), a sized call's size the sum of theirs, before the turn's replies go out
     * (Redis writes and syncs its append-only file once a turn for all the turn's sets) */
    TWIN_STEP_TURN
} twin_step_when;

typedef struct {
    twin_syscall call;
    double per_req;
    const twin_bin *sizes; /* for the sized calls; may be NULL (then 4096) */
    uint32_t n_sizes;
    /* A cache filling from a cold start (0 pages: none): besides per_req, each request
     * touches cold_touches of the call's cold_pages pages drawn at random, and makes the
     * call for each one no request of any thread or process touched before. The steps of
     * one call share its pages. */
    uint32_t cold_pages;
    double cold_touches;
    uint32_t when; /* twin_step_when */
} twin_syscall_step;

/* One request type. `name` is the protocol verb the load sends (memcached
 * "get"/"set", RESP "GET"/"SET", HTTP "GET", PostgreSQL a query's first word
 * or "startup" for the start-up message), compared case-insensitively. */
typedef struct {
    const char *name;
    const twin_bin *resp_sizes; /* total bytes of the response on the wire */
    uint32_t n_resp_sizes;
    const twin_syscall_step *steps;
    uint32_t n_steps;
    /* The response's size by the key's number (the clone's --key-at tells where
     * the load writes it in the key or path); 0 or past the table: from
     * resp_sizes. May be NULL. */
    const uint32_t *key_sizes;
    uint32_t n_key_sizes;
} twin_op;

typedef enum {
    TWIN_SLEEP_IDLE = 0,        /* blocks for good (condition variable) */
    TWIN_SLEEP_NANOSLEEP,       /* nanosleep(period) */
    TWIN_SLEEP_CLOCK_NANOSLEEP, /* clock_nanosleep(CLOCK_MONOTONIC, period) */
    TWIN_SLEEP_FUTEX,           /* FUTEX_WAIT with a timeout of period */
    TWIN_SLEEP_EPOLL_WAIT,      /* epoll_wait on an empty set, timeout period */
    TWIN_SLEEP_POLL,            /* poll(NULL, 0, period) */
    TWIN_SLEEP_SELECT           /* select(0, ..., period) */
} twin_sleep;

/* A background thread's wake-ups and CPU nanoseconds a second at one profiled
 * request rate. */
typedef struct {
    double rps, hz, cpu_ns_per_sec;
} twin_bg_load;

/* A background thread: wakes every period_us with `sleep`, then issues
 * `calls_per_wake` extra cheap system calls (getppid) and its disk calls. Where the original's
 * thread woke more often under load (adaptive sleeps), `wakes_per_req` adds
 * that many wake-ups per request served by the whole clone: the wake rate is
 * 1e6/period_us + wakes_per_req * (requests per second). Awake, it spends
 * cpu_ns_per_sec + cpu_ns_per_req * (requests per second) nanoseconds of CPU
 * time a second, its wake-ups' kernel time included (0: no more than those).
 * With two or more `by_load` points (ascending rates), both follow those
 * instead: linearly between two points, along the nearest two beyond them. */
typedef struct {
    twin_sleep sleep;
    uint32_t period_us;
    uint32_t calls_per_wake;
    double wakes_per_req;
    double cpu_ns_per_sec;
    double cpu_ns_per_req;
    uint32_t n_loads;
    const twin_bg_load *by_load;
    /* Runs in a process of its own, forked by the main process before it
     * serves, rather than as a thread of the main process (a database's
     * writers beside its process per connection). Its load coupling counts
     * the requests every process serves. */
    int own_process;
    /* Its disk calls (file reads and writes, syncs), each `per_req` a request
     * served by the whole clone, made on its wake-ups: a WAL writer's writes
     * and syncs. May be NULL. */
    const twin_syscall_step *disk;
    uint32_t n_disk;
} twin_bg_thread;

/* A serialized section, in the models whose thread serves one connection at
 * a time (a thread or process per connection, a pool of processes, processes
 * of threads): the `nth` request of type `take` since the connection's last
 * request of type `release` (or its start) waits for one of `ways` locks,
 * chosen at random, and holds it until the connection's next `release`
 * request has been served (its calls made, its reply not yet sent) or the
 * connection closes. A database's row locks, held from the statement that
 * takes them to the commit. Types are indices into ops. With `latch`, a
 * waiter sleeps on a latch of its thread's own (epoll_wait on a signalfd of
 * SIGURG, its giver's kill waking it: PostgreSQL's backends wait so), else in
 * a futex. */
typedef struct {
    uint32_t take, nth, release, ways;
    int latch;
} twin_lock;

/* Per-thread state the body may use. */
typedef struct {
    uint64_t *mem; /* body_mem_bytes, 64-byte aligned, owned by the thread */
    size_t mem_bytes;
    uint64_t rng;  /* xorshift state, nonzero */
    uint64_t sink; /* results the body must keep alive */
    /* The served connection's own lines (body_conn_lines of them, a cycle of
     * pointers, its cursor in the first line's second word); NULL without. */
    uint64_t *conn_mem;
    /* The part of the request's body this call runs, in 1,024ths (0: all of it): the
     * part before the reply, or body_after's after it. */
    uint32_t share;
} twin_body_ctx;

typedef struct {
    twin_protocol protocol;
    twin_net_model net_model;
    uint32_t workers; /* worker threads (pool) or processes (prefork, process pool) */
    /* PROCESS_POOL: idle processes kept beside the busy ones (forked as
     * connections take them), up to pool_max processes; 0: a fixed pool. */
    uint32_t pool_spare;
    uint32_t pool_max;
    /* PROCESS_THREADS: serving threads in each process (0: 1). */
    uint32_t threads;
    /* Blocking models: a connection waits for its next request in poll(2) on
     * its socket, received from until EAGAIN (Apache's keep-alive), instead of
     * in a blocking receive. */
    int wait_poll;
    /* Blocking models: a connection's socket is non-blocking and its thread or
     * process receives first: it receives again as soon as it has sent, and
     * only when a receive finds nothing (EAGAIN) and no request is complete
     * waits in epoll_wait on a set of its own holding that socket
     * (PostgreSQL's backends); recv_until_eagain applies as elsewhere. Not
     * with wait_poll; neither: a blocking receive. */
    int wait_epoll;
    twin_recv_call recv_call;
    int recv_until_eagain; /* after serving a read, receive again until EAGAIN */
    twin_send_call send_call;
    const twin_op *ops; /* a request of no listed type is served as ops[0] */
    uint32_t n_ops;
    const twin_bg_thread *bg; /* created by the main process */
    uint32_t n_bg;
    uint64_t data_file_bytes; /* size of the clone's data file (0: 1 MiB) */
    size_t body_mem_bytes;    /* per worker thread, for the body */
    /* Lines of state each connection has for the body (0: none): read by every
     * request on it, so reused once the other connections have sent theirs. */
    uint32_t body_conn_lines;
    void (*body)(uint32_t op, twin_body_ctx *ctx);
    /* The part of the body run after the reply is sent, in 1,024ths (Apache formats its
     * log line and clears the request's memory once its writev is out); the rest before. */
    uint32_t body_after;
    /* Called once per serving thread (or process) at its start, before its first
     * request, to lay out the body's memory; may be NULL. */
    void (*body_init)(twin_body_ctx *ctx);
    /* Serialized sections (at most 8; the clone's --no-locks: none). May be
     * NULL. */
    const twin_lock *locks;
    uint32_t n_locks;
} twin_config;

/* Parses the clone's flags (--port N, --host ADDR, --dir DIR for its files),
 * makes its files, starts its threads or processes and serves until SIGTERM
 * or SIGINT, then removes its files and returns the exit status. Errors a
 * user can cause (port in use, bad flag) print one line to stderr and return
 * 2. */
int twin_main(const twin_config *cfg, int argc, char **argv);

#endif
