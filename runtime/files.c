#define _GNU_SOURCE
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "twin.h"

#define FILES_CHUNK 65536

static int files_path(char *out, const char *dir, const char *name)
{
    return snprintf(out, PATH_MAX, "%s/%s", dir, name) < PATH_MAX ? TWIN_OK : TWIN_ERR;
}

static int files_fill(int fd, uint64_t bytes)
{
    static uint64_t chunk[FILES_CHUNK / sizeof(uint64_t)];
    uint64_t rng = dist_seed(0x64617461ULL);
    while (bytes) {
        for (size_t i = 0; i < FILES_CHUNK / sizeof(uint64_t); i++)
            chunk[i] = dist_next(&rng);
        size_t n = bytes < FILES_CHUNK ? (size_t)bytes : FILES_CHUNK;
        const char *p = (const char *)chunk;
        while (n) {
            ssize_t w = write(fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return TWIN_ERR;
            p += w;
            n -= (size_t)w;
            bytes -= (uint64_t)w;
        }
    }
    return TWIN_OK;
}

int files_open(files_set *f, const char *dir, uint64_t data_bytes, uint64_t log_bytes, char *err,
               size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->log_fd = -1;
    f->data_bytes = data_bytes ? data_bytes : 1u << 20;
    if (!dir) {
        snprintf(f->dir, sizeof f->dir, "/tmp/twin-clone.XXXXXX");
        if (!mkdtemp(f->dir)) {
            snprintf(err, errlen, "cannot make a work folder in /tmp: %s; give one with --dir",
                     strerror(errno));
            return TWIN_ERR;
        }
        f->made_dir = 1;
    } else {
        struct stat st;
        if (snprintf(f->dir, sizeof f->dir, "%s", dir) >= (int)sizeof f->dir) {
            snprintf(err, errlen, "--dir is too long");
            return TWIN_ERR;
        }
        if (mkdir(f->dir, 0700) == 0) {
            f->made_dir = 1;
        } else if (errno != EEXIST || stat(f->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "cannot use --dir %s: %s; give a folder this user can write", dir,
                     strerror(errno == EEXIST ? ENOTDIR : errno));
            return TWIN_ERR;
        }
    }
    if (files_path(f->data_path, f->dir, "data0") != TWIN_OK ||
        files_path(f->log_path, f->dir, "log0") != TWIN_OK ||
        files_path(f->missing_path, f->dir, "missing0") != TWIN_OK) {
        snprintf(err, errlen, "--dir is too long");
        goto err;
    }

    int fd = open(f->data_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", f->data_path, strerror(errno));
        goto err;
    }
    f->made_data = 1;
    int rc = files_fill(fd, f->data_bytes);
    int saved = errno;
    close(fd);
    if (rc != TWIN_OK) {
        snprintf(err, errlen, "cannot write %s: %s; free some disk space", f->data_path, strerror(saved));
        goto err;
    }

    f->log_fd = open(f->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->log_fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", f->log_path, strerror(errno));
        goto err;
    }
    f->made_log = 1;
    if (log_bytes && (files_fill(f->log_fd, log_bytes) != TWIN_OK || fdatasync(f->log_fd) != 0)) {
        snprintf(err, errlen, "cannot write %s: %s; free some disk space", f->log_path, strerror(errno));
        goto err;
    }
    f->log_bytes = log_bytes;
    return TWIN_OK;
err:
    files_remove(f);
    return TWIN_ERR;
}

void files_remove(files_set *f)
{
    if (f->log_fd >= 0)
        close(f->log_fd);
    f->log_fd = -1;
    if (f->made_log)
        unlink(f->log_path);
    if (f->made_data)
        unlink(f->data_path);
    if (f->made_dir)
        rmdir(f->dir);
    f->made_log = f->made_data = f->made_dir = 0;
}
