/*
** test_families.c - the model families of issue 10 through modelq and llama.cpp, against the
** float64 reference decoder (tests/helpers/decoder_ref.c, bound to config.json and the Hugging
** Face tensor names by tests/helpers/family_ref.c; both written from transformers' semantics).
**
** Per family (one Test each, so an unsupported family fails on its own line):
**   1. $MODELQ_BUILD_DIR/mkfamily FAMILY writes a small random checkpoint (real key set and
**      tensor names, BF16) into a temporary folder; the reference is bound to that folder's
**      config.json and tensors (read with modelq's safetensors reader: BF16 -> f32 is exact).
**   2. mq_convert writes f32, q8_0 and q4_K GGUFs; llama.cpp (tests/helpers/llama_cpp.h, the
**      pinned libllama, F32 KV cache, one thread, context 128) loads each, checks what it read
**      (architecture as llama.cpp's converter names it, vocabulary, sizes) and evaluates three
**      fixed random token sequences of 48, 40 and 36 tokens (longer than every sliding window of
**      the fixtures) with logits at every position. Under ASan only the 48-token one.
**   3. KL(reference || llama.cpp) of the next-token distribution, per position; max, mean and
**      median printed, max (and for q8_0 / q4_K the mean) bounded, see below.
**   4. Negative controls on the f32 file: the reference mutated the way a converter bug would
**      show (Gemma norms without +1, experts 0 and 1 swapped, Phi partial rotary ignored,
**      SmolLM3 RoPE on every layer, Granite multipliers dropped, sliding window ignored, q/k norms
**      dropped or per head, fused qkv k/v swapped, softcapping dropped, LongRoPE short factors
**      instead of long) must be far from what llama.cpp computes: KL max >= CONTROL_KL_MIN.
** Plus: one sharded checkpoint (qwen3moe in 3 shards: the experts of a layer span files) must
** give the same GGUF, byte for byte, as the single file (and so the same KL); Phi-4-mini on
** LongRoPE's long factors; Gemma 2 with softcaps small enough to matter.
**
** Measured (gcc RelWithDebInfo; llama.cpp backends haswell / x64 / sse42 agree within ~1.7x):
**   family    f32 KL max   q8_0 mean / max      q4_K mean / max    controls (KL max)
**   qwen3     1.9e-11      3.9e-3 / 2.3e-2      0.22 / 1.06        q/k norms dropped 5.5
**   qwen3moe  3.3e-10      3.6e-2 / 0.72        1.47 / 10.7        experts swapped 9.5, q/k norms dropped 12.8
**   mixtral   1.3e-10      9.4e-2 / 6.4         1.63 / 11.0        experts swapped 18.5
**   gemma2    2.7e-6 (*)   1.5e-3 / 1.6e-2      5.7e-2 / 0.38      norms without +1 3.2, no sliding window 1.2
**   gemma3    2.0e-6 (*)   2.7e-3 / 1.6e-2      8.6e-2 / 0.30      norms without +1 2.7, no sliding window 1.7,
**                                                                  q/k norms dropped 0.68
**   phi3      8.5e-12      3.6e-3 / 2.3e-2      0.22 / 1.49        fused qkv k/v swapped 14.8
**   phi4mini  1.6e-12      4.4e-4 / 2.6e-3      1.8e-2 / 9.7e-2    partial rotary ignored 1.0
**     long factors 1.4e-12                                         short factors 1.2
**   smollm3   3.3e-11      5.4e-3 / 2.7e-2      0.24 / 0.94        RoPE on every layer 0.24
**   granite   1.3e-13      3.0e-5 / 1.1e-4      1.3e-3 / 5.4e-3    multipliers dropped 7.3
**   olmo2     5.8e-11      9.1e-3 / 6.0e-2      1.09 / 6.4         q/k norms per head 6.4, dropped 21.8
**   gemma2 softcaps 4 / 3: 2.6e-7 (*)                              softcapping dropped 3.0
**   qwen3moe from 3 shards: 3.3e-10 (the same file)
** Bounds: f32 F32_KL_MAX = 1e-6 (the issue's); q8_0 and q4_K about 3x the measured mean and max.
** The quantized KLs are large because the fixtures' next-token distributions are peaked (as
** test_llama_run.c's tiny-llama: q4_K KL max 0.95 there). Mixtral / Qwen3-MoE have a few
** positions far above the rest (Mixtral q8_0: median 1.1e-2, max 6.4; one position carries
** half the sum), as when quantization noise flips the top-2 expert choice there (an
** interpretation, not measured: the reference does not report its routing); for them the max
** bound says little and the mean bound is the check.
**
** (*) Gemma: ggml's CPU GELU is not gelu_tanh. With GGML_GELU_FP16 (ggml-cpu/vec.h) it rounds
** the F32 input to F16 and reads a table of F16-rounded gelu_tanh values (|x| < 10). That
** rounding (relative 2^-11 on the FFN activations) is the whole difference: against the
** reference with that table emulated (DREF_ACT_GELU_TANH_GGML_F16, a diagnostic, not
** transformers) the same llama.cpp logits give KL max 1.2e-7 (gemma2), 7.7e-8 (gemma3),
** 1.7e-8 (softcaps 4 / 3), all under F32_KL_MAX, which the test checks. Against the true
** reference the bound is GELU_KL_MAX = 1e-5 (3.7x the largest measured, 2.7e-6).
**
** LongRoPE: transformers picks long_factor when the sequence (max position + 1) exceeds
** original_max_position_embeddings; llama.cpp picks rope_long when the context per sequence
** (n_ctx / n_seq_max, here LLAMA_N_CTX) exceeds rope.scaling.original_context_length
** (llama_model::get_rope_factors). They agree only when both are on the same side: the default
** phi4mini fixture (original 4096 > 128 >= 48) runs short factors in both; phi4mini_long_factors
** sets original_max_position_embeddings to 32 (< 36 <= every sequence, < 128): long in both.
**
** What llama.cpp does not follow (so the fixtures keep to what real checkpoints use):
**   - Phi-3: llama.cpp turns sliding-window attention off for phi3 ("Phi SWA is currently
**     disabled", llama.cpp PR 13676) while transformers applies config.sliding_window; real
**     Phi-3 windows (2047, 262144) exceed most prompts, and so does the fixture's 2047.
**   - Gemma 2/3: llama.cpp scales attention by 1/sqrt(head_dim) (27B: hidden/heads) and ignores
**     query_pre_attn_scalar; the fixtures set it to head_dim as gemma-2-2b and gemma-3-1b do.
**   - Qwen3-MoE: llama.cpp always renormalises the top-k weights; the fixture has
**     norm_topk_prob true as every published Qwen3-MoE.
**   - SmolLM3: llama.cpp places NoPE layers by no_rope_layer_interval; the fixture's
**     no_rope_layers list agrees with it.
** Without the libraries the tests skip with a message; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "family_ref.h"
#include "fref_folder.h"
#include "llama_cpp.h"
#include "logprob.h"
#include "modelq/convert.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "sanitizer.h"

#define F32_KL_MAX 1e-6     /* KL(ref || llama.cpp) per position, f32 files */
#define GELU_KL_MAX 1e-5    /* the same for Gemma 2/3 (ggml's F16 GELU table; see the top) */
#define CONTROL_KL_MIN 1e-2 /* a negative control's KL max must be at least this */
#define LLAMA_N_CTX 128     /* llama.cpp's context size (mq_llama_cpp_ctx_opts n_ctx 0) */
#define N_SEQ 3

static const size_t seq_len[N_SEQ] = {48, 40, 36};
/* Sequences evaluated: all three, or under ASan (the converter instrumented, the reference and
** the controls run for every type) the first, longest one, which crosses every sliding window. */
static const int n_seq = BUILT_WITH_ASAN ? 1 : N_SEQ;

/* ---- llama.cpp, once per test process ---------------------------------------------------- */

static struct mq_llama_cpp *LC;

static struct mq_llama_cpp *need_llama_cpp(void)
{
    static char why[1400];
    if (!LC) LC = mq_llama_cpp_open(why, sizeof why);
    if (LC) return LC;
    if (getenv("CI")) cr_assert_fail("llama.cpp required when CI is set: %s", why);
    fprintf(stderr, "SKIP families test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("families test skipped: %s", why);
    return NULL;
}

/* ---- sequences and distributions ---------------------------------------------------------- */

struct seqs {
    int32_t ids[N_SEQ][64];
};

/* Token ids < 382 (the fixtures' special tokens excluded) from a fixed LCG seeded per family. */
static void make_seqs(const char *family, struct seqs *S)
{
    uint32_t x = 2166136261u;
    for (const char *p = family; *p; p++) x = (x ^ (uint8_t)*p) * 16777619u;
    for (int s = 0; s < n_seq; s++)
        for (size_t i = 0; i < seq_len[s]; i++) {
            x = x * 1664525u + 1013904223u;
            S->ids[s][i] = (int32_t)((x >> 8) % 382u);
        }
}

struct kl {
    double max, sum;
    int positions;
    double each[N_SEQ * 64]; /* per position, for the median */
};

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double kl_median(const struct kl *a)
{
    double v[N_SEQ * 64];
    memcpy(v, a->each, (size_t)a->positions * sizeof v[0]);
    qsort(v, (size_t)a->positions, sizeof v[0], cmp_double);
    return a->positions % 2 ? v[a->positions / 2] : 0.5 * (v[a->positions / 2 - 1] + v[a->positions / 2]);
}

/* KL(ref || got) at each of T positions, added to `a`. */
static void add_kl(const float *ref, const float *got, int V, size_t T, struct kl *a)
{
    double *lr = malloc((size_t)V * sizeof *lr), *lg = malloc((size_t)V * sizeof *lg);
    cr_assert(lr && lg);
    for (size_t t = 0; t < T; t++) {
        const double k = logprob_kl_into(ref + t * (size_t)V, got + t * (size_t)V, V, lr, lg);
        a->max = fmax(a->max, k);
        a->sum += k;
        cr_assert_lt(a->positions, N_SEQ * 64);
        a->each[a->positions++] = k;
    }
    free(lr);
    free(lg);
}

/* ---- converting and running ----------------------------------------------------------------- */

static void convert(const char *in, const char *type, const char *out)
{
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.output = out;
    o.type = type;
    o.threads = 2;
    struct mq_convert_report rep;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "convert %s to %s: %s", in, type, err.msg);
    mq_convert_report_free(&rep);
}

/* llama.cpp's logits for every sequence, from the GGUF at `path`: out[s] (caller frees). */
static void run_llama(const char *path, const struct fref_folder *R, const char *arch, const struct seqs *S, float *out[N_SEQ])
{
    char why[2400];
    struct mq_llama_cpp_info info;
    struct mq_llama_cpp_model *m = mq_llama_cpp_load(need_llama_cpp(), path, &info, why, sizeof why);
    cr_assert_not_null(m, "%s: %s", path, why);
    const struct dref_config *c = &R->M.cfg;
    cr_assert_str_eq(info.arch, arch, "%s: llama.cpp reads architecture %s", path, info.arch);
    cr_assert_eq(info.n_vocab, c->n_vocab);
    cr_assert_eq(info.n_embd, c->n_embd);
    cr_assert_eq(info.n_layer, c->n_layer);
    cr_assert_eq(info.n_head, c->n_head);
    cr_assert_eq(info.n_head_kv, c->n_kv_head);
    for (int s = 0; s < n_seq; s++) {
        out[s] = malloc(seq_len[s] * (size_t)c->n_vocab * sizeof(float));
        cr_assert_not_null(out[s]);
        struct mq_llama_cpp_ctx_opts opts = {.n_ctx = LLAMA_N_CTX};
        cr_assert_eq(mq_llama_cpp_eval(m, &opts, S->ids[s], seq_len[s], out[s], why, sizeof why), 0, "%s: %s", path,
                     why);
    }
    mq_llama_cpp_free(m);
}

/* KL of reference model (cfg, w) against llama.cpp's logits `got`, over every sequence. */
static struct kl kl_vs(const struct dref_config *cfg, const struct dref_weights *w, const struct seqs *S,
                       float *const got[N_SEQ])
{
    struct kl a = {0};
    for (int s = 0; s < n_seq; s++) {
        float *ref = malloc(seq_len[s] * (size_t)cfg->n_vocab * sizeof *ref);
        cr_assert_not_null(ref);
        cr_assert_eq(dref_forward(cfg, w, S->ids[s], seq_len[s], ref, NULL), 0, "reference forward pass failed");
        add_kl(ref, got[s], cfg->n_vocab, seq_len[s], &a);
        free(ref);
    }
    return a;
}

/* ---- negative controls ------------------------------------------------------------------------ */

/* A mutation of the reference: what llama.cpp would compute from a file with that mistake. */
enum control {
    C_GEMMA_NORM_NO_PLUS1,
    C_NO_SLIDING_WINDOW,
    C_SWAP_EXPERTS,
    C_FULL_ROTARY,
    C_ROPE_EVERY_LAYER,
    C_NO_GRANITE_MULT,
    C_NO_QK_NORM,
    C_QK_NORM_PER_HEAD,
    C_PHI3_KV_SWAPPED,
    C_NO_SOFTCAP,
    C_SHORT_FACTORS,
};

static const char *const control_names[] = {
    [C_GEMMA_NORM_NO_PLUS1] = "Gemma norms without +1",
    [C_NO_SLIDING_WINDOW] = "sliding window ignored",
    [C_SWAP_EXPERTS] = "experts 0 and 1 swapped",
    [C_FULL_ROTARY] = "partial rotary ignored",
    [C_ROPE_EVERY_LAYER] = "RoPE on every layer",
    [C_NO_GRANITE_MULT] = "Granite multipliers dropped",
    [C_NO_QK_NORM] = "q/k norms dropped",
    [C_QK_NORM_PER_HEAD] = "q/k norms per head",
    [C_PHI3_KV_SWAPPED] = "fused qkv: k and v swapped",
    [C_NO_SOFTCAP] = "softcapping dropped",
    [C_SHORT_FACTORS] = "LongRoPE short factors",
};

static struct kl run_control(const struct fref_folder *R, enum control c, const struct seqs *S, float *const got[N_SEQ])
{
    struct fref_model M = R->M; /* a copy: the weights stay shared, pointers into M are re-aimed */
    struct dref_config *g = &M.cfg;
    g->longrope.short_factor = g->longrope.short_factor ? M.longrope_short : NULL;
    g->longrope.long_factor = g->longrope.long_factor ? M.longrope_long : NULL;
    switch (c) {
    case C_GEMMA_NORM_NO_PLUS1:
        g->norm = DREF_NORM_RMS;
        break;
    case C_NO_SLIDING_WINDOW:
        g->sliding_window = 0;
        break;
    case C_SWAP_EXPERTS:
        for (int l = 0; l < g->n_layer; l++) {
            struct dref_expert e0 = M.w.layers[l].experts[0];
            M.w.layers[l].experts[0] = M.w.layers[l].experts[1];
            M.w.layers[l].experts[1] = e0;
        }
        break;
    case C_FULL_ROTARY: /* every dim rotated; the factors of the extra pairs 1 */
        for (int i = g->rot_dim / 2; i < g->head_dim / 2; i++) M.longrope_short[i] = M.longrope_long[i] = 1.0;
        g->rot_dim = g->head_dim;
        break;
    case C_ROPE_EVERY_LAYER:
        memset(g->layer_nope, 0, sizeof g->layer_nope);
        break;
    case C_NO_GRANITE_MULT:
        g->embed_scale = g->residual_scale = g->attn_scale = g->logit_scale = 0.0;
        break;
    case C_NO_QK_NORM:
        g->qk_norm = DREF_QK_NORM_NONE;
        break;
    case C_QK_NORM_PER_HEAD: /* the first head_dim weights of the full-width norm, per head */
        g->qk_norm = DREF_QK_NORM_HEAD;
        break;
    case C_PHI3_KV_SWAPPED:
        for (int l = 0; l < g->n_layer; l++) {
            const float *k = M.w.layers[l].wk;
            M.w.layers[l].wk = M.w.layers[l].wv;
            M.w.layers[l].wv = k;
        }
        break;
    case C_NO_SOFTCAP:
        g->attn_softcap = g->final_softcap = 0.0;
        break;
    case C_SHORT_FACTORS:
        g->longrope.long_factor = g->longrope.short_factor;
        break;
    }
    return kl_vs(g, &M.w, S, got);
}

/* ---- one family ---------------------------------------------------------------------------------- */

struct family_case {
    const char *name;   /* mkfamily FAMILY */
    const char *arch;   /* general.architecture as llama.cpp's converter writes it */
    double f32_max;     /* KL max bound of the f32 file against the reference */
    double q8_mean, q8_max, q4k_mean, q4k_max;
    enum control controls[4];
    int n_controls;
    bool ggml_gelu;     /* also compare with the reference on ggml's F16 GELU table (<= F32_KL_MAX) */
};

static void print_row(const char *fam, const char *what, const struct kl *a)
{
    fprintf(stderr, "  %-9s %-40s KL max %10.3e  mean %10.3e  median %10.3e  (%d positions)\n", fam, what, a->max,
            a->sum / a->positions, kl_median(a), a->positions);
}

/*
** TMP/TAG (the folder name becomes general.name; never the family's name: llama.cpp's vocabulary
** loader looks up family-specific special tokens such as Phi-3's "<|end|>" by general.name, and
** the fixtures' 384-token vocabulary has none of them).
*/
static char *make_fixture(const char *tmp, const char *family, const char *tag, int shards)
{
    const char *build = getenv("MODELQ_BUILD_DIR");
    cr_assert(build && *build, "MODELQ_BUILD_DIR must be set (run through ctest)");
    char *dir = malloc(700);
    cr_assert_not_null(dir);
    snprintf(dir, 700, "%s/%s", tmp, tag);
    run_shell("mkdir -p '%s' && '%s/mkfamily' %s '%s' --shards %d > '%s.log' 2>&1 || { cat '%s.log' >&2; exit 1; }", dir,
              build, family, dir, shards, dir, dir);
    return dir;
}

static void free_logits(float *got[N_SEQ])
{
    for (int s = 0; s < n_seq; s++) free(got[s]);
}

static void check_family(const struct family_case *fc)
{
    need_llama_cpp();
    char *tmp = make_temp_dir("families");
    char *dir = make_fixture(tmp, fc->name, "fixture", 1);
    struct fref_folder R;
    fref_folder_load(dir, &R);
    struct seqs S;
    make_seqs(fc->name, &S);
    fprintf(stderr, "%s (%s; llama.cpp backend %s): KL(reference || llama.cpp) per position\n", fc->name, R.M.arch,
            mq_llama_cpp_backend(LC));
    static const char *const types[] = {"f32", "q8_0", "q4_K"};
    const double max_bound[] = {fc->f32_max, fc->q8_max, fc->q4k_max};
    const double mean_bound[] = {fc->f32_max, fc->q8_mean, fc->q4k_mean};
    float *f32_logits[N_SEQ] = {0};
    for (int t = 0; t < 3; t++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s.gguf", tmp, types[t]);
        convert(dir, types[t], path);
        float *got[N_SEQ] = {0};
        run_llama(path, &R, fc->arch, &S, got);
        struct kl a = kl_vs(&R.M.cfg, &R.M.w, &S, got);
        print_row(fc->name, types[t], &a);
        cr_expect_leq(a.max, max_bound[t], "%s %s: KL max %.3e > %.1e", fc->name, types[t], a.max, max_bound[t]);
        cr_expect_leq(a.sum / a.positions, mean_bound[t], "%s %s: KL mean %.3e > %.1e", fc->name, types[t],
                      a.sum / a.positions, mean_bound[t]);
        if (t == 0) memcpy(f32_logits, got, sizeof got);
        else free_logits(got);
    }
    if (fc->ggml_gelu) {
        struct dref_config g = R.M.cfg;
        cr_assert_eq(g.act, DREF_ACT_GELU_TANH);
        g.act = DREF_ACT_GELU_TANH_GGML_F16;
        struct kl a = kl_vs(&g, &R.M.w, &S, f32_logits);
        print_row(fc->name, "f32 vs reference with ggml's F16 GELU", &a);
        cr_expect_leq(a.max, F32_KL_MAX, "%s f32 against the reference on ggml's GELU table: KL max %.3e > %.1e",
                      fc->name, a.max, F32_KL_MAX);
    }
    for (int i = 0; i < fc->n_controls; i++) {
        struct kl a = run_control(&R, fc->controls[i], &S, f32_logits);
        char what[64];
        snprintf(what, sizeof what, "control: %s", control_names[fc->controls[i]]);
        print_row(fc->name, what, &a);
        cr_expect_geq(a.max, CONTROL_KL_MIN, "%s control \"%s\": KL max only %.3e", fc->name,
                      control_names[fc->controls[i]], a.max);
    }
    free_logits(f32_logits);
    fref_folder_free(&R);
    free(dir);
    remove_tree(tmp);
    free(tmp);
}

/*
** Bounds (see the table at the top of this file): f32 F32_KL_MAX, Gemma GELU_KL_MAX; q8_0 and
** q4_K: KL mean, then KL max, each the measured value times about 3.
*/
static const struct family_case cases[] = {
    {"qwen3", "qwen3", F32_KL_MAX, 1.2e-2, 7e-2, 0.7, 3.0, {C_NO_QK_NORM}, 1, false},
    {"qwen3moe", "qwen3moe", F32_KL_MAX, 0.11, 2.0, 4.5, 30, {C_SWAP_EXPERTS, C_NO_QK_NORM}, 2, false},
    {"mixtral", "llama", F32_KL_MAX, 0.3, 20, 5.0, 33, {C_SWAP_EXPERTS}, 1, false},
    {"gemma2", "gemma2", GELU_KL_MAX, 5e-3, 5e-2, 0.17, 1.2, {C_GEMMA_NORM_NO_PLUS1, C_NO_SLIDING_WINDOW}, 2, true},
    {"gemma3", "gemma3", GELU_KL_MAX, 7.5e-3, 5e-2, 0.26, 0.9, {C_GEMMA_NORM_NO_PLUS1, C_NO_SLIDING_WINDOW, C_NO_QK_NORM},
     3, true},
    {"phi3", "phi3", F32_KL_MAX, 1.1e-2, 7e-2, 0.7, 4.5, {C_PHI3_KV_SWAPPED}, 1, false},
    {"phi4mini", "phi3", F32_KL_MAX, 1.2e-3, 8e-3, 5.3e-2, 0.3, {C_FULL_ROTARY}, 1, false},
    {"smollm3", "smollm3", F32_KL_MAX, 1.6e-2, 8e-2, 0.7, 2.8, {C_ROPE_EVERY_LAYER}, 1, false},
    {"granite", "granite", F32_KL_MAX, 9e-5, 3.3e-4, 4e-3, 1.6e-2, {C_NO_GRANITE_MULT}, 1, false},
    {"olmo2", "olmo2", F32_KL_MAX, 2.7e-2, 0.18, 3.3, 19, {C_QK_NORM_PER_HEAD, C_NO_QK_NORM}, 2, false},
};

static const struct family_case *case_of(const char *name)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(cases[i].name, name) == 0) return &cases[i];
    cr_assert_fail("no case %s", name);
    return NULL;
}

Test(families, qwen3) { check_family(case_of("qwen3")); }
Test(families, qwen3moe) { check_family(case_of("qwen3moe")); }
Test(families, mixtral) { check_family(case_of("mixtral")); }
Test(families, gemma2) { check_family(case_of("gemma2")); }
Test(families, gemma3) { check_family(case_of("gemma3")); }
Test(families, phi3) { check_family(case_of("phi3")); }
Test(families, phi4mini) { check_family(case_of("phi4mini")); }
Test(families, smollm3) { check_family(case_of("smollm3")); }
Test(families, granite) { check_family(case_of("granite")); }
Test(families, olmo2) { check_family(case_of("olmo2")); }

/* A sharded checkpoint (the experts of one layer in different files) gives the same file. */
Test(families, qwen3moe_sharded)
{
    need_llama_cpp();
    char *tmp = make_temp_dir("families-shards");
    /* the same folder name (it becomes general.name) under two parents */
    char *one = make_fixture(tmp, "qwen3moe", "single/fixture", 1);
    char *three = make_fixture(tmp, "qwen3moe", "sharded/fixture", 3);
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/single.gguf", tmp);
    snprintf(b, sizeof b, "%s/sharded.gguf", tmp);
    convert(one, "f32", a);
    convert(three, "f32", b);
    struct fref_folder R;
    fref_folder_load(three, &R);
    struct seqs S;
    make_seqs("qwen3moe", &S);
    float *got[N_SEQ] = {0};
    run_llama(b, &R, "qwen3moe", &S, got);
    struct kl k = kl_vs(&R.M.cfg, &R.M.w, &S, got);
    print_row("qwen3moe", "f32 from 3 shards", &k);
    cr_expect_leq(k.max, F32_KL_MAX);
    cr_expect(files_equal(a, b), "the GGUF from 3 shards differs from the one from a single file");
    free_logits(got);
    fref_folder_free(&R);
    free(one);
    free(three);
    remove_tree(tmp);
    free(tmp);
}

/* Sets a number key of DIR/config.json (the fixture as written, one key changed). */
static void set_config_number(const char *dir, const char *key, double value)
{
    char path[800];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = load_json(path);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(j, key), "%s has no %s", path, key);
    cJSON_ReplaceItemInObjectCaseSensitive(j, key, cJSON_CreateNumber(value));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    FILE *f = fopen(path, "w");
    cr_assert(f && text && fputs(text, f) >= 0 && fclose(f) == 0, "cannot rewrite %s", path);
    free(text);
}

/*
** Phi-4-mini on LongRoPE's long factors: original_max_position_embeddings 32 in config.json, so
** transformers uses long_factor for every sequence here (all longer than 32) and llama.cpp for
** every context above 32 (ours is 128); attention factor sqrt(1 + ln(131072 / 32) / ln 32) in
** both. The control runs the reference on the short factors instead.
*/
Test(families, phi4mini_long_factors)
{
    need_llama_cpp();
    char *tmp = make_temp_dir("families-longrope");
    char *dir = make_fixture(tmp, "phi4mini", "fixture", 1);
    set_config_number(dir, "original_max_position_embeddings", 32);
    struct fref_folder R;
    fref_folder_load(dir, &R);
    cr_assert_eq(R.M.cfg.longrope.original_max_pos, 32.0);
    /* both sides on the long factors: every sequence (transformers) and the context (llama.cpp) > 32 */
    for (int s = 0; s < n_seq; s++) cr_assert_gt(seq_len[s], 32u);
    cr_assert_gt(LLAMA_N_CTX, 32);
    char path[800];
    struct seqs S;
    make_seqs("phi4mini-long", &S);
    snprintf(path, sizeof path, "%s/f32.gguf", tmp);
    convert(dir, "f32", path);
    float *got[N_SEQ] = {0};
    run_llama(path, &R, "phi3", &S, got);
    struct kl k = kl_vs(&R.M.cfg, &R.M.w, &S, got);
    print_row("phi4mini", "f32, long factors", &k);
    cr_expect_leq(k.max, F32_KL_MAX);
    struct kl c = run_control(&R, C_SHORT_FACTORS, &S, got);
    print_row("phi4mini", "control: short factors", &c);
    cr_expect_geq(c.max, CONTROL_KL_MIN);
    free_logits(got);
    fref_folder_free(&R);
    free(dir);
    remove_tree(tmp);
    free(tmp);
}

/*
** Gemma 2 with softcaps that bite: attn_logit_softcapping 4 and final_logit_softcapping 3 (the
** published 50 and 30 barely touch the fixture's scores and logits: dropping both moves the KL
** by only ~4e-3 there). llama.cpp must read both values from the file (attn_logit_softcapping,
** final_logit_softcapping keys), not assume Gemma 2's defaults; the control drops both softcaps
** in the reference.
*/
Test(families, gemma2_softcaps)
{
    need_llama_cpp();
    char *tmp = make_temp_dir("families-softcap");
    char *dir = make_fixture(tmp, "gemma2", "fixture", 1);
    set_config_number(dir, "attn_logit_softcapping", 4);
    set_config_number(dir, "final_logit_softcapping", 3);
    struct fref_folder R;
    fref_folder_load(dir, &R);
    cr_assert_eq(R.M.cfg.attn_softcap, 4.0);
    cr_assert_eq(R.M.cfg.final_softcap, 3.0);
    struct seqs S;
    make_seqs("gemma2-softcaps", &S);
    char path[800];
    snprintf(path, sizeof path, "%s/f32.gguf", tmp);
    convert(dir, "f32", path);
    float *got[N_SEQ] = {0};
    run_llama(path, &R, "gemma2", &S, got);
    struct kl k = kl_vs(&R.M.cfg, &R.M.w, &S, got);
    print_row("gemma2", "f32, softcaps 4 / 3", &k);
    cr_expect_leq(k.max, GELU_KL_MAX, "KL max %.3e > %.1e", k.max, GELU_KL_MAX);
    struct dref_config g = R.M.cfg;
    g.act = DREF_ACT_GELU_TANH_GGML_F16;
    struct kl d = kl_vs(&g, &R.M.w, &S, got);
    print_row("gemma2", "f32 vs reference with ggml's F16 GELU", &d);
    cr_expect_leq(d.max, F32_KL_MAX, "KL max %.3e > %.1e", d.max, F32_KL_MAX);
    struct kl c = run_control(&R, C_NO_SOFTCAP, &S, got);
    print_row("gemma2", "control: softcapping dropped", &c);
    cr_expect_geq(c.max, CONTROL_KL_MIN);
    free_logits(got);
    fref_folder_free(&R);
    free(dir);
    remove_tree(tmp);
    free(tmp);
}
