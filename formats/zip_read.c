/*
** zip_read.c - validating zip reader (see zip_read.h).
**
** Layout (PKWARE APPNOTE.TXT 6.3.10, sections 4.3.7, 4.3.12, 4.3.14-16, 4.5.3), little-endian:
**   local file header   "PK\3\4" [4] version [2] flags [2] method [2] time [2] date [2] crc32 [4]
**                       csize [4] usize [4] name_len [2] extra_len [2] | name | extra | data
**   central directory   per entry "PK\1\2" [4] made_by [2] version [2] flags [2] method [2]
**                       time [2] date [2] crc32 [4] csize [4] usize [4] name_len [2] extra_len [2]
**                       comment_len [2] disk [2] int_attr [2] ext_attr [4] local_offset [4]
**                       | name | extra | comment
**   zip64 end record    "PK\6\6" [4] record_size [8] made_by [2] version [2] disk [4] cd_disk [4]
**                       entries_disk [8] entries [8] cd_size [8] cd_offset [8]
**   zip64 locator       "PK\6\7" [4] disk [4] zip64_end_offset [8] disks [4]  (just before the end record)
**   end record          "PK\5\6" [4] disk [2] cd_disk [2] entries_disk [2] entries [2]
**                       cd_size [4] cd_offset [4] comment_len [2] | comment   (ends the file)
** A 32-bit field holding 0xFFFFFFFF (0xFFFF for counts) is in the zip64 record or, per entry, in
** the zip64 extra field (id 0x0001: usize, csize, local_offset, in that order, each only when its
** 32-bit field is saturated).
**
** Checks (the `check` of each error): zip-eocd, zip-multi-disk, zip64, zip-cd-range,
** zip-cd-limit, zip-entry, zip-encrypted, zip-method, zip-name, zip-stored-size, zip-local,
** zip-data-range, zip-duplicate, zip-overlap; reading an entry: zip-entry-limit, zip-inflate,
** zip-crc.
*/
#include "zip_read.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckd.h"
#include "fileio.h"
#include "span.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_Z64_END 0x06064b50u
#define SIG_Z64_LOC 0x07064b50u
#define LOCAL_SIZE 30
#define CENTRAL_SIZE 46
#define END_SIZE 22
#define Z64_END_SIZE 56
#define Z64_LOC_SIZE 20
#define MAX_COMMENT 65535u
/* The central directory is read whole: 256 MiB holds ~5 million entries of torch's ~50-byte
** names, far more than the storages of any checkpoint shard. */
#define MAX_CD_BYTES (256u << 20)
#define MAX_ENTRIES (1u << 22)

#define ZFAIL(z, code, check, fmt, ...) MQ_FAIL(err, code, check, "%s: " check ": " fmt, (z)->path, __VA_ARGS__)

static enum mq_status pread_at(struct mq_zip *z, void *buf, size_t len, uint64_t off, struct mq_error *err)
{
    z->bytes_read += len;
    return mq_pread_full(z->fd, z->path, buf, len, off, err);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct mq_zip_entry *)a)->name, ((const struct mq_zip_entry *)b)->name);
}

static int cmp_local(const void *a, const void *b)
{
    const struct mq_zip_entry *x = *(const struct mq_zip_entry *const *)a, *y = *(const struct mq_zip_entry *const *)b;
    return x->local_offset < y->local_offset ? -1 : x->local_offset > y->local_offset;
}

void mq_zip_free(struct mq_zip *z)
{
    for (size_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

struct dir_end {
    uint64_t entries, cd_size, cd_offset;
    uint64_t end_at; /* where the central directory must end: the zip64 end record or the end record */
};

/* Finds the end record (the last "PK\5\6" whose comment reaches the end of the file exactly). */
static enum mq_status read_end(struct mq_zip *z, struct dir_end *de, struct mq_error *err)
{
    if (z->size < END_SIZE)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-eocd", "%llu bytes is too small for a zip file", (unsigned long long)z->size);
    /* the last 1 KiB first (torch writes no comment), then the largest window a comment allows */
    uint64_t tail = 0;
    int64_t at = -1;
    uint8_t end[END_SIZE];
    for (int pass = 0; pass < 2 && at < 0; pass++) {
        uint64_t want = pass == 0 ? 1024 : END_SIZE + MAX_COMMENT;
        if (pass == 1 && tail == z->size) break; /* the first window was the whole file */
        tail = z->size < want ? z->size : want;
        uint8_t *buf = malloc((size_t)tail);
        if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", z->path);
        enum mq_status s = pread_at(z, buf, (size_t)tail, z->size - tail, err);
        for (uint64_t i = tail - END_SIZE + 1; s == MQ_OK && i-- > 0;) {
            if (mq_load_u32le(buf + i) == SIG_END && i + END_SIZE + mq_load_u16le(buf + i + 20) == tail) {
                at = (int64_t)i;
                memcpy(end, buf + at, END_SIZE);
                break;
            }
        }
        free(buf);
        MQ_TRY(s);
    }
    if (at < 0)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-eocd", "no end-of-central-directory record (%s)",
                     "not a zip file, or truncated");
    uint64_t end_pos = z->size - tail + (uint64_t)at;
    if (mq_load_u16le(end + 4) != 0 || mq_load_u16le(end + 6) != 0 || mq_load_u16le(end + 8) != mq_load_u16le(end + 10))
        return ZFAIL(z, MQ_E_UNSUPPORTED, "zip-multi-disk", "a zip split over several disks is %s", "not read");
    de->entries = mq_load_u16le(end + 10);
    de->cd_size = mq_load_u32le(end + 12);
    de->cd_offset = mq_load_u32le(end + 16);
    de->end_at = end_pos;
    /* zip64: a locator right before the end record */
    if (end_pos >= Z64_LOC_SIZE) {
        uint8_t loc[Z64_LOC_SIZE];
        MQ_TRY(pread_at(z, loc, sizeof loc, end_pos - Z64_LOC_SIZE, err));
        if (mq_load_u32le(loc) == SIG_Z64_LOC) {
            uint64_t z64 = mq_load_u64le(loc + 8);
            if (mq_load_u32le(loc + 4) != 0 || mq_load_u32le(loc + 16) > 1)
                return ZFAIL(z, MQ_E_UNSUPPORTED, "zip-multi-disk", "a zip split over several disks is %s", "not read");
            if (z64 > end_pos - Z64_LOC_SIZE || end_pos - Z64_LOC_SIZE - z64 < Z64_END_SIZE)
                return ZFAIL(z, MQ_E_CORRUPT, "zip64", "the zip64 end record offset %llu is outside the file",
                             (unsigned long long)z64);
            uint8_t r[Z64_END_SIZE];
            MQ_TRY(pread_at(z, r, sizeof r, z64, err));
            if (mq_load_u32le(r) != SIG_Z64_END)
                return ZFAIL(z, MQ_E_CORRUPT, "zip64", "no zip64 end record at offset %llu", (unsigned long long)z64);
            if (mq_load_u32le(r + 16) != 0 || mq_load_u32le(r + 20) != 0 || mq_load_u64le(r + 24) != mq_load_u64le(r + 32))
                return ZFAIL(z, MQ_E_UNSUPPORTED, "zip-multi-disk", "a zip split over several disks is %s", "not read");
            de->entries = mq_load_u64le(r + 32);
            de->cd_size = mq_load_u64le(r + 40);
            de->cd_offset = mq_load_u64le(r + 48);
            de->end_at = z64;
        }
    }
    uint64_t cd_end;
    if (mq_ckd_add_u64(&cd_end, de->cd_offset, de->cd_size) || cd_end > de->end_at)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-cd-range", "central directory [%llu, +%llu) runs past its end record at %llu",
                     (unsigned long long)de->cd_offset, (unsigned long long)de->cd_size, (unsigned long long)de->end_at);
    if (de->cd_size > MAX_CD_BYTES || de->entries > MAX_ENTRIES)
        return ZFAIL(z, MQ_E_LIMIT, "zip-cd-limit", "%llu entries in a %llu-byte central directory (at most %u entries, %u bytes)",
                     (unsigned long long)de->entries, (unsigned long long)de->cd_size, MAX_ENTRIES, MAX_CD_BYTES);
    if (de->entries * CENTRAL_SIZE > de->cd_size)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-cd-range", "%llu entries cannot fit in a %llu-byte central directory",
                     (unsigned long long)de->entries, (unsigned long long)de->cd_size);
    return MQ_OK;
}

/* The zip64 extra field of one central entry: fills the saturated 32-bit fields. */
static int read_zip64_extra(const uint8_t *x, size_t xlen, struct mq_zip_entry *e, bool need_u, bool need_c, bool need_o)
{
    struct mq_span sp = {x, xlen, 0};
    while (mq_span_left(&sp) >= 4) {
        const uint8_t *h;
        mq_span_bytes(&sp, 4, &h);
        uint16_t id = mq_load_u16le(h), n = mq_load_u16le(h + 2);
        const uint8_t *d;
        if (mq_span_bytes(&sp, n, &d)) return 1;
        if (id != 0x0001) continue;
        struct mq_span f = {d, n, 0};
        if (need_u && mq_span_u64le(&f, &e->usize)) return 1;
        if (need_c && mq_span_u64le(&f, &e->csize)) return 1;
        if (need_o && mq_span_u64le(&f, &e->local_offset)) return 1;
        return 0;
    }
    return need_u || need_c || need_o;
}

static enum mq_status read_central(struct mq_zip *z, const struct dir_end *de, struct mq_error *err)
{
    uint8_t *cd = malloc(de->cd_size ? (size_t)de->cd_size : 1);
    z->e = calloc(de->entries ? (size_t)de->entries : 1, sizeof *z->e);
    if (!cd || !z->e) {
        free(cd);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory for the zip directory", z->path);
    }
    enum mq_status s = pread_at(z, cd, (size_t)de->cd_size, de->cd_offset, err);
    struct mq_span sp = {cd, (size_t)de->cd_size, 0};
    for (uint64_t i = 0; i < de->entries && s == MQ_OK; i++) {
        const uint8_t *h, *name, *extra, *comment;
        if (mq_span_bytes(&sp, CENTRAL_SIZE, &h) || mq_load_u32le(h) != SIG_CENTRAL) {
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-entry", "central directory entry %llu is truncated or has no signature",
                      (unsigned long long)i);
            break;
        }
        uint16_t flags = mq_load_u16le(h + 8), method = mq_load_u16le(h + 10);
        uint16_t nl = mq_load_u16le(h + 28), xl = mq_load_u16le(h + 30), cl = mq_load_u16le(h + 32);
        if (mq_span_bytes(&sp, nl, &name) || mq_span_bytes(&sp, xl, &extra) || mq_span_bytes(&sp, cl, &comment)) {
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-entry", "central directory entry %llu runs past the directory",
                      (unsigned long long)i);
            break;
        }
        if (nl == 0 || memchr(name, 0, nl)) {
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-name", "entry %llu has an empty name or a NUL byte in its name",
                      (unsigned long long)i);
            break;
        }
        struct mq_zip_entry *e = &z->e[z->n];
        e->name = strndup((const char *)name, nl);
        if (!e->name) {
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", z->path);
            break;
        }
        z->n++;
        e->method = method;
        e->crc32 = mq_load_u32le(h + 16);
        e->csize = mq_load_u32le(h + 20);
        e->usize = mq_load_u32le(h + 24);
        e->local_offset = mq_load_u32le(h + 42);
        if (flags & 0x41)
            s = ZFAIL(z, MQ_E_UNSUPPORTED, "zip-encrypted", "entry '%s' is encrypted", e->name);
        else if (method != MQ_ZIP_STORED && method != MQ_ZIP_DEFLATED)
            s = ZFAIL(z, MQ_E_UNSUPPORTED, "zip-method", "entry '%s' uses compression method %u (only stored and deflated are read)",
                      e->name, method);
        else if (mq_load_u16le(h + 34) != 0)
            s = ZFAIL(z, MQ_E_UNSUPPORTED, "zip-multi-disk", "entry '%s' starts on another disk", e->name);
        else if (read_zip64_extra(extra, xl, e, e->usize == 0xFFFFFFFFu, e->csize == 0xFFFFFFFFu,
                                  e->local_offset == 0xFFFFFFFFu))
            s = ZFAIL(z, MQ_E_CORRUPT, "zip64", "entry '%s' has a saturated size or offset and no zip64 extra field for it",
                      e->name);
        else if (method == MQ_ZIP_STORED && e->csize != e->usize)
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-stored-size", "stored entry '%s' has %llu compressed and %llu uncompressed bytes",
                      e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
    }
    if (s == MQ_OK && mq_span_left(&sp) != 0)
        s = ZFAIL(z, MQ_E_CORRUPT, "zip-entry", "%zu bytes after the %llu entries the directory declares",
                  mq_span_left(&sp), (unsigned long long)de->entries);
    free(cd);
    return s;
}

/* Local headers: inside the file, consistent with the directory; data before the directory. */
static enum mq_status check_local(struct mq_zip *z, struct mq_zip_entry *e, uint64_t cd_offset, struct mq_error *err)
{
    uint8_t h[LOCAL_SIZE];
    if (e->local_offset > cd_offset || cd_offset - e->local_offset < LOCAL_SIZE)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-local", "entry '%s': local header offset %llu is outside the entries' area [0, %llu)",
                     e->name, (unsigned long long)e->local_offset, (unsigned long long)cd_offset);
    MQ_TRY(pread_at(z, h, sizeof h, e->local_offset, err));
    size_t nl = mq_load_u16le(h + 26), xl = mq_load_u16le(h + 28);
    if (mq_load_u32le(h) != SIG_LOCAL)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-local", "entry '%s': no local header at offset %llu", e->name,
                     (unsigned long long)e->local_offset);
    if (mq_load_u16le(h + 8) != e->method)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-local", "entry '%s': local header and directory disagree on the method", e->name);
    e->data_offset = e->local_offset + LOCAL_SIZE + nl + xl; /* <= cd_offset + 2^17: no overflow */
    uint64_t end;
    if (mq_ckd_add_u64(&end, e->data_offset, e->csize) || end > cd_offset)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-data-range", "entry '%s': data [%llu, +%llu) runs past the entries' area (%llu bytes)",
                     e->name, (unsigned long long)e->data_offset, (unsigned long long)e->csize,
                     (unsigned long long)cd_offset);
    if (nl != strlen(e->name))
        return ZFAIL(z, MQ_E_CORRUPT, "zip-local", "entry '%s': local header names another file", e->name);
    char name[65536];
    MQ_TRY(pread_at(z, name, nl, e->local_offset + LOCAL_SIZE, err));
    if (memcmp(name, e->name, nl) != 0)
        return ZFAIL(z, MQ_E_CORRUPT, "zip-local", "entry '%s': local header names another file", e->name);
    return MQ_OK;
}

enum mq_status mq_zip_open(struct mq_zip *z, int fd, const char *path, uint64_t size, struct mq_error *err)
{
    memset(z, 0, sizeof *z);
    z->fd = fd;
    z->path = path;
    z->size = size;
    struct dir_end de = {0};
    MQ_TRY(read_end(z, &de, err));
    MQ_TRY(read_central(z, &de, err));
    for (size_t i = 0; i < z->n; i++) MQ_TRY(check_local(z, &z->e[i], de.cd_offset, err));
    struct mq_zip_entry **by_off = malloc((z->n ? z->n : 1) * sizeof *by_off);
    if (!by_off) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", z->path);
    for (size_t i = 0; i < z->n; i++) by_off[i] = &z->e[i];
    qsort(by_off, z->n, sizeof *by_off, cmp_local);
    enum mq_status s = MQ_OK;
    for (size_t i = 1; i < z->n && s == MQ_OK; i++)
        if (by_off[i]->local_offset < by_off[i - 1]->data_offset + by_off[i - 1]->csize)
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-overlap", "entries '%s' and '%s' overlap", by_off[i - 1]->name,
                      by_off[i]->name);
    free(by_off);
    MQ_TRY(s);
    qsort(z->e, z->n, sizeof *z->e, cmp_name);
    for (size_t i = 1; i < z->n; i++)
        if (strcmp(z->e[i - 1].name, z->e[i].name) == 0)
            return ZFAIL(z, MQ_E_CORRUPT, "zip-duplicate", "two entries are named '%s'", z->e[i].name);
    return MQ_OK;
}

const struct mq_zip_entry *mq_zip_find(const struct mq_zip *z, const char *name)
{
    struct mq_zip_entry key = {.name = (char *)name};
    return z->n ? bsearch(&key, z->e, z->n, sizeof *z->e, cmp_name) : NULL;
}

/* Inflates a raw deflate stream of e->csize bytes into out[0, e->usize]; more output is refused. */
static enum mq_status inflate_entry(const struct mq_zip *z, const struct mq_zip_entry *e, uint8_t *out,
                                    struct mq_error *err)
{
    uint8_t in[1 << 16];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", z->path);
    zs.next_out = out;
    zs.avail_out = (uInt)(e->usize + 1); /* one byte more than declared: room to notice a bomb */
    enum mq_status s = MQ_OK;
    int zr = Z_OK;
    for (uint64_t at = 0; zr != Z_STREAM_END && s == MQ_OK;) {
        if (zs.avail_in == 0) {
            if (at == e->csize) {
                s = ZFAIL(z, MQ_E_CORRUPT, "zip-inflate", "entry '%s': deflate data ends early (%lu of %llu bytes)", e->name,
                          zs.total_out, (unsigned long long)e->usize);
                break;
            }
            size_t n = e->csize - at < sizeof in ? (size_t)(e->csize - at) : sizeof in;
            s = mq_pread_full(z->fd, z->path, in, n, e->data_offset + at, err);
            at += n;
            zs.next_in = in;
            zs.avail_in = (uInt)n;
            if (s != MQ_OK) break;
        }
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zs.total_out > e->usize)
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-inflate", "entry '%s' inflates to more than its declared %llu bytes", e->name,
                      (unsigned long long)e->usize);
        else if (zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && zs.avail_in == 0))
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-inflate", "entry '%s': bad deflate data (%s)", e->name,
                      zs.msg ? zs.msg : "zlib error");
    }
    if (s == MQ_OK && zs.total_out != e->usize)
        s = ZFAIL(z, MQ_E_CORRUPT, "zip-inflate", "entry '%s' inflates to %lu bytes, the directory says %llu", e->name,
                  zs.total_out, (unsigned long long)e->usize);
    inflateEnd(&zs);
    return s;
}

enum mq_status mq_zip_read_entry(const struct mq_zip *z, const struct mq_zip_entry *e, uint64_t cap, uint8_t **out,
                                 size_t *len, struct mq_error *err)
{
    *out = NULL;
    if (e->usize > cap)
        return ZFAIL(z, MQ_E_LIMIT, "zip-entry-limit", "entry '%s' holds %llu bytes, over the %llu-byte limit", e->name,
                     (unsigned long long)e->usize, (unsigned long long)cap);
    uint8_t *buf = malloc((size_t)e->usize + 2);
    if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory for entry '%s'", z->path, e->name);
    enum mq_status s = e->method == MQ_ZIP_STORED
                           ? mq_pread_full(z->fd, z->path, buf, (size_t)e->usize, e->data_offset, err)
                           : inflate_entry(z, e, buf, err);
    if (s == MQ_OK) {
        uLong crc = crc32(0L, Z_NULL, 0);
        for (uint64_t at = 0; at < e->usize;) { /* crc32() takes a uInt length */
            uInt n = e->usize - at < (1u << 30) ? (uInt)(e->usize - at) : (1u << 30);
            crc = crc32(crc, buf + at, n);
            at += n;
        }
        if ((uint32_t)crc != e->crc32)
            s = ZFAIL(z, MQ_E_CORRUPT, "zip-crc", "entry '%s' does not match its CRC-32 %08x", e->name, (unsigned)e->crc32);
    }
    if (s != MQ_OK) {
        free(buf);
        return s;
    }
    buf[e->usize] = 0;
    *out = buf;
    *len = (size_t)e->usize;
    return MQ_OK;
}
