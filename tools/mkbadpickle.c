/*
** mkbadpickle.c - writes the hostile PyTorch corpus: OUT/pytorch/bad/<case>.bin, each a zip (or
** not) crafted byte by byte, no Python involved. tests/test_pytorch.c regenerates it, compares it
** with testdata/pytorch/bad/ and checks each file's exact one-line refusal; the fuzz target
** tools/fuzz/fuzz_pytorch.c is seeded with it. Also OUT/pytorch/good.bin: the same builder's
** valid state dict (control: it must load), and OUT/pytorch/bad-crc-storage.bin, whose
** storage (not its pickle) fails its CRC-32, which only reading the data can find.
**
** Usage: mkbadpickle OUT_DIR
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "devutil.h"
#include "zipwrite.h"

struct pk {
    uint8_t b[1 << 16];
    size_t n;
};

static void raw(struct pk *p, const void *d, size_t n)
{
    if (p->n + n > sizeof p->b) dev_fail("pickle buffer full");
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void op(struct pk *p, uint8_t o) { raw(p, &o, 1); }
static void u32le(struct pk *p, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    raw(p, b, 4);
}
static void uni(struct pk *p, const char *s)
{
    op(p, 'X');
    u32le(p, (uint32_t)strlen(s));
    raw(p, s, strlen(s));
}
static void global(struct pk *p, const char *mod, const char *name)
{
    op(p, 'c');
    raw(p, mod, strlen(mod));
    op(p, '\n');
    raw(p, name, strlen(name));
    op(p, '\n');
}
static void i64(struct pk *p, int64_t v) /* LONG1 with 8 bytes: any int64 */
{
    op(p, 0x8a);
    op(p, 8);
    for (int i = 0; i < 8; i++) op(p, (uint8_t)((uint64_t)v >> (8 * i)));
}
static void odict(struct pk *p)
{
    global(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
}

struct tspec {
    const char *name, *key, *cls;
    int64_t numel, offset;
    int nd;
    int64_t shape[4], stride[4];
};

/* name, _rebuild_tensor_v2(('storage', cls, key, 'cpu', numel) PERSID, offset, shape, stride, False, OrderedDict()) */
static void tensor(struct pk *p, const struct tspec *t)
{
    uni(p, t->name);
    global(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '(');
    uni(p, "storage");
    global(p, "torch", t->cls ? t->cls : "FloatStorage");
    uni(p, t->key);
    uni(p, "cpu");
    i64(p, t->numel);
    op(p, 't');
    op(p, 'Q');
    i64(p, t->offset);
    op(p, '(');
    for (int d = 0; d < t->nd; d++) i64(p, t->shape[d]);
    op(p, 't');
    op(p, '(');
    for (int d = 0; d < t->nd; d++) i64(p, t->stride[d]);
    op(p, 't');
    op(p, 0x89);
    odict(p);
    op(p, 't');
    op(p, 'R');
}

static void sd_begin(struct pk *p)
{
    op(p, 0x80);
    op(p, 2);
    odict(p);
    op(p, '(');
}
static void sd_end(struct pk *p)
{
    op(p, 'u');
    op(p, '.');
}

static const struct tspec W = {"w", "0", "FloatStorage", 6, 0, 2, {2, 3}, {3, 1}};
static const float W_DATA[6] = {1, 2, 3, 4, 5, 6};

static const char *out_dir;

static void write_file(const char *name, const uint8_t *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pytorch/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) dev_fail("cannot write %s", path);
}

/* A torch.save-like zip: archive/data.pkl, archive/data/0 (W_DATA, or `data`), archive/version. */
static void write_zip(const char *name, const struct pk *p, const void *data, size_t dlen)
{
    struct zw_entry e[3] = {
        {.name = "archive/data.pkl", .data = p->b, .len = p->n},
        {.name = "archive/data/0", .data = data ? data : (const void *)W_DATA, .len = data ? dlen : sizeof W_DATA},
        {.name = "archive/version", .data = (const uint8_t *)"3\n", .len = 2},
    };
    struct zw_info info;
    size_t n;
    uint8_t *z = zw_build(e, 3, &n, &info);
    write_file(name, z, n);
    free(z);
}

static void write_entries(const char *name, const struct zw_entry *e, size_t k, size_t truncate_by)
{
    struct zw_info info;
    size_t n;
    uint8_t *z = zw_build(e, k, &n, &info);
    write_file(name, z, n - truncate_by);
    free(z);
}

/* A pickle that is just `body` after PROTO 2 (then STOP). */
static void write_body(const char *name, void (*body)(struct pk *))
{
    struct pk p = {.n = 0};
    op(&p, 0x80);
    op(&p, 2);
    body(&p);
    op(&p, '.');
    write_zip(name, &p, NULL, 0);
}

static void call1(struct pk *p, const char *mod, const char *fn, const char *arg)
{
    global(p, mod, fn);
    uni(p, arg);
    op(p, 0x85);
    op(p, 'R');
}
static void b_os_system(struct pk *p) { call1(p, "os", "system", "echo modelq-pwned > /tmp/modelq-pwned"); }
static void b_posix_system(struct pk *p) { call1(p, "posix", "system", "echo modelq-pwned > /tmp/modelq-pwned"); }
static void b_eval(struct pk *p) { call1(p, "builtins", "eval", "__import__('os').system('id')"); }
static void b_exec(struct pk *p) { call1(p, "builtins", "exec", "import os; os.system('id')"); }
static void b_stack_global(struct pk *p)
{
    uni(p, "subprocess");
    uni(p, "Popen");
    op(p, 0x93);
    uni(p, "id");
    op(p, 0x85);
    op(p, 'R');
}
static void b_nested_reduce(struct pk *p) /* OrderedDict(OrderedDict()) */
{
    global(p, "collections", "OrderedDict");
    odict(p);
    op(p, 0x85);
    op(p, 'R');
}
static void b_rebuild_wrong_args(struct pk *p) /* _rebuild_tensor_v2('x', 0, (), (), False, OrderedDict()) */
{
    global(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    uni(p, "x");
    i64(p, 0);
    op(p, ')');
    op(p, ')');
    op(p, 0x89);
    odict(p);
    op(p, 't');
    op(p, 'R');
}
static void b_build_odict(struct pk *p) /* OrderedDict() BUILD {'__class__': 'x'} */
{
    odict(p);
    op(p, '}');
    uni(p, "__class__");
    uni(p, "x");
    op(p, 's');
    op(p, 'b');
}
static void b_inst(struct pk *p)
{
    op(p, '(');
    uni(p, "id");
    op(p, 'i');
    raw(p, "os\nsystem\n", 10);
}
static void b_obj(struct pk *p)
{
    op(p, '(');
    global(p, "collections", "OrderedDict");
    op(p, 'o');
}
static void b_newobj(struct pk *p)
{
    global(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 0x81);
}
static void b_memo_unset(struct pk *p)
{
    op(p, 'h');
    op(p, 5);
}
static void b_memo_huge(struct pk *p)
{
    op(p, ')');
    op(p, 'r');
    u32le(p, 0xFFFFFFF0u);
}
static void b_unicode_huge(struct pk *p)
{
    op(p, 'X');
    u32le(p, 0x7FFFFFFFu);
    raw(p, "abc", 3);
}
static void b_unicode_past_end(struct pk *p)
{
    op(p, 'X');
    u32le(p, 1000);
    raw(p, "abc", 3);
}
static void b_bytes8_huge(struct pk *p)
{
    op(p, 0x8e);
    for (int i = 0; i < 7; i++) op(p, 0xFF);
    op(p, 0x7F);
}
static void b_deep_marks(struct pk *p)
{
    for (int i = 0; i < 300; i++) op(p, '(');
}
static void b_reduce_str(struct pk *p)
{
    uni(p, "os.system");
    op(p, ')');
    op(p, 'R');
}
static void b_persid_bad(struct pk *p) /* ('storage', 'FloatStorage' as a string, ...) */
{
    op(p, '(');
    uni(p, "storage");
    uni(p, "FloatStorage");
    uni(p, "0");
    uni(p, "cpu");
    i64(p, 6);
    op(p, 't');
    op(p, 'Q');
}
static void b_list(struct pk *p) { op(p, ']'); }
static void b_text_protocol(struct pk *p) { raw(p, "I42\n", 4); }

static void with_tensor(const char *name, const struct tspec *t, const void *data, size_t dlen)
{
    struct pk p = {.n = 0};
    sd_begin(&p);
    tensor(&p, t);
    sd_end(&p);
    write_zip(name, &p, data, dlen);
}

int main(int argc, char **argv)
{
    dev_set_prog("mkbadpickle");
    if (argc != 2) dev_fail("usage: mkbadpickle OUT_DIR");
    out_dir = argv[1];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/pytorch", out_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/pytorch/bad", out_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) dev_fail("cannot create %s", dir);

    with_tensor("good.bin", &W, NULL, 0);
    /* pickle: names and opcodes */
    write_body("bad/global-os-system.bin", b_os_system);
    write_body("bad/global-posix-system.bin", b_posix_system);
    write_body("bad/global-builtins-eval.bin", b_eval);
    write_body("bad/global-builtins-exec.bin", b_exec);
    write_body("bad/stack-global-subprocess.bin", b_stack_global);
    write_body("bad/nested-reduce.bin", b_nested_reduce);
    write_body("bad/rebuild-wrong-args.bin", b_rebuild_wrong_args);
    write_body("bad/build-ordered-dict.bin", b_build_odict);
    write_body("bad/inst.bin", b_inst);
    write_body("bad/obj.bin", b_obj);
    write_body("bad/newobj.bin", b_newobj);
    write_body("bad/memo-unset.bin", b_memo_unset);
    write_body("bad/memo-huge-index.bin", b_memo_huge);
    write_body("bad/binunicode-huge.bin", b_unicode_huge);
    write_body("bad/binunicode-past-end.bin", b_unicode_past_end);
    write_body("bad/binbytes8-huge.bin", b_bytes8_huge);
    write_body("bad/deep-marks.bin", b_deep_marks);
    write_body("bad/reduce-string.bin", b_reduce_str);
    write_body("bad/persid-not-storage.bin", b_persid_bad);
    write_body("bad/not-a-state-dict.bin", b_list);
    write_body("bad/text-protocol.bin", b_text_protocol);
    {
        struct pk p = {.n = 0};
        sd_begin(&p);
        tensor(&p, &W);
        sd_end(&p);
        p.n -= 7; /* cut inside the last opcodes */
        write_zip("bad/pickle-truncated.bin", &p, NULL, 0);
    }
    {
        struct pk p = {.n = 0};
        sd_begin(&p);
        tensor(&p, &W);
        tensor(&p, &W);
        sd_end(&p);
        write_zip("bad/duplicate-name.bin", &p, NULL, 0);
    }
    /* views and storages */
    struct tspec t = W;
    t.key = "7";
    with_tensor("bad/storage-missing.bin", &t, NULL, 0);
    t = W;
    with_tensor("bad/storage-too-small.bin", &t, W_DATA, 8);
    t = W;
    t.offset = 4;
    with_tensor("bad/view-out-of-range.bin", &t, NULL, 0);
    t = W;
    t.stride[1] = -1;
    with_tensor("bad/view-negative-stride.bin", &t, NULL, 0);
    t = W;
    t.shape[0] = -2;
    with_tensor("bad/view-negative-size.bin", &t, NULL, 0);
    t = W;
    t.shape[0] = (int64_t)1 << 62, t.stride[0] = (int64_t)1 << 62;
    with_tensor("bad/view-extent-overflow.bin", &t, NULL, 0);
    t = W;
    t.cls = "HalfStorage";
    t.numel = 12;
    {
        struct pk p = {.n = 0};
        sd_begin(&p);
        tensor(&p, &W);
        t.name = "v";
        tensor(&p, &t);
        sd_end(&p);
        write_zip("bad/storage-two-dtypes.bin", &p, NULL, 0);
    }
    /* the zip */
    {
        struct pk p = {.n = 0};
        sd_begin(&p);
        tensor(&p, &W);
        sd_end(&p);
        struct zw_entry e[3] = {
            {.name = "archive/data.pkl", .data = p.b, .len = p.n},
            {.name = "archive/data/0", .data = (const uint8_t *)W_DATA, .len = sizeof W_DATA},
            {.name = "archive/version", .data = (const uint8_t *)"3\n", .len = 2},
        };
        write_entries("bad/zip-truncated.bin", e, 3, 40);
        e[0].crc_override = true, e[0].crc = 0x12345678u;
        write_entries("bad/zip-bad-crc.bin", e, 3, 0);
        e[0].crc_override = false;
        e[1].crc_override = true, e[1].crc = 0x12345678u;
        write_entries("bad-crc-storage.bin", e, 3, 0); /* found only when the data is read */
        e[1].crc_override = false;
        e[1].deflate = true;
        write_entries("bad/storage-deflated.bin", e, 3, 0);
        e[1].deflate = false;
        /* a deflate bomb: 64 MiB of zeros declared as 100 bytes */
        uint8_t *zeros = calloc(1, 64u << 20);
        struct zw_entry bomb[2] = {
            {.name = "archive/data.pkl", .data = zeros, .len = 64u << 20, .deflate = true, .usize_override = true,
             .usize = 100},
            e[2],
        };
        write_entries("bad/zip-bomb.bin", bomb, 2, 0);
        free(zeros);
        /* the central record of data/0 points far past the file */
        struct zw_entry outside[3] = {e[0], e[1], e[2]};
        outside[1].redirect = true, outside[1].local_of = 0, outside[1].local_delta = 1u << 30;
        write_entries("bad/zip-local-outside.bin", outside, 3, 0);
        /* version's central record points inside data/0's data, where a matching local header is planted */
        uint8_t fake[64];
        size_t fl = zw_local_header(fake, "archive/version", (uint32_t)crc32(0L, (const uint8_t *)"3\n", 2), 2);
        memcpy(fake + fl, "3\n", 2);
        struct zw_entry overlap[3] = {e[0], {.name = "archive/data/0", .data = fake, .len = 64}, e[2]};
        overlap[2].no_local = true, overlap[2].redirect = true, overlap[2].local_of = 1;
        write_entries("bad/zip-overlap.bin", overlap, 3, 0);
        /* a zip, but no archive/data.pkl */
        write_entries("bad/zip-no-pickle.bin", e + 1, 2, 0);
    }
    /* the format of torch < 1.6: a bare pickle (magic number first) */
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    write_file("bad/legacy-format.bin", legacy, sizeof legacy);
    return 0;
}
