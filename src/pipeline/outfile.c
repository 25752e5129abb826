/* outfile.c - temporary file (or folder) + rename, free-space check, signal cleanup (outfile.h). */
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "modelq/convert.h"
#include "modelq/testing.h"
#include "outpath.h"

#define MAX_LIVE 64
#define LIVE_PATH 4096

/*
** Data files: one (a file output), or several in a folder (shards). Writers address them through
** one offset space: file k holds [base[k], base[k] + size[k]).
*/
struct mq_outfile {
    char *path;                /* final path: the file, or the folder (folder mode) */
    char *dir;                 /* folder holding the final path */
    char *tmp_dir;             /* folder mode: the temporary folder, else NULL */
    size_t n_data;
    char **tmp;                /* the data files being written */
    int *fd;
    uint64_t *base, *size;
    int slots[MAX_LIVE];       /* registered temporary paths (files first, the folder last) */
    int n_slots;
    _Atomic uint64_t written;
    uint64_t fault_after;      /* 0 = off */
    bool replace_any;          /* folder mode: --force, replace a folder holding foreign files */
    char **final;              /* set mode: the final path of each data file, else NULL */
};

/*
** Temporary paths the signal handler must remove, in fixed storage (handlers may not malloc).
** Kind 0 = a file (unlink), 1 = a folder modelq created: its files are unlinked (listed with the
** getdents64 system call into a static buffer: opendir/readdir may allocate) and then it is removed.
*/
static char live_paths[MAX_LIVE][LIVE_PATH];
static volatile sig_atomic_t live_kind[MAX_LIVE];
static volatile sig_atomic_t live_used[MAX_LIVE];

/* Async-signal-safe: unlinks the plain entries of `dir` (a temporary folder holds nothing else). */
static void empty_folder_signal_safe(const char *dir)
{
    static char buf[8192];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            if (reclen == 0) break;
            if (!(name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))) unlinkat(fd, name, 0);
            off += reclen;
        }
    }
    close(fd);
}

static void remove_live_paths_signal_safe(void)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < MAX_LIVE; i++)
            if (live_used[i] && live_kind[i] == pass) {
                if (pass == 0) unlink(live_paths[i]);
                else {
                    empty_folder_signal_safe(live_paths[i]);
                    rmdir(live_paths[i]);
                }
            }
}

static void on_signal(int sig)
{
    int saved = errno;
    remove_live_paths_signal_safe();
    if (sig == SIGXFSZ) {
        static const char msg[] = "modelq: error: the output exceeds the file size limit (ulimit -f); "
                                  "the temporary output was removed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
    }
    signal(sig, SIG_DFL);
    errno = saved;
    raise(sig);
}

/*
** The signals whose default action ends the process: each removes the temporary output first.
** A signal the parent set to be ignored stays ignored (`nohup modelq convert ... &` keeps running
** after the terminal closes).
*/
void mq_convert_install_signal_cleanup(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ, SIGXCPU,
                               SIGVTALRM, SIGPROF};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

static int register_live(struct mq_outfile *f, const char *path, int kind)
{
    if (strlen(path) >= LIVE_PATH || f->n_slots == MAX_LIVE) return -1;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (!live_used[i]) {
            strcpy(live_paths[i], path);
            live_kind[i] = kind;
            live_used[i] = 1;
            f->slots[f->n_slots++] = i;
            return 0;
        }
    }
    return -1;
}

static void unregister_all(struct mq_outfile *f)
{
    for (int i = 0; i < f->n_slots; i++) live_used[f->slots[i]] = 0;
    f->n_slots = 0;
}

/* Removes every registered temporary path (files, then the folder and what is in it). */
static void remove_live(struct mq_outfile *f)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < f->n_slots; i++)
            if (live_kind[f->slots[i]] == pass) {
                if (pass == 0) unlink(live_paths[f->slots[i]]);
                else mq_remove_tree_at(AT_FDCWD, live_paths[f->slots[i]]);
            }
}

static void outfile_free(struct mq_outfile *f)
{
    unregister_all(f);
    for (size_t k = 0; k < f->n_data; k++) free(f->tmp ? f->tmp[k] : NULL);
    for (size_t k = 0; f->final && k < f->n_data; k++) free(f->final[k]);
    free(f->final);
    free(f->tmp);
    free(f->fd);
    free(f->base);
    free(f->size);
    free(f->path);
    free(f->dir);
    free(f->tmp_dir);
    free(f);
}

static void close_all(struct mq_outfile *f)
{
    for (size_t k = 0; k < f->n_data; k++)
        if (f->fd[k] >= 0) {
            close(f->fd[k]);
            f->fd[k] = -1;
        }
}

/* Allocates n data-file slots. */
static int alloc_data(struct mq_outfile *f, size_t n)
{
    f->n_data = n;
    f->tmp = calloc(n, sizeof *f->tmp);
    f->fd = malloc(n * sizeof *f->fd);
    f->base = calloc(n, sizeof *f->base);
    f->size = calloc(n, sizeof *f->size);
    if (!f->tmp || !f->fd || !f->base || !f->size) return -1;
    for (size_t k = 0; k < n; k++) f->fd[k] = -1;
    return 0;
}

/* "<path>: <what>: <strerror>" */
static enum mq_status io_fail(struct mq_error *err, const char *check, int e, const char *what, const char *path)
{
    enum mq_status s = MQ_FAIL(err, MQ_E_IO, check, "%s: %s: %s", path, what, strerror(e));
    if (err) err->sys_errno = e;
    return s;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Folder of `path` and a hidden temporary name beside it. */
static int tmp_names(const char *path, char **dir, char **tmp)
{
    *dir = mq_path_parent(path);
    char *base = mq_path_base(path);
    size_t len = (*dir ? strlen(*dir) : 0) + (base ? strlen(base) : 0) + 64;
    *tmp = *dir && base ? malloc(len) : NULL;
    if (*tmp) snprintf(*tmp, len, "%s/.%s.modelq-tmp-%ld", *dir, base, (long)getpid());
    free(base);
    return *dir && *tmp ? 0 : -1;
}

/*
** Removes what an earlier run killed with SIGKILL (or a power cut) left beside the same output:
** entries ".BASE.modelq-tmp-PID" whose PID is not a live process on this machine. A live PID (a
** concurrent run, or a reused PID) is left alone, as are symlinks and other names. Runs before the
** free-space check, so the space the leftovers held counts as free.
*/
static void remove_stale_tmps(const char *dir, const char *tmp)
{
    const char *slash = strrchr(tmp, '/');
    const char *name = slash ? slash + 1 : tmp;
    const char *dash = strrchr(name, '-');
    if (!dash) return;
    size_t prefix = (size_t)(dash + 1 - name); /* ".BASE.modelq-tmp-" */
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, name, prefix) != 0) continue;
        const char *digits = e->d_name + prefix;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || errno || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        /* a file, or a folder of files modelq wrote; a link is left alone and never followed */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
            mq_remove_tree_at(dirfd(d), e->d_name);
    }
    closedir(d);
}

static enum mq_status check_space(const char *dir, const char *path, uint64_t size, struct mq_error *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && size > (uint64_t)rl.rlim_cur) {
        enum mq_status s = MQ_FAIL(err, MQ_E_IO, "file-size-limit",
                                   "%s: the output needs %" PRIu64 " bytes, over this process's file size limit "
                                   "of %" PRIu64 " bytes (ulimit -f)", path, size, (uint64_t)rl.rlim_cur);
        if (err) err->sys_errno = EFBIG;
        return s;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) return MQ_OK;
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (avail >= size) return MQ_OK;
    enum mq_status s = MQ_FAIL(err, MQ_E_IO, "disk-full",
                               "%s: not enough free space: the output needs %" PRIu64 " bytes, the folder's "
                               "filesystem has %" PRIu64, path, size, avail);
    if (err) err->sys_errno = ENOSPC;
    return s;
}

/* Creates data file k (registered), reserves its bytes. */
static enum mq_status open_data(struct mq_outfile *f, size_t k, struct mq_error *err)
{
    /* folder mode: the registered temporary folder covers its files */
    if (!f->tmp_dir && register_live(f, f->tmp[k], 0) != 0)
        return MQ_FAIL(err, MQ_E_LIMIT, "outputs", "%s: too many temporary files", f->tmp[k]);
    f->fd[k] = open(f->tmp[k], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd[k] < 0) return io_fail(err, "create", errno, "cannot create the temporary file", f->tmp[k]);
    /* reserve the blocks now: a full disk fails here, before hours of work */
    int rc = f->size[k] ? posix_fallocate(f->fd[k], 0, (off_t)f->size[k]) : 0;
    if (rc == ENOSPC) return io_fail(err, "disk-full", rc, "no space left for the output", f->path);
    if (ftruncate(f->fd[k], (off_t)f->size[k]) != 0)
        return io_fail(err, "write", errno, "cannot size the temporary file", f->tmp[k]);
    return MQ_OK;
}

static struct mq_outfile *outfile_new(const char *path)
{
    struct mq_outfile *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->path = strdup(path);
    const struct mq_test_hooks *h = mq_testing_hooks();
    if (h->fault_write) f->fault_after = h->fault_write_after + 1;
    return f;
}

enum mq_status mq_outfile_create(const char *path, uint64_t size, struct mq_outfile **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_outfile *f = outfile_new(path);
    if (!f || !f->path || alloc_data(f, 1) != 0 || tmp_names(path, &f->dir, &f->tmp[0]) != 0) {
        if (f) outfile_free(f);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    f->size[0] = size;
    remove_stale_tmps(f->dir, f->tmp[0]);
    enum mq_status s = check_space(f->dir, path, size, err);
    if (s == MQ_OK) s = open_data(f, 0, err);
    if (s != MQ_OK) {
        mq_outfile_abort(f);
        return s;
    }
    *out = f;
    return MQ_OK;
}

enum mq_status mq_outfile_create_in_dir(const char *dir, const char *const *names, const uint64_t *sizes, size_t n,
                                        uint64_t extra, bool replace_any, struct mq_outfile **out,
                                        struct mq_error *err)
{
    *out = NULL;
    struct mq_outfile *f = outfile_new(dir);
    bool ok = f && f->path && n > 0 && alloc_data(f, n) == 0 && tmp_names(dir, &f->dir, &f->tmp_dir) == 0;
    uint64_t size = 0;
    for (size_t k = 0; ok && k < n; k++) {
        ok = (f->tmp[k] = join(f->tmp_dir, names[k])) != NULL;
        f->base[k] = size;
        f->size[k] = sizes[k];
        size += sizes[k];
    }
    if (!ok) {
        if (f) outfile_free(f);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", dir);
    }
    f->replace_any = replace_any;
    enum mq_status s = mq_outpath_check_replace_folder(dir, replace_any, err);
    if (s != MQ_OK) {
        outfile_free(f);
        return s;
    }
    remove_stale_tmps(f->dir, f->tmp_dir);
    s = check_space(f->dir, dir, size + extra, err);
    if (s == MQ_OK) {
        if (mkdir(f->tmp_dir, 0755) != 0) s = io_fail(err, "create", errno, "cannot create the temporary folder", f->tmp_dir);
        else if (register_live(f, f->tmp_dir, 1) != 0) s = MQ_FAIL(err, MQ_E_LIMIT, "outputs", "too many temporaries");
    }
    for (size_t k = 0; s == MQ_OK && k < n; k++) s = open_data(f, k, err);
    if (s != MQ_OK) {
        mq_outfile_abort(f);
        return s;
    }
    *out = f;
    return MQ_OK;
}

/* A set's final path may be replaced only when it is absent, a regular file or a link. */
static enum mq_status check_set_member(const char *path, struct mq_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) return MQ_OK;
    return MQ_FAIL(err, MQ_E_USAGE, "output-not-regular", "%s: exists and is not a regular file; not replaced", path);
}

enum mq_status mq_outfile_create_set(const char *const *paths, const uint64_t *sizes, size_t n,
                                     struct mq_outfile **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_outfile *f = n > 0 ? outfile_new(paths[0]) : NULL;
    bool ok = f && f->path && alloc_data(f, n) == 0 && tmp_names(paths[0], &f->dir, &f->tmp_dir) == 0 &&
              (f->final = calloc(n, sizeof *f->final)) != NULL;
    uint64_t size = 0;
    for (size_t k = 0; ok && k < n; k++) {
        const char *slash = strrchr(paths[k], '/');
        ok = (f->final[k] = strdup(paths[k])) != NULL && (f->tmp[k] = join(f->tmp_dir, slash ? slash + 1 : paths[k]));
        f->base[k] = size;
        f->size[k] = sizes[k];
        size += sizes[k];
    }
    if (!ok) {
        if (f) outfile_free(f);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", n ? paths[0] : "output");
    }
    enum mq_status s = MQ_OK;
    for (size_t k = 0; s == MQ_OK && k < n; k++) s = check_set_member(paths[k], err);
    if (s != MQ_OK) {
        outfile_free(f);
        return s;
    }
    /* every part stays open for the one pass: room for n descriptors beside the input's */
    struct rlimit nf;
    if (getrlimit(RLIMIT_NOFILE, &nf) == 0 && nf.rlim_cur != RLIM_INFINITY && nf.rlim_cur < n + 256) {
        nf.rlim_cur = nf.rlim_max == RLIM_INFINITY || nf.rlim_max >= n + 256 ? (rlim_t)(n + 256) : nf.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nf);
    }
    remove_stale_tmps(f->dir, f->tmp_dir);
    s = check_space(f->dir, paths[0], size, err);
    if (s == MQ_OK) {
        if (mkdir(f->tmp_dir, 0755) != 0) s = io_fail(err, "create", errno, "cannot create the temporary folder", f->tmp_dir);
        else if (register_live(f, f->tmp_dir, 1) != 0) s = MQ_FAIL(err, MQ_E_LIMIT, "outputs", "too many temporaries");
    }
    for (size_t k = 0; s == MQ_OK && k < n; k++) s = open_data(f, k, err);
    if (s != MQ_OK) {
        mq_outfile_abort(f);
        return s;
    }
    *out = f;
    return MQ_OK;
}

static void fsync_dir(const char *dir);

/* Set mode commit (outfile.h): part 1's old file away, parts N..2 into place, part 1 last. */
static enum mq_status commit_set(struct mq_outfile *f, struct mq_error *err)
{
    fsync_dir(f->tmp_dir);
    enum mq_status s = MQ_OK;
    for (size_t k = 0; s == MQ_OK && k < f->n_data; k++) s = check_set_member(f->final[k], err);
    if (s == MQ_OK && unlink(f->final[0]) != 0 && errno != ENOENT)
        s = io_fail(err, "rename", errno, "cannot remove the earlier part 1", f->final[0]);
    size_t moved = 0; /* the last `moved` parts (0-based N-1 down) are in place */
    while (s == MQ_OK && moved < f->n_data) {
        size_t k = f->n_data - 1 - moved;
        if (rename(f->tmp[k], f->final[k]) != 0)
            s = io_fail(err, "rename", errno, "cannot move the finished part into place", f->final[k]);
        else moved++;
    }
    if (s != MQ_OK) /* never leave new parts without their part 1 */
        for (size_t j = 0; j < moved; j++) unlink(f->final[f->n_data - 1 - j]);
    fsync_dir(f->dir);
    remove_live(f); /* the (now empty) temporary folder */
    outfile_free(f);
    return s;
}

enum mq_status mq_outfile_add_file(struct mq_outfile *f, const char *name, const void *data, size_t len,
                                   struct mq_error *err)
{
    if (!f->tmp_dir) return MQ_FAIL(err, MQ_E_INTERNAL, "outputs", "%s: not a folder output", f->path);
    char *p = join(f->tmp_dir, name);
    if (!p) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = MQ_OK;
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s == MQ_OK && fd < 0) s = io_fail(err, "create", errno, "cannot create", p);
    const uint8_t *b = data;
    while (s == MQ_OK && len) {
        ssize_t k = write(fd, b, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) s = io_fail(err, errno == ENOSPC ? "disk-full" : "write", k < 0 ? errno : ENOSPC, "write failed", p);
        else {
            b += k;
            len -= (size_t)k;
        }
    }
    if (fd >= 0) {
        if (s == MQ_OK && fsync(fd) != 0) s = io_fail(err, "fsync", errno, "fsync failed", p);
        if (close(fd) != 0 && s == MQ_OK) s = io_fail(err, "close", errno, "close failed", p);
    }
    free(p);
    return s;
}

enum mq_status mq_outfile_truncate(struct mq_outfile *f, size_t k, uint64_t size, struct mq_error *err)
{
    if (k >= f->n_data) return MQ_FAIL(err, MQ_E_INTERNAL, "outputs", "no data file %zu", k);
    if (ftruncate(f->fd[k], (off_t)size) != 0) return io_fail(err, "write", errno, "cannot truncate", f->tmp[k]);
    return MQ_OK;
}

/* The data file holding global offset `off` (a write never spans two files). */
static size_t file_of(const struct mq_outfile *f, uint64_t off)
{
    size_t k = 0;
    while (k + 1 < f->n_data && off >= f->base[k + 1]) k++;
    return k;
}

enum mq_status mq_outfile_pwrite(struct mq_outfile *f, const void *buf, size_t len, uint64_t off,
                                 struct mq_error *err)
{
    const uint8_t *p = buf;
    while (len) {
        size_t n = len;
        if (f->fault_after) {
            uint64_t w = atomic_fetch_add(&f->written, n) + n;
            if (w >= f->fault_after) return io_fail(err, "disk-full", ENOSPC, "write failed", f->path);
        }
        size_t fk = file_of(f, off);
        ssize_t k = pwrite(f->fd[fk], p, n, (off_t)(off - f->base[fk]));
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
        size_t fk = file_of(f, off);
        ssize_t k = pread(f->fd[fk], p, len, (off_t)(off - f->base[fk]));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return io_fail(err, "read", k < 0 ? errno : EIO, "read-back failed", f->tmp[fk]);
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return MQ_OK;
}

static void fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

enum mq_status mq_outfile_commit(struct mq_outfile *f, struct mq_error *err)
{
    enum mq_status s = MQ_OK;
    for (size_t k = 0; k < f->n_data; k++) {
        if (s == MQ_OK && fsync(f->fd[k]) != 0) s = io_fail(err, "fsync", errno, "fsync failed", f->tmp[k]);
        if (close(f->fd[k]) != 0 && s == MQ_OK) s = io_fail(err, "close", errno, "close failed", f->tmp[k]);
        f->fd[k] = -1;
    }
    if (s != MQ_OK) {
        remove_live(f);
        outfile_free(f);
        return s;
    }
    if (f->final) return commit_set(f, err);
    if (!f->tmp_dir) {
        /* the output's rules again, as late as possible: only a regular file (or a link) is replaced */
        struct stat st;
        if (lstat(f->path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            s = MQ_FAIL(err, MQ_E_USAGE, "output-not-regular",
                        "%s: became something other than a regular file during the run; not replaced", f->path);
            remove_live(f);
            outfile_free(f);
            return s;
        }
        if (rename(f->tmp[0], f->path) != 0) {
            s = io_fail(err, "rename", errno, "cannot move the finished file into place", f->path);
            remove_live(f);
            outfile_free(f);
            return s;
        }
    } else {
        fsync_dir(f->tmp_dir);
        /* the folder rules again (a user may have added files or a link during the run) */
        s = mq_outpath_check_replace_folder(f->path, f->replace_any, err);
        if (s != MQ_OK) {
            remove_live(f);
            outfile_free(f);
            return s;
        }
        struct stat st;
        bool exists = lstat(f->path, &st) == 0;
        int rc = exists ? renameat2(AT_FDCWD, f->tmp_dir, AT_FDCWD, f->path, RENAME_EXCHANGE)
                        : rename(f->tmp_dir, f->path);
        if (rc != 0) {
            s = io_fail(err, "rename", errno, "cannot move the finished folder into place", f->path);
            remove_live(f);
            outfile_free(f);
            return s;
        }
        unregister_all(f);
        /* the previous folder now sits at the temporary name: remove it, never following a link */
        if (exists) mq_remove_tree_at(AT_FDCWD, f->tmp_dir);
    }
    unregister_all(f);
    fsync_dir(f->dir);
    outfile_free(f);
    return s;
}

void mq_outfile_abort(struct mq_outfile *f)
{
    if (!f) return;
    if (f->fd) close_all(f);
    remove_live(f);
    outfile_free(f);
}

const char *mq_outfile_tmp_path(const struct mq_outfile *f) { return f->tmp[0]; }
