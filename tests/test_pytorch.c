/*
** test_pytorch.c - PyTorch checkpoints (formats/pytorch_read.c, zip_read.c, pickle_read.c,
** src/tensor_view.c) on real torch.save output (testdata/pytorch, tools/mkpytorch.py) and on the
** byte-crafted hostile corpus (testdata/pytorch/bad, tools/mkbadpickle.c).
**
**   - every .bin reads byte for byte like its safetensors twin (same tensors written by the
**     tool): every dtype, a scalar, an empty tensor, tied weights (one storage), three tensors at
**     offsets of one storage, a transpose, a column slice, a 3-D permutation, a strided 1-D view;
**     whole, row by row, and in byte ranges that cut elements
**   - converting the .bin, the sharded .bin and the safetensors gives the same GGUF tensor bytes
**     and the same bitsandbytes folder
**   - opening reads the zip directory and the pickle only
**   - each hostile file: exit 3, its exact one-line message, nothing written, nothing executed
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_impl.h"
#include "modelq/model.h"
#include "run_cmd.h"

static struct mq_model *open_ok(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s: %s", path, err.msg);
    return m;
}

static uint8_t *read_all(const struct mq_model *m, size_t t)
{
    struct mq_error err;
    uint8_t *b = malloc(m->tensors[t].nbytes + 1);
    cr_assert_not_null(b);
    cr_assert_eq(mq_model_read(m, t, 0, b, m->tensors[t].nbytes, &err), MQ_OK, "%s", err.msg);
    return b;
}

/* Same tensors (names, dtypes, shapes, bytes), read whole, per row and in element-cutting ranges. */
static void expect_same_tensors(const char *a_path, const char *b_path)
{
    struct mq_model *a = open_ok(a_path), *b = open_ok(b_path);
    cr_assert_eq(a->n_tensors, b->n_tensors, "%s vs %s", a_path, b_path);
    struct mq_error err;
    for (size_t i = 0; i < a->n_tensors; i++) {
        const struct mq_tensor *ta = &a->tensors[i];
        long j = mq_model_find(b, ta->name);
        cr_assert_geq(j, 0, "%s missing from %s", ta->name, b_path);
        const struct mq_tensor *tb = &b->tensors[j];
        cr_expect_eq(ta->dtype, tb->dtype, "%s", ta->name);
        cr_expect_eq(ta->ndim, tb->ndim, "%s", ta->name);
        cr_expect_eq(memcmp(ta->shape, tb->shape, sizeof ta->shape), 0, "%s", ta->name);
        cr_assert_eq(ta->nbytes, tb->nbytes, "%s", ta->name);
        uint8_t *x = read_all(a, i), *y = read_all(b, (size_t)j);
        cr_expect_eq(memcmp(x, y, ta->nbytes), 0, "%s: bytes differ", ta->name);
        uint64_t rows = mq_tensor_rows(ta), rb = rows ? ta->nbytes / rows : 0;
        uint8_t *r = malloc(ta->nbytes + 1);
        for (uint64_t k = 0; k < rows; k++) { /* one row at a time */
            cr_assert_eq(mq_model_read(a, i, k * rb, r, rb, &err), MQ_OK, "%s", err.msg);
            cr_expect_eq(memcmp(r, x + k * rb, rb), 0, "%s row %llu", ta->name, (unsigned long long)k);
        }
        if (ta->nbytes > 3) { /* ranges that cut elements, and rows [1, rows-1) */
            cr_assert_eq(mq_model_read(a, i, 1, r, ta->nbytes - 2, &err), MQ_OK, "%s", err.msg);
            cr_expect_eq(memcmp(r, x + 1, ta->nbytes - 2), 0, "%s: unaligned range", ta->name);
        }
        if (rows > 2) {
            cr_assert_eq(mq_model_read(a, i, rb, r, rb * (rows - 2), &err), MQ_OK, "%s", err.msg);
            cr_expect_eq(memcmp(r, x + rb, rb * (rows - 2)), 0, "%s: middle rows", ta->name);
        }
        free(r);
        free(x);
        free(y);
    }
    mq_model_free(a);
    mq_model_free(b);
}

Test(pytorch, bin_reads_like_its_safetensors_twin)
{
    expect_same_tensors("testdata/pytorch/dtypes.bin", "testdata/pytorch/dtypes.safetensors");
    expect_same_tensors("testdata/pytorch/tiny", "testdata/pytorch/tiny-st");
    expect_same_tensors("testdata/pytorch/sharded", "testdata/pytorch/tiny-st");
    expect_same_tensors("testdata/pytorch/tiny/pytorch_model.bin", "testdata/pytorch/tiny-st/model.safetensors");
}

Test(pytorch, views_and_shared_storages_are_what_torch_wrote)
{
    struct mq_model *m = open_ok("testdata/pytorch/tiny");
    cr_expect_str_eq(m->format, "pytorch");
    cr_expect(m->config.present);
    long e = mq_model_find(m, "model.embed_tokens.weight"), h = mq_model_find(m, "lm_head.weight");
    long q = mq_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    long k = mq_model_find(m, "model.layers.0.self_attn.k_proj.weight");
    long o = mq_model_find(m, "model.layers.0.self_attn.o_proj.weight");
    cr_assert(e >= 0 && h >= 0 && q >= 0 && k >= 0 && o >= 0);
    /* tied: one storage; q and k: one storage at different offsets; o: a transpose */
    cr_expect_eq(m->tensors[e].offset, m->tensors[h].offset);
    cr_expect_eq(m->tensors[k].offset, m->tensors[q].offset + 64 * 64 * 2);
    cr_expect_eq(m->tensors[e].view != NULL, true);
    mq_model_free(m);
}

Test(pytorch, open_reads_the_directory_and_pickle_only)
{
    struct mq_model *m = open_ok("testdata/pytorch/tiny");
    struct stat st;
    cr_assert_eq(stat("testdata/pytorch/tiny/pytorch_model.bin", &st), 0);
    cr_expect_lt(m->header_bytes_read, (uint64_t)st.st_size / 10, "%llu of %lld bytes read to open",
                 (unsigned long long)m->header_bytes_read, (long long)st.st_size);
    mq_model_free(m);
    struct cmd_result r = run_modelq("estimate testdata/pytorch/tiny");
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
}

/* The data of every tensor of two GGUF files (names and bytes). */
static void expect_same_gguf_tensors(const char *a_path, const char *b_path)
{
    struct mq_model *a = open_ok(a_path), *b = open_ok(b_path);
    cr_assert_eq(a->n_tensors, b->n_tensors);
    for (size_t i = 0; i < a->n_tensors; i++) {
        cr_assert_str_eq(a->tensors[i].name, b->tensors[i].name);
        cr_assert_eq(a->tensors[i].ggml_type, b->tensors[i].ggml_type);
        cr_assert_eq(a->tensors[i].nbytes, b->tensors[i].nbytes);
        uint8_t *x = read_all(a, i), *y = read_all(b, i);
        cr_expect_eq(memcmp(x, y, a->tensors[i].nbytes), 0, "%s: %s differs", b_path, a->tensors[i].name);
        free(x);
        free(y);
    }
    mq_model_free(a);
    mq_model_free(b);
}

Test(pytorch, converting_the_bin_gives_the_safetensors_bytes, .timeout = 120)
{
    char *d = make_temp_dir("pytorch-convert");
    static const char *const types[] = {"q8_0", "f16", "q4_k", "q6_k", "auto"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const char *src[] = {"tiny-st", "tiny", "sharded"};
        for (size_t s = 0; s < 3; s++) {
            struct cmd_result r = run_modelq("convert testdata/pytorch/%s -o %s/%s-%s.gguf --type %s --quiet --no-vocab", src[s], d,
                                             src[s], types[t], types[t]);
            cr_assert_eq(r.code, 0, "%s %s: %s", src[s], types[t], r.err);
            cmd_result_free(&r);
        }
        char a[512], b[512], c[512];
        snprintf(a, sizeof a, "%s/tiny-st-%s.gguf", d, types[t]);
        snprintf(b, sizeof b, "%s/tiny-%s.gguf", d, types[t]);
        snprintf(c, sizeof c, "%s/sharded-%s.gguf", d, types[t]);
        expect_same_gguf_tensors(a, b);
        expect_same_gguf_tensors(a, c);
    }
    struct cmd_result r = run_modelq("convert testdata/pytorch/tiny -o %s/bnb-bin --type nf4 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert testdata/pytorch/tiny-st -o %s/bnb-st --type nf4 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "diff -r %s/bnb-bin %s/bnb-st >/dev/null", d, d);
    cr_expect_eq(system(cmd), 0, "bitsandbytes folders differ");
    remove_tree(d);
    free(d);
}

/* ---- the hostile corpus ---- */

struct bad_case {
    const char *file;
    const char *msg; /* after "modelq: error: testdata/pytorch/bad/<file>: " */
};

#define PKL "archive/data.pkl: "
#define ONLY "(a state dict names only OrderedDict, torch rebuild functions, torch.Size and storage classes; nothing from the file is executed)"
static const struct bad_case bad_cases[] = {
    {"global-os-system.bin", PKL "pickle-global: refused global 'os.system' " ONLY " (byte 2)"},
    {"global-posix-system.bin", PKL "pickle-global: refused global 'posix.system' " ONLY " (byte 2)"},
    {"global-builtins-eval.bin", PKL "pickle-global: refused global 'builtins.eval' " ONLY " (byte 2)"},
    {"global-builtins-exec.bin", PKL "pickle-global: refused global 'builtins.exec' " ONLY " (byte 2)"},
    {"stack-global-subprocess.bin", PKL "pickle-global: refused global 'subprocess.Popen' " ONLY " (byte 27)"},
    {"nested-reduce.bin", PKL "pickle-args: OrderedDict() called with 1 arguments (expects none) (byte 55)"},
    {"rebuild-wrong-args.bin", PKL "pickle-args: _rebuild_tensor_v2: the storage is a str (byte 83)"},
    {"build-ordered-dict.bin",
     PKL "pickle-build: BUILD on an OrderedDict with a dict state refused (only an OrderedDict's _metadata is accepted) (byte 51)"},
    {"inst.bin", PKL "pickle-opcode: opcode INST (0x69) is not allowed in a state dict (byte 10)"},
    {"obj.bin", PKL "pickle-opcode: opcode OBJ (0x6f) is not allowed in a state dict (byte 28)"},
    {"newobj.bin", PKL "pickle-opcode: opcode NEWOBJ (0x81) is not allowed in a state dict (byte 28)"},
    {"text-protocol.bin", PKL "pickle-opcode: opcode INT (0x49) is not allowed in a state dict (byte 2)"},
    {"memo-unset.bin", PKL "pickle-memo: memo index 5 was never set (0 slots) (byte 2)"},
    {"memo-huge-index.bin", PKL "pickle-memo: memo index 4294967280 skips ahead of the 0 slots filled (byte 3)"},
    {"binunicode-huge.bin", PKL "pickle-limit: BINUNICODE of 2147483647 bytes is over the 1048576-byte limit (byte 2)"},
    {"binunicode-past-end.bin", PKL "pickle-truncated: BINUNICODE needs 1000 bytes, 4 left (byte 2)"},
    {"binbytes8-huge.bin",
     PKL "pickle-limit: BINBYTES8 of 9223372036854775807 bytes is over the 1048576-byte limit (byte 2)"},
    {"deep-marks.bin", PKL "pickle-stack: MARKs nest deeper than 256 (byte 258)"},
    {"reduce-string.bin", PKL "pickle-reduce: REDUCE calls a str (only the rebuild functions may be called) (byte 17)"},
    {"persid-not-storage.bin",
     PKL "pickle-persid: persistent id is not ('storage', storage class, key, location, numel) (byte 57)"},
    {"not-a-state-dict.bin", PKL "pickle-not-state-dict: the pickle holds a list, not a state dict of tensors"},
    {"pickle-truncated.bin", PKL "pickle-truncated: GLOBAL name is not a line of under 256 bytes (byte 184)"},
    {"duplicate-name.bin", "tensor 'w': duplicate-name: the state dict names it twice"},
    {"storage-missing.bin", "tensor 'w': pytorch-storage: storage '7' (entry 'archive/data/7') is not in the zip"},
    {"storage-too-small.bin",
     "tensor 'w': pytorch-storage-size: storage '0' declares 6 elements of F32 but its entry holds 8 bytes"},
    {"storage-two-dtypes.bin", "tensor 'v': pytorch-storage: storage '0' is declared as 6 F32 and as 12 F16"},
    {"storage-deflated.bin",
     "tensor 'w': pytorch-compressed: storage entry 'archive/data/0' is deflated; tensor data is read in place and must "
     "be stored uncompressed, as torch.save writes it"},
    {"view-out-of-range.bin",
     "tensor 'w': pytorch-view: offset 4, shape and strides reach element 9 of storage '0', which has 6"},
    {"view-negative-stride.bin", "tensor 'w': pytorch-view: dimension 1 has size 3, stride -1 (negative)"},
    {"view-negative-size.bin", "tensor 'w': pytorch-view: dimension 0 has size -2, stride 3 (negative)"},
    {"view-extent-overflow.bin", "tensor 'w': size-overflow: the view's extent overflows 64 bits"},
    {"zip-truncated.bin", "zip-eocd: no end-of-central-directory record (not a zip file, or truncated)"},
    {"zip-bad-crc.bin", "zip-crc: entry 'archive/data.pkl' does not match its CRC-32 12345678"},
    {"zip-bomb.bin", "zip-inflate: entry 'archive/data.pkl' inflates to more than its declared 100 bytes"},
    {"zip-local-outside.bin",
     "zip-local: entry 'archive/data/0': local header offset 1073741870 is outside the entries' area [0, 376)"},
    {"zip-overlap.bin", "zip-overlap: entries 'archive/data/0' and 'archive/version' overlap"},
    {"zip-no-pickle.bin", "pytorch-layout: a zip without <archive>/data.pkl is not a torch.save checkpoint"},
    {"legacy-format.bin",
     "pytorch-legacy: a PyTorch checkpoint in the legacy format of torch < 1.6 (a bare pickle, not a zip) is not read; "
     "re-save it with a newer torch.save, or convert it to safetensors"},
};

Test(pytorch, hostile_files_are_refused_with_their_message, .timeout = 120)
{
    char *d = make_temp_dir("pytorch-bad");
    unlink("/tmp/modelq-pwned");
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    cr_expect_eq(count_entries_containing("testdata/pytorch/bad", ".bin"), (int)n, "a corpus file has no case here");
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *c = &bad_cases[i];
        char want[1024];
        snprintf(want, sizeof want, "modelq: error: testdata/pytorch/bad/%s: %s\n", c->file, c->msg);
        struct cmd_result r = run_modelq("inspect testdata/pytorch/bad/%s", c->file);
        cr_expect_eq(r.code, 3, "%s: exit %d", c->file, r.code);
        cr_expect_str_eq(r.err, want, "%s", c->file);
        cr_expect_str_eq(r.out, "", "%s", c->file);
        cmd_result_free(&r);
        r = run_modelq("convert testdata/pytorch/bad/%s -o %s/out.gguf --type q8_0", c->file, d);
        cr_expect_eq(r.code, 3, "%s: exit %d", c->file, r.code);
        cr_expect_str_eq(r.err, want, "%s", c->file);
        cmd_result_free(&r);
        cr_expect_eq(count_entries_containing(d, "") - 2, 0, "%s: something was written", c->file);
    }
    cr_expect(!file_exists("/tmp/modelq-pwned"), "a command from a pickle ran");
    remove_tree(d);
    free(d);
}

Test(pytorch, a_storage_that_fails_its_crc_is_refused_when_read)
{
    char *d = make_temp_dir("pytorch-crc");
    struct cmd_result r = run_modelq("inspect testdata/pytorch/bad-crc-storage.bin");
    cr_expect_eq(r.code, 0, "inspect reads headers only: %s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert testdata/pytorch/bad-crc-storage.bin -o %s/out.gguf --type f16", d);
    cr_expect_eq(r.code, 3);
    cr_expect_str_eq(r.err,
                     "modelq: error: tensor w: testdata/pytorch/bad-crc-storage.bin: zip-crc: entry 'archive/data/0' (the storage of "
                     "tensor 'w') does not match its CRC-32 12345678\n");
    cmd_result_free(&r);
    cr_expect_eq(count_entries_containing(d, "") - 2, 0, "something was written");
    r = run_modelq("convert testdata/pytorch/good.bin -o %s/out.gguf --type f16 --quiet", d); /* control */
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(pytorch, hostile_corpus_regenerates_byte_identical)
{
    const char *bd = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(bd, "MODELQ_BUILD_DIR not set (run through ctest)");
    char *d = make_temp_dir("pytorch-corpus");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s/mkbadpickle' '%s' && diff -r testdata/pytorch/bad '%s/pytorch/bad' && "
             "cmp testdata/pytorch/good.bin '%s/pytorch/good.bin' && "
             "cmp testdata/pytorch/bad-crc-storage.bin '%s/pytorch/bad-crc-storage.bin'",
             bd, d, d, d, d);
    cr_expect_eq(system(cmd), 0, "regenerated corpus differs from testdata/pytorch (run build/mkbadpickle testdata)");
    remove_tree(d);
    free(d);
}

/* With torch installed (tools/mkpytorch.py), the fixtures are remade by torch.save and must read
** the same as the committed ones; without it the test is skipped, never failed. */
Test(pytorch, fixtures_regenerate_with_torch, .timeout = 300)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) cr_skip_test("torch is not installed");
    char *d = make_temp_dir("pytorch-torch");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/mkpytorch.py '%s'", d);
    cr_assert_eq(system(cmd), 0);
    const char *pairs[][2] = {{"tiny", "testdata/pytorch/tiny"}, {"sharded", "testdata/pytorch/sharded"},
                              {"dtypes.bin", "testdata/pytorch/dtypes.bin"},
                              {"dtypes.safetensors", "testdata/pytorch/dtypes.safetensors"},
                              {"tiny-st", "testdata/pytorch/tiny-st"}};
    for (size_t i = 0; i < 5; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", d, pairs[i][0]);
        expect_same_tensors(p, pairs[i][1]);
    }
    remove_tree(d);
    free(d);
}
