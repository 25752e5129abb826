/*
** test_estimate.c - `estimate` on sparse checkpoints shaped exactly like real models.
**
** The checkpoints are written at test time with holes for data (tools/common/stwrite.c), so a
** 13.5 GB Llama-2-7B costs a few kilobytes. Expected numbers are independent of our code:
** the shared docs' figures (6,738,415,616 parameters, F16 13.48 GB, KV 2 GiB at 4096 tokens,
** NF4 + double quant ~3.87 GB) and byte counts computed by hand from ggml's block sizes.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_impl.h"
#include "modelq/estimate.h"
#include "stwrite.h"

/* rchar from /proc/self/io: bytes this process read through read()/pread(). */
static uint64_t bytes_read_so_far(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    cr_assert_not_null(f, "/proc/self/io unavailable");
    char line[128];
    uint64_t v = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %" SCNu64, &v) == 1) break;
    fclose(f);
    return v;
}

static char tmpdir[64];

static void make_model(const struct stw_llama *spec)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/modelq-est-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    cr_assert_eq(stw_write_llama_sparse(tmpdir, spec), 0);
}

/* Writes the sparse model and opens it; `rc` gets the rule context. */
static struct mq_model *make_and_open(const struct stw_llama *spec, struct mq_rule_context *rc)
{
    make_model(spec);
    struct mq_model *m;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(tmpdir, &m, &err), MQ_OK, "%s", err.msg);
    mq_rule_context_init(rc, m);
    return m;
}

static void remove_model(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

static const struct stw_llama llama2_7b = {32, 4096, 11008, 32000, 32, 32, "F16", 3, 0};

Test(estimate, llama2_7b_matches_published_numbers_reading_headers_only)
{
    make_model(&llama2_7b);
    uint64_t before = bytes_read_so_far();
    struct mq_model *m;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(tmpdir, &m, &err), MQ_OK, "%s", err.msg);
    struct mq_estimate_options opt;
    mq_estimate_options_default(&opt);
    struct mq_estimate e;
    cr_assert_eq(mq_estimate_model(m, &opt, &e, &err), MQ_OK, "%s", err.msg);
    uint64_t read = bytes_read_so_far() - before;
    cr_expect_lt(read, 1u << 20, "estimate read %" PRIu64 " bytes of a 13.5 GB checkpoint", read);
    cr_expect_eq(m->n_files, 3);
    cr_expect_eq(e.params, 6738415616ull);
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_F16)->bytes, 13476831232ull);
    cr_expect(mq_estimate_row_of(&e, MQ_TARGET_F16)->bytes / 10000000 == 1347, "F16 13.48 GB");
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_F32)->bytes, 2 * 13476831232ull);
    cr_expect_eq(e.kv_bytes, 2ull << 30, "KV cache at 4096 tokens is 2 GiB");
    /* NF4 + double quant: linear layers at 4.127 bits, embeddings and lm_head in F16 */
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_NF4_DQ)->bytes, 3865835520ull);
    cr_expect(mq_estimate_row_of(&e, MQ_TARGET_NF4_DQ)->bytes > 3860000000ull && mq_estimate_row_of(&e, MQ_TARGET_NF4_DQ)->bytes < 3880000000ull);
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_NF4)->bytes, 4167587840ull);
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_NF4)->kept_params, 262144000ull + 65 * 4096);
    /* ggml: Q8_0 34 B/32 everywhere but the 65 F32 norms */
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_Q8_0)->bytes, 7160348672ull);
    /* Q4_0 18 B/32, output.weight Q6_K 210 B/256, norms F32 */
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_Q4_0)->bytes, 3825065984ull);
    /* Q4_K_M 144 B/256, Q6_K 210 B/256 for output and for attn_v/ffn_down in the 16 use_more_bits
     * layers: 73,728,000 + 107,520,000 + 16,384 + 32 x 79,069,184 + 16 x 50,749,440 + 16 x 34,799,616
     * (TheBloke's llama-2-7b.Q4_K_M.gguf is 4.08 GB with its ~0.74 MB of metadata) */
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_Q4_K_M)->bytes, 4080263168ull);
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_INT8_ROW)->bytes, 7006265568ull);
    /* training: 16 B/param full fine-tune; LoRA r=16 on 224 linear layers */
    cr_expect_eq(e.train_full_bytes, 16 * 6738415616ull);
    cr_expect_eq(e.linear_layers, 224);
    cr_expect_eq(e.lora_params, 16ull * 32 * (4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096)));
    mq_model_free(m);
    remove_model();
}

Test(estimate, iq4_nl_mix_follows_llama_quantize_for_gqa_models)
{
    /* Llama-3-8B shape: GQA 32/8 = 4, so attn_v goes to Q5_K; ffn_down of layers 0..3 too */
    struct stw_llama l3 = {32, 4096, 14336, 128256, 32, 8, "BF16", 2, 0};
    struct mq_rule_context rc;
    struct mq_model *m = make_and_open(&l3, &rc);
    struct mq_error err;
    mq_error_clear(&err);
    cr_expect_eq(rc.n_gqa, 4);
    cr_expect_eq(rc.n_layer, 32);
    int q5k_v = 0, q5k_down = 0, q6k = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        struct mq_tensor_plan p;
        cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_IQ4_NL, &rc, &m->tensors[i], &p, &err), MQ_OK);
        const char *n = m->tensors[i].name;
        if (p.codec == MQ_CODEC_Q5_K && strstr(n, "v_proj")) q5k_v++;
        if (p.codec == MQ_CODEC_Q5_K && strstr(n, "down_proj")) q5k_down++;
        if (p.codec == MQ_CODEC_Q6_K) {
            q6k++;
            cr_expect_str_eq(n, "lm_head.weight");
        }
        if (strstr(n, "norm")) cr_expect_eq(p.codec, MQ_CODEC_F32, "%s", n);
    }
    cr_expect_eq(q5k_v, 32);
    cr_expect_eq(q5k_down, 4);
    cr_expect_eq(q6k, 1);
    mq_model_free(m);
    remove_model();
}

Test(estimate, tied_embeddings_are_treated_as_output_in_gguf_targets)
{
    struct stw_llama tied = {2, 256, 512, 1000, 4, 2, "BF16", 1, 1};
    struct mq_rule_context rc;
    struct mq_model *m = make_and_open(&tied, &rc);
    struct mq_error err;
    mq_error_clear(&err);
    cr_expect(!rc.has_output);
    long te = mq_model_find(m, "model.embed_tokens.weight");
    cr_assert_geq(te, 0);
    struct mq_tensor_plan p;
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[te], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q6_K);
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q8_0, &rc, &m->tensors[te], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q8_0);
    mq_model_free(m);
    remove_model();
}

Test(estimate, eight_experts_keep_attention_k_and_v_at_q8_0)
{
    struct stw_llama spec = {2, 256, 512, 1000, 4, 2, "BF16", 1, 0};
    struct mq_rule_context rc;
    struct mq_model *m = make_and_open(&spec, &rc);
    struct mq_error err;
    mq_error_clear(&err);
    long k = mq_model_find(m, "model.layers.0.self_attn.k_proj.weight");
    long v = mq_model_find(m, "model.layers.0.self_attn.v_proj.weight");
    long q = mq_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    cr_assert(k >= 0 && v >= 0 && q >= 0);
    struct mq_tensor_plan p;
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[v], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q4_0, "dense: attn_v follows the file type");
    rc.n_expert = 8; /* as from config.json num_local_experts = 8 (Mixtral) */
    for (int t = 0; t < 3; t++) {
        enum mq_target tg = t == 0 ? MQ_TARGET_Q4_0 : t == 1 ? MQ_TARGET_IQ4_NL : MQ_TARGET_Q8_0;
        cr_assert_eq(mq_target_plan_tensor(tg, &rc, &m->tensors[k], &p, &err), MQ_OK);
        cr_expect_eq(p.codec, MQ_CODEC_Q8_0, "attn_k Q8_0 with 8 experts");
        cr_assert_eq(mq_target_plan_tensor(tg, &rc, &m->tensors[v], &p, &err), MQ_OK);
        cr_expect_eq(p.codec, MQ_CODEC_Q8_0, "attn_v Q8_0 with 8 experts");
    }
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[q], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q4_0, "attn_q is not promoted");
    /* attn_output: Q5_K in IQ4_NL files with 8 experts (llama-quantize's list), not in Q4_0/Q8_0 ones */
    long o = mq_model_find(m, "model.layers.1.self_attn.o_proj.weight");
    cr_assert(o >= 0);
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_IQ4_NL, &rc, &m->tensors[o], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q5_K, "iq4_nl attn_output with 8 experts");
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[o], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q4_0, "q4_0 attn_output with 8 experts");
    rc.n_expert = 0;
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_IQ4_NL, &rc, &m->tensors[o], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_IQ4_NL, "dense iq4_nl attn_output");
    mq_model_free(m);
    remove_model();
}

Test(estimate, row_lengths_that_do_not_fit_fall_back_like_llama_cpp)
{
    /* hidden 4160 = 16 x 260: a multiple of 32 but not of 256 */
    struct stw_llama odd = {1, 4160, 512, 1000, 4, 4, "F16", 1, 0};
    struct mq_rule_context rc;
    struct mq_model *m = make_and_open(&odd, &rc);
    struct mq_error err;
    mq_error_clear(&err);
    long out = mq_model_find(m, "lm_head.weight");
    struct mq_tensor_plan p;
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[out], &p, &err), MQ_OK);
    /* Q4_0 fits rows of 4160, so output gets Q6_K, which does not: tensor_type_fallback -> Q8_0 */
    cr_expect_eq(p.codec, MQ_CODEC_Q8_0, "output: ne[0] %% 256 != 0 gives Q8_0");
    cr_expect(p.fell_back);
    long q = mq_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    cr_assert_eq(mq_target_plan_tensor(MQ_TARGET_Q4_0, &rc, &m->tensors[q], &p, &err), MQ_OK);
    cr_expect_eq(p.codec, MQ_CODEC_Q4_0);
    mq_model_free(m);
    remove_model();
}

Test(estimate, tiny_llama_bytes_by_hand)
{
    struct mq_model *m;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open("testdata/tiny-llama", &m, &err), MQ_OK, "%s", err.msg);
    struct mq_estimate_options opt;
    mq_estimate_options_default(&opt);
    opt.ctx = 128;
    struct mq_estimate e;
    cr_assert_eq(mq_estimate_model(m, &opt, &e, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_F16)->bytes, e.source_bytes, "BF16 stays BF16");
    cr_expect_eq(mq_estimate_row_of(&e, MQ_TARGET_F32)->bytes, 2 * e.source_bytes);
    /* KV: 2 x layers x cells x kv_heads x head_dim x 2 bytes, 128 tokens padded to 256 cells as
     * llama.cpp allocates them */
    uint64_t kv = 2ull * m->config.num_layers * 256 * m->config.num_kv_heads * m->config.head_dim * 2;
    cr_expect_eq(e.kv_cells, 256);
    cr_expect_eq(e.kv_bytes, kv);
    cr_expect(e.have_config);
    mq_model_free(m);
}
