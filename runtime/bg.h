/* bg.h -- the background threads of a clone (timers, maintenance threads):
 * each wakes every period with its kind of sleep, then issues its extra
 * calls and disk calls. They run in the main process, or each in a process of its own that
 * the main process forks (twin_bg_thread's own_process). */
#ifndef BG_H
#define BG_H

#include <stddef.h>

#include "replay.h"

/* Starts the plan's cfg->n_bg threads, forking the processes first; on error
 * none is left running. The plan's `served` counts requests served (for
 * load-coupled wake-ups and disk calls), in memory shared with every process
 * (MAP_SHARED); may be NULL. Its files are where the disk calls go.
 * Called from the main thread: a background process ends when the thread
 * that forked it does (PR_SET_PDEATHSIG). */
int bg_start(const replay_plan *plan, char *err, size_t errlen);
/* Wakes and joins the threads; ends the processes (SIGTERM) and waits for
 * them. Safe without a bg_start. */
void bg_stop(void);

#endif
