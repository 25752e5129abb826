/*
** mkbadgguf - writes the GGUF reader fixtures under TESTDATA_DIR/gguf/ (committed; rerun to
** regenerate, tests/test_gguf_read.c checks the bytes):
**
**   gguf/bad/CHECK[--variant].gguf   one malformed file per validation rule of the reader; it
**                                    must fail with exactly CHECK
**   gguf/ok/NAME.gguf                valid edge cases that modelq and ggml must both accept
**
** The bytes are assembled here field by field (GGUF v3: "GGUF", u32 version, u64 n_tensors,
** u64 n_kv, key/values, tensor infos, zero padding to the alignment, data), deliberately without
** modelq's GGUF writer or its tables, so a bug there cannot hide in the fixtures.
**
** usage: mkbadgguf TESTDATA_DIR
*/
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"

static const char *root;

/* ---- a growable little-endian byte buffer ---- */

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) dev_die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void le(struct buf *b, uint64_t v, int bytes)
{
    unsigned char x[8];
    for (int i = 0; i < bytes; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, (size_t)bytes);
}
static void u8(struct buf *b, uint64_t v) { le(b, v, 1); }
static void u16(struct buf *b, uint64_t v) { le(b, v, 2); }
static void u32(struct buf *b, uint64_t v) { le(b, v, 4); }
static void u64(struct buf *b, uint64_t v) { le(b, v, 8); }
static void f32(struct buf *b, float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    u32(b, x);
}
static void f64(struct buf *b, double d)
{
    uint64_t x;
    memcpy(&x, &d, 8);
    u64(b, x);
}
/* GGUF string: u64 length, bytes (no NUL). */
static void strn(struct buf *b, const char *s, size_t n)
{
    u64(b, n);
    put(b, s, n);
}
static void str(struct buf *b, const char *s) { strn(b, s, strlen(s)); }

static void pad_to(struct buf *b, uint64_t align)
{
    while (b->n % align) u8(b, 0);
}

/* Writes b to ROOT/gguf/SUB/NAME and frees it. */
static void save(const char *sub, const char *name, struct buf *b)
{
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/gguf/%s", root, sub);
    dev_mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (b->n && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0) {
        dev_fail("cannot write %s: %s", path, strerror(errno));
    }
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- GGUF pieces ---- */

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 };
enum { G_F32 = 0, G_F16 = 1, G_Q8_0 = 8, G_I8 = 24, G_I32 = 26, G_F64 = 28, G_BF16 = 30 };

static void head(struct buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}

/* Key/values are collected in a buffer with their count. */
struct kvs {
    struct buf b;
    uint64_t n;
};
static void kv_key(struct kvs *k, const char *key, uint32_t type)
{
    str(&k->b, key);
    u32(&k->b, type);
    k->n++;
}
static void kv_u32(struct kvs *k, const char *key, uint32_t v)
{
    kv_key(k, key, T_U32);
    u32(&k->b, v);
}
static void kv_str(struct kvs *k, const char *key, const char *v)
{
    kv_key(k, key, T_STRING);
    str(&k->b, v);
}
static void kv_arr(struct kvs *k, const char *key, uint32_t elem, uint64_t count)
{
    kv_key(k, key, T_ARRAY);
    u32(&k->b, elem);
    u64(&k->b, count);
}

/* Elements per block and bytes per block of the few ggml types the fixtures use (ggml.c). */
static bool gtype(int32_t type, uint64_t *blck, uint64_t *bytes)
{
    switch (type) {
    case G_F32: *blck = 1, *bytes = 4; return true;
    case G_F16: case G_BF16: *blck = 1, *bytes = 2; return true;
    case G_Q8_0: *blck = 32, *bytes = 34; return true;
    case G_I8: *blck = 1, *bytes = 1; return true;
    case G_I32: *blck = 1, *bytes = 4; return true;
    case G_F64: *blck = 1, *bytes = 8; return true;
    default: return false;
    }
}

#define BIG ((uint64_t)1 << 20) /* data larger than this is never written (overflow fixtures) */

struct tensor {
    const char *name;
    size_t name_len;      /* 0: strlen(name) */
    uint32_t n_dims;
    int64_t ne[5];
    int32_t type;
    const void *data;     /* NULL: bytes i & 0xff */
    bool fix_off;         /* write `off` instead of the contiguous offset */
    uint64_t off;
};

/* ggml_nbytes for the types above; 0 for unknown types, negative or absurd shapes. */
static uint64_t nbytes(const struct tensor *t)
{
    uint64_t blck, bytes, n = 1;
    if (!gtype(t->type, &blck, &bytes)) return 0;
    for (uint32_t d = 0; d < t->n_dims && d < 5; d++) {
        if (t->ne[d] < 0 || (t->ne[d] && n > UINT64_MAX / (uint64_t)t->ne[d])) return 0;
        n *= (uint64_t)t->ne[d];
    }
    if (n / blck > UINT64_MAX / bytes) return 0;
    return n / blck * bytes;
}

static uint64_t pad_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/*
** A whole file the way ggml's writer lays it out: header, key/values, tensor infos with
** contiguous offsets, zero padding to `align`, each tensor's data followed by padding (the last
** one only when final_pad). Returns the bytes for the caller to patch or cut, then save().
*/
static struct buf model(uint32_t version, const struct kvs *kv, const struct tensor *ts, size_t n, uint64_t align,
                        bool final_pad)
{
    struct buf b = {0};
    head(&b, version, n, kv ? kv->n : 0);
    if (kv) put(&b, kv->b.p, kv->b.n);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tensor *t = &ts[i];
        strn(&b, t->name, t->name_len ? t->name_len : strlen(t->name));
        u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) u64(&b, (uint64_t)t->ne[d]);
        u32(&b, (uint32_t)t->type);
        u64(&b, t->fix_off ? t->off : off);
        uint64_t nb = nbytes(t);
        if (nb < BIG) off += pad_up(nb, align);
    }
    pad_to(&b, align);
    for (size_t i = 0; i < n; i++) {
        uint64_t nb = nbytes(&ts[i]);
        if (nb >= BIG) continue;
        for (uint64_t k = 0; k < nb; k++) u8(&b, ts[i].data ? ((const unsigned char *)ts[i].data)[k] : (k & 0xff));
        if (i + 1 < n || final_pad) pad_to(&b, align);
    }
    return b;
}

static void kvs_free(struct kvs *k) { free(k->b.p); }

/* ---- bad files: one per check of formats/gguf_read.c ---- */

#define F32_4 {.name = "w", .n_dims = 1, .ne = {4}, .type = G_F32}

/* A one-tensor file "w" F32[4] with key/values k (may be NULL). */
static void bad_one(const char *name, const struct kvs *k, struct tensor t)
{
    struct buf b = model(3, k, &t, 1, 32, true);
    save("bad", name, &b);
}

static void bad_header(void)
{
    struct buf b = {0};
    head(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    save("bad", "magic.gguf", &b);
    put(&b, "GGU", 3);
    save("bad", "magic--short.gguf", &b);
    put(&b, "GGUF\x03\x00", 6);
    save("bad", "truncated.gguf", &b);
    head(&b, 3, 0, 0);
    b.n -= 4;
    save("bad", "truncated--n-kv.gguf", &b);

    static const struct {
        const char *name;
        uint32_t version;
    } versions[] = {{"version-zero.gguf", 0},
                    {"version-byteswapped.gguf", 0x03000000u},
                    {"version-byteswapped--v2.gguf", 0x02000000u},
                    {"version-1.gguf", 1},
                    {"version-newer.gguf", 4}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        head(&b, versions[i].version, 0, 0);
        save("bad", versions[i].name, &b);
    }
    head(&b, 3, UINT64_MAX, 0); /* -1 as i64 */
    save("bad", "tensor-count.gguf", &b);
    head(&b, 3, (uint64_t)1 << 63, 0);
    save("bad", "tensor-count--min.gguf", &b);
    head(&b, 3, 262145, 0);
    save("bad", "tensor-count-limit.gguf", &b);
    head(&b, 3, 0, UINT64_MAX - 1);
    save("bad", "kv-count.gguf", &b);
    head(&b, 3, 0, 16385);
    save("bad", "kv-count-limit.gguf", &b);
}

static void bad_kv(void)
{
    struct kvs k = {0};
    struct tensor w = F32_4;
    /* an array of 2^24 UINT64 (= 128 MiB) would make the header larger than the cap */
    kv_arr(&k, "big", T_U64, (uint64_t)1 << 24);
    bad_one("header-limit.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);

    struct buf b = {0};
    head(&b, 3, 0, 1);
    u64(&b, (64u << 20) + 1); /* a key of 64 MiB + 1 */
    put(&b, "key", 3);
    save("bad", "string-length-limit.gguf", &b);
    head(&b, 3, 0, 1);
    str(&b, "general.name");
    u32(&b, T_STRING);
    u64(&b, (uint64_t)1 << 40); /* also over gguf.cpp's 1 GiB */
    save("bad", "string-length-limit--huge.gguf", &b);
    head(&b, 3, 0, 1);
    str(&b, "general.name");
    u32(&b, T_STRING);
    u64(&b, 100);
    put(&b, "short", 5);
    save("bad", "string-within-file.gguf", &b);
    head(&b, 3, 0, 1);
    u64(&b, 50);
    put(&b, "general.", 8);
    save("bad", "string-within-file--key.gguf", &b);
    head(&b, 3, 0, 1);
    str(&b, "general.name");
    u32(&b, T_U32);
    put(&b, "\x01\x00", 2);
    save("bad", "truncated--value.gguf", &b);

    kv_arr(&k, "a", T_U8, ((uint64_t)1 << 24) + 1);
    bad_one("array-count-limit.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_arr(&k, "a", T_U8, (uint64_t)1 << 40); /* also over gguf.cpp's 2^30 */
    bad_one("array-count-limit--huge.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    head(&b, 3, 0, 1);
    kv_arr(&k, "a", T_U32, 1000);
    put(&b, k.b.p, k.b.n);
    u32(&b, 7);
    save("bad", "array-within-file.gguf", &b);
    kvs_free(&k), memset(&k, 0, sizeof k);
    head(&b, 3, 0, 1);
    kv_arr(&k, "tokenizer.ggml.tokens", T_STRING, 100);
    put(&b, k.b.p, k.b.n);
    str(&b, "a");
    str(&b, "b");
    save("bad", "array-within-file--strings.gguf", &b);
    kvs_free(&k), memset(&k, 0, sizeof k);

    kv_str(&k, "", "empty key");
    bad_one("key-empty.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    str(&k.b, "general.name");
    k.b.p[8 + 7] = '\0'; /* "general\0name" */
    u32(&k.b, T_U32);
    u32(&k.b, 1);
    k.n = 1;
    bad_one("key-nul.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_str(&k, "general.name", "a");
    kv_u32(&k, "general.name", 2);
    bad_one("key-duplicate.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);

    kv_key(&k, "x", 13);
    u32(&k.b, 0);
    bad_one("value-type.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_key(&k, "x", 0xFFFFFFFFu);
    u32(&k.b, 0);
    bad_one("value-type--negative.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_arr(&k, "x", 13, 1);
    u32(&k.b, 0);
    bad_one("value-type--array-elem.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_arr(&k, "x", T_ARRAY, 1);
    u32(&k.b, T_U8);
    u64(&k.b, 1);
    u8(&k.b, 0);
    bad_one("nested-array.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);

    kv_key(&k, "general.alignment", T_U64);
    u64(&k.b, 32);
    bad_one("alignment-type.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_arr(&k, "general.alignment", T_U32, 1);
    u32(&k.b, 32);
    bad_one("alignment-type--array.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_u32(&k, "general.alignment", 48);
    bad_one("alignment-value.gguf", &k, w);
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_u32(&k, "general.alignment", 0);
    bad_one("alignment-value--zero.gguf", &k, w);
    kvs_free(&k);
}

static void bad_tensors(void)
{
    static const char long_name[] = "a_name_of_sixty_four_bytes_which_is_one_more_than_ggml_accepts__";
    _Static_assert(sizeof long_name - 1 == 64, "64-byte name");
    bad_one("tensor-name-length.gguf", NULL, (struct tensor){.name = long_name, .n_dims = 1, .ne = {4}, .type = G_F32});
    bad_one("tensor-name-nul.gguf", NULL, (struct tensor){.name = "w\0x", .name_len = 3, .n_dims = 1, .ne = {4}});
    {
        struct tensor two[2] = {F32_4, F32_4};
        struct buf b = model(3, NULL, two, 2, 32, true);
        save("bad", "tensor-name-duplicate.gguf", &b);
    }
    {
        struct buf b = {0};
        head(&b, 3, 1, 0);
        str(&b, "w");
        u32(&b, 1);
        save("bad", "truncated--tensor-info.gguf", &b);
    }
    {
        struct buf b = {0};
        head(&b, 3, 1, 0);
        u64(&b, 50);
        put(&b, "blk.", 4);
        save("bad", "string-within-file--tensor-name.gguf", &b);
    }
    bad_one("n-dims.gguf", NULL, (struct tensor){.name = "w", .n_dims = 5, .ne = {4, 1, 1, 1, 1}, .type = G_F32});
    bad_one("ne-negative.gguf", NULL, (struct tensor){.name = "w", .n_dims = 2, .ne = {4, -1}, .type = G_F32});
    /* 2^62 x 5 elements; ggml's own product wraps to 2^62 > 0, so it applies its check too */
    bad_one("element-overflow.gguf", NULL,
            (struct tensor){.name = "w", .n_dims = 2, .ne = {(int64_t)1 << 62, 5}, .type = G_F32});
    bad_one("element-overflow--int64-max.gguf", NULL,
            (struct tensor){.name = "w", .n_dims = 2, .ne = {1, INT64_MAX}, .type = G_I8});
    bad_one("type-known.gguf", NULL, (struct tensor){.name = "w", .n_dims = 1, .ne = {4}, .type = 100});
    bad_one("type-known--removed.gguf", NULL, (struct tensor){.name = "w", .n_dims = 1, .ne = {32}, .type = 4});
    bad_one("type-known--negative.gguf", NULL, (struct tensor){.name = "w", .n_dims = 1, .ne = {4}, .type = -1});
    bad_one("type-known--newer.gguf", NULL, (struct tensor){.name = "w", .n_dims = 1, .ne = {64}, .type = 42});
    bad_one("block-multiple.gguf", NULL, (struct tensor){.name = "w", .n_dims = 2, .ne = {16, 2}, .type = G_Q8_0});
    /* 2^62 F64 elements: 2^65 bytes */
    bad_one("size-overflow.gguf", NULL,
            (struct tensor){.name = "w", .n_dims = 2, .ne = {(int64_t)1 << 31, (int64_t)1 << 31}, .type = G_F64});
    {
        /* two tensors of 2^63 bytes each at their correct offsets: the data section is 2^64 bytes */
        struct tensor two[2] = {{.name = "a", .n_dims = 1, .ne = {(int64_t)1 << 61}, .type = G_F32, .fix_off = true},
                                {.name = "b", .n_dims = 1, .ne = {(int64_t)1 << 61}, .type = G_F32, .fix_off = true,
                                 .off = (uint64_t)1 << 63}};
        struct buf b = model(3, NULL, two, 2, 32, true);
        save("bad", "size-overflow--data-section.gguf", &b);
    }
    {
        struct tensor two[2] = {F32_4, {.name = "v", .n_dims = 1, .ne = {4}, .type = G_F32, .fix_off = true, .off = 64}};
        struct buf b = model(3, NULL, two, 2, 32, true);
        save("bad", "offset-contiguous.gguf", &b);
        two[1].off = 16; /* inside the first tensor's padding */
        b = model(3, NULL, two, 2, 32, true);
        save("bad", "offset-contiguous--overlap.gguf", &b);
        two[0].fix_off = true;
        two[0].off = 32;
        two[1].fix_off = false;
        b = model(3, NULL, two, 2, 32, true);
        save("bad", "offset-contiguous--first.gguf", &b);
    }
    {
        /* a zero-size tensor, and the file ends with the tensor infos, before the padding */
        struct tensor t = {.name = "w", .n_dims = 1, .ne = {0}, .type = G_F32};
        struct buf b = model(3, NULL, &t, 1, 32, true);
        b.n = 24 + 8 + 1 + 4 + 8 + 4 + 8;
        save("bad", "data-within-file.gguf", &b);
    }
    {
        struct tensor t = {.name = "w", .n_dims = 1, .ne = {8}, .type = G_F32};
        struct buf b = model(3, NULL, &t, 1, 32, true);
        b.n -= 16; /* header 57 + pad 7, then 32 data bytes (already aligned): keep 16 of them */
        save("bad", "tensor-within-file.gguf", &b);
    }
}

/* ---- ok files ---- */

static void ok_files(void)
{
    struct buf b = {0};
    head(&b, 3, 0, 0);
    save("ok", "empty.gguf", &b);

    struct kvs k = {0};
    kv_str(&k, "general.architecture", "none");
    kv_str(&k, "general.name", "zero tensors");
    b = model(3, &k, NULL, 0, 32, true);
    save("ok", "zero-tensors.gguf", &b);
    kvs_free(&k), memset(&k, 0, sizeof k);

    /* alignment 1: tensors of 6, 5 and 4 bytes packed back to back */
    kv_u32(&k, "general.alignment", 1);
    {
        struct tensor ts[3] = {{.name = "h", .n_dims = 1, .ne = {3}, .type = G_F16},
                               {.name = "i", .n_dims = 1, .ne = {5}, .type = G_I8},
                               {.name = "f", .n_dims = 1, .ne = {1}, .type = G_F32}};
        b = model(3, &k, ts, 3, 1, true);
        save("ok", "align-1.gguf", &b);
    }
    kvs_free(&k), memset(&k, 0, sizeof k);
    kv_u32(&k, "general.alignment", 64);
    {
        struct tensor ts[2] = {{.name = "a", .n_dims = 1, .ne = {3}, .type = G_F32},
                               {.name = "b", .n_dims = 2, .ne = {2, 2}, .type = G_F32}};
        b = model(3, &k, ts, 2, 64, true);
        save("ok", "align-64.gguf", &b);
    }
    kvs_free(&k), memset(&k, 0, sizeof k);

    {
        struct tensor ts[2] = {{.name = "empty", .n_dims = 2, .ne = {4, 0}, .type = G_F32},
                               {.name = "after", .n_dims = 1, .ne = {2}, .type = G_F32}};
        b = model(3, NULL, ts, 2, 32, true);
        save("ok", "zero-size.gguf", &b);
    }
    {
        /* n_dims 0 (a scalar) and 4 with trailing 1s, as gguf-py writes them */
        struct tensor ts[2] = {{.name = "scalar", .n_dims = 0, .type = G_F32},
                               {.name = "four", .n_dims = 4, .ne = {2, 1, 1, 3}, .type = G_BF16}};
        b = model(3, NULL, ts, 2, 32, true);
        save("ok", "dims.gguf", &b);
    }
    {
        static const float v[3] = {1.0f, -2.0f, 3.0f};
        struct tensor t = {.name = "w", .n_dims = 1, .ne = {3}, .type = G_F32, .data = v};
        kv_str(&k, "general.architecture", "none");
        b = model(2, &k, &t, 1, 32, true);
        save("ok", "v2.gguf", &b);
        b = model(3, &k, &t, 1, 32, false);
        save("ok", "no-final-pad.gguf", &b);
        kvs_free(&k), memset(&k, 0, sizeof k);
    }
    {
        /* Q8_0 [32 x 2]: each block d = fp16 0.5 (0x3800), qs = -16 .. 15 */
        unsigned char q[68];
        for (int blk = 0; blk < 2; blk++) {
            q[blk * 34] = 0x00;
            q[blk * 34 + 1] = 0x38;
            for (int i = 0; i < 32; i++) q[blk * 34 + 2 + i] = (unsigned char)(signed char)(i - 16);
        }
        struct tensor ts[2] = {{.name = "q", .n_dims = 2, .ne = {32, 2}, .type = G_Q8_0, .data = q},
                               {.name = "i", .n_dims = 1, .ne = {2}, .type = G_I32}};
        kv_u32(&k, "general.quantization_version", 2);
        kv_u32(&k, "general.file_type", 7);
        b = model(3, &k, ts, 2, 32, true);
        save("ok", "q8_0.gguf", &b);
        kvs_free(&k), memset(&k, 0, sizeof k);
    }

    /* every value type, arrays of every element type, an empty array */
    kv_key(&k, "u8", T_U8), u8(&k.b, 200);
    kv_key(&k, "i8", T_I8), u8(&k.b, 0x80);
    kv_key(&k, "u16", T_U16), u16(&k.b, 65535);
    kv_key(&k, "i16", T_I16), u16(&k.b, 0x8000);
    kv_u32(&k, "u32", 4000000000u);
    kv_key(&k, "i32", T_I32), u32(&k.b, 0x80000000u);
    kv_key(&k, "f32", T_F32), f32(&k.b, 0.25f);
    kv_key(&k, "bool", T_BOOL), u8(&k.b, 1);
    kv_key(&k, "bool.two", T_BOOL), u8(&k.b, 2); /* any nonzero byte is true */
    kv_str(&k, "string", "h\xc3\xa9llo \"q\"\n");
    kv_key(&k, "u64", T_U64), u64(&k.b, UINT64_MAX);
    kv_key(&k, "i64", T_I64), u64(&k.b, (uint64_t)INT64_MIN);
    kv_key(&k, "f64", T_F64), f64(&k.b, -1.5);
    kv_arr(&k, "arr.u8", T_U8, 2), u8(&k.b, 1), u8(&k.b, 255);
    kv_arr(&k, "arr.i8", T_I8, 2), u8(&k.b, 1), u8(&k.b, 0xFF);
    kv_arr(&k, "arr.u16", T_U16, 2), u16(&k.b, 1), u16(&k.b, 65535);
    kv_arr(&k, "arr.i16", T_I16, 2), u16(&k.b, 1), u16(&k.b, 0xFFFF);
    kv_arr(&k, "arr.u32", T_U32, 2), u32(&k.b, 1), u32(&k.b, 0xFFFFFFFFu);
    kv_arr(&k, "arr.i32", T_I32, 2), u32(&k.b, 1), u32(&k.b, 0xFFFFFFFFu);
    kv_arr(&k, "arr.f32", T_F32, 2), f32(&k.b, 0.5f), f32(&k.b, -0.5f);
    kv_arr(&k, "arr.bool", T_BOOL, 3), u8(&k.b, 0), u8(&k.b, 1), u8(&k.b, 7);
    kv_arr(&k, "arr.string", T_STRING, 3), str(&k.b, "a"), str(&k.b, ""), str(&k.b, "ccc");
    kv_arr(&k, "arr.u64", T_U64, 2), u64(&k.b, 1), u64(&k.b, UINT64_MAX);
    kv_arr(&k, "arr.i64", T_I64, 2), u64(&k.b, 1), u64(&k.b, UINT64_MAX);
    kv_arr(&k, "arr.f64", T_F64, 2), f64(&k.b, 0.125), f64(&k.b, 1e300);
    kv_arr(&k, "arr.empty", T_U32, 0);
    kv_arr(&k, "arr.empty_strings", T_STRING, 0);
    b = model(3, &k, NULL, 0, 32, true);
    save("ok", "all-types.gguf", &b);
    kvs_free(&k), memset(&k, 0, sizeof k);

    /* a tiny llama: the configuration comes from the metadata (vocab from the token list) */
    kv_str(&k, "general.architecture", "llama");
    kv_u32(&k, "llama.block_count", 1);
    kv_u32(&k, "llama.context_length", 256);
    kv_u32(&k, "llama.embedding_length", 32);
    kv_u32(&k, "llama.feed_forward_length", 64);
    kv_u32(&k, "llama.attention.head_count", 4);
    kv_u32(&k, "llama.attention.head_count_kv", 2);
    kv_str(&k, "tokenizer.ggml.model", "llama");
    kv_arr(&k, "tokenizer.ggml.tokens", T_STRING, 8);
    for (int i = 0; i < 8; i++) {
        char tok[8];
        snprintf(tok, sizeof tok, "t%d", i);
        str(&k.b, tok);
    }
    {
        struct tensor ts[4] = {{.name = "token_embd.weight", .n_dims = 2, .ne = {32, 8}, .type = G_F16},
                               {.name = "blk.0.attn_norm.weight", .n_dims = 1, .ne = {32}, .type = G_F32},
                               {.name = "blk.0.attn_q.weight", .n_dims = 2, .ne = {32, 32}, .type = G_Q8_0},
                               {.name = "output_norm.weight", .n_dims = 1, .ne = {32}, .type = G_F32}};
        b = model(3, &k, ts, 4, 32, true);
        save("ok", "tiny-llama.gguf", &b);
    }
    kvs_free(&k);
}

int main(int argc, char **argv)
{
    dev_set_prog("mkbadgguf");
    if (argc != 2) {
        fprintf(stderr, "usage: mkbadgguf TESTDATA_DIR\n");
        return 2;
    }
    root = argv[1];
    bad_header();
    bad_kv();
    bad_tensors();
    ok_files();
    return dev_failures_report();
}
