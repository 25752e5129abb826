/* outpath.c - the rules for what an output path may replace (outpath.h). */
#include "outpath.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hf_folder.h"

#define REMOVE_MAX_DEPTH 64
#define FOREIGN_SHOWN 3

/* ---- identities ---- */

static int push_id(struct mq_file_id **arr, size_t *n, size_t *cap, const struct stat *st, const char *path)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i].dev == st->st_dev && (*arr)[i].ino == st->st_ino) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct mq_file_id *p = realloc(*arr, nc * sizeof *p);
        if (!p) return -1;
        *arr = p;
        *cap = nc;
    }
    char *dup = strdup(path);
    if (!dup) return -1;
    (*arr)[*n] = (struct mq_file_id){st->st_dev, st->st_ino, dup};
    (*n)++;
    return 0;
}

/* The folder part of `path` ("." when there is none, "/" for "/x"), trailing slashes ignored. */
char *mq_path_parent(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    while (n > 0 && path[n - 1] != '/') n--;
    if (n == 0) return strdup(".");
    while (n > 1 && path[n - 1] == '/') n--;
    return strndup(path, n);
}

/* The final name of `path` (trailing slashes ignored), malloc'd. */
char *mq_path_base(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    return strndup(path + b, n - b);
}

static int add_dir(struct mq_input_set *in, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    return push_id(&in->dirs, &in->n_dirs, &in->cap_dirs, &st, dir);
}

static int add_file_and_dir(struct mq_input_set *in, const char *path, const struct stat *st)
{
    if (push_id(&in->files, &in->n_files, &in->cap_files, st, path) != 0) return -1;
    char *dir = mq_path_parent(path);
    int rc = dir ? add_dir(in, dir) : -1;
    free(dir);
    return rc;
}

/* Every checkpoint file (config.json, side files, safetensors, index) in input folder `dir`. */
static int add_folder_files(struct mq_input_set *in, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!mq_hf_is_checkpoint_name(e->d_name)) continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = -1;
            break;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            rc = push_id(&in->files, &in->n_files, &in->cap_files, &st, p);
        free(p);
    }
    closedir(d);
    return rc;
}

enum mq_status mq_input_set_build(const struct mq_model *m, struct mq_input_set *in, struct mq_error *err)
{
    memset(in, 0, sizeof *in);
    int rc = 0;
    struct stat st;
    for (size_t i = 0; rc == 0 && i < m->n_files; i++)
        if (fstat(m->files[i].fd, &st) == 0) rc = add_file_and_dir(in, m->files[i].path, &st);
    if (rc == 0 && m->config.present && m->config.path && stat(m->config.path, &st) == 0)
        rc = add_file_and_dir(in, m->config.path, &st);
    if (rc == 0 && m->input_path && stat(m->input_path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) rc = add_dir(in, m->input_path);
        else if (S_ISREG(st.st_mode)) rc = add_file_and_dir(in, m->input_path, &st);
    }
    size_t n_dirs = in->n_dirs; /* the folders found so far; add_folder_files adds no folders */
    for (size_t i = 0; rc == 0 && i < n_dirs; i++) rc = add_folder_files(in, in->dirs[i].path);
    if (rc != 0) {
        mq_input_set_free(in);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    return MQ_OK;
}

void mq_input_set_free(struct mq_input_set *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->n_files; i++) free(in->files[i].path);
    for (size_t i = 0; i < in->n_dirs; i++) free(in->dirs[i].path);
    free(in->files);
    free(in->dirs);
    memset(in, 0, sizeof *in);
}

/* Is the folder with identity `anc` the folder `dir` or one of its ancestors? Walks the resolved
** path of `dir` from the root down, comparing identities. */
static bool is_ancestor_or_self(const struct stat *anc, const char *dir)
{
    char *real = realpath(dir, NULL);
    if (!real) return false;
    bool hit = false;
    size_t n = strlen(real);
    for (size_t i = 1; i <= n && !hit; i++) {
        if (i < n && real[i] != '/') continue;
        char save = real[i];
        real[i] = '\0';
        struct stat st;
        if (stat(i == 1 && save == '/' ? "/" : real, &st) == 0 && st.st_dev == anc->st_dev && st.st_ino == anc->st_ino)
            hit = true;
        real[i] = save;
    }
    struct stat root;
    if (!hit && stat("/", &root) == 0 && root.st_dev == anc->st_dev && root.st_ino == anc->st_ino) hit = true;
    free(real);
    return hit;
}

/* ---- the checks ---- */

static enum mq_status check_folder_writable(const char *path, const char *parent, const char *what,
                                            struct mq_error *err)
{
    struct stat st;
    if (stat(parent, &st) != 0) {
        int e = errno;
        enum mq_status s = MQ_FAIL(err, MQ_E_IO, "output-folder", "%s: cannot write %s there: folder %s: %s", path,
                                   what, parent, strerror(e));
        if (err) err->sys_errno = e;
        return s;
    }
    if (!S_ISDIR(st.st_mode))
        return MQ_FAIL(err, MQ_E_USAGE, "output-folder", "%s: %s is not a folder", path, parent);
    struct statvfs vfs;
    bool ro = statvfs(parent, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
    if (ro || access(parent, W_OK) != 0) {
        int e = ro ? EROFS : errno;
        enum mq_status s = MQ_FAIL(err, MQ_E_IO, "output-folder", "%s: cannot write %s into %s: %s", path, what,
                                   parent, e == EROFS ? "the folder is on a read-only filesystem" : strerror(e));
        if (err) err->sys_errno = e;
        return s;
    }
    return MQ_OK;
}

static const char *kind_name(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

static enum mq_status check_file(const char *path, const struct mq_input_set *in, const char *what,
                                 struct mq_error *err)
{
    struct stat lst, st;
    if (lstat(path, &lst) != 0) return MQ_OK; /* a new file */
    if (stat(path, &st) != 0) {
        if (S_ISLNK(lst.st_mode)) return MQ_OK; /* a dangling link: the rename replaces the link */
        return MQ_OK;
    }
    if (S_ISDIR(st.st_mode))
        return MQ_FAIL(err, MQ_E_USAGE, "output-is-folder", "%s: %s is an existing folder, not a file name", path, what);
    if (!S_ISREG(st.st_mode))
        return MQ_FAIL(err, MQ_E_USAGE, "output-not-regular",
                       "%s: %s is %s%s; modelq only replaces regular files", path, what, kind_name(st.st_mode),
                       S_ISLNK(lst.st_mode) ? " (through a symbolic link)" : "");
    for (size_t i = 0; in && i < in->n_files; i++)
        if (in->files[i].dev == st.st_dev && in->files[i].ino == st.st_ino)
            return MQ_FAIL(err, MQ_E_USAGE, "output-is-input", "%s: %s would replace the input file %s", path, what,
                           in->files[i].path);
    return MQ_OK;
}

enum mq_status mq_outpath_check_replace_folder(const char *dir, bool force, struct mq_error *err)
{
    struct stat st;
    if (lstat(dir, &st) != 0) return MQ_OK;
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(dir, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        return MQ_FAIL(err, MQ_E_USAGE, "output-is-link",
                       "%s is a symbolic link (to %s): name the folder itself, or another path, as the output", dir,
                       n > 0 ? target : "?");
    }
    if (!S_ISDIR(st.st_mode))
        return MQ_FAIL(err, MQ_E_USAGE, "output-not-folder", "%s exists and is %s, not a folder", dir,
                       kind_name(st.st_mode));
    if (force) return MQ_OK;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        enum mq_status s = MQ_FAIL(err, MQ_E_IO, "output-folder", "%s: cannot read the folder: %s", dir, strerror(e));
        if (err) err->sys_errno = e;
        return s;
    }
    char shown[FOREIGN_SHOWN][NAME_MAX + 32];
    size_t n_foreign = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat es;
        bool reg = fstatat(dirfd(d), e->d_name, &es, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(es.st_mode);
        size_t nl = strlen(e->d_name);
        /* a safetensors file without modelq's checksum record is a checkpoint of the user's
         * (a downloaded model holds only names modelq also writes) */
        bool is_st = nl > 12 && strcmp(e->d_name + nl - 12, ".safetensors") == 0;
        bool not_ours = reg && is_st && !mq_hf_is_modelq_shard(dirfd(d), e->d_name);
        if (reg && mq_hf_is_written_name(e->d_name) && !not_ours) continue;
        if (n_foreign < FOREIGN_SHOWN)
            snprintf(shown[n_foreign], sizeof shown[n_foreign], "%s%s", e->d_name,
                     not_ours ? " (not written by modelq)" : !reg && S_ISDIR(es.st_mode) ? "/" : "");
        n_foreign++;
    }
    closedir(d);
    if (n_foreign == 0) return MQ_OK;
    char list[FOREIGN_SHOWN * (NAME_MAX + 34) + 32];
    size_t k = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n_foreign && i < FOREIGN_SHOWN; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", shown[i]);
    if (n_foreign > FOREIGN_SHOWN) snprintf(list + k, sizeof list - k, " and %zu more", n_foreign - FOREIGN_SHOWN);
    return MQ_FAIL(err, MQ_E_USAGE, "output-foreign-files",
                   "%s exists and holds what modelq did not write (%s): refusing to replace it; move those away, "
                   "choose another output, or add --force to replace the folder and everything in it",
                   dir, list);
}

static enum mq_status check_folder(const char *path, const struct mq_input_set *in, bool force, const char *what,
                                   struct mq_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) return MQ_OK;
    if (S_ISDIR(st.st_mode)) {
        for (size_t i = 0; in && i < in->n_dirs; i++)
            if (is_ancestor_or_self(&st, in->dirs[i].path))
                return MQ_FAIL(err, MQ_E_USAGE, "output-is-input",
                               "%s: %s would replace the folder holding the input (%s)", path, what, in->dirs[i].path);
    }
    return mq_outpath_check_replace_folder(path, force, err);
}

enum mq_status mq_outpath_check(const char *path, enum mq_out_kind kind, const struct mq_input_set *in, bool force,
                                const char *what, struct mq_error *err)
{
    if (!path || !*path) return MQ_FAIL(err, MQ_E_USAGE, "output-name", "%s: empty path", what);
    size_t len = strlen(path);
    if (kind == MQ_OUT_FILE && path[len - 1] == '/')
        return MQ_FAIL(err, MQ_E_USAGE, "output-name", "%s: %s names a folder; give a file name", path, what);
    char *base = mq_path_base(path), *parent = mq_path_parent(path);
    enum mq_status s = base && parent ? MQ_OK : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK && (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")))
        s = MQ_FAIL(err, MQ_E_USAGE, "output-name",
                    "%s: %s cannot be '.', '..' or '/': name a new %s", path, what,
                    kind == MQ_OUT_FILE ? "file" : "folder");
    if (s == MQ_OK && strlen(base) + MQ_TMP_NAME_EXTRA > NAME_MAX)
        s = MQ_FAIL(err, MQ_E_USAGE, "output-name",
                    "%s: the name of %s is %zu bytes; at most %d leave room for the temporary name beside it", path,
                    what, strlen(base), NAME_MAX - MQ_TMP_NAME_EXTRA);
    if (s == MQ_OK) s = check_folder_writable(path, parent, what, err);
    if (s == MQ_OK)
        s = kind == MQ_OUT_FILE ? check_file(path, in, what, err) : check_folder(path, in, force, what, err);
    free(base);
    free(parent);
    return s;
}

bool mq_outpath_same(const char *a, const char *b, bool *inside)
{
    if (inside) *inside = false;
    char *pa = mq_path_parent(a), *pb = mq_path_parent(b), *ba = mq_path_base(a), *bb = mq_path_base(b);
    bool same = false;
    struct stat sa, sb;
    if (pa && pb && ba && bb && stat(pa, &sa) == 0 && stat(pb, &sb) == 0)
        same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && strcmp(ba, bb) == 0;
    struct stat fb;
    if (inside && pa && lstat(b, &fb) == 0 && S_ISDIR(fb.st_mode)) *inside = is_ancestor_or_self(&fb, pa);
    free(pa);
    free(pb);
    free(ba);
    free(bb);
    return same;
}

/* ---- removal without following links ---- */

static int remove_at(int parent, const char *name, int depth)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (depth >= REMOVE_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    /* Entries removed while reading may shift the listing: read again until a pass removes nothing. */
    for (int pass = 0, removed = 1; removed && pass < 16; pass++) {
        removed = 0;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (remove_at(dirfd(d), e->d_name, depth + 1) == 0) removed = 1;
            else rc = -1;
        }
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0) rc = -1;
    return rc;
}

int mq_remove_tree_at(int parent, const char *name) { return remove_at(parent, name, 0); }
