#define _GNU_SOURCE
#include "bg.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "replay.h"
#include "server.h"

/* A thread is woken for shutdown by SIGUSR1 (installed without SA_RESTART,
 * so its sleep returns EINTR); a signal that lands just before the sleep is
 * missed, so bg_stop repeats it until the thread is joined. */
#define BG_WAKE_SIGNAL   SIGUSR1
#define BG_JOIN_RETRY_NS 20000000L
/* Without close_range(2), a background process closes the fds below this. */
#define BG_CLOSE_FDS 1024

typedef struct {
    const twin_bg_thread *spec;
    pthread_t thread;
    pid_t pid; /* of its process (own_process), else 0 */
    uint32_t futex_word;
} bg_slot;

static struct {
    bg_slot *slots;
    uint32_t n;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint64_t *served;
    const replay_plan *plan;
} bg = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* The wake signal only interrupts a sleep; the handler notes it (an empty
 * handler's bare `ret` between alignment nops is a run of bytes found in many
 * programs' code). */
static volatile sig_atomic_t bg_woken;

static void bg_on_wake(int sig)
{
    bg_woken = sig;
}

static void bg_idle(void)
{
    pthread_mutex_lock(&bg.mu);
    while (!atomic_load(&bg.stop))
        pthread_cond_wait(&bg.cv, &bg.mu);
    pthread_mutex_unlock(&bg.mu);
}

#define BG_CPU_CHECK_NS 100000000L

static int64_t bg_clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time awake: each wake-up spins (on the vDSO's clock, no system call) for spin_ns;
 * about every BG_CPU_CHECK_NS the thread reads its CPU clock (one system call) and moves
 * spin_ns by the shortfall of that stretch over its wake-ups. */
typedef struct {
    int64_t spin_ns;
    int64_t check_t, check_cpu; /* monotonic and thread CPU time at the last check */
    uint32_t check_wakes;       /* wake-ups since */
} bg_burner;

/* A figure at `rate` past the last two profiled points (a at ra, b at rb, rb > ra): along
 * their elasticity, b * (rate / rb)^e with e = log(b / a) / log(rb / ra), no more than 1 (no
 * faster than in proportion to the requests); along their line where either is 0. A thread
 * that adapts its sleeps wakes more often under load, but less and less so: memcached's
 * maintainer woke 816, 1,553 and 2,037 times a second at 503, 2,010 and 5,010 requests a second
 * and 3,016 and 2,739 at 20,000 and 35,000; along the last two points' line its clone woke
 * 4,355 and 6,319 times and burned 110 and 178 ms a second where memcached's burned 65 and 59
 * (the elasticity gives 3,078 and 3,620 wake-ups, 78 and 100 ms). */
static double bg_beyond(double a, double b, double ra, double rb, double rate)
{
    if (a <= 0 || b <= 0)
        return b + (rate - rb) * (b - a) / (rb - ra);
    double e = log(b / a) / log(rb / ra);
    return b * pow(rate / rb, e < 1 ? e : 1);
}

/* The wake-ups and CPU nanoseconds a second at `rate` requests a second: along the
 * profiled points where there are two or more (linearly between two, along the nearest two's
 * line below them, bg_beyond above them), else the lines; at least 0. */
static void bg_at(const twin_bg_thread *spec, double rate, double *hz, double *cpu)
{
    if (spec->n_loads >= 2) {
        uint32_t k = 0;
        while (k + 2 < spec->n_loads && rate > spec->by_load[k + 1].rps)
            k++;
        const twin_bg_load *a = &spec->by_load[k], *b = &spec->by_load[k + 1];
        if (rate > b->rps && b->rps > a->rps) {
            *hz = bg_beyond(a->hz, b->hz, a->rps, b->rps, rate);
            *cpu = bg_beyond(a->cpu_ns_per_sec, b->cpu_ns_per_sec, a->rps, b->rps, rate);
        } else {
            double f = b->rps > a->rps ? (rate - a->rps) / (b->rps - a->rps) : 0.0;
            *hz = a->hz + f * (b->hz - a->hz);
            *cpu = a->cpu_ns_per_sec + f * (b->cpu_ns_per_sec - a->cpu_ns_per_sec);
        }
    } else {
        *hz = (spec->period_us ? 1e6 / spec->period_us : 0.0) + spec->wakes_per_req * rate;
        *cpu = spec->cpu_ns_per_sec + spec->cpu_ns_per_req * rate;
    }
    *hz = *hz < 0 ? 0 : *hz;
    *cpu = *cpu < 0 ? 0 : *cpu;
}

/* A thread's disk calls: a replay thread of its own (scratch buffer, data file), each call's
 * sizes and accumulator, and the requests served when it last made them. */
typedef struct {
    const twin_bg_thread *spec;
    replay_thread rt;
    dist_table *sizes;
    double *acc;
    uint64_t served;
} bg_disk;

static void bg_disk_free(bg_disk *d)
{
    if (d->sizes)
        for (uint32_t i = 0; i < d->spec->n_disk; i++)
            dist_free(&d->sizes[i]);
    free(d->sizes);
    free(d->acc);
    replay_thread_free(&d->rt);
    memset(d, 0, sizeof *d);
}

/* 0 where the thread has no disk calls, or they cannot be set up (said on stderr: the thread
 * goes on without them). */
static int bg_disk_init(bg_disk *d, const twin_bg_thread *spec, uint64_t seed)
{
    char err[256];
    memset(d, 0, sizeof *d);
    d->spec = spec;
    if (!spec->n_disk || !bg.plan || !bg.served)
        return 0;
    if (replay_thread_files(&d->rt, bg.plan, seed, err, sizeof err) != TWIN_OK) {
        fprintf(stderr, "twin: a background thread makes no disk calls: %s\n", err);
        return 0;
    }
    d->sizes = calloc(spec->n_disk, sizeof *d->sizes);
    d->acc = calloc(spec->n_disk, sizeof *d->acc);
    int ok = d->sizes && d->acc;
    for (uint32_t i = 0; ok && i < spec->n_disk; i++) {
        const twin_syscall_step *s = &spec->disk[i];
        ok = dist_init(&d->sizes[i], s->sizes, s->n_sizes, 4096) == TWIN_OK;
        /* at a pseudo-random phase, as a serving thread's (replay_phase) */
        d->acc[i] = (double)(dist_next(&d->rt.rng) >> 11) * 0x1p-53;
    }
    if (!ok) {
        fprintf(stderr, "twin: a background thread makes no disk calls: out of memory\n");
        bg_disk_free(d);
        return 0;
    }
    d->served = __atomic_load_n(bg.served, __ATOMIC_RELAXED);
    return 1;
}

/* On a wake-up: each disk call's share of the requests served since the last. */
static void bg_disk_run(bg_disk *d)
{
    uint64_t served = __atomic_load_n(bg.served, __ATOMIC_RELAXED);
    double n = (double)(served - d->served);
    d->served = served;
    for (uint32_t i = 0; i < d->spec->n_disk; i++) {
        d->acc[i] += d->spec->disk[i].per_req * n;
        for (; d->acc[i] >= 1.0 && !atomic_load(&bg.stop); d->acc[i] -= 1.0)
            replay_step(&d->rt, d->spec->disk[i].call, &d->sizes[i], NULL);
    }
}

/* One wake-up's share of the awake CPU time. */
static void bg_burn(const twin_bg_thread *spec, double req_rate, bg_burner *b)
{
    int64_t now = bg_clock_ns(CLOCK_MONOTONIC);
    b->check_wakes++;
    if (now - b->check_t >= BG_CPU_CHECK_NS) {
        int64_t cpu = bg_clock_ns(CLOCK_THREAD_CPUTIME_ID);
        double hz, per_sec;
        bg_at(spec, req_rate, &hz, &per_sec);
        double want = per_sec * (double)(now - b->check_t) / 1e9;
        double per_wake = want / b->check_wakes;
        double next = (double)b->spin_ns + (want - (double)(cpu - b->check_cpu)) / b->check_wakes;
        b->spin_ns = next < 0 ? 0 : next > 2 * per_wake ? (int64_t)(2 * per_wake) : (int64_t)next;
        b->check_t = now;
        b->check_cpu = cpu;
        b->check_wakes = 0;
    }
    if (b->spin_ns <= 0)
        return;
    int64_t end = now + b->spin_ns;
    while (bg_clock_ns(CLOCK_MONOTONIC) < end && !atomic_load(&bg.stop))
        ;
}

static void *bg_main(void *arg)
{
    bg_slot *slot = arg;
    const twin_bg_thread *spec = slot->spec;
    uint32_t us = spec->period_us ? spec->period_us : 1000;
    int ms = (int)((us + 500) / 1000);
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
    int epfd = -1;

    if (ms == 0)
        ms = 1;
    if (spec->sleep == TWIN_SLEEP_IDLE) {
        bg_idle();
        return NULL;
    }
    if (spec->sleep == TWIN_SLEEP_EPOLL_WAIT)
        epfd = epoll_create1(EPOLL_CLOEXEC);
    bg_disk disk;
    int disks = bg_disk_init(&disk, spec, (uint64_t)(slot - bg.slots) * 0x9e3779b97f4a7c15ULL + 0xb6);

    /* Wake-ups keep to a grid of absolute deadlines, so the rate is the profiled one even
     * though each sleep overshoots a little (timer slack, scheduling). The clock is read
     * through the vDSO: no system call of its own. */
    int64_t period_ns = (int64_t)us * 1000;
    const int by_load = spec->n_loads >= 2;
    const int coupled = (spec->wakes_per_req > 0 || by_load) && bg.served;
    const int burns = spec->cpu_ns_per_sec > 0 || spec->cpu_ns_per_req > 0 || by_load;
    const int tracks = (coupled || spec->cpu_ns_per_req > 0) && bg.served;
    int64_t t_prev = bg_clock_ns(CLOCK_MONOTONIC);
    int64_t deadline = t_prev + period_ns;
    uint64_t served_prev = tracks ? __atomic_load_n(bg.served, __ATOMIC_RELAXED) : 0;
    double req_rate = 0.0;
    bg_burner burner = { .check_t = t_prev, .check_cpu = burns ? bg_clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0 };

    while (!atomic_load(&bg.stop)) {
        int64_t t_now = bg_clock_ns(CLOCK_MONOTONIC);
        if (tracks) {
            /* The request rate, smoothed over ~10 wake-ups. */
            uint64_t served = __atomic_load_n(bg.served, __ATOMIC_RELAXED);
            double dt = (double)(t_now - t_prev) / 1e9;
            if (dt > 0) {
                double r = (double)(served - served_prev) / dt;
                req_rate = req_rate == 0.0 ? r : 0.9 * req_rate + 0.1 * r;
            }
            served_prev = served;
            t_prev = t_now;
        }
        if (coupled) {
            /* The wake rate follows the request rate. */
            double hz, cpu;
            bg_at(spec, req_rate, &hz, &cpu);
            int64_t next = hz > 10.0 ? (int64_t)(1e9 / hz) : 100000000;
            deadline += next - period_ns;
            period_ns = next;
        }
        int64_t left = deadline - t_now;
        if (left < -period_ns) { /* far behind: start the grid again */
            deadline += (-left / period_ns) * period_ns;
            left += (-left / period_ns) * period_ns;
        }
        if (left < 1000)
            left = 1000;
        deadline += period_ns;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        ms = (int)((left + 500000) / 1000000);
        if (ms == 0)
            ms = 1;
        switch (spec->sleep) {
        case TWIN_SLEEP_NANOSLEEP:
            /* glibc's nanosleep() is clock_nanosleep underneath */
            syscall(SYS_nanosleep, &ts, NULL);
            break;
        case TWIN_SLEEP_CLOCK_NANOSLEEP:
            clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
            break;
        case TWIN_SLEEP_FUTEX:
            syscall(SYS_futex, &slot->futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
            break;
        case TWIN_SLEEP_EPOLL_WAIT: {
            struct epoll_event ev;
            epoll_wait(epfd, &ev, 1, ms);
            break;
        }
        case TWIN_SLEEP_POLL:
#ifdef SYS_poll
            syscall(SYS_poll, NULL, 0, ms);
#else
            poll(NULL, 0, ms);
#endif
            break;
        case TWIN_SLEEP_SELECT: {
            struct timeval tv = { .tv_sec = ts.tv_sec, .tv_usec = ts.tv_nsec / 1000 };
#ifdef SYS_select
            syscall(SYS_select, 0, NULL, NULL, NULL, &tv);
#else
            select(0, NULL, NULL, NULL, &tv);
#endif
            break;
        }
        case TWIN_SLEEP_IDLE:
            break;
        }
        if (atomic_load(&bg.stop))
            break;
        for (uint32_t i = 0; i < spec->calls_per_wake; i++)
            syscall(SYS_getppid);
        if (disks)
            bg_disk_run(&disk);
        if (burns)
            bg_burn(spec, req_rate, &burner);
    }
    if (disks)
        bg_disk_free(&disk);
    if (epfd >= 0)
        close(epfd);
    return arg;
}

/* A background process holds none of the main process's fds: not the port, nor the workers'
 * pipes (whose readers wait for their end of file). */
static void bg_close_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3, ~0u, 0) == 0)
        return;
#endif
    for (int fd = 3; fd < BG_CLOSE_FDS; fd++)
        close(fd);
}

/* A background process: ends with the main process, or on its SIGTERM; runs the thread's loop
 * in its main thread. */
static void bg_process(bg_slot *slot, pid_t parent)
{
    server_child_signals();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    bg_close_fds();
    /* Its disk calls write the clone's log file, at the descriptor the plan names. */
    if (slot->spec->n_disk && bg.plan) {
        const files_set *f = bg.plan->files;
        int fd = open(f->log_path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0 && fd != f->log_fd) {
            dup2(fd, f->log_fd);
            close(fd);
        }
    }
    bg_main(slot);
    _exit(0);
}

/* Forks the background processes (before the background threads start). */
static int bg_fork(const twin_config *cfg, char *err, size_t errlen)
{
    pid_t parent = getpid();
    fflush(NULL);
    for (uint32_t i = 0; i < cfg->n_bg; i++) {
        if (!cfg->bg[i].own_process)
            continue;
        bg_slot *slot = &bg.slots[bg.n];
        slot->spec = &cfg->bg[i];
        slot->pid = fork();
        if (slot->pid == 0)
            bg_process(slot, parent);
        if (slot->pid < 0) {
            slot->pid = 0;
            snprintf(err, errlen, "cannot start background process: %s", strerror(errno));
            return TWIN_ERR;
        }
        bg.n++;
    }
    return TWIN_OK;
}

int bg_start(const replay_plan *plan, char *err, size_t errlen)
{
    const twin_config *cfg = plan->cfg;
    bg.plan = plan;
    bg.served = plan->served;
    struct sigaction sa;
    int rc;

    atomic_store(&bg.stop, 0);
    bg.n = 0;
    if (cfg->n_bg == 0)
        return TWIN_OK;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bg_on_wake;
    sigemptyset(&sa.sa_mask);
    sigaction(BG_WAKE_SIGNAL, &sa, NULL);
    bg.slots = calloc(cfg->n_bg, sizeof *bg.slots);
    if (!bg.slots) {
        snprintf(err, errlen, "out of memory for background threads");
        return TWIN_ERR;
    }
    if (bg_fork(cfg, err, errlen) != TWIN_OK) {
        bg_stop();
        return TWIN_ERR;
    }
    for (uint32_t i = 0; i < cfg->n_bg; i++) {
        if (cfg->bg[i].own_process)
            continue;
        bg_slot *slot = &bg.slots[bg.n];
        slot->spec = &cfg->bg[i];
        rc = pthread_create(&slot->thread, NULL, bg_main, slot);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start background thread: %s", strerror(rc));
            bg_stop();
            return TWIN_ERR;
        }
        bg.n++;
    }
    return TWIN_OK;
}

void bg_stop(void)
{
    pthread_mutex_lock(&bg.mu);
    atomic_store(&bg.stop, 1);
    pthread_cond_broadcast(&bg.cv);
    pthread_mutex_unlock(&bg.mu);
    for (uint32_t i = 0; i < bg.n; i++) {
        bg_slot *slot = &bg.slots[i];
        if (slot->pid > 0 && waitpid(slot->pid, NULL, WNOHANG) != 0)
            slot->pid = -1; /* it ended, reaped now or by a model's wait for its workers */
        else if (slot->pid > 0)
            kill(slot->pid, SIGTERM);
    }
    for (uint32_t i = 0; i < bg.n; i++) {
        if (bg.slots[i].pid != 0) {
            while (bg.slots[i].pid > 0 && waitpid(bg.slots[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            continue;
        }
        for (;;) {
            struct timespec deadline;
            pthread_kill(bg.slots[i].thread, BG_WAKE_SIGNAL);
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += BG_JOIN_RETRY_NS;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            if (pthread_timedjoin_np(bg.slots[i].thread, NULL, &deadline) == 0)
                break;
        }
    }
    free(bg.slots);
    bg.slots = NULL;
    bg.n = 0;
}
