/* bg.h -- the background threads of a clone (timers, maintenance threads):
 * each wakes every period with its kind of sleep, then issues its extra
 * calls. They run in the main process only. */
#ifndef BG_H
#define BG_H

#include <stddef.h>

#include "twin.h"

/* Starts cfg->n_bg threads; on error none is left running. */
/* `served` counts requests served (for load-coupled wake-ups); may be NULL. */
int bg_start(const twin_config *cfg, const uint64_t *served, char *err, size_t errlen);
/* Wakes and joins them. */
void bg_stop(void);

#endif
