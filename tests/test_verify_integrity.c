/*
** test_verify_integrity.c - `modelq verify` covers every byte modelq writes (src/checksums.h).
**
** Flip tests: one byte at a time is changed (XOR with a mask), verified, and restored. Verify must
** never pass a changed file: it may fail to open it (3), find a damaged checksum record (3), or a
** mismatch (6), or find no checksums (7), but never exit 0. In-process (mq_verify, the same
** decision the CLI makes: OK + has_checksums + nothing mismatched = exit 0) for every position,
** and the CLI itself on a sample. Files:
**   - a small GGUF with every metadata type and four tensors of different types and paddings:
**     every byte, three masks each;
**   - the tiny model as Q4_0 GGUF: every header byte, every padding byte, a sample of the data;
**   - the tiny model as a 6-shard NF4 folder: every header byte of every shard, every byte of
**     config.json, the index and the small tokenizer files, a sample of the rest.
** Plus: files of older modelq versions (tensor checksums only) pass with a note; damaged or
** missing checksum keys, a shard without its checksum record, a tensor without a checksum,
** nonzero padding, appended or cut bytes and an edited config.json each fail with their message.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "model_impl.h"
#include "checksums.h"
#include "gguf.h"
#include "gguf_write.h"
#include "modelq/convert.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "span.h"

#define MODEL "testdata/tiny-llama"

/* ---- helpers ---- */

static bool verify_passes(const char *path)
{
    struct mq_verify_result r;
    struct mq_error err;
    mq_error_clear(&err);
    if (mq_verify(path, NULL, NULL, &r, &err) != MQ_OK) return false;
    return r.has_checksums && r.n_bad == 0 && r.n_parts_bad == 0;
}

static uint64_t size_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

static void flip_at(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "open %s", path);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/*
** Flips each byte of `file` in [from, to) with stride `step`, with each mask (or, rotate = true,
** one mask per position in turn), and expects verify of `target` to fail every time. Returns the
** number of positions tried.
*/
static size_t flip_range(const char *target, const char *file, uint64_t from, uint64_t to, uint64_t step,
                         const uint8_t *masks, size_t n_masks, bool rotate)
{
    size_t tried = 0, passed = 0;
    for (uint64_t off = from; off < to; off += step, tried++) {
        for (size_t k = 0; k < n_masks; k++) {
            uint8_t mask = rotate ? masks[tried % n_masks] : masks[k];
            flip_at(file, off, mask);
            bool ok = verify_passes(target);
            flip_at(file, off, mask);
            if (ok && passed++ < 10)
                cr_expect(!ok, "%s: byte %" PRIu64 " ^ 0x%02x passes verify", file, off, mask);
            if (rotate) break;
        }
    }
    cr_expect_eq(passed, 0, "%s: %zu changed bytes pass verify", file, passed);
    cr_assert(verify_passes(target), "%s verifies again once every byte is restored", target);
    return tried;
}

/* The CLI on a sample of the same flips: never exit 0; a failure to read is one stderr line. */
static void flip_cli_sample(const char *target, const char *file, uint64_t from, uint64_t to, unsigned samples)
{
    uint64_t span = to - from;
    for (unsigned i = 0; i < samples && span; i++) {
        uint64_t off = from + (uint64_t)i * span / samples;
        flip_at(file, off, 0x10);
        struct cmd_result r = run_modelq("verify %s --quiet", target);
        flip_at(file, off, 0x10);
        cr_expect(r.code == 3 || r.code == 6 || r.code == 7, "%s: byte %" PRIu64 " ^ 0x10: verify exits %d: %s%s", file,
                  off, r.code, r.out, r.err);
        if (r.code == 3) {
            const char *nl = strchr(r.err, '\n');
            cr_expect(nl && nl[1] == '\0', "one-line error: %s", r.err);
        }
        cmd_result_free(&r);
    }
}

/* Writes a GGUF through the library's header writer: `meta` (as given, checksum keys included or
** not), then each tensor's bytes at its offset. */
static void write_gguf(const char *path, const struct mq_meta *meta, struct mq_gguf_tensor_info *t, size_t n,
                       const uint8_t *const *data)
{
    struct mq_error err;
    uint64_t start, size;
    cr_assert_eq(mq_gguf_layout(meta, t, n, &start, &size, &err), MQ_OK, "%s", err.msg);
    uint8_t *buf = calloc(1, (size_t)size);
    cr_assert_not_null(buf);
    cr_assert_eq(mq_gguf_header_write(meta, t, n, buf, start, &err), MQ_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) memcpy(buf + start + t[i].offset, data[i], (size_t)t[i].nbytes);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, (size_t)size, f), size);
    fclose(f);
    free(buf);
}

/* The small GGUF's content: every metadata type, four tensors (F32, F16, Q8_0, I8). */
enum { N_SMALL = 4 };
static uint8_t small_data[N_SMALL][160];
static struct mq_gguf_tensor_info small_t[N_SMALL] = {
    {.name = "a.weight", .n_dims = 2, .ne = {8, 3}, .type = 0, .nbytes = 96},
    {.name = "b.bias", .n_dims = 1, .ne = {5}, .type = 1, .nbytes = 10},
    {.name = "c.weight", .n_dims = 2, .ne = {64, 2}, .type = 8, .nbytes = 136},
    {.name = "d", .n_dims = 1, .ne = {1}, .type = 24, .nbytes = 1},
};

static void small_meta(struct mq_meta *m)
{
    struct mq_error err;
    mq_meta_init(m);
    static const int32_t i32[] = {1, -1, 7};
    static const char *const strs[] = {"a", "", "ccc"};
    cr_assert_eq(mq_meta_set_str(m, "general.architecture", "raw", SIZE_MAX, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_uint(m, "u8", MQ_META_U8, 200, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_int(m, "i16", MQ_META_I16, -3, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "raw.block_count", 2, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_f32(m, "raw.rope.freq_base", 10000.0f, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_bool(m, "flag", true, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_str(m, "text", "h\xc3\xa9llo", SIZE_MAX, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_uint(m, "u64", MQ_META_U64, UINT64_MAX, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_f64(m, "f64", -1.5, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_array(m, "arr.i32", MQ_META_I32, i32, 3, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_str_array(m, "arr.str", strs, NULL, 3, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "general.file_type", 0, &err), MQ_OK);
    for (size_t i = 0; i < N_SMALL; i++)
        for (size_t k = 0; k < sizeof small_data[i]; k++) small_data[i][k] = (uint8_t)(k * 7 + i * 13 + 1);
    /* Q8_0 scales: f16 0x3c00 (1.0) at the start of each 34-byte block */
    for (size_t b = 0; b < 4; b++) small_data[2][b * 34] = 0x00, small_data[2][b * 34 + 1] = 0x3c;
    /* F32 / F16 values: small finite numbers */
    for (size_t k = 0; k < 24; k++) {
        float f = (float)k / 8.0f;
        memcpy(&small_data[0][k * 4], &f, 4);
    }
    for (size_t k = 0; k < 5; k++) small_data[1][k * 2] = 0, small_data[1][k * 2 + 1] = 0x3c;
}

/* in.gguf (no checksums, by the library writer) converted by the CLI to out (auto: a copy). */
static void make_small_gguf(const char *dir, char *out, size_t cap)
{
    char in[512];
    snprintf(in, sizeof in, "%s/in.gguf", dir);
    snprintf(out, cap, "%s/small.gguf", dir);
    struct mq_meta m;
    small_meta(&m);
    const uint8_t *data[N_SMALL] = {small_data[0], small_data[1], small_data[2], small_data[3]};
    write_gguf(in, &m, small_t, N_SMALL, data);
    mq_meta_free(&m);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet", in, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
}

/* Offset of the first occurrence of `needle` in the file, or UINT64_MAX. */
static uint64_t find_in_file(const char *path, const char *needle)
{
    size_t len;
    uint8_t *b = read_file_all(path, &len);
    cr_assert_not_null(b);
    void *p = memmem(b, len, needle, strlen(needle));
    uint64_t off = p ? (uint64_t)((uint8_t *)p - b) : UINT64_MAX;
    free(b);
    return off;
}

static const uint8_t MASKS3[] = {0x01, 0x80, 0xFF};
static const uint8_t MASKS_ROT[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF};

/* ---- GGUF ---- */

Test(verify_gguf, every_byte_of_a_small_file_is_covered)
{
    char *dir = make_temp_dir("vsmall");
    char path[512];
    make_small_gguf(dir, path, sizeof path);
    struct cmd_result r = run_modelq("verify %s", path);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "all 4 tensors match their checksums, and so does the header") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "ok       header of ") != NULL, "%s", r.out);
    cmd_result_free(&r);
    uint64_t size = size_of(path);
    size_t n = flip_range(path, path, 0, size, 1, MASKS3, 3, false);
    cr_expect_eq(n, size, "every one of the %" PRIu64 " bytes", size);
    flip_cli_sample(path, path, 0, size, 48);
    remove_tree(dir);
    free(dir);
}

Test(verify_gguf, tiny_model_header_padding_and_data_sample)
{
    char *dir = make_temp_dir("vq4");
    char path[512];
    snprintf(path, sizeof path, "%s/q4.gguf", dir);
    struct cmd_result r = run_modelq("convert %s -o %s --type q4_0 --quiet", MODEL, path);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    uint64_t data = m->files[0].data_start, size = m->files[0].size;
    /* every header byte (key/values, tensor infos, the padding before the data) */
    flip_range(path, path, 0, data, 1, MASKS_ROT, 9, true);
    /* every padding byte after each tensor, the first and last byte of each tensor */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        uint64_t end = t->offset + t->nbytes, padded = t->offset + (t->nbytes + 31) / 32 * 32;
        flip_range(path, path, end, padded, 1, MASKS_ROT, 9, true);
        flip_range(path, path, t->offset, t->offset + 1, 1, MASKS3, 3, false);
        flip_range(path, path, end - 1, end, 1, MASKS3, 3, false);
    }
    /* a sample of the data */
    flip_range(path, path, data, size, 997, MASKS_ROT, 9, true);
    mq_model_free(m);
    flip_cli_sample(path, path, 0, data, 24);
    remove_tree(dir);
    free(dir);
}

Test(verify_gguf, named_failures)
{
    char *dir = make_temp_dir("vnamed");
    char path[512];
    make_small_gguf(dir, path, sizeof path);

    /* a metadata value (raw.block_count = 2 -> 3): the header checksum names the file */
    uint64_t k = find_in_file(path, "raw.block_count");
    cr_assert_neq(k, UINT64_MAX);
    uint64_t v = k + strlen("raw.block_count") + 4;
    flip_at(path, v, 0x01);
    struct cmd_result r = run_modelq("verify %s --quiet", path);
    cr_expect_eq(r.code, 6, "%d %s%s", r.code, r.out, r.err);
    char want[700];
    snprintf(want, sizeof want, "MISMATCH header of %s: stored ", path);
    cr_expect(strstr(r.out, want) != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "1 of 1 headers and files do not match") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "0 of 4 tensors do not match") != NULL, "%s", r.out);
    cmd_result_free(&r);
    flip_at(path, v, 0x01);

    /* the header checksum key's name damaged: not taken for an older file */
    uint64_t h = find_in_file(path, MQ_CHECKSUM_HEADER_KEY);
    flip_at(path, h + 7, 0x20); /* 'h' -> 'H' */
    r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want,
             "modelq: error: %s: modelq.header_xxh3 is missing but modelq.tensor_xxh3 is not the last key (the header "
             "checksum key is damaged)\n", path);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    flip_at(path, h + 7, 0x20);

    /* the header checksum's type: UINT64 (10) -> INT64 (11), same size */
    flip_at(path, h + strlen(MQ_CHECKSUM_HEADER_KEY), 0x01);
    r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.err, "modelq.header_xxh3 must be the last key, a UINT64, right after modelq.tensor_xxh3") != NULL,
              "%s", r.err);
    cmd_result_free(&r);
    flip_at(path, h + strlen(MQ_CHECKSUM_HEADER_KEY), 0x01);

    /* padding after tensor b.bias (10 bytes, padded to 32) */
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    long bi = mq_model_find(m, "b.bias");
    cr_assert_lt(m->tensors[bi].nbytes % 32, 27, "b.bias has padding");
    uint64_t pad = m->tensors[bi].offset + m->tensors[bi].nbytes + 5;
    mq_model_free(m);
    flip_at(path, pad, 0x04);
    r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want,
             "modelq: error: %s: padding-zero: byte %" PRIu64 " (padding after tensor 'b.bias') is 0x04, not 0\n", path,
             pad);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    flip_at(path, pad, 0x04);

    /* a byte appended, then the last padding byte cut */
    uint64_t size = size_of(path);
    FILE *f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 3, "%d %s", r.code, r.err);
    snprintf(want, sizeof want,
             "modelq: error: %s: file-size: %" PRIu64 " bytes, but the data section ends at %" PRIu64 " (bytes appended)\n",
             path, size + 1, size);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    cr_assert_eq(truncate(path, (off_t)size - 1), 0);
    r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 3, "%d %s", r.code, r.err);
    cr_expect(strstr(r.err, ": file-size: ") != NULL, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* What the writer of older modelq versions produced: modelq.tensor_xxh3 last, no header checksum. */
Test(verify_gguf, older_files_verify_their_tensors_and_say_the_header_is_not_covered)
{
    char *dir = make_temp_dir("vold");
    char path[512];
    snprintf(path, sizeof path, "%s/old.gguf", dir);
    struct mq_meta m;
    small_meta(&m);
    struct mq_error err;
    uint64_t sums[N_SMALL];
    for (size_t i = 0; i < N_SMALL; i++) sums[i] = XXH3_64bits(small_data[i], (size_t)small_t[i].nbytes);
    cr_assert_eq(mq_meta_set_u32(&m, "general.quantization_version", 2, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_array(&m, MQ_CHECKSUM_TENSORS_KEY, MQ_META_U64, sums, N_SMALL, &err), MQ_OK);
    const uint8_t *data[N_SMALL] = {small_data[0], small_data[1], small_data[2], small_data[3]};
    write_gguf(path, &m, small_t, N_SMALL, data);
    mq_meta_free(&m);

    struct cmd_result r = run_modelq("verify %s --quiet", path);
    cr_expect_eq(r.code, 0, "%d %s%s", r.code, r.out, r.err);
    char want[700];
    snprintf(want, sizeof want, "%s: all 4 tensors match their checksums\n", path);
    cr_expect_str_eq(r.out, want);
    snprintf(want, sizeof want,
             "modelq: note: %s: header not covered (written by an older modelq): only tensor data was verified\n", path);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);

    /* its tensor data is still checked */
    struct mq_model *mm;
    cr_assert_eq(mq_model_open(path, &mm, &err), MQ_OK, "%s", err.msg);
    uint64_t off = mm->tensors[mq_model_find(mm, "c.weight")].offset + 40;
    mq_model_free(mm);
    flip_at(path, off, 0x08);
    r = run_modelq("verify %s --quiet", path);
    cr_expect_eq(r.code, 6, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.out, "MISMATCH c.weight: stored ") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "1 of 4 tensors do not match") != NULL, "%s", r.out);
    cmd_result_free(&r);
    flip_at(path, off, 0x08);

    /* its header is not: a changed value passes, with the note (the limitation it states) */
    uint64_t v = find_in_file(path, "raw.block_count") + strlen("raw.block_count") + 4;
    flip_at(path, v, 0x01);
    r = run_modelq("verify %s --quiet", path);
    cr_expect_eq(r.code, 0, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.err, "header not covered") != NULL, "%s", r.err);
    cmd_result_free(&r);

    /* converting it again writes a current file */
    char again[512];
    snprintf(again, sizeof again, "%s/again.gguf", dir);
    r = run_modelq("convert %s -o %s --quiet", path, again);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("verify %s --quiet", again);
    cr_expect_eq(r.code, 0, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.out, "and so does the header") != NULL, "%s", r.out);
    cr_expect_str_eq(r.err, "");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* The new key changes nothing else: the file minus modelq.header_xxh3 is the older writer's file. */
Test(verify_gguf, only_the_header_key_was_added)
{
    char *dir = make_temp_dir("vsame");
    char path[512], old[512];
    make_small_gguf(dir, path, sizeof path);
    snprintf(old, sizeof old, "%s/old.gguf", dir);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(m->meta.items[m->meta.n - 1].key, MQ_CHECKSUM_HEADER_KEY);
    cr_assert_str_eq(m->meta.items[m->meta.n - 2].key, MQ_CHECKSUM_TENSORS_KEY);
    /* the older writer's file: the same keys but the header checksum, the same tensors and bytes */
    struct mq_meta meta;
    mq_meta_init(&meta);
    cr_assert_eq(mq_meta_copy(&meta, &m->meta, &err), MQ_OK);
    cr_assert(mq_meta_remove(&meta, MQ_CHECKSUM_HEADER_KEY));
    struct mq_gguf_tensor_info t[N_SMALL];
    uint8_t *data[N_SMALL];
    cr_assert_eq(m->n_tensors, N_SMALL);
    for (size_t i = 0; i < N_SMALL; i++) {
        const struct mq_tensor *x = &m->tensors[i];
        t[i] = (struct mq_gguf_tensor_info){.name = x->name, .n_dims = x->ndim, .type = x->ggml_type, .nbytes = x->nbytes};
        for (uint32_t d = 0; d < x->ndim; d++) t[i].ne[d] = x->shape[x->ndim - 1 - d];
        data[i] = malloc((size_t)x->nbytes);
        cr_assert_eq(mq_model_read(m, i, 0, data[i], (size_t)x->nbytes, &err), MQ_OK);
    }
    write_gguf(old, &meta, t, N_SMALL, (const uint8_t *const *)data);
    /* byte by byte: the new file is the old one with the 38 bytes of the key inserted before the
     * tensor infos, the header padding adjusted, and the data section unchanged */
    size_t la, lb;
    uint8_t *a = read_file_all(path, &la), *b = read_file_all(old, &lb);
    uint64_t k = find_in_file(path, MQ_CHECKSUM_HEADER_KEY) - 8; /* its u64 length */
    size_t kv = 8 + strlen(MQ_CHECKSUM_HEADER_KEY) + 4 + 8;
    cr_expect_eq(kv, 38);
    struct mq_model *mb;
    cr_assert_eq(mq_model_open(old, &mb, &err), MQ_OK, "%s", err.msg);
    uint64_t da = m->files[0].data_start, db = mb->files[0].data_start;
    cr_expect_eq(memcmp(a, b, 16), 0, "magic, version, tensor count");
    cr_expect_eq(mq_load_u64le(a + 16), mq_load_u64le(b + 16) + 1, "one more key");
    cr_expect_eq(memcmp(a + 24, b + 24, (size_t)k - 24), 0, "every key before it");
    uint64_t infos_end_b = db;
    while (infos_end_b > k && b[infos_end_b - 1] == 0) infos_end_b--; /* approximately: the padding */
    cr_expect_eq(memcmp(a + k + kv, b + k, (size_t)(infos_end_b - k)), 0, "the tensor infos after it");
    cr_expect_eq(la - da, lb - db, "same data section size");
    cr_expect_eq(memcmp(a + da, b + db, la - da), 0, "same data section bytes");
    mq_model_free(mb);
    for (size_t i = 0; i < N_SMALL; i++) free(data[i]);
    mq_meta_free(&meta);
    mq_model_free(m);
    free(a);
    free(b);
    remove_tree(dir);
    free(dir);
}

/* ---- bitsandbytes folders ---- */

static char *make_bnb(const char *dir, const char *name)
{
    char *out = malloc(600);
    snprintf(out, 600, "%s/%s", dir, name);
    struct cmd_result r = run_modelq("convert %s -o %s --type nf4 --max-shard-size 200000 --quiet", MODEL, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    return out;
}

static void shard_path(char *out, size_t cap, const char *folder, int i)
{
    snprintf(out, cap, "%s/model-%05d-of-00006.safetensors", folder, i);
}

static uint64_t header_end(const char *path)
{
    uint8_t b[8];
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(b, 1, 8, f), 8);
    fclose(f);
    uint64_t n = 0;
    for (int k = 0; k < 8; k++) n |= (uint64_t)b[k] << (8 * k);
    return 8 + n;
}

Test(verify_bnb, every_header_byte_and_every_small_file)
{
    char *dir = make_temp_dir("vbnb");
    char *folder = make_bnb(dir, "nf4");
    struct cmd_result r = run_modelq("verify %s --quiet", folder);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "all 63 tensors match their checksums, and so do the 11 headers and other files") != NULL,
              "%s", r.out);
    cr_expect_str_eq(r.err, "");
    cmd_result_free(&r);
    char p[700];
    for (int i = 1; i <= 6; i++) {
        shard_path(p, sizeof p, folder, i);
        uint64_t he = header_end(p), size = size_of(p);
        flip_range(folder, p, 0, he, 1, MASKS_ROT, 9, true);
        flip_range(folder, p, he, size, 1499, MASKS_ROT, 9, true);
        flip_range(folder, p, size - 1, size, 1, MASKS3, 3, false);
    }
    static const char *const small[] = {"config.json", "model.safetensors.index.json", "tokenizer_config.json",
                                        "generation_config.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", folder, small[i]);
        flip_range(folder, p, 0, size_of(p), 1, MASKS_ROT, 9, true);
    }
    snprintf(p, sizeof p, "%s/tokenizer.json", folder);
    flip_range(folder, p, 0, size_of(p), 7, MASKS_ROT, 9, true);
    shard_path(p, sizeof p, folder, 2);
    flip_cli_sample(folder, p, 0, header_end(p), 16);
    snprintf(p, sizeof p, "%s/config.json", folder);
    flip_cli_sample(folder, p, 0, size_of(p), 16);
    free(folder);
    remove_tree(dir);
    free(dir);
}

/*
** Replaces the shard's __metadata__ object by `meta` (the text of a JSON object), padded with
** spaces to the same length so every offset stays; `meta` NULL = keep modelq.tensor_xxh3 only,
** as an older modelq wrote it, dropping the first `drop` of its entries.
*/
static void rewrite_metadata(const char *shard, const char *meta, int drop)
{
    size_t len;
    uint8_t *b = read_file_all(shard, &len);
    cr_assert_not_null(b);
    const char *start = (const char *)b + 8 + strlen("{\"__metadata__\":");
    const char *end = strchr(start, '}');
    cr_assert_not_null(end);
    size_t old = (size_t)(end + 1 - start);
    char text[8192];
    if (meta) {
        snprintf(text, sizeof text, "%s", meta);
    } else {
        cJSON *doc = cJSON_ParseWithLength((const char *)b + 8, header_end(shard) - 8);
        const char *list = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "__metadata__"), MQ_CHECKSUM_TENSORS_KEY)->valuestring;
        for (int k = 0; k < drop; k++) list = strchr(list, ',') + 1;
        snprintf(text, sizeof text, "{\"format\":\"pt\",\"%s\":\"%s\"}", MQ_CHECKSUM_TENSORS_KEY, list);
        cJSON_Delete(doc);
    }
    size_t nl = strlen(text);
    cr_assert_leq(nl, old);
    memcpy((char *)start, text, nl);
    memset((char *)start + nl, ' ', old - nl);
    FILE *f = fopen(shard, "wb");
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
    free(b);
}

Test(verify_bnb, a_shard_without_its_checksum_record_fails_naming_it)
{
    char *dir = make_temp_dir("vbnbkeys");
    char *folder = make_bnb(dir, "nf4");
    char s1[700], s3[700], want[2000];
    shard_path(s1, sizeof s1, folder, 1);
    shard_path(s3, sizeof s3, folder, 3);
    rewrite_metadata(s3, "{\"format\":\"pt\"}", 0);
    struct cmd_result r = run_modelq("verify %s", folder);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want,
             "modelq: error: %s: this shard has no modelq checksums, but %s has header, tensor and file checksums\n", s3,
             s1);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    free(folder);

    /* a damaged key name in one shard (modelq.files_xxh3 -> modelq.filed_xxh3) */
    folder = make_bnb(dir, "nf4b");
    char s2[700];
    shard_path(s2, sizeof s2, folder, 2);
    uint64_t k = find_in_file(s2, MQ_CHECKSUM_FILES_KEY);
    flip_at(s2, k + 11, 's' ^ 'd');
    r = run_modelq("verify %s", folder);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want,
             "modelq: error: %s: damaged checksum record: __metadata__ needs modelq.header_xxh3, modelq.tensor_xxh3 "
             "and modelq.files_xxh3 (or, from an older modelq, exactly \"format\" and modelq.tensor_xxh3)\n", s2);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    free(folder);
    remove_tree(dir);
    free(dir);
}

Test(verify_bnb, older_folders_and_uncovered_tensors)
{
    char *dir = make_temp_dir("vbnbold");
    char *folder = make_bnb(dir, "nf4");
    char p[700], want[2000];
    for (int i = 1; i <= 6; i++) {
        shard_path(p, sizeof p, folder, i);
        rewrite_metadata(p, NULL, 0);
    }
    struct cmd_result r = run_modelq("verify %s --quiet", folder);
    cr_expect_eq(r.code, 0, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want, "%s: all 63 tensors match their checksums\n", folder);
    cr_expect_str_eq(r.out, want);
    cr_expect(strstr(r.err, "header not covered (written by an older modelq)") != NULL, "%s", r.err);
    cmd_result_free(&r);
    /* one stored entry left out of the list */
    shard_path(p, sizeof p, folder, 4);
    rewrite_metadata(p, NULL, 1);
    r = run_modelq("verify %s --quiet", folder);
    cr_expect_eq(r.code, 3, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.err, p) && strstr(r.err, "has no checksum in modelq.tensor_xxh3"), "%s", r.err);
    cmd_result_free(&r);
    free(folder);
    remove_tree(dir);
    free(dir);
}

static void edit_file(const char *path, const char *from, const char *to)
{
    size_t len;
    char *t = (char *)read_file_all(path, &len);
    cr_assert_not_null(t);
    char *at = strstr(t, from);
    cr_assert_not_null(at, "%s has %s", path, from);
    FILE *f = fopen(path, "wb");
    fwrite(t, 1, (size_t)(at - t), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(t);
}

Test(verify_bnb, config_and_index_are_covered)
{
    char *dir = make_temp_dir("vbnbcfg");
    char *folder = make_bnb(dir, "nf4");
    char cfg[700], idx[700], want[2000];
    snprintf(cfg, sizeof cfg, "%s/config.json", folder);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", folder);
    /* a quantization_config value the reader does not check */
    edit_file(cfg, "\"llm_int8_threshold\":\t6", "\"llm_int8_threshold\":\t7");
    struct cmd_result r = run_modelq("verify %s --quiet", folder);
    cr_expect_eq(r.code, 6, "%d %s%s", r.code, r.out, r.err);
    snprintf(want, sizeof want, "MISMATCH file %s: stored ", cfg);
    cr_expect(strstr(r.out, want) != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "1 of 11 headers and files do not match") != NULL, "%s", r.out);
    cmd_result_free(&r);
    edit_file(cfg, "\"llm_int8_threshold\":\t7", "\"llm_int8_threshold\":\t6");
    /* one the reader checks: fails naming config.json either way */
    edit_file(cfg, "\"bnb_4bit_quant_type\":\t\"nf4\"", "\"bnb_4bit_quant_type\":\t\"fp4\"");
    r = run_modelq("verify %s --quiet", folder);
    cr_expect_neq(r.code, 0);
    cr_expect(strstr(r.out, cfg) || strstr(r.err, cfg), "%s%s", r.out, r.err);
    cmd_result_free(&r);
    edit_file(cfg, "\"bnb_4bit_quant_type\":\t\"fp4\"", "\"bnb_4bit_quant_type\":\t\"nf4\"");
    /* the index: total_size changed (a digit put in front) */
    edit_file(idx, "\"total_size\":\t", "\"total_size\":\t1");
    r = run_modelq("verify %s --quiet", folder);
    cr_expect_neq(r.code, 0);
    cr_expect(strstr(r.out, idx) || strstr(r.err, idx), "%s%s", r.out, r.err);
    cmd_result_free(&r);
    /* a listed file deleted */
    edit_file(idx, "\"total_size\":\t1", "\"total_size\":\t");
    char gen[700];
    snprintf(gen, sizeof gen, "%s/generation_config.json", folder);
    cr_assert_eq(unlink(gen), 0);
    r = run_modelq("verify %s --quiet", folder);
    cr_expect_eq(r.code, 4, "%d %s%s", r.code, r.out, r.err);
    cr_expect(strstr(r.err, "lists generation_config.json") && strstr(r.err, gen), "%s", r.err);
    cmd_result_free(&r);
    free(folder);
    remove_tree(dir);
    free(dir);
}
