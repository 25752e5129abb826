/* fileio.h - small whole-file reads with a size cap (config.json, index.json). */
#ifndef MODELQ_FILEIO_H
#define MODELQ_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"

/*
** Reads all of `path` (at most `max_bytes`) into a NUL-terminated malloc'd buffer the caller
** frees. Larger files fail with MQ_E_LIMIT naming `check`.
*/
enum mq_status mq_read_small_file(const char *path, size_t max_bytes, const char *check, char **out,
                                  size_t *len, struct mq_error *err);

/* pread exactly `len` bytes at `off`; a short file is MQ_E_CORRUPT (truncated). */
enum mq_status mq_pread_full(int fd, const char *path, void *buf, size_t len, uint64_t off,
                             struct mq_error *err);

/* MQ_E_IO "<path>: <what>: <strerror(errno)>" with err->sys_errno set; returns MQ_E_IO. */
enum mq_status mq_io_error(struct mq_error *err, const char *what, const char *path);

/* Opens a regular file for reading with a clear error; anything else (a FIFO, a device, a folder)
** is refused as "not-a-file" without blocking. */
enum mq_status mq_open_read(const char *path, int *fd, struct mq_error *err);
/* mq_open_read that also gives the file's size. */
enum mq_status mq_open_regular(const char *path, int *fd, uint64_t *size, struct mq_error *err);

#endif
