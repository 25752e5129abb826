/*
** zip_read.h - a validating reader of the zip container (PKWARE APPNOTE 6.3.x), as much of it as
** torch.save writes: one disk, stored (0) or deflated (8) entries, zip64 sizes and offsets.
**
** mq_zip_open() reads the end records and the central directory only, and proves for every
** entry that its local header and data lie inside the file, before the central directory, and
** that no two entries overlap. Entry data is then reached by offset (stored entries, which is
** how torch.save writes tensor data) or inflated whole into memory with a cap
** (mq_zip_read_entry, for data.pkl), CRC-32 checked.
*/
#ifndef MODELQ_ZIP_READ_H
#define MODELQ_ZIP_READ_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"

#define MQ_ZIP_STORED 0
#define MQ_ZIP_DEFLATED 8

struct mq_zip_entry {
    char *name;            /* NUL-free, as in the central directory */
    uint16_t method;       /* MQ_ZIP_STORED or MQ_ZIP_DEFLATED */
    uint32_t crc32;
    uint64_t csize, usize; /* compressed / uncompressed bytes */
    uint64_t local_offset; /* the local file header */
    uint64_t data_offset;  /* first byte of the (compressed) data */
};

struct mq_zip {
    const char *path; /* for messages (not owned) */
    int fd;           /* not owned */
    uint64_t size;
    struct mq_zip_entry *e; /* sorted by name */
    size_t n;
    uint64_t bytes_read; /* end records, central directory and local headers */
};

/* Reads and validates the directory of the zip open as fd. Free with mq_zip_free (also on failure). */
enum mq_status mq_zip_open(struct mq_zip *z, int fd, const char *path, uint64_t size, struct mq_error *err);
void mq_zip_free(struct mq_zip *z);

/* The entry called `name`, or NULL. */
const struct mq_zip_entry *mq_zip_find(const struct mq_zip *z, const char *name);

/*
** The whole uncompressed content of an entry into a malloc'd buffer (*out, caller frees; one
** extra NUL byte after it), inflating a deflated entry. Refuses entries over `cap` bytes
** before reading (check "zip-entry-limit"), stops inflating at the declared size (a "zip bomb"
** cannot make it write more) and checks the length and the CRC-32.
*/
enum mq_status mq_zip_read_entry(const struct mq_zip *z, const struct mq_zip_entry *e, uint64_t cap, uint8_t **out,
                                 size_t *len, struct mq_error *err);

#endif /* MODELQ_ZIP_READ_H */
