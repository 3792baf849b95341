#define _GNU_SOURCE
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lock.h"

#define REPLAY_DEFAULT_SIZE 4096
#define REPLAY_MAX_IO       (64u << 20) /* a file step reads or writes at most this */
#define REPLAY_TURN_SIZES   16
#define REPLAY_MAX_PER_REQ  1e6
#define REPLAY_MAX_COLD     (1u << 28) /* a call's cold pages: 32 MiB of bits */

static int replay_step_ok(const twin_syscall_step *s)
{
    return (unsigned)s->call < TWIN_SC_COUNT_ && isfinite(s->per_req) && s->per_req >= 0 &&
           s->per_req <= REPLAY_MAX_PER_REQ && (!s->n_sizes || s->sizes) &&
           s->cold_pages <= REPLAY_MAX_COLD && isfinite(s->cold_touches) && s->cold_touches >= 0 &&
           s->cold_touches <= REPLAY_MAX_PER_REQ;
}

static size_t replay_cold_bytes(uint32_t pages)
{
    return ((size_t)pages + 63) / 64 * sizeof(uint64_t);
}

/* Each call's cold pages, as many as its steps' most, in one bitmap shared before any fork. */
static int replay_cold_map(replay_plan *p)
{
    const twin_config *cfg = p->cfg;
    for (uint32_t i = 0; i < cfg->n_ops; i++)
        for (uint32_t j = 0; j < cfg->ops[i].n_steps; j++) {
            const twin_syscall_step *s = &cfg->ops[i].steps[j];
            if (s->cold_pages > p->cold_pages[s->call])
                p->cold_pages[s->call] = s->cold_pages;
        }
    for (int c = 0; c < TWIN_SC_COUNT_; c++) {
        if (!p->cold_pages[c])
            continue;
        void *m = mmap(NULL, replay_cold_bytes(p->cold_pages[c]), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return TWIN_ERR;
        p->cold[c] = m;
    }
    return TWIN_OK;
}

static int replay_check(const twin_config *cfg, char *err, size_t errlen)
{
    if ((unsigned)cfg->protocol > TWIN_PROTO_POSTGRES ||
        (unsigned)cfg->net_model > TWIN_NET_PROCESS_THREADS || (unsigned)cfg->recv_call > TWIN_RECV_RECVMSG ||
        (unsigned)cfg->send_call > TWIN_SEND_WRITEV) {
        snprintf(err, errlen, "unknown protocol, network model, receive or send call");
        return TWIN_ERR;
    }
    if (cfg->body_after > 1024) {
        snprintf(err, errlen, "body_after %u: the body's part after the reply is at most 1024 (all of it)",
                 cfg->body_after);
        return TWIN_ERR;
    }
    if (cfg->wait_poll && cfg->wait_epoll) {
        snprintf(err, errlen, "wait_poll and wait_epoll both set; a connection waits in one");
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
        for (uint32_t j = 0; j < o->n_steps; j++)
            if (!replay_step_ok(&o->steps[j])) {
                snprintf(err, errlen, "op %s step %u: bad call, rate or sizes", o->name, j);
                return TWIN_ERR;
            }
    }
    if (cfg->n_locks > LOCK_MAX || (cfg->n_locks && !cfg->locks)) {
        snprintf(err, errlen, "%u serialized sections; at most %d", cfg->n_locks, LOCK_MAX);
        return TWIN_ERR;
    }
    for (uint32_t i = 0; i < cfg->n_locks; i++) {
        const twin_lock *l = &cfg->locks[i];
        if (l->take >= cfg->n_ops || l->release >= cfg->n_ops || l->take == l->release || !l->nth ||
            !l->ways) {
            snprintf(err, errlen, "section %u: bad types, count or ways", i);
            return TWIN_ERR;
        }
    }
    if (cfg->n_bg && !cfg->bg) {
        snprintf(err, errlen, "n_bg is %u but bg is missing", cfg->n_bg);
        return TWIN_ERR;
    }
    for (uint32_t i = 0; i < cfg->n_bg; i++) {
        const twin_bg_thread *b = &cfg->bg[i];
        int ok = (unsigned)b->sleep <= TWIN_SLEEP_SELECT && (!b->n_disk || b->disk);
        for (uint32_t j = 0; ok && j < b->n_disk; j++)
            ok = replay_step_ok(&b->disk[j]);
        if (!ok) {
            snprintf(err, errlen, "background thread %u: unknown sleep, or a bad disk call", i);
            return TWIN_ERR;
        }
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
            ro->has_after |= s->when == TWIN_STEP_AFTER;
            ro->has_turn |= s->when == TWIN_STEP_TURN;
            p->has_turn |= s->when == TWIN_STEP_TURN;
            if (dist_init(&ro->sizes[j], s->sizes, s->n_sizes, REPLAY_DEFAULT_SIZE) != TWIN_OK)
                goto nomem;
            if (replay_sized(s->call) && ro->sizes[j].max > p->scratch_bytes)
                p->scratch_bytes = ro->sizes[j].max;
        }
    }
    for (uint32_t i = 0; i < cfg->n_bg; i++)
        for (uint32_t j = 0; j < cfg->bg[i].n_disk; j++) {
            const twin_syscall_step *s = &cfg->bg[i].disk[j];
            for (uint32_t k = 0; k < s->n_sizes; k++)
                if (replay_sized(s->call) && s->sizes[k].size > p->scratch_bytes)
                    p->scratch_bytes = s->sizes[k].size;
        }
    /* A once-a-turn write is the sum of its marks' sizes: room for REPLAY_TURN_SIZES of them. */
    if (p->has_turn)
        p->scratch_bytes *= REPLAY_TURN_SIZES;
    if (p->scratch_bytes > REPLAY_MAX_IO)
        p->scratch_bytes = REPLAY_MAX_IO;
    p->scratch_bytes = (p->scratch_bytes + 4095) & ~(size_t)4095;
    /* Shared before any fork, so prefork children count into the parent's view. */
    p->served = mmap(NULL, sizeof *p->served, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->served == MAP_FAILED)
        goto nomem;
    *p->served = 0;
    if (cfg->n_locks && lock_model_ok(cfg->net_model) && !(p->locks = lock_ways_map(cfg)))
        goto nomem;
    if (replay_cold_map(p) != TWIN_OK)
        goto nomem;
    return TWIN_OK;
nomem:
    if (p->served == MAP_FAILED)
        p->served = NULL;
    snprintf(err, errlen, "out of memory");
    replay_plan_free(p);
    return TWIN_ERR;
}

static int replay_writes_in_place(const twin_syscall_step *s, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        if (s[j].call == TWIN_SC_PWRITE && s[j].per_req > 0)
            return 1;
    return 0;
}

uint64_t replay_log_span(const twin_config *cfg)
{
    for (uint32_t i = 0; i < cfg->n_ops; i++)
        if (replay_writes_in_place(cfg->ops[i].steps, cfg->ops[i].n_steps))
            return REPLAY_LOG_SPAN;
    for (uint32_t i = 0; i < cfg->n_bg; i++)
        if (replay_writes_in_place(cfg->bg[i].disk, cfg->bg[i].n_disk))
            return REPLAY_LOG_SPAN;
    return 0;
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
    lock_ways_unmap(p->cfg, p->locks);
    p->locks = NULL;
    for (int c = 0; c < TWIN_SC_COUNT_; c++) {
        if (p->cold[c])
            munmap(p->cold[c], replay_cold_bytes(p->cold_pages[c]));
        p->cold[c] = NULL;
    }
    p->served = NULL;
}

static void replay_seed(replay_thread *t, uint64_t seed)
{
    t->rng = dist_seed(seed);
    t->body.rng = dist_seed(seed ^ 0x626f6479ULL);
    for (int i = 0; i < REPLAY_WEYL_OPS; i++)
        t->weyl[i] = dist_seed(seed + 7919u * (uint64_t)(i + 1));
}

/* Each step's accumulator at a pseudo-random phase in [0, 1): a thread or process that serves
 * n requests then makes n * per_req calls in expectation. From 0, a connection's own process
 * made a fraction of a call too few of each step (fdatasync 0.136 a request against 0.143 on
 * 16 connections of about 220 requests each). */
static void replay_phase(replay_thread *t)
{
    for (uint32_t i = 0; i < t->plan->n_acc; i++) {
        t->acc[i] = (double)(dist_next(&t->rng) >> 11) * 0x1p-53;
        t->cold_acc[i] = (double)(dist_next(&t->rng) >> 11) * 0x1p-53;
    }
}

int replay_thread_forked(replay_thread *t, uint64_t seed, char *err, size_t errlen)
{
    replay_seed(t, seed);
    replay_phase(t);
    if (t->data_fd >= 0)
        close(t->data_fd);
    t->data_fd = open(t->plan->files->data_path, O_RDONLY | O_CLOEXEC);
    if (t->data_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", t->plan->files->data_path, strerror(errno));
        return TWIN_ERR;
    }
    return TWIN_OK;
}

int replay_thread_files(replay_thread *t, const replay_plan *p, uint64_t seed, char *err, size_t errlen)
{
    static const replay_thread empty = { .data_fd = -1 };
    void *mem = NULL;

    *t = empty;
    t->plan = p;
    replay_seed(t, seed);
    t->acc = calloc(p->n_acc ? p->n_acc : 1, sizeof *t->acc);
    t->cold_acc = calloc(p->n_acc ? p->n_acc : 1, sizeof *t->cold_acc);
    t->turn_marks = calloc(p->n_acc ? p->n_acc : 1, sizeof *t->turn_marks);
    t->turn_bytes = calloc(p->n_acc ? p->n_acc : 1, sizeof *t->turn_bytes);
    if (!t->acc || !t->cold_acc || !t->turn_marks || !t->turn_bytes ||
        posix_memalign(&mem, 4096, p->scratch_bytes) != 0) {
        snprintf(err, errlen, "out of memory for a serving thread");
        replay_thread_free(t);
        return TWIN_ERR;
    }
    replay_phase(t);
    t->scratch = mem;
    memset(t->scratch, 0, p->scratch_bytes);
    t->data_fd = open(p->files->data_path, O_RDONLY | O_CLOEXEC);
    if (t->data_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", p->files->data_path, strerror(errno));
        replay_thread_free(t);
        return TWIN_ERR;
    }
    return TWIN_OK;
}

int replay_thread_init(replay_thread *t, const replay_plan *p, uint64_t seed, char *err, size_t errlen)
{
    const twin_config *cfg = p->cfg;
    void *mem = NULL;

    if (replay_thread_files(t, p, seed, err, errlen) != TWIN_OK)
        return TWIN_ERR;
    if (cfg->body_mem_bytes) {
        size_t bytes = (cfg->body_mem_bytes + 63) & ~(size_t)63;
        if (posix_memalign(&mem, 4096, bytes) != 0) {
            snprintf(err, errlen, "out of memory for a serving thread");
            replay_thread_free(t);
            return TWIN_ERR;
        }
        memset(mem, 0, bytes);
        t->body.mem = mem;
        t->body.mem_bytes = cfg->body_mem_bytes;
    }
    if (cfg->body_init)
        cfg->body_init(&t->body);
    return TWIN_OK;
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
    free(t->cold_acc);
    free(t->turn_marks);
    free(t->turn_bytes);
    t->turn_marks = NULL;
    t->turn_bytes = NULL;
    free(t->scratch);
    free(t->body.mem);
    t->acc = NULL;
    t->cold_acc = NULL;
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

/* A step's touches of its call's cold pages: the call for each page touched the first time. */
static void replay_cold(replay_thread *t, const twin_syscall_step *s, const dist_table *sizes,
                        const replay_sock *sock, double *acc)
{
    uint64_t *bits = t->plan->cold[s->call];
    uint32_t pages = t->plan->cold_pages[s->call];
    for (*acc += s->cold_touches; *acc >= 1.0; *acc -= 1.0) {
        uint64_t page = dist_next(&t->rng) % pages;
        uint64_t bit = 1ull << (page & 63);
        if (!(__atomic_fetch_or(&bits[page >> 6], bit, __ATOMIC_RELAXED) & bit))
            replay_step(t, s->call, sizes, sock);
    }
}

/* A once-a-turn step's marks by this request, made at the turn's end (replay_turn): per_req
 * whole, and one more at the odds of its fraction. Drawn, not carried as the other steps'
 * are: the requests of a turn mark it together as often as the original's (a set each at
 * random) did, where a carried 0.3 would mark one request in three or four and never two
 * together. */
static void replay_mark(replay_thread *t, const twin_syscall_step *s, const dist_table *sizes, uint32_t at)
{
    uint32_t n = (uint32_t)s->per_req;
    n += (double)(dist_next(&t->rng) >> 11) * 0x1p-53 < s->per_req - n;
    for (uint32_t k = 0; k < n; k++) {
        t->turn_marks[at]++;
        if (replay_sized(s->call))
            t->turn_bytes[at] += dist_sample(sizes, &t->rng);
        t->turn_marked = 1;
    }
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
        if (o->steps[i].when == TWIN_STEP_AFTER)
            continue;
        if (o->steps[i].when == TWIN_STEP_TURN) {
            replay_mark(t, &o->steps[i], &ro->sizes[i], ro->first_acc + i);
            continue;
        }
        if (o->steps[i].cold_pages && t->plan->cold[o->steps[i].call])
            replay_cold(t, &o->steps[i], &ro->sizes[i], sock, t->cold_acc + ro->first_acc + i);
        acc[i] += o->steps[i].per_req;
        while (acc[i] >= 1.0) {
            replay_step(t, o->steps[i].call, &ro->sizes[i], sock);
            acc[i] -= 1.0;
        }
    }
    if (t->plan->served)
        __atomic_fetch_add(t->plan->served, 1, __ATOMIC_RELAXED);
    if (cfg->body && cfg->body_after < 1024) { /* (a share of 0 would read as all of it) */
        t->body.share = 1024 - cfg->body_after;
        cfg->body(op, &t->body);
    }
    if (ro->has_after || (cfg->body && cfg->body_after)) {
        if (t->n_after == REPLAY_AFTER_MAX)
            replay_after(t, sock);
        t->after_ops[t->n_after++] = op;
    }
}
