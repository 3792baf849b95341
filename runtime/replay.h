/* replay.h -- the per-request work of a clone: the op's extra system calls
 * (twin_syscall_step) and its body, issued by the thread serving the
 * request.
 *
 * A replay_plan is built once from the config and shared read-only; each
 * serving thread owns a replay_thread (accumulators, random state, body
 * memory, its own data-file fd, scratch buffer). Nothing here issues a
 * system call the profile did not ask for, except one lseek each time
 * READ_FILE wraps around the data file and each time the log file wraps
 * around its size cap. */
#ifndef REPLAY_H
#define REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "files.h"
#include "lock.h"
#include "twin.h"

#define REPLAY_MAX_OPEN  16 /* files a thread keeps open from OPENAT */
#define REPLAY_MAX_MAPS  16 /* mappings a thread keeps from MMAP */
#define REPLAY_WEYL_OPS  16 /* ops with their own response-size sequence */
#define REPLAY_AFTER_MAX 64 /* requests whose after-reply steps wait for the send */

typedef struct {
    dist_table resp;   /* response sizes */
    dist_table *sizes; /* one per step */
    size_t name_len;
    uint32_t first_acc; /* index of the op's first step accumulator */
    int has_after;      /* some of its steps are made after the reply is sent */
    int has_turn;       /* some once a turn (TWIN_STEP_TURN) */
} replay_op;

typedef struct {
    const twin_config *cfg;
    replay_op *ops;
    uint32_t n_acc;
    size_t scratch_bytes; /* the largest size a file step reads or writes */
    const files_set *files;
    int has_turn;     /* some op has steps made once a turn */
    uint64_t *served; /* requests served by every thread and process (shared memory) */
    lock_way *locks;  /* the serialized sections' ways (shared memory); NULL: none */
    long key_at;      /* where a key or path holds the key's number (--key-at), -1 nowhere */
    /* Each call's cold pages, a bit each, set once touched (shared memory); NULL: none. */
    uint64_t *cold[TWIN_SC_COUNT_];
    uint32_t cold_pages[TWIN_SC_COUNT_];
} replay_plan;

/* The connection a request came on, for the socket steps. */
typedef struct {
    int epfd;
    int fd;
    uint32_t events;
    void *ptr;
} replay_sock;

typedef struct {
    const replay_plan *plan;
    twin_body_ctx body;
    uint64_t rng;                   /* sizes and offsets; the body has its own */
    uint64_t weyl[REPLAY_WEYL_OPS]; /* response-size sequence per op (op % REPLAY_WEYL_OPS) */
    double *acc;
    double *cold_acc; /* the steps' touches of their cold pages, as acc */
    char *scratch;
    int data_fd;
    uint64_t read_off;
    int open_fds[REPLAY_MAX_OPEN];
    uint32_t n_open;
    void *maps[REPLAY_MAX_MAPS];
    size_t map_len[REPLAY_MAX_MAPS];
    uint32_t n_maps;
    uint32_t futex_word;
    uint64_t errors;                      /* steps that failed (some fail by design) */
    uint32_t after_ops[REPLAY_AFTER_MAX]; /* served, their replies not sent yet */
    uint32_t n_after;
    /* The once-a-turn steps marked in this turn, by step accumulator: marks, and for a sized
     * call the sum of their sizes; whether any is. */
    uint32_t *turn_marks;
    uint64_t *turn_bytes;
    int turn_marked;
} replay_thread;

/* Checks the config and prepares its tables; err says what is wrong. */
int replay_plan_init(replay_plan *p, const twin_config *cfg, char *err, size_t errlen);
/* The bytes of log the clone makes whole at its start: REPLAY_LOG_SPAN where a
 * request's or a background thread's calls write it in place (pwrite64), as a
 * database writes its preallocated write-ahead log; else 0 (appends grow it). */
#define REPLAY_LOG_SPAN (16ull << 20)
uint64_t replay_log_span(const twin_config *cfg);
void replay_plan_free(replay_plan *p);

/* seed tells threads (and prefork processes) apart; any value. */
int replay_thread_init(replay_thread *t, const replay_plan *p, uint64_t seed, char *err, size_t errlen);
/* The same without a body: what a background thread's disk calls use (scratch, data file). */
int replay_thread_files(replay_thread *t, const replay_plan *p, uint64_t seed, char *err, size_t errlen);
/* A copy of a thread's state made by fork: its own random streams from `seed`, and its own
 * descriptor of the data file (a forked one shares its offset with the parent's). */
int replay_thread_forked(replay_thread *t, uint64_t seed, char *err, size_t errlen);
void replay_thread_free(replay_thread *t);

/* The op serving a verb: the first whose name matches case-insensitively,
 * else op 0 with *named = 0. */
uint32_t replay_op_of(const replay_plan *p, const char *verb, size_t len, int *named);

/* Runs the op's steps made before its reply, then its body; its steps made after the reply
 * wait for replay_after (run at once where REPLAY_AFTER_MAX wait already). */
void replay_request(replay_thread *t, uint32_t op, const replay_sock *sock);
/* Once the replies are sent: the after-reply steps of the requests served since the last. */
void replay_after(replay_thread *t, const replay_sock *sock);
/* At the end of a turn, before its replies go out: each once-a-turn step its requests marked,
 * made once. */
void replay_turn(replay_thread *t);

/* Of replay_request (replay_step.c): one system call of a step's kind, and
 * whether that kind reads or writes a sampled size. */
void replay_step(replay_thread *t, twin_syscall call, const dist_table *sizes, const replay_sock *sock);
/* The same with the size given (a sized call's). */
void replay_step_size(replay_thread *t, twin_syscall call, size_t size, const replay_sock *sock);
int replay_sized(twin_syscall call);

/* The size of the response to a request of op for `key` (memcached and RESP: the
 * key; HTTP: the request target): the op's size for the key's number where the
 * plan knows where it lies and the op has one, else the next of its sizes. */
uint32_t replay_resp_size(replay_thread *t, uint32_t op, const char *key, size_t key_len);

#endif
