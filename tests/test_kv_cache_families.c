/*
** test_kv_cache_families.c - estimate's KV cache for the new families equals what llama.cpp
** allocates: Gemma 2 and Gemma 3 (sliding-window layers in a second, smaller cache), Qwen3
** (head_dim 32 while hidden / heads is 16) and Qwen3-MoE (the same, plus experts).
**
** modelq cannot convert these families yet, so the GGUFs are written here with ggml's own writer
** (libggml-base, tests/helpers/ggml_ref.h): the tokenizer keys of modelq's GGUF of the tiny Llama
** (copied with gguf_set_kv), the family's hyper-parameter keys as llama.cpp's converter names them,
** and every tensor llama.cpp's loader asks for, at tiny sizes with small F32 values. The pinned
** libllama (tests/helpers/llama_cpp.h) loads each file and creates contexts over a grid of n_ctx,
** n_ubatch, sequences, K/V types, flash attention and --swa-full; for each, modelq estimate (run on
** the same file with the same settings) must give llama.cpp's cells and layers of each cache, and
** bytes = sum over caches of cells x layers x (ggml_row_size(type_k, kv_heads x head_dim_k) +
** ggml_row_size(type_v, kv_heads x head_dim_v)), computed by ggml itself, and llama.cpp's printed
** MiB. The parameter count must equal llama_model_n_params. The compute buffer estimate stays
** within COMPUTE_TOL of the CPU compute buffer llama.cpp reports.
**
** Without the libraries the tests skip (CI fails). MODELQ_KEEP_TMP=1 keeps the files.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"

/* The compute buffer estimate against the one llama.cpp reserves, relative: these tiny shapes (hidden
 * 64, buffers of 0.1 to 30 MiB) are dominated by small stages the formula only approximates: within
 * 15% except an F32 K cache with flash attention on two 100-token sequences (-34%); realistic shapes
 * agree within 10% (tests/test_compute_buffer.c). This bound catches a formula that is off by a
 * stage (a missing scores term is 2x or more). */
#define COMPUTE_TOL 0.35
#include "llama_cpp.h"
#include "run_cmd.h"

static struct mq_llama_cpp *lc;
static struct mq_ggml ggml_lib;
static const struct mq_ggml *gg;
/* two more of ggml's gguf.h functions (not bound by ggml_ref.h; present in every ggml with gguf.h) */
static void (*gguf_set_kv)(struct gguf_context *ctx, const struct gguf_context *src);
static int64_t (*gguf_remove_key)(struct gguf_context *ctx, const char *key);

static void need_libraries(void)
{
    char why[1024] = "";
    if (!lc) lc = mq_llama_cpp_open(why, sizeof why);
    if (!gg && mq_ggml_open(&ggml_lib, why, sizeof why)) {
        gg = &ggml_lib;
        *(void **)&gguf_set_kv = dlsym(ggml_lib.handle, "gguf_set_kv");
        *(void **)&gguf_remove_key = dlsym(ggml_lib.handle, "gguf_remove_key");
        cr_assert(gguf_set_kv && gguf_remove_key, "libggml-base lacks gguf_set_kv / gguf_remove_key");
    }
    if (lc && gg) return;
    if (getenv("CI")) cr_assert_fail("llama.cpp / ggml libraries missing in CI: %s", why);
    cr_skip_test("skipped: llama.cpp / ggml libraries not installed (%s)", why);
}

/* One family's shape. */
struct family {
    const char *arch;          /* general.architecture */
    unsigned n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
    unsigned n_swa;            /* attention.sliding_window; 0 = key absent */
    int pattern;               /* attention.sliding_window_pattern as a scalar; 0 = key absent */
    const char *pattern_bits;  /* or as a BOOL array, "1" = sliding, one character per layer; NULL = none */
    bool qk_norm;              /* attn_q_norm / attn_k_norm [head_dim] */
    bool post_norms;           /* Gemma: post_attention_norm, post_ffw_norm; no output.weight (tied) */
    unsigned n_expert, n_expert_used, n_ff_exp; /* MoE: ffn_gate_inp and ffn_{gate,up,down}_exps */
};

static const struct family GEMMA2 = {"gemma2", 5, 64, 4, 2, 32, 96, 200, 0, NULL, false, true, 0, 0, 0};
static const struct family GEMMA3 = {"gemma3", 8, 64, 4, 1, 32, 96, 300, 0, NULL, true, true, 0, 0, 0};
static const struct family GEMMA3_NOSWA = {"gemma3", 4, 64, 4, 1, 32, 96, 0, 0, NULL, true, true, 0, 0, 0};
static const struct family GEMMA3_ARR = {"gemma3", 5, 64, 4, 1, 32, 96, 300, 0, "10110", true, true, 0, 0, 0};
static const struct family GEMMA3_P3 = {"gemma3", 7, 64, 4, 2, 16, 96, 700, 3, NULL, true, true, 0, 0, 0};
static const struct family QWEN3 = {"qwen3", 3, 64, 4, 2, 32, 96, 0, 0, NULL, true, false, 0, 0, 0};
static const struct family QWEN3MOE = {"qwen3moe", 2, 64, 4, 2, 32, 96, 0, 0, NULL, true, false, 4, 2, 48};

struct tensor_spec {
    char name[64];
    int n_dims;
    int64_t ne[4];
    bool ones; /* a norm weight: 1.0 */
};

static void add(struct tensor_spec *t, size_t *n, bool ones, int n_dims, int64_t a, int64_t b, int64_t c,
                const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void add(struct tensor_spec *t, size_t *n, bool ones, int n_dims, int64_t a, int64_t b, int64_t c,
                const char *fmt, ...)
{
    struct tensor_spec *s = &t[(*n)++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->n_dims = n_dims;
    s->ne[0] = a, s->ne[1] = b, s->ne[2] = c, s->ne[3] = 1;
    s->ones = ones;
}

/* Every tensor llama.cpp's loader of this architecture requires, in ggml order (ne[0] = row length). */
static size_t family_tensors(const struct family *f, int64_t n_vocab, struct tensor_spec *t)
{
    size_t n = 0;
    int64_t e = f->n_embd, q = (int64_t)f->n_head * f->head_dim, kv = (int64_t)f->n_head_kv * f->head_dim;
    add(t, &n, false, 2, e, n_vocab, 1, "token_embd.weight");
    add(t, &n, true, 1, e, 1, 1, "output_norm.weight");
    if (!f->post_norms) add(t, &n, false, 2, e, n_vocab, 1, "output.weight");
    for (unsigned l = 0; l < f->n_layer; l++) {
        int il = (int)l;
        add(t, &n, true, 1, e, 1, 1, "blk.%d.attn_norm.weight", il);
        add(t, &n, false, 2, e, q, 1, "blk.%d.attn_q.weight", il);
        add(t, &n, false, 2, e, kv, 1, "blk.%d.attn_k.weight", il);
        add(t, &n, false, 2, e, kv, 1, "blk.%d.attn_v.weight", il);
        add(t, &n, false, 2, q, e, 1, "blk.%d.attn_output.weight", il);
        if (f->qk_norm) {
            add(t, &n, true, 1, f->head_dim, 1, 1, "blk.%d.attn_q_norm.weight", il);
            add(t, &n, true, 1, f->head_dim, 1, 1, "blk.%d.attn_k_norm.weight", il);
        }
        if (f->post_norms) add(t, &n, true, 1, e, 1, 1, "blk.%d.post_attention_norm.weight", il);
        add(t, &n, true, 1, e, 1, 1, "blk.%d.ffn_norm.weight", il);
        if (f->n_expert) {
            add(t, &n, false, 2, e, f->n_expert, 1, "blk.%d.ffn_gate_inp.weight", il);
            add(t, &n, false, 3, e, f->n_ff_exp, f->n_expert, "blk.%d.ffn_gate_exps.weight", il);
            add(t, &n, false, 3, e, f->n_ff_exp, f->n_expert, "blk.%d.ffn_up_exps.weight", il);
            add(t, &n, false, 3, f->n_ff_exp, e, f->n_expert, "blk.%d.ffn_down_exps.weight", il);
        } else {
            add(t, &n, false, 2, e, f->n_ff, 1, "blk.%d.ffn_gate.weight", il);
            add(t, &n, false, 2, e, f->n_ff, 1, "blk.%d.ffn_up.weight", il);
            add(t, &n, false, 2, f->n_ff, e, 1, "blk.%d.ffn_down.weight", il);
        }
        if (f->post_norms) add(t, &n, true, 1, e, 1, 1, "blk.%d.post_ffw_norm.weight", il);
    }
    return n;
}

/* Writes the family's GGUF at `path`, with the tokenizer of `base` (a GGUF modelq wrote). */
static void write_family_gguf(const struct family *f, const char *base, const char *path)
{
    struct gguf_context *src = gg->gguf_init_from_file(base, (struct mq_gguf_init_params){true, NULL});
    cr_assert_not_null(src, "ggml cannot read %s", base);
    struct gguf_context *c = gg->gguf_init_empty();
    gguf_set_kv(c, src);
    gg->gguf_free(src);
    /* keep general.* and tokenizer.*: the Llama hyper-parameters go */
    for (int64_t i = gg->gguf_get_n_kv(c) - 1; i >= 0; i--) {
        const char *k = gg->gguf_get_key(c, i);
        if (strncmp(k, "general.", 8) != 0 && strncmp(k, "tokenizer.", 10) != 0) gguf_remove_key(c, k);
    }
    int64_t tok = -1;
    for (int64_t i = 0; i < gg->gguf_get_n_kv(c); i++)
        if (strcmp(gg->gguf_get_key(c, i), "tokenizer.ggml.tokens") == 0) tok = i;
    cr_assert_geq(tok, 0);
    int64_t n_vocab = (int64_t)gg->gguf_get_arr_n(c, tok);
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, f->arch), key)
    gg->gguf_set_val_str(c, "general.architecture", f->arch);
    gg->gguf_set_val_u32(c, KEY("context_length"), 8192);
    gg->gguf_set_val_u32(c, KEY("embedding_length"), f->n_embd);
    gg->gguf_set_val_u32(c, KEY("block_count"), f->n_layer);
    gg->gguf_set_val_u32(c, KEY("feed_forward_length"), f->n_ff);
    gg->gguf_set_val_u32(c, KEY("attention.head_count"), f->n_head);
    gg->gguf_set_val_u32(c, KEY("attention.head_count_kv"), f->n_head_kv);
    gg->gguf_set_val_u32(c, KEY("attention.key_length"), f->head_dim);
    gg->gguf_set_val_u32(c, KEY("attention.value_length"), f->head_dim);
    gg->gguf_set_val_f32(c, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
    gg->gguf_set_val_f32(c, KEY("rope.freq_base"), 10000.0f);
    if (f->n_swa) gg->gguf_set_val_u32(c, KEY("attention.sliding_window"), f->n_swa);
    if (f->pattern) gg->gguf_set_val_u32(c, KEY("attention.sliding_window_pattern"), (uint32_t)f->pattern);
    if (f->pattern_bits) {
        int8_t bits[64];
        size_t nb = strlen(f->pattern_bits);
        for (size_t i = 0; i < nb; i++) bits[i] = f->pattern_bits[i] == '1';
        gg->gguf_set_arr_data(c, KEY("attention.sliding_window_pattern"), GGREF_GGUF_BOOL, bits, nb);
    }
    if (strcmp(f->arch, "gemma2") == 0) {
        gg->gguf_set_val_f32(c, KEY("attn_logit_softcapping"), 50.0f);
        gg->gguf_set_val_f32(c, KEY("final_logit_softcapping"), 30.0f);
    }
    if (f->n_expert) {
        gg->gguf_set_val_u32(c, KEY("expert_count"), f->n_expert);
        gg->gguf_set_val_u32(c, KEY("expert_used_count"), f->n_expert_used);
        gg->gguf_set_val_u32(c, KEY("expert_feed_forward_length"), f->n_ff_exp);
    }
#undef KEY
    struct tensor_spec *t = calloc(16 + 16 * (size_t)f->n_layer, sizeof *t);
    cr_assert_not_null(t);
    size_t n = family_tensors(f, n_vocab, t), mem = 1 << 16;
    for (size_t i = 0; i < n; i++)
        mem += gg->ggml_tensor_overhead() + (size_t)(t[i].ne[0] * t[i].ne[1] * t[i].ne[2]) * 4 + 64;
    struct ggml_context *ctx = gg->ggml_init((struct mq_ggml_init_params){mem, NULL, false});
    cr_assert_not_null(ctx);
    for (size_t i = 0; i < n; i++) {
        struct ggml_tensor *x = gg->ggml_new_tensor(ctx, GGREF_GGML_F32, t[i].n_dims, t[i].ne);
        gg->ggml_set_name(x, t[i].name);
        float *d = gg->ggml_get_data(x);
        int64_t ne = gg->ggml_nelements(x);
        for (int64_t k = 0; k < ne; k++)
            d[k] = t[i].ones ? 1.0f : (float)((k * 37 + (int64_t)i * 11) % 101 - 50) / 2048.0f;
        gg->gguf_add_tensor(c, x);
    }
    cr_assert(gg->gguf_write_to_file(c, path, false), "gguf_write_to_file(%s) failed", path);
    gg->ggml_free(ctx);
    gg->gguf_free(c);
    free(t);
}

struct kv_type {
    const char *name;
    int ggml;
};
static const struct kv_type TYPES[] = {{"f16", 1}, {"q8_0", 8}, {"f32", 0}, {"q4_0", 2}, {"bf16", 30}, {"q5_1", 7}};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static bool quantized(const struct kv_type *t) { return t->ggml != 0 && t->ggml != 1 && t->ggml != 30; }
/* values per block: 32 for the quantized KV types llama.cpp takes, 1 otherwise */
static unsigned block_of(const struct kv_type *t) { return quantized(t) ? 32 : 1; }

/* modelq estimate's KV figures for one setting. */
struct est {
    double cells, bytes, swa_cells, swa_layers, params, compute;
    double experts, experts_used, expert_params, active_params; /* 0 without "moe" */
};
static struct est estimate(const char *gguf, unsigned ctx, unsigned seqs, unsigned ubatch, const struct kv_type *k,
                           const struct kv_type *v, bool fa, bool swa_full)
{
    struct cmd_result r = run_modelq("estimate %s --json --ctx %u --batch %u --ubatch %u -ctk %s -ctv %s%s%s", gguf,
                                     ctx, seqs, ubatch, k->name, v->name, fa ? " -fa" : "",
                                     swa_full ? " --swa-full" : "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cJSON *inf = cJSON_GetObjectItem(j, "inference");
    struct est e = {0};
    e.params = cJSON_GetObjectItem(j, "parameters")->valuedouble;
    cJSON *moe = cJSON_GetObjectItem(j, "moe");
    if (cJSON_IsObject(moe)) {
        e.experts = cJSON_GetObjectItem(moe, "experts")->valuedouble;
        e.experts_used = cJSON_GetObjectItem(moe, "experts_used")->valuedouble;
        e.expert_params = cJSON_GetObjectItem(moe, "expert_parameters")->valuedouble;
        e.active_params = cJSON_GetObjectItem(moe, "active_parameters")->valuedouble;
    }
    e.cells = cJSON_GetObjectItem(inf, "kv_cells")->valuedouble;
    e.bytes = cJSON_GetObjectItem(cJSON_GetObjectItem(inf, "kv_cache"), "bytes")->valuedouble;
    e.compute = cJSON_GetObjectItem(cJSON_GetObjectItem(inf, "compute_buffer"), "bytes")->valuedouble;
    cJSON *swa = cJSON_GetObjectItem(inf, "sliding_window");
    cr_assert(swa != NULL, "no inference.sliding_window in %s", r.out);
    if (cJSON_IsObject(swa)) {
        e.swa_cells = cJSON_GetObjectItem(swa, "cells")->valuedouble;
        e.swa_layers = cJSON_GetObjectItem(swa, "layers")->valuedouble;
    }
    cJSON_Delete(j);
    cmd_result_free(&r);
    return e;
}

/* Builds the family's GGUF and compares every setting of the grid; returns the settings checked or refused. */
static int check_family(const struct family *f, const char *tag, unsigned want_swa_layers)
{
    need_libraries();
    char *dir = make_temp_dir(tag);
    char base[600], gguf[600];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, f->arch);
    struct cmd_result r = run_modelq("convert testdata/tiny-llama -o %s --type f32 --quiet", base);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    write_family_gguf(f, base, gguf);
    char why[2048];
    struct mq_llama_cpp_info info;
    struct mq_llama_cpp_model *m = mq_llama_cpp_load(lc, gguf, &info, why, sizeof why);
    cr_assert_not_null(m, "%s: %s", tag, why);
    int64_t width = (int64_t)f->n_head_kv * f->head_dim;
    static const unsigned ctxs[] = {100, 1000, 3000};
    static const unsigned ubatches[] = {32, 256, 512};
    int checked = 0, refused = 0, windowed = 0;
    double worst_compute = 0;
    for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) {
        for (size_t u = 0; u < sizeof ubatches / sizeof ubatches[0]; u++) {
            for (unsigned seqs = 1; seqs <= 2; seqs++) {
                for (int full = 0; full <= 1; full++) {
                    size_t ti = (c * 3 + u * 2 + seqs + (size_t)full) % N_TYPES;
                    const struct kv_type *k = &TYPES[ti], *v = &TYPES[(ti + 1 + c) % N_TYPES];
                    bool fa = quantized(v) || (c + u) % 2;
                    struct mq_llama_cpp_kv_opts o = {.n_ctx = ctxs[c] * seqs, .n_seq = (int)seqs, .type_k = k->ggml,
                                                     .type_v = v->ggml, .flash_attn = fa, .n_ubatch = ubatches[u],
                                                     .swa_full = full};
                    struct mq_llama_cpp_kv kv;
                    char what[200];
                    snprintf(what, sizeof what, "%s ctx %u x %u ubatch %u K %s V %s%s%s", tag, ctxs[c], seqs,
                             ubatches[u], k->name, v->name, fa ? " fa" : "", full ? " swa-full" : "");
                    if (fa && (f->head_dim % block_of(k) || f->head_dim % block_of(v))) {
                        /* with flash attention llama.cpp refuses a type whose blocks do not divide head_dim;
                         * so does modelq */
                        cr_expect_neq(mq_llama_cpp_kv(m, &o, &kv, why, sizeof why), 0, "%s", what);
                        r = run_modelq("estimate %s --ctx %u -ctk %s -ctv %s%s", gguf, ctxs[c], k->name, v->name,
                                       fa ? " -fa" : "");
                        cr_expect_eq(r.code, 2, "%s: %s", what, r.err);
                        cr_expect(strstr(r.err, "is not a multiple of the type's 32-value blocks (llama.cpp refuses "
                                                "it with flash attention)\n") != NULL, "%s: %s", what, r.err);
                        cmd_result_free(&r);
                        refused++;
                        continue;
                    }
                    cr_assert_eq(mq_llama_cpp_kv(m, &o, &kv, why, sizeof why), 0, "%s: %s", what, why);
                    struct est e = estimate(gguf, ctxs[c], seqs, ubatches[u], k, v, fa, full);
                    /* llama.cpp prints cells per sequence stream */
                    double want_cells = (double)kv.cells * seqs, want_swa = (double)kv.swa_cells * seqs;
                    double row = (double)(gg->ggml_row_size(k->ggml, width) + gg->ggml_row_size(v->ggml, width));
                    double want_bytes = (want_cells * kv.layers + want_swa * kv.swa_layers) * row;
                    cr_expect_eq(kv.swa_layers, want_swa_layers, "%s: llama.cpp has %u SWA layers", what,
                                 kv.swa_layers);
                    cr_expect_eq(kv.layers + kv.swa_layers, f->n_layer, "%s", what);
                    cr_expect_eq(e.cells, want_cells, "%s: cells %.0f, llama.cpp %.0f", what, e.cells, want_cells);
                    cr_expect_eq(e.swa_cells, want_swa, "%s: SWA cells %.0f, llama.cpp %.0f", what, e.swa_cells,
                                 want_swa);
                    cr_expect_eq(e.swa_layers, kv.swa_layers, "%s: SWA layers %.0f, llama.cpp %u", what, e.swa_layers,
                                 kv.swa_layers);
                    cr_expect_eq(e.bytes, want_bytes, "%s: bytes %.0f, ggml says %.0f", what, e.bytes, want_bytes);
                    cr_expect(fabs(e.bytes / 1048576.0 - (kv.mib + kv.swa_mib)) <= 0.01 + 1e-9,
                              "%s: %.4f MiB vs llama.cpp's %.2f + %.2f", what, e.bytes / 1048576.0, kv.mib, kv.swa_mib);
                    /* negative control: a setting where the SWA cache is smaller than the full one, so an
                     * estimate that ignored the window (every layer at full context) would be wrong */
                    if (kv.swa_layers && want_swa < want_cells) {
                        double naive = want_cells * f->n_layer * row;
                        cr_expect_neq(naive, want_bytes, "%s", what);
                        windowed++;
                    }
                    if (checked == 0) {
                        cr_expect_eq(e.params, (double)info.n_params, "%s: %.0f parameters, llama.cpp counts %.0f",
                                     tag, e.params, (double)info.n_params);
                        /* the stacked ffn_{gate,up,down}_exps: 3 x n_ff_exp x n_embd per expert and layer;
                         * expert_count / expert_used_count from the GGUF's keys */
                        double ex = 3.0 * f->n_ff_exp * f->n_embd * f->n_expert * f->n_layer;
                        cr_expect_eq(e.experts, f->n_expert, "%s", tag);
                        cr_expect_eq(e.experts_used, f->n_expert_used, "%s", tag);
                        cr_expect_eq(e.expert_params, ex, "%s: %.0f expert parameters", tag, e.expert_params);
                        double active = f->n_expert ? e.params - ex + ex * f->n_expert_used / f->n_expert : 0;
                        cr_expect_eq(e.active_params, active, "%s: %.0f active", tag, e.active_params);
                    }
                    /* the compute buffer: within COMPUTE_TOL of what llama.cpp reserved */
                    cr_assert_gt(kv.compute_mib, 0, "%s: no compute buffer line", what);
                    double dev = e.compute / (kv.compute_mib * 1048576.0) - 1.0;
                    if (fabs(dev) > fabs(worst_compute)) worst_compute = dev;
                    cr_expect_leq(fabs(dev), COMPUTE_TOL, "%s: compute buffer %.4f MiB, llama.cpp %.4f MiB", what,
                                  e.compute / 1048576.0, kv.compute_mib);
                    checked++;
                }
            }
        }
    }
    cr_expect_eq(refused > 0, f->head_dim % 32 != 0, "%s: %d settings refused", tag, refused);
    /* inspect shows what the estimate used, from the GGUF's own metadata */
    char want[200];
    r = run_modelq("inspect %s", gguf);
    cr_expect_eq(r.code, 0, "%s", r.err);
    snprintf(want, sizeof want, "heads %u (kv %u), head_dim %u,", f->n_head, f->n_head_kv, f->head_dim);
    cr_expect(strstr(r.out, want) != NULL, "%s: no '%s' in\n%s", tag, want, r.out);
    snprintf(want, sizeof want, "sliding window %u tokens on %u of %u layers", f->n_swa, want_swa_layers, f->n_layer);
    cr_expect_eq(strstr(r.out, want) != NULL, want_swa_layers > 0, "%s: '%s' in\n%s", tag, want, r.out);
    snprintf(want, sizeof want, "experts %u, %u used per token", f->n_expert, f->n_expert_used);
    cr_expect_eq(strstr(r.out, want) != NULL, f->n_expert > 0, "%s: '%s' in\n%s", tag, want, r.out);
    cmd_result_free(&r);
    cr_expect_eq(windowed > 0, want_swa_layers > 0, "%s: %d settings with a smaller SWA cache", tag, windowed);
    fprintf(stderr, "%s: compute buffer estimate vs llama.cpp's, largest deviation %+.1f%% over %d settings\n", tag,
            100 * worst_compute, checked);
    mq_llama_cpp_free(m);
    if (!getenv("MODELQ_KEEP_TMP")) remove_tree(dir);
    free(dir);
    return checked + refused;
}

Test(kv_cache_families, gemma2_every_other_layer_slides) { cr_expect_eq(check_family(&GEMMA2, "kvgemma2", 3), 36); }
Test(kv_cache_families, gemma3_five_of_six_slide) { cr_expect_eq(check_family(&GEMMA3, "kvgemma3", 7), 36); }
Test(kv_cache_families, gemma3_pattern_key) { cr_expect_eq(check_family(&GEMMA3_P3, "kvgemma3p", 5), 36); }
Test(kv_cache_families, gemma3_no_window) { cr_expect_eq(check_family(&GEMMA3_NOSWA, "kvgemma3n", 0), 36); }
Test(kv_cache_families, gemma3_pattern_array) { cr_expect_eq(check_family(&GEMMA3_ARR, "kvgemma3a", 3), 36); }
Test(kv_cache_families, qwen3_head_dim_from_key_length) { cr_expect_eq(check_family(&QWEN3, "kvqwen3", 0), 36); }
Test(kv_cache_families, qwen3moe) { cr_expect_eq(check_family(&QWEN3MOE, "kvqwen3moe", 0), 36); }
