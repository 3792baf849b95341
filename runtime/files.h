/* files.h -- the clone's own work files: a data file of pseudo-random bytes
 * (read by the replayed file calls) and a log file (written by them), in a
 * work folder made for the run unless --dir names one. */
#ifndef FILES_H
#define FILES_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char dir[PATH_MAX];
    char data_path[PATH_MAX];
    char log_path[PATH_MAX];
    char missing_path[PATH_MAX]; /* never made: an open of it fails */
    uint64_t data_bytes;
    uint64_t log_bytes; /* the log made whole at the start (0: empty, written sparse) */
    int log_fd;
    int made_dir; /* the folder is ours: remove it too */
    int made_data;
    int made_log;
} files_set;

/* dir: the work folder, made if missing; NULL for a fresh one under /tmp.
 * log_bytes: write the log whole to that size first, and sync it (positional
 * writes then land in blocks the file has, as in a database's preallocated
 * write-ahead log; into a sparse file each allocates a block, whose metadata
 * the next fdatasync must write too). */
int files_open(files_set *f, const char *dir, uint64_t data_bytes, uint64_t log_bytes, char *err,
               size_t errlen);
/* Closes and removes what files_open made; safe after a failed open. */
void files_remove(files_set *f);

#endif
