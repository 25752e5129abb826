/* fileio.c - small whole-file reads and exact preads with clear errors. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum mq_status mq_io_error(struct mq_error *err, const char *what, const char *path)
{
    int e = errno;
    MQ_FAIL(err, MQ_E_IO, "io", "%s: %s: %s", path, what, strerror(e));
    if (err) err->sys_errno = e;
    return MQ_E_IO;
}

enum mq_status mq_pread_full(int fd, const char *path, void *buf, size_t len, uint64_t off,
                             struct mq_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return mq_io_error(err, "read failed", path);
        }
        if (r == 0) return MQ_FAIL(err, MQ_E_CORRUPT, "truncated", "%s: file is truncated", path);
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return MQ_OK;
}

enum mq_status mq_read_small_file(const char *path, size_t max_bytes, const char *check, char **out,
                                  size_t *len, struct mq_error *err)
{
    *out = NULL;
    int fd;
    uint64_t size;
    MQ_TRY(mq_open_regular(path, &fd, &size, err));
    if (size > max_bytes) {
        close(fd);
        return MQ_FAIL(err, MQ_E_LIMIT, check, "%s: %llu bytes is over the %zu-byte limit", path,
                       (unsigned long long)size, max_bytes);
    }
    size_t n = (size_t)size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    enum mq_status s = mq_pread_full(fd, path, buf, n, 0, err);
    close(fd);
    if (s != MQ_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MQ_OK;
}

/*
** O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever. The descriptor is
** checked to be a regular file before anything is read, and blocking mode is restored.
*/
enum mq_status mq_open_read(const char *path, int *fd, struct mq_error *err)
{
    uint64_t size;
    return mq_open_regular(path, fd, &size, err);
}

enum mq_status mq_open_regular(const char *path, int *fd, uint64_t *size, struct mq_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) return mq_io_error(err, "cannot open", path);
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        enum mq_status s = mq_io_error(err, "cannot stat", path);
        close(*fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return MQ_FAIL(err, MQ_E_IO, "not-a-file", "%s: not a regular file (%s)", path,
                       S_ISDIR(st.st_mode)    ? "a folder"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a file");
    }
    int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0) (void)fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
    *size = (uint64_t)st.st_size;
    return MQ_OK;
}
