/* outfile.c - temporary file + rename, free-space check, signal cleanup (see outfile.h). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "modelq/convert.h"

#define MAX_LIVE 8

struct mq_outfile {
    char *path;
    char *tmp;
    char *dir;
    int fd;
    int slot;
    _Atomic uint64_t written;
    uint64_t fault_after;      /* 0 = off */
};

/* Temporary paths the signal handler must remove (fixed storage: handlers may not malloc). */
static char live_paths[MAX_LIVE][4096];
static volatile sig_atomic_t live_used[MAX_LIVE];

static void on_signal(int sig)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live_used[i]) unlink(live_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void mq_convert_install_signal_cleanup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int register_live(const char *tmp)
{
    if (strlen(tmp) >= sizeof live_paths[0]) return -1;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (!live_used[i]) {
            strcpy(live_paths[i], tmp);
            live_used[i] = 1;
            return i;
        }
    }
    return -1;
}

static void unregister_live(int slot)
{
    if (slot >= 0) live_used[slot] = 0;
}

static void outfile_free(struct mq_outfile *f)
{
    unregister_live(f->slot);
    free(f->path);
    free(f->tmp);
    free(f->dir);
    free(f);
}

/* "<path>: <what>: <strerror>" */
static enum mq_status io_fail(struct mq_error *err, const char *check, int e, const char *what, const char *path)
{
    enum mq_status s = MQ_FAIL(err, MQ_E_IO, check, "%s: %s: %s", path, what, strerror(e));
    if (err) err->sys_errno = e;
    return s;
}

enum mq_status mq_outfile_create(const char *path, uint64_t size, struct mq_outfile **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_outfile *f = calloc(1, sizeof *f);
    char *a = strdup(path), *b = strdup(path);
    if (!f || !a || !b) {
        free(f); free(a); free(b);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    f->fd = -1;
    f->slot = -1;
    f->path = strdup(path);
    f->dir = strdup(dirname(a));
    const char *base = basename(b);
    size_t n = strlen(f->dir ? f->dir : "") + strlen(base) + 64;
    f->tmp = malloc(n);
    if (f->tmp && f->dir) snprintf(f->tmp, n, "%s/.%s.modelq-tmp-%ld", f->dir, base, (long)getpid());
    free(a);
    free(b);
    if (!f->path || !f->dir || !f->tmp) {
        outfile_free(f);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    const char *fault = getenv("MODELQ_FAULT_WRITE_AFTER");
    if (fault && *fault) f->fault_after = strtoull(fault, NULL, 10) + 1;

    struct statvfs vfs;
    if (statvfs(f->dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        if (avail < size) {
            enum mq_status s = MQ_FAIL(err, MQ_E_IO, "disk-full",
                                       "%s: not enough free space: the output needs %" PRIu64 " bytes, the folder's "
                                       "filesystem has %" PRIu64, path, size, avail);
            if (err) err->sys_errno = ENOSPC;
            outfile_free(f);
            return s;
        }
    }
    f->slot = register_live(f->tmp);
    f->fd = open(f->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        enum mq_status s = io_fail(err, "create", e, "cannot create the temporary file", f->tmp);
        outfile_free(f);
        return s;
    }
    /* reserve the blocks now: a full disk fails here, before hours of work */
    int rc = posix_fallocate(f->fd, 0, (off_t)size);
    if (rc == ENOSPC) {
        enum mq_status s = io_fail(err, "disk-full", rc, "no space left for the output", path);
        mq_outfile_abort(f);
        return s;
    }
    if (ftruncate(f->fd, (off_t)size) != 0) {
        int e = errno;
        enum mq_status s = io_fail(err, "write", e, "cannot size the temporary file", f->tmp);
        mq_outfile_abort(f);
        return s;
    }
    *out = f;
    return MQ_OK;
}

enum mq_status mq_outfile_pwrite(struct mq_outfile *f, const void *buf, size_t len, uint64_t off,
                                 struct mq_error *err)
{
    const uint8_t *p = buf;
    while (len) {
        size_t n = len;
        if (f->fault_after) {
            uint64_t w = atomic_fetch_add(&f->written, n) + n;
            if (w >= f->fault_after) {
                errno = ENOSPC;
                return io_fail(err, "write", ENOSPC, "write failed", f->path);
            }
        }
        ssize_t k = pwrite(f->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            return io_fail(err, e == ENOSPC ? "disk-full" : "write", e, "write failed", f->path);
        }
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return MQ_OK;
}

enum mq_status mq_outfile_pread(struct mq_outfile *f, void *buf, size_t len, uint64_t off, struct mq_error *err)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t k = pread(f->fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return io_fail(err, "read", k < 0 ? errno : EIO, "read-back failed", f->tmp);
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return MQ_OK;
}

enum mq_status mq_outfile_commit(struct mq_outfile *f, struct mq_error *err)
{
    enum mq_status s = MQ_OK;
    if (fsync(f->fd) != 0) s = io_fail(err, "fsync", errno, "fsync failed", f->tmp);
    if (close(f->fd) != 0 && s == MQ_OK) s = io_fail(err, "close", errno, "close failed", f->tmp);
    f->fd = -1;
    if (s == MQ_OK && rename(f->tmp, f->path) != 0)
        s = io_fail(err, "rename", errno, "cannot move the finished file into place", f->path);
    if (s != MQ_OK) {
        unlink(f->tmp);
        outfile_free(f);
        return s;
    }
    unregister_live(f->slot);
    f->slot = -1;
    int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL) s = io_fail(err, "fsync", errno, "fsync of the folder failed", f->dir);
        close(dfd);
    }
    outfile_free(f);
    return s;
}

void mq_outfile_abort(struct mq_outfile *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    outfile_free(f);
}

const char *mq_outfile_tmp_path(const struct mq_outfile *f) { return f->tmp; }
