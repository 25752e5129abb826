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

enum mq_status mq_open_read(const char *path, int *fd, struct mq_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? mq_io_error(err, "cannot open", path) : MQ_OK;
}

enum mq_status mq_open_regular(const char *path, int *fd, uint64_t *size, struct mq_error *err)
{
    MQ_TRY(mq_open_read(path, fd, err));
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        enum mq_status s = mq_io_error(err, "cannot stat", path);
        close(*fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(*fd);
        return MQ_FAIL(err, MQ_E_IO, "not-a-file", "%s: not a regular file", path);
    }
    *size = (uint64_t)st.st_size;
    return MQ_OK;
}
