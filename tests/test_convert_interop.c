/*
** test_convert_interop.c - every GGUF `modelq convert` writes, read by two independent parsers:
** ggml's own gguf_init_from_file (no_alloc = false: it reads and size-checks all tensor data)
** from the pinned libggml-base.so, and the npm package @huggingface/gguf. Both views must agree,
** and names, dims (reversed), ggml types, general.file_type and every metadata value *type* are
** checked against values computed here from the source checkpoint and the spec tables - not
** from modelq's code. The tensor bytes are checked against ggml's own quantizer
** (ggml_quantize_chunk) run on the source rows, with the Q/K permutation done here.
** Under CI a missing library or npm package fails the test.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "model_impl.h"
#include "gguf_dump.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

/* HF -> GGUF names, written out from gguf-and-ggml.md section 4.4. */
static bool gguf_name(const char *hf, char *out, size_t cap)
{
    static const char *const layer_map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(out, cap, "token_embd.weight") > 0;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(out, cap, "output_norm.weight") > 0;
    if (!strcmp(hf, "lm_head.weight")) return snprintf(out, cap, "output.weight") > 0;
    int layer, used = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &used) != 1 || !used) return false;
    for (size_t i = 0; i < sizeof layer_map / sizeof layer_map[0]; i++)
        if (!strcmp(hf + used, layer_map[i][0])) return snprintf(out, cap, "blk.%d.%s", layer, layer_map[i][1]) > 0;
    return false;
}

struct type_case {
    const char *name;
    int file_type;   /* llama_ftype */
    int matrix;      /* ggml type of eligible matrices */
    int output;      /* ggml type of output.weight */
    int more_bits;   /* _M mixtures: ggml type of attn_v/ffn_down in use_more_bits layers (0: the matrix type) */
    int attn_v;      /* Q4_K_S: ggml type of attn_v in layers 0-3 (0: the matrix type) */
};

/* llama-quantize: output.weight Q6_K unless the file is Q8_0; float files keep it in the type.
 * Q4_K and Q5_K (= Q4_K_M, Q5_K_M) give attn_v and ffn_down Q6_K where use_more_bits(i, n) = i < n/8 ||
 * i >= 7n/8 || (i - n/8) % 3 == 2 holds: with 2 layers that is layer 1 only. Q4_K_S gives attn_v of
 * layers 0-3 Q5_K (and ffn_down of the first n/8 = 0 layers). */
static const struct type_case cases[] = {
    {"f32", 0, 0, 0, 0, 0},     {"f16", 1, 1, 1, 0, 0},      {"bf16", 32, 30, 30, 0, 0},  {"auto", 32, 30, 30, 0, 0},
    {"q8_0", 7, 8, 8, 0, 0},    {"q4_0", 2, 2, 14, 0, 0},    {"q4_1", 3, 3, 14, 0, 0},    {"q5_0", 8, 6, 14, 0, 0},
    {"q5_1", 9, 7, 14, 0, 0},   {"iq4_nl", 25, 20, 14, 0, 0}, {"q6_K", 18, 14, 14, 0, 0}, {"q5_K", 17, 13, 14, 14, 0},
    {"q4_K", 15, 12, 14, 14, 0}, {"q4_K_S", 14, 12, 14, 0, 13}, {"q5_K_S", 16, 13, 14, 0, 0},
};

static void expect(bool ok, const char *why) { cr_expect(ok, "%s", why); }

/* The KV pairs llama.cpp needs, with their exact types, from config.json of the bundled model. */
static void check_metadata(const struct gguf_view *v, const struct type_case *tc, size_t n_tensors)
{
    char why[512];
    expect(gguf_view_expect_str(v, "general.architecture", "llama", why, sizeof why), why);
    expect(gguf_view_expect_str(v, "general.name", "tiny-llama", why, sizeof why), why);
    static const struct { const char *key; uint64_t value; } u32[] = {
        {"llama.block_count", 2},           {"llama.context_length", 2048},   {"llama.embedding_length", 256},
        {"llama.feed_forward_length", 512}, {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2},
        {"llama.attention.key_length", 64}, {"llama.attention.value_length", 64}, {"llama.rope.dimension_count", 64},
        {"llama.vocab_size", 384},          {"general.quantization_version", 2},
    };
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++)
        expect(gguf_view_expect_uint(v, u32[i].key, GGREF_GGUF_UINT32, u32[i].value, why, sizeof why), why);
    expect(gguf_view_expect_uint(v, "general.file_type", GGREF_GGUF_UINT32, (uint64_t)tc->file_type, why, sizeof why),
           why);
    expect(gguf_view_expect_float(v, "llama.rope.freq_base", GGREF_GGUF_FLOAT32, 10000.0, why, sizeof why), why);
    expect(gguf_view_expect_float(v, "llama.attention.layer_norm_rms_epsilon", GGREF_GGUF_FLOAT32, 1e-5, why,
                                  sizeof why), why);
    expect(gguf_view_expect_array(v, "modelq.tensor_xxh3", GGREF_GGUF_UINT64, n_tensors, why, sizeof why), why);
}

/* Source tensor as f32, rows permuted as convert_hf_to_gguf's LlamaModel.permute does. */
static float *source_f32(const struct mq_model *m, size_t i, int n_head)
{
    const struct mq_tensor *t = &m->tensors[i];
    uint16_t *raw = malloc(t->nbytes);
    struct mq_error err;
    cr_assert_eq(mq_model_read(m, i, 0, raw, t->nbytes, &err), MQ_OK);
    cr_assert_eq(t->dtype, MQ_DTYPE_BF16);
    float *x = malloc(t->numel * sizeof *x);
    for (uint64_t k = 0; k < t->numel; k++) x[k] = mq_bf16_to_f32(raw[k]);
    free(raw);
    if (n_head) {
        /* W.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols) */
        uint64_t rows = t->shape[0], cols = t->shape[1], hd = rows / (uint64_t)n_head;
        float *y = malloc(t->numel * sizeof *y);
        for (uint64_t h = 0; h < (uint64_t)n_head; h++)
            for (uint64_t a = 0; a < 2; a++)
                for (uint64_t b = 0; b < hd / 2; b++)
                    memcpy(y + (h * hd + b * 2 + a) * cols, x + (h * hd + a * (hd / 2) + b) * cols, cols * sizeof *y);
        free(x);
        x = y;
    }
    return x;
}

static void check_tensors(const struct gguf_view *v, const struct mq_model *m, const struct type_case *tc,
                          const struct mq_ggml *g)
{
    char why[512];
    cr_expect_eq(v->n_tensors, m->n_tensors, "%s: tensor count", tc->name);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        char name[128];
        cr_assert(gguf_name(t->name, name, sizeof name), "no GGUF name for %s", t->name);
        int64_t ne[4] = {1, 1, 1, 1};
        for (uint32_t d = 0; d < t->ndim; d++) ne[d] = (int64_t)t->shape[t->ndim - 1 - d];
        int type = t->ndim == 1 ? 0 : !strcmp(name, "output.weight") ? tc->output : tc->matrix;
        if (tc->more_bits && (!strcmp(name, "blk.1.attn_v.weight") || !strcmp(name, "blk.1.ffn_down.weight")))
            type = tc->more_bits;
        if (tc->attn_v && strstr(name, ".attn_v.weight")) type = tc->attn_v;
        expect(gguf_view_expect_tensor(v, name, type, t->ndim, ne, why, sizeof why), why);
        /* bytes: ggml's quantizer on the same (permuted) rows */
        const struct gguf_view_tensor *vt = gguf_view_find_tensor(v, name);
        if (!vt || !vt->has_hash) continue;
        int n_head = strstr(name, "attn_q.") ? 4 : strstr(name, "attn_k.") ? 2 : 0;
        float *x = source_f32(m, i, n_head);
        uint64_t rows = t->ndim == 1 ? 1 : t->shape[0], cols = t->shape[t->ndim - 1];
        size_t cap = (size_t)t->numel * 4 + 4096;
        uint8_t *want = malloc(cap);
        g->quantize_init(type);
        size_t n = g->quantize_chunk(type, x, want, 0, (int64_t)rows, (int64_t)cols, NULL);
        cr_expect_eq(n, vt->nbytes, "%s %s: ggml size", tc->name, name);
        cr_expect_eq(XXH64(want, n, 0), vt->data_hash, "%s %s: bytes differ from ggml_quantize_chunk", tc->name, name);
        free(want);
        free(x);
    }
}

Test(convert_interop, every_type_read_by_ggml_and_huggingface_gguf)
{
    struct mq_ggml g;
    char why[1024];
    bool have = mq_ggml_open(&g, why, sizeof why) && g.quantize_chunk;
    gguf_view_need_tools(have, why);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(MODEL, &m, &err), MQ_OK);
    char *dir = make_temp_dir("interop");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct type_case *tc = &cases[k];
        char out[512];
        snprintf(out, sizeof out, "%s/%s.gguf", dir, tc->name);
        struct cmd_result r = run_modelq("convert " MODEL " -o %s --type %s --quiet", out, tc->name);
        cr_assert_eq(r.code, 0, "%s: %s", tc->name, r.err);
        cmd_result_free(&r);
        struct gguf_view a, b;
        bool ok = gguf_view_from_ggml(&a, &g, out, false, why, sizeof why);
        cr_assert(ok, "ggml refuses %s: %s", out, why);
        ok = gguf_view_from_js(&b, out, why, sizeof why);
        gguf_view_need_tools(ok, why);
        expect(gguf_view_compare(&a, &b, why, sizeof why), why);
        expect(gguf_view_check_layout(&a, why, sizeof why), why);
        cr_expect_eq(a.version, 3);
        cr_expect_eq(a.alignment, 32);
        check_metadata(&a, tc, m->n_tensors);
        check_metadata(&b, tc, m->n_tensors);
        check_tensors(&a, m, tc, &g);
        gguf_view_free(&a);
        gguf_view_free(&b);
    }
    mq_model_free(m);
    mq_ggml_close(&g);
    remove_tree(dir);
    free(dir);
}
