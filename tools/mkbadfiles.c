/*
** mkbadfiles - writes the reader fixtures under testdata/ (committed; rerun to regenerate):
**
**   safetensors/bad/CHECK[--variant].safetensors    one malformed file per validation rule; the
**                                                   reader must fail with exactly <check>
**   safetensors/ok/NAME.safetensors                   valid edge cases the reader must accept
**   sharded/bad/CHECK[--variant]/                broken sharded checkpoints (index + shards)
**   sharded/warn/NAME/                           loads, with a warning
**   pickle-only/                                    a folder with only pytorch_model.bin
**
** usage: mkbadfiles TESTDATA_DIR
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devutil.h"
#include "stwrite.h"

static const char *root;
static void raw(const char *sub, const char *name, uint64_t nfield, const char *hdr, size_t hlen, const void *data,
                size_t dlen)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    dev_mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stw_write_raw(path, nfield, hdr, hlen, data, dlen) != 0) {
        dev_fail("cannot write %s: %s", path, strerror(errno));
    }
}

/* A file whose header field equals the header's length. */
static void st(const char *sub, const char *name, const char *hdr, size_t data_len)
{
    static const unsigned char zeros[4096];
    raw(sub, name, strlen(hdr), hdr, strlen(hdr), zeros, data_len);
}

static void text_file(const char *dir, const char *name, const char *text)
{
    char d[4096], path[4200];
    snprintf(d, sizeof d, "%s/%s", root, dir);
    dev_mkdirs(d);
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        dev_fail("cannot write %s", path);
    }
}

#define W4 "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

static void bad_safetensors(void)
{
    const char *b = "safetensors/bad";
    {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", root, b);
        dev_mkdirs(d);
    }
    /* file-too-small: fewer than 8 bytes in all */
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/file-too-small.safetensors", root, b);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite("\x02\x00\x00\x00\x00", 1, 5, f) != 5 || fclose(f) != 0) dev_fail("cannot write %s", path);
    }
    raw(b, "header-length-limit.safetensors", 100000001ull, "{}", 2, NULL, 0);
    raw(b, "header-length-limit--near-2-64.safetensors", UINT64_MAX - 3, "{}", 2, NULL, 0);
    raw(b, "header-within-file.safetensors", 1000, "{}", 2, NULL, 0);
    st(b, "header-utf8.safetensors", "{\"w\xff\":" W4 "}", 4);
    st(b, "header-utf8--overlong.safetensors", "{\"w\xc0\xaf\":" W4 "}", 4);
    st(b, "header-json.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    st(b, "header-json--control-char.safetensors", "{\"w\x01\":" W4 "}", 4);
    st(b, "header-json--nul-escape.safetensors", "{\"w\\u0000x\":" W4 "}", 4);
    st(b, "header-json--lone-surrogate.safetensors", "{\"w\\ud800\":" W4 "}", 4);
    st(b, "header-json--leading-zero.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4);
    {
        static const char h[] = "{\"w\":" W4 "}\0\0\0\0"; /* NUL padding, as a third-party writer did */
        static const unsigned char four[4];
        raw(b, "header-trailing.safetensors", sizeof h - 1, h, sizeof h - 1, four, 4);
    }
    st(b, "header-trailing--garbage.safetensors", "{\"w\":" W4 "}x", 4);
    st(b, "header-not-object.safetensors", "[1, 2]", 0);
    st(b, "header-not-object--leading-nul.safetensors", "\x01{}", 0);
    st(b, "metadata-strings.safetensors", "{\"__metadata__\":{\"format\":1},\"w\":" W4 "}", 4);
    st(b, "metadata-strings--not-object.safetensors", "{\"__metadata__\":\"pt\",\"w\":" W4 "}", 4);
    st(b, "tensor-entry.safetensors", "{\"w\":\"F32\"}", 0);
    st(b, "tensor-entry--missing-offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    st(b, "dtype-known.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    st(b, "dtype-known--lowercase.safetensors", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    st(b, "shape-integers.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    st(b, "shape-integers--fraction.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4);
    st(b, "shape-integers--string.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4);
    st(b, "shape-integers--huge.safetensors",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551617],\"data_offsets\":[0,4]}}", 4);
    st(b, "max-dims.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    st(b, "offsets-pair.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    st(b, "offsets-pair--negative.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4);
    st(b, "duplicate-name.safetensors",
       "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"w\":" W4 "}", 4);
    st(b, "offsets-contiguous.safetensors",
       "{\"a\":" W4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);
    st(b, "offsets-contiguous--overlap.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8);
    st(b, "offsets-reversed.safetensors",
       "{\"a\":" W4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4);
    st(b, "size-overflow.safetensors",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4);
    st(b, "size-overflow--bits.safetensors",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,4]}}", 4);
    st(b, "whole-bytes.safetensors", "{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2);
    st(b, "span-size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    st(b, "data-coverage.safetensors", "{\"w\":" W4 "}", 8);
    st(b, "data-coverage--truncated.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 9);
}

static void ok_safetensors(void)
{
    const char *o = "safetensors/ok";
    /* the reference writer's 16-byte empty file */
    st(o, "empty.safetensors", "{}      ", 0);
    /* zero-size tensor at a shared boundary; scalar; leading whitespace (page-padding writers) */
    st(o, "zero-size.safetensors",
       "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"a\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]}}",
       16);
    st(o, "scalar.safetensors", "{\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
    st(o, "leading-whitespace.safetensors", "\t\n {\"w\":" W4 "}\r\n ", 4);
    st(o, "unknown-fields.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[1]}}", 4);
    /* unaligned data (values 1, -2, 3), then one tensor of every dtype of the format */
    {
        /* header length 7 + 8 = data starts at byte 15: every tensor is misaligned */
        const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
        const unsigned char data[12] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x40, 0x40};
        raw(o, "unaligned.safetensors", strlen(h), h, strlen(h), data, sizeof data);
    }
    {
        static const struct {
            const char *dtype;
            const char *shape;
            unsigned bytes;
        } all[] = {{"BOOL", "[2]", 2},     {"F4", "[4]", 2},          {"F6_E2M3", "[4]", 3},     {"F6_E3M2", "[4]", 3},
                   {"U8", "[2]", 2},       {"I8", "[2]", 2},          {"F8_E5M2", "[2]", 2},     {"F8_E4M3", "[2]", 2},
                   {"F8_E8M0", "[2]", 2},  {"F8_E4M3FNUZ", "[2]", 2}, {"F8_E5M2FNUZ", "[2]", 2}, {"I16", "[2]", 4},
                   {"U16", "[2]", 4},      {"F16", "[2]", 4},         {"BF16", "[2]", 4},        {"I32", "[2]", 8},
                   {"U32", "[2]", 8},      {"F32", "[2]", 8},         {"C64", "[2]", 16},        {"F64", "[2]", 16},
                   {"I64", "[2]", 16},     {"U64", "[2]", 16}};
        char hdr[4096];
        size_t len = 0;
        unsigned off = 0;
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"all dtypes\"}");
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            len += (size_t)snprintf(hdr + len, sizeof hdr - len, ",\"t_%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%u,%u]}",
                                    all[i].dtype, all[i].dtype, all[i].shape, off, off + all[i].bytes);
            off += all[i].bytes;
        }
        snprintf(hdr + len, sizeof hdr - len, "}");
        st(o, "all-dtypes.safetensors", hdr, off);
    }
}

/* A sharded checkpoint: two shards "a" (tensor a) and "b" (tensor b) plus an index text. */
static void sharded(const char *sub, const char *index_json)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "sharded/%s", sub);
    st(dir, "model-00001-of-00002.safetensors", "{\"a\":" W4 "}", 4);
    st(dir, "model-00002-of-00002.safetensors", "{\"b\":" W4 "}", 4);
    text_file(dir, "model.safetensors.index.json", index_json);
}

static void sharded_fixtures(void)
{
#define IDX(map) "{\"metadata\":{\"total_size\":8},\"weight_map\":{" map "}}\n"
    sharded("ok", IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    sharded("bad/shard-name", IDX("\"a\":\"../model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    sharded("bad/shard-name--absolute", IDX("\"a\":\"/etc/passwd\",\"b\":\"model-00002-of-00002.safetensors\""));
    sharded("bad/index-missing-tensor",
            IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\",\"c\":\"model-00002-of-00002.safetensors\""));
    sharded("bad/index-weight-map", "{\"metadata\":{\"total_size\":8}}\n");
    sharded("bad/index-weight-map--not-string", IDX("\"a\":1,\"b\":\"model-00002-of-00002.safetensors\""));
    sharded("bad/index-json", "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",}}\n");
    sharded("bad/shard-missing", IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00009-of-00002.safetensors\""));
    sharded("warn/total-size", "{\"metadata\":{\"total_size\":12},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                               "\"b\":\"model-00002-of-00002.safetensors\"}}\n");
    sharded("warn/extra-tensor", IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    st("sharded/warn/extra-tensor", "model-00002-of-00002.safetensors",
       "{\"b\":" W4 ",\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    /* duplicate-name: tensor "a" stored in both shards */
    st("sharded/bad/duplicate-name", "model-00001-of-00002.safetensors", "{\"a\":" W4 "}", 4);
    st("sharded/bad/duplicate-name", "model-00002-of-00002.safetensors", "{\"a\":" W4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    text_file("sharded/bad/duplicate-name", "model.safetensors.index.json",
              IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    /* shard-escapes: the second shard is a link to a file outside the folder */
    sharded("bad/shard-escapes", IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    char link[4200];
    snprintf(link, sizeof link, "%s/sharded/bad/shard-escapes/model-00002-of-00002.safetensors", root);
    unlink(link);
    if (symlink("../../ok/model-00002-of-00002.safetensors", link) != 0)
        dev_fail("cannot link %s: %s", link, strerror(errno));
    /* a bad shard is reported through the index */
    sharded("bad/span-size", IDX("\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\""));
    st("sharded/bad/span-size", "model-00002-of-00002.safetensors", "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
#undef IDX
    text_file("pickle-only", "pytorch_model.bin", "PK\x03\x04 not read: pickle checkpoints are refused\n");
    text_file("pickle-only", "config.json", "{\"model_type\": \"llama\"}\n");
}

int main(int argc, char **argv)
{
    dev_set_prog("mkbadfiles");
    if (argc != 2) {
        fprintf(stderr, "usage: mkbadfiles TESTDATA_DIR\n");
        return 2;
    }
    root = argv[1];
    bad_safetensors();
    ok_safetensors();
    sharded_fixtures();
    return dev_failures_report();
}
