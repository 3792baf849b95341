/* prefork.c -- the models of a set of worker processes forked by the main
 * process (prefork.h). */
#define _GNU_SOURCE
#include "prefork.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blocking.h"

static void prefork_reap(pid_t *pids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (uint32_t i = 0; i < n; i++) {
        if (pids[i] <= 0)
            continue;
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
        pids[i] = 0;
    }
}

/* Forks worker process i, running `child`; its pid goes in pids[i]. */
static int prefork_fork(const replay_plan *plan, int listen_fd, uint32_t i, pid_t parent, pid_t *pids,
                        const int ready[2], const int go[2], server_child_fn child)
{
    pid_t pid = fork();
    if (pid < 0)
        return TWIN_ERR;
    if (pid == 0) {
        free(pids); /* the parent's table */
        if (ready[0] >= 0)
            close(ready[0]);
        if (go[1] >= 0)
            close(go[1]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        child(plan, listen_fd, i, ready[1], go[0]);
    }
    pids[i] = pid;
    return TWIN_OK;
}

/* A child writes one byte on `ready` once set up; `go` reads end of file once the port is open.
 * With `spare`, a process pool keeps that many processes idle beside the busy ones, up to
 * pool_max, as Apache's prefork and PHP-FPM's dynamic pools do: once a second, while it has
 * fewer idle, it forks 1, then 2, 4... a second, up to POOL_MAX_SPAWN, and back to 1 once it has
 * enough. The growth
 * overshoots when connections come at once as theirs does (8 at the start and 16 connections:
 * 23 processes after four seconds). */
#define POOL_TICK_MS   1000
#define POOL_MAX_SPAWN 32

int prefork_run(const replay_plan *plan, int listen_fd, const char *host, int port, char *err, size_t errlen,
                server_child_fn child, uint32_t spare)
{
    uint32_t n = plan->cfg->workers ? plan->cfg->workers : 1;
    uint32_t cap = spare && plan->cfg->pool_max > n ? plan->cfg->pool_max : n;
    pid_t parent = getpid(), *pids = calloc(cap, sizeof *pids);
    int rc = TWIN_ERR, ready[2] = { -1, -1 }, go[2] = { -1, -1 };
    sigset_t set;

    if (!pids) {
        snprintf(err, errlen, "out of memory");
        return TWIN_ERR;
    }
    /* The port opens once every worker is set up: a worker lays out its body's memory (rings
     * of hundreds of MiB, under Valgrind for seconds) before it serves, and requests the others
     * served meanwhile counted a set-up still running in their measure (nginx-site's clone:
     * 14,428 or 25,807 instructions a request, from one binary). */
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    fflush(NULL);
    for (uint32_t i = 0; i < n; i++) {
        if (prefork_fork(plan, listen_fd, i, parent, pids, ready, go, child) != TWIN_OK) {
            snprintf(err, errlen, "fork: %s", strerror(errno));
            goto out;
        }
    }
    close(ready[1]);
    ready[1] = -1;
    uint32_t up = 0;
    for (char b; up < n;) {
        ssize_t r = read(ready[0], &b, 1);
        if (r == 1)
            up++;
        else if (r == 0 || errno != EINTR)
            break;
    }
    if (up < n) {
        snprintf(err, errlen, "%u of %u worker processes did not start", n - up, n);
        goto out;
    }
    if (server_ready(plan, listen_fd, host, port, err, errlen) != TWIN_OK)
        goto out;
    close(go[1]);
    go[1] = -1;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    rc = TWIN_OK;
    const struct timespec tick = { POOL_TICK_MS / 1000, (POOL_TICK_MS % 1000) * 1000000L };
    uint32_t rate = 1;
    for (int running = 1; running;) {
        int sig = spare ? sigtimedwait(&set, NULL, &tick) : sigwaitinfo(&set, NULL);
        if (sig < 0 && errno == EAGAIN) {
            /* forked after the port opened: set up, it serves at once */
            uint32_t busy = blocking_pool_busy(), k = 0;
            if (n - (busy < n ? busy : n) >= spare) {
                rate = 1;
                continue;
            }
            while (k < rate && n < cap &&
                   prefork_fork(plan, listen_fd, n, parent, pids, ready, go, child) == TWIN_OK) {
                n++;
                k++;
            }
            rate = rate * 2 < POOL_MAX_SPAWN ? rate * 2 : POOL_MAX_SPAWN;
        } else if (sig == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (uint32_t i = 0; i < n; i++) {
                    if (pids[i] != pid)
                        continue;
                    pids[i] = 0;
                    snprintf(err, errlen, "worker process %u exited unexpectedly (%s %d)", i,
                             WIFSIGNALED(status) ? "signal" : "status",
                             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                    rc = TWIN_ERR;
                    running = 0;
                }
            }
        } else if (sig == SIGTERM || sig == SIGINT) {
            running = 0;
        }
    }
out:
    for (int k = 0; k < 2; k++) {
        if (ready[k] >= 0)
            close(ready[k]);
        if (go[k] >= 0)
            close(go[k]);
    }
    prefork_reap(pids, n);
    free(pids);
    return rc;
}
