/*
** test_fixture_model.c - testdata/tiny-llama read through modelq's own reader
** (mq_model_open / mq_model_read) is a non-trivial Llama:
**   - config.json is read as the model's shape (GQA, head_dim, untied lm_head ...);
**   - the reference forward pass (tests/helpers/llama_ref.c) on typical English inputs, tokenized
**     with the fixture's own tokenizer.json, has attention scores with std >= 1 in every layer and
**     a top next-token probability >= 0.3 (mean and median per sentence), and feeding un-permuted
**     Q/K rows (what llama.cpp computes if a converter forgets the Q/K permutation) changes the
**     some logit by more than 5 - so later GGUF tests can catch layout mistakes through the outputs;
**   - the folder, the 3-shard copy and its index file all give identical tensors.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "bf16_read.h"
#include "llama_ref.h"
#include "modelq/model.h"
#include "test_fixture_tok.h"

#define FIXTURE "testdata/tiny-llama"

/* Typical inputs, deliberately not the sentences mkfixture checks itself with. */
static const char *const inputs[] = {
    "The sailors walked through the market and bought bread and fish.",
    "When the wind was strong, the fishermen stayed in the harbor.",
    "Every night the old keeper kept the light burning in the tower.",
};

static struct mq_model *open_model(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    enum mq_status st = mq_model_open(path, &m, &err);
    cr_assert_eq(st, MQ_OK, "mq_model_open(%s): %s (%s)", path, err.msg, mq_status_name(st));
    cr_assert_not_null(m);
    return m;
}

/* Tensor `name` as floats (BF16 bits << 16 is exact), after checking dtype and shape. */
static float *load_f32(const struct mq_model *m, const char *name, uint64_t rows, uint64_t cols)
{
    long t = mq_model_find(m, name);
    cr_assert_geq(t, 0, "tensor %s missing", name);
    const struct mq_tensor *ts = &m->tensors[t];
    cr_assert_eq(ts->dtype, MQ_DTYPE_BF16, "%s is not BF16", name);
    cr_assert_eq(ts->ndim, cols ? 2u : 1u, "%s has %u dims", name, ts->ndim);
    cr_assert_eq(ts->shape[0], rows, "%s shape[0] %llu, expected %llu", name, (unsigned long long)ts->shape[0],
                 (unsigned long long)rows);
    if (cols) cr_assert_eq(ts->shape[1], cols, "%s shape[1]", name);
    uint64_t numel = rows * (cols ? cols : 1);
    cr_assert_eq(ts->nbytes, numel * 2);
    float *out = bf16_read_f32(m, (size_t)t, numel);
    return out;
}

/* rms_norm_eps and rope_theta: floats that struct mq_config does not carry. */
static void read_float_config(const char *dir, double *eps, double *theta)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = (char *)read_file_all(path, NULL);
    cr_assert_not_null(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "rms_norm_eps");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "rope_theta");
    cr_assert(cJSON_IsNumber(e) && cJSON_IsNumber(t));
    *eps = e->valuedouble;
    *theta = t->valuedouble;
    cJSON_Delete(j);
}

struct loaded {
    struct llama_ref_config cfg;
    struct llama_ref_layer layers[8];
    struct llama_ref_weights w;
    float *owned[128];
    int n_owned;
};

static const float *keep(struct loaded *L, float *p)
{
    cr_assert_lt(L->n_owned, 128);
    L->owned[L->n_owned++] = p;
    return p;
}

static void load_weights(const char *dir, struct loaded *L)
{
    memset(L, 0, sizeof *L);
    struct mq_model *m = open_model(dir);
    const struct mq_config *c = &m->config;
    cr_assert(c->present, "%s: config.json not read", dir);
    cr_assert_str_eq(c->model_type, "llama");
    cr_assert_str_eq(c->architecture, "LlamaForCausalLM");
    cr_assert_str_eq(c->torch_dtype, "bfloat16");
    cr_assert_eq(c->hidden_size, 256);
    cr_assert_eq(c->intermediate_size, 512);
    cr_assert_eq(c->num_layers, 2);
    cr_assert_eq(c->num_heads, 4);
    cr_assert_eq(c->num_kv_heads, 2, "grouped-query attention: 2 KV heads");
    cr_assert_eq(c->head_dim, 64);
    cr_assert_eq(c->vocab_size, 384);
    cr_assert_eq(c->tie_word_embeddings, 0);
    cr_assert_eq(m->n_tensors, 3 + 9 * c->num_layers, "unexpected tensor count %zu", m->n_tensors);

    const uint64_t E = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, D = c->head_dim;
    const uint64_t QD = c->num_heads * D, KD = c->num_kv_heads * D;
    L->cfg = (struct llama_ref_config){(int)V, (int)E, (int)F, (int)c->num_layers, (int)c->num_heads,
                                       (int)c->num_kv_heads, (int)D, 0, 0};
    read_float_config(dir, &L->cfg.rms_eps, &L->cfg.rope_theta);
    char n[128];
#define T(rows, cols, ...) (snprintf(n, sizeof n, __VA_ARGS__), keep(L, load_f32(m, n, rows, cols)))
    for (int l = 0; l < L->cfg.n_layer; l++)
        L->layers[l] = (struct llama_ref_layer){
            T(E, 0, "model.layers.%d.input_layernorm.weight", l),
            T(QD, E, "model.layers.%d.self_attn.q_proj.weight", l),
            T(KD, E, "model.layers.%d.self_attn.k_proj.weight", l),
            T(KD, E, "model.layers.%d.self_attn.v_proj.weight", l),
            T(E, QD, "model.layers.%d.self_attn.o_proj.weight", l),
            T(E, 0, "model.layers.%d.post_attention_layernorm.weight", l),
            T(F, E, "model.layers.%d.mlp.gate_proj.weight", l),
            T(F, E, "model.layers.%d.mlp.up_proj.weight", l),
            T(E, F, "model.layers.%d.mlp.down_proj.weight", l)};
    L->w = (struct llama_ref_weights){T(V, E, "model.embed_tokens.weight"), L->layers, T(E, 0, "model.norm.weight"),
                                      T(V, E, "lm_head.weight")};
#undef T
    mq_model_free(m);
}

static void free_weights(struct loaded *L)
{
    for (int i = 0; i < L->n_owned; i++) free(L->owned[i]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_forward(const char *dir)
{
    struct loaded L;
    load_weights(dir, &L);
    struct fx_tokenizer tk;
    char why[512], tokpath[512];
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", dir);
    cr_assert_eq(fx_tokenizer_load(tokpath, &tk, why, sizeof why), 0, "%s", why);
    const int32_t bos = fx_added_id(&tk, "<|begin_of_text|>");
    cr_assert_geq(bos, 0);

    /* q/k rows as a converter without the GGUF permutation would leave them for llama.cpp */
    struct llama_ref_layer bad[8];
    struct llama_ref_weights wbad = L.w;
    for (int l = 0; l < L.cfg.n_layer; l++) {
        bad[l] = L.layers[l];
        size_t qn = (size_t)L.cfg.n_head * L.cfg.head_dim * L.cfg.n_embd, kn = (size_t)L.cfg.n_kv_head * L.cfg.head_dim * L.cfg.n_embd;
        float *q = malloc(qn * sizeof *q), *k = malloc(kn * sizeof *k);
        cr_assert(q && k);
        cr_assert_eq(llama_ref_permute_rows(L.layers[l].wq, L.cfg.n_head * L.cfg.head_dim, L.cfg.n_embd, L.cfg.n_head, 0, q), 0);
        cr_assert_eq(llama_ref_permute_rows(L.layers[l].wk, L.cfg.n_kv_head * L.cfg.head_dim, L.cfg.n_embd, L.cfg.n_kv_head, 0, k), 0);
        bad[l].wq = keep(&L, q);
        bad[l].wk = keep(&L, k);
    }
    wbad.layers = bad;

    struct llama_ref_stats stats;
    llama_ref_stats_init(&stats);
    const int V = L.cfg.n_vocab;
    for (size_t s = 0; s < sizeof inputs / sizeof inputs[0]; s++) {
        size_t n;
        int32_t *text_ids = fx_encode(&tk, inputs[s], &n);
        cr_assert_not_null(text_ids);
        size_t T = n + 1;
        int32_t *ids = malloc(T * sizeof *ids);
        float *logits = malloc(T * (size_t)V * sizeof *logits), *lbad = malloc(T * (size_t)V * sizeof *lbad);
        double *top = malloc(T * sizeof *top);
        cr_assert(ids && logits && lbad && top);
        ids[0] = bos;
        memcpy(ids + 1, text_ids, n * sizeof *ids);
        cr_assert_eq(llama_ref_forward(&L.cfg, &L.w, ids, T, logits, &stats), 0);
        cr_assert_eq(llama_ref_forward(&L.cfg, &wbad, ids, T, lbad, NULL), 0);
        double sum = 0, delta = 0;
        for (size_t t = 0; t < T; t++) {
            top[t] = llama_ref_top_prob(logits + t * V, V, NULL);
            sum += top[t];
            for (int v = 0; v < V; v++) delta = fmax(delta, fabs((double)logits[t * V + v] - (double)lbad[t * V + v]));
        }
        qsort(top, T, sizeof *top, cmp_double);
        double mean = sum / (double)T, median = top[T / 2];
        cr_log_info("%s input %zu: %zu tokens, top probability mean %.3f median %.3f min %.3f, "
                    "missing Q/K permutation moves logits by up to %.2f",
                    dir, s, T, mean, median, top[0], delta);
        cr_expect_geq(mean, 0.3, "%s input %zu: mean top probability %.3f", dir, s, mean);
        cr_expect_geq(median, 0.3, "%s input %zu: median top probability %.3f", dir, s, median);
        cr_expect_geq(delta, 5.0, "%s input %zu: a Q/K layout error would be invisible (%.3f)", dir, s, delta);
        free(text_ids);
        free(ids);
        free(logits);
        free(lbad);
        free(top);
    }
    double sd = llama_ref_stats_std(&stats), sd_min = llama_ref_stats_min_layer_std(&stats);
    cr_log_info("%s: attention-logit std %.3f, smallest per layer %.3f", dir, sd, sd_min);
    cr_expect_geq(sd_min, 1.0, "%s: attention-logit std %.3f in some layer", dir, sd_min);
    fx_tokenizer_free(&tk);
    free_weights(&L);
}

Test(fixture_model, folder_is_a_nontrivial_llama) { check_forward(FIXTURE); }

Test(fixture_model, sharded_folder_is_a_nontrivial_llama) { check_forward(FIXTURE "/sharded"); }

/* Every tensor of `b` exists in `a` with the same dtype, shape and bytes, and the counts match. */
static void assert_same_tensors(const struct mq_model *a, const struct mq_model *b, const char *what)
{
    cr_assert_eq(a->n_tensors, b->n_tensors, "%s: %zu vs %zu tensors", what, a->n_tensors, b->n_tensors);
    for (size_t i = 0; i < b->n_tensors; i++) {
        const struct mq_tensor *tb = &b->tensors[i];
        long j = mq_model_find(a, tb->name);
        cr_assert_geq(j, 0, "%s: %s missing from the single file", what, tb->name);
        const struct mq_tensor *ta = &a->tensors[j];
        cr_assert_eq(ta->dtype, tb->dtype, "%s: %s dtype", what, tb->name);
        cr_assert_eq(ta->ndim, tb->ndim, "%s: %s ndim", what, tb->name);
        cr_assert_arr_eq(ta->shape, tb->shape, sizeof(uint64_t) * ta->ndim, "%s: %s shape", what, tb->name);
        cr_assert_eq(ta->nbytes, tb->nbytes);
        uint8_t *pa = malloc(ta->nbytes), *pb = malloc(tb->nbytes);
        cr_assert(pa && pb);
        struct mq_error err;
        mq_error_clear(&err);
        cr_assert_eq(mq_model_read(a, (size_t)j, 0, pa, ta->nbytes, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_model_read(b, i, 0, pb, tb->nbytes, &err), MQ_OK, "%s", err.msg);
        cr_assert(memcmp(pa, pb, ta->nbytes) == 0, "%s: %s bytes differ", what, tb->name);
        free(pa);
        free(pb);
    }
}

Test(fixture_model, shards_and_single_file_hold_identical_tensors)
{
    struct mq_model *single = open_model(FIXTURE);
    struct mq_model *file = open_model(FIXTURE "/model.safetensors");
    struct mq_model *sharded = open_model(FIXTURE "/sharded");
    struct mq_model *index = open_model(FIXTURE "/sharded/model.safetensors.index.json");
    cr_assert_eq(single->n_files, 1);
    cr_assert_eq(sharded->n_files, 3, "the sharded copy has %zu files", sharded->n_files);
    for (size_t i = 0; i < sharded->n_warnings; i++) cr_log_error("warning: %s", sharded->warnings[i]);
    cr_assert_eq(sharded->n_warnings, 0, "the index and shards must agree exactly (total_size, weight_map)");
    assert_same_tensors(single, file, "model.safetensors");
    assert_same_tensors(single, sharded, "sharded/");
    assert_same_tensors(single, index, "sharded/model.safetensors.index.json");
    /* __metadata__ {"format":"pt"} as transformers writes it */
    cr_assert_eq(single->n_metadata, 1);
    cr_assert_str_eq(single->metadata[0].key, "format");
    cr_assert_str_eq(single->metadata[0].value, "pt");
    mq_model_free(index);
    mq_model_free(sharded);
    mq_model_free(file);
    mq_model_free(single);
}
