/* zipwrite.c - development-only zip writer (see zipwrite.h). */
#include "zipwrite.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

size_t zw_local_header(uint8_t *out, const char *name, uint32_t crc, uint32_t size)
{
    size_t nl = strlen(name);
    memset(out, 0, 30);
    put32(out, 0x04034b50u);
    put16(out + 4, 20);
    put32(out + 14, crc);
    put32(out + 18, size);
    put32(out + 22, size);
    put16(out + 26, (unsigned)nl);
    memcpy(out + 30, name, nl);
    return 30 + nl;
}

uint8_t *zw_build(const struct zw_entry *e, size_t n, size_t *len, struct zw_info *info)
{
    if (n > 32) return NULL;
    size_t cap = 1024;
    for (size_t i = 0; i < n; i++) cap += 2 * (e[i].len + 128 + strlen(e[i].name)) + 64;
    uint8_t *b = calloc(1, cap), *comp[32] = {0};
    size_t clen[32] = {0}, at = 0;
    uint32_t crc[32];
    if (!b) return NULL;
    for (size_t i = 0; i < n; i++) {
        crc[i] = e[i].crc_override ? e[i].crc : (uint32_t)crc32(0L, e[i].data, (uInt)e[i].len);
        if (e[i].deflate) {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
            size_t bound = deflateBound(&zs, e[i].len);
            comp[i] = malloc(bound);
            zs.next_in = (uint8_t *)e[i].data;
            zs.avail_in = (uInt)e[i].len;
            zs.next_out = comp[i];
            zs.avail_out = (uInt)bound;
            deflate(&zs, Z_FINISH);
            clen[i] = zs.total_out;
            deflateEnd(&zs);
        } else {
            clen[i] = e[i].len;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (e[i].no_local) continue;
        uint64_t us = e[i].usize_override ? e[i].usize : e[i].len;
        info->local_off[i] = at;
        at += zw_local_header(b + at, e[i].name, crc[i], (uint32_t)clen[i]);
        put16(b + info->local_off[i] + 8, e[i].deflate ? 8 : 0);
        put32(b + info->local_off[i] + 22, (uint32_t)us);
        info->data_off[i] = at;
        memcpy(b + at, e[i].deflate ? comp[i] : e[i].data, clen[i]);
        at += clen[i];
    }
    info->cd_off = at;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        uint64_t us = e[i].usize_override ? e[i].usize : e[i].len;
        size_t lo = e[i].redirect ? info->data_off[e[i].local_of] + e[i].local_delta : info->local_off[i];
        uint8_t *h = b + at;
        memset(h, 0, 46);
        put32(h, 0x02014b50u);
        put16(h + 4, 20);
        put16(h + 6, 20);
        put16(h + 10, e[i].deflate ? 8 : 0);
        put32(h + 16, crc[i]);
        put32(h + 20, (uint32_t)clen[i]);
        put32(h + 24, (uint32_t)us);
        put16(h + 28, (unsigned)nl);
        put32(h + 42, (uint32_t)lo);
        memcpy(h + 46, e[i].name, nl);
        at += 46 + nl;
    }
    info->end_off = at;
    uint8_t *end = b + at;
    memset(end, 0, 22);
    put32(end, 0x06054b50u);
    put16(end + 8, (unsigned)n);
    put16(end + 10, (unsigned)n);
    put32(end + 12, (uint32_t)(at - info->cd_off));
    put32(end + 16, (uint32_t)info->cd_off);
    at += 22;
    for (size_t i = 0; i < n; i++) free(comp[i]);
    *len = at;
    return b;
}
