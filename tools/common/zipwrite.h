/*
** zipwrite.h - development-only zip writer for PyTorch fixtures and the hostile corpus
** (tools/mkbadpickle.c, tests/test_pytorch.c, tests/test_fp8.c). Writes exactly what it is
** told, including broken archives: entries can lie about their CRC or size, point their
** central record at any offset, or have no local header of their own.
*/
#ifndef MODELQ_ZIPWRITE_H
#define MODELQ_ZIPWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zw_entry {
    const char *name;
    const uint8_t *data;
    size_t len;
    bool deflate;          /* method 8 (raw deflate, level 9), else stored */
    bool no_local;         /* no local header or data of its own (central record only) */
    bool crc_override;     /* write `crc` instead of the real CRC-32 (central and local) */
    uint32_t crc;
    bool usize_override;   /* declare `usize` as the uncompressed size */
    uint64_t usize;
    bool redirect;         /* central record points at entry local_of's data + local_delta */
    size_t local_of;
    uint64_t local_delta;
};

/* Where things went, for callers that corrupt the result further. */
struct zw_info {
    size_t local_off[32], data_off[32];
    size_t cd_off, end_off;
};

/* The archive of n (<= 32) entries in a malloc'd buffer (*len bytes); NULL on failure. Entries
** with redirect set must come after the entry they point into. */
uint8_t *zw_build(const struct zw_entry *e, size_t n, size_t *len, struct zw_info *info);

/* The 30-byte local header + name of a stored entry (for planting fake headers); returns bytes written. */
size_t zw_local_header(uint8_t *out, const char *name, uint32_t crc, uint32_t size);

#endif
