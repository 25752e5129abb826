/*
** cmd_inspect.c - `modelq inspect PATH [--json]`: metadata, one row per tensor, totals by dtype.
**
** GGUF inputs print their own view: version and alignment, the typed key/values as
** "key  TYPE  value" (arrays summarized), and per tensor the ggml type and ne in ggml order
** (ne[0] = row length, the reverse of the safetensors shape); totals are by ggml type. The JSON
** document adds "gguf", "metadata_typed", and per tensor "ggml_type" and "ne" next to the
** outermost-first "shape".
**
** bitsandbytes checkpoints (formats/bnb_read.c): each quantized Linear weight is one row with its
** logical dtype and shape (what dequantization gives), the bytes of all its stored entries, and
** a last column "nf4 (block 64, double quant)" / "int8_row (LLM.int8, SCB per row)"; totals put
** these weights under "nf4+dq", "nf4", "fp4", "fp4+dq" and "int8_row" instead of their dtype. The
** JSON document adds per such tensor a "bitsandbytes" object, and "totals.by_bitsandbytes".
*/
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelq/codec.h"
#include "modelq/model.h"

#define INSPECT_SCHEMA_VERSION 1

static const char *const inspect_help =
    "usage: modelq inspect PATH [--json]\n"
    "\n"
    "PATH: a .safetensors file, a model.safetensors.index.json, a Hugging Face model folder, or a\n"
    ".gguf file. Prints the metadata, then one row per tensor (name, dtype, shape, parameters, bytes,\n"
    "shard), then totals by dtype. Reads headers only.\n"
    "GGUF: version, alignment, typed metadata (key, TYPE, value), and per tensor the ggml type and\n"
    "ne in ggml order (innermost first: ne[0] is the row length); totals by ggml type.\n"
    "bitsandbytes folders (NF4/FP4, LLM.int8): one row per quantized weight with its logical dtype and\n"
    "shape, the bytes of all its stored entries and the quantization (\"nf4 (block 64, double quant)\").\n"
    "  --json   the same as one JSON document (field \"schema_version\" = 1)\n";

struct dtype_total {
    uint64_t tensors, params, bytes;
};

/* Totals are keyed by dtype, or by ggml type id for GGUF inputs (both below TOTAL_KEYS). */
#define TOTAL_KEYS 64

static bool is_gguf(const struct mq_model *m) { return strcmp(mq_model_format(m), "gguf") == 0; }

/* bitsandbytes weights: totals keys MQ_DTYPE_COUNT + kind (safetensors inputs only). */
enum { BNB_NF4, BNB_NF4_DQ, BNB_FP4, BNB_FP4_DQ, BNB_INT8, BNB_KINDS };
static const char *const bnb_total_labels[BNB_KINDS] = {"nf4", "nf4+dq", "fp4", "fp4+dq", "int8_row"};

static int bnb_kind(const struct mq_bnb_info *b)
{
    if (b->codec == MQ_CODEC_INT8_ROW) return BNB_INT8;
    return (b->codec == MQ_CODEC_FP4 ? BNB_FP4 : BNB_NF4) + (b->double_quant ? 1 : 0);
}

/* "nf4 (block 64, double quant)", "int8_row (LLM.int8, SCB per row)" */
static const char *bnb_label(const struct mq_bnb_info *b, char *buf, size_t cap)
{
    if (b->codec == MQ_CODEC_INT8_ROW) snprintf(buf, cap, "int8_row (LLM.int8, SCB per row)");
    else
        snprintf(buf, cap, "%s (block %u%s)", b->codec == MQ_CODEC_FP4 ? "fp4" : "nf4", b->blocksize,
                 b->double_quant ? ", double quant" : "");
    return buf;
}

/* "scales P.weight_scale_inv F32 [2, 3], block 128x128" of an FP8 weight (formats/fp8_read.c). */
static const char *fp8_label(const struct mq_fp8_info *f, char *buf, size_t cap)
{
    if (!f->has_scale) snprintf(buf, cap, "no scales");
    else
        snprintf(buf, cap, "scales %s %s [%llu, %llu], block %llux%llu", f->scale_name, mq_dtype_name(f->scale_dtype),
                 (unsigned long long)f->scale_rows, (unsigned long long)f->scale_cols, (unsigned long long)f->block_rows,
                 (unsigned long long)f->block_cols);
    return buf;
}

/* Bytes the tensor occupies in the checkpoint (a bitsandbytes weight: all its entries; an FP8
** weight: codes and scales). */
static uint64_t stored_bytes(const struct mq_tensor *t) { return mq_tensor_stored_bytes(t); }

/* The dtype as stored (an FP8 weight reads as F32 but is stored as FP8). */
static enum mq_dtype stored_dtype(const struct mq_tensor *t) { return mq_tensor_stored_dtype(t); }

/* File i's description (the index is always in range here). */
static struct mq_file_info file_info(const struct mq_model *m, size_t i)
{
    struct mq_file_info f;
    mq_model_file_info(m, i, &f);
    return f;
}

static int total_key(const struct mq_model *m, const struct mq_tensor *t)
{
    int32_t g = mq_tensor_ggml_type(t); /* -1 when not from a GGUF */
    if (is_gguf(m) && g >= 0 && g < TOTAL_KEYS) return g;
    struct mq_bnb_info b;
    if (mq_tensor_bnb_info(t, &b)) return MQ_DTYPE_COUNT + bnb_kind(&b);
    return (int)stored_dtype(t);
}

static const char *total_label(const struct mq_model *m, int key)
{
    if (!is_gguf(m) && key >= MQ_DTYPE_COUNT) return bnb_total_labels[key - MQ_DTYPE_COUNT];
    const char *n = is_gguf(m) ? mq_ggml_type_name(key) : mq_dtype_name((enum mq_dtype)key);
    return n ? n : "?";
}

/* ggml type name of a GGUF tensor, else its dtype name. */
static const char *tensor_type(const struct mq_tensor *t)
{
    const char *n = mq_ggml_type_name(mq_tensor_ggml_type(t)); /* NULL for -1 */
    return n ? n : mq_dtype_name(stored_dtype(t));
}

/* ne in ggml order: the shape reversed. */
static void tensor_ne(const struct mq_tensor *t, uint64_t *ne)
{
    const uint32_t nd = mq_tensor_ndim(t);
    for (uint32_t d = 0; d < nd; d++) ne[d] = mq_tensor_shape(t)[nd - 1 - d];
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void totals(const struct mq_model *m, struct dtype_total *by, struct dtype_total *all)
{
    memset(by, 0, sizeof(struct dtype_total) * TOTAL_KEYS);
    memset(all, 0, sizeof *all);
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        int k = total_key(m, t);
        by[k].tensors++;
        by[k].params += mq_tensor_numel(t);
        by[k].bytes += stored_bytes(t);
        all->tensors++;
        all->params += mq_tensor_numel(t);
        all->bytes += stored_bytes(t);
    }
}

/* The typed key/values of a GGUF, one "key  TYPE  value" line each. */
static void print_gguf_meta(const struct mq_model *m)
{
    size_t w = 4;
    for (size_t i = 0; i < mq_model_meta(m)->n; i++) {
        size_t l = strlen(mq_model_meta(m)->items[i].key);
        if (l > w) w = l;
    }
    if (w > 48) w = 48;
    printf("metadata: %zu key%s (key, TYPE, value)\n", mq_model_meta(m)->n, mq_model_meta(m)->n == 1 ? "" : "s");
    for (size_t i = 0; i < mq_model_meta(m)->n; i++) {
        const struct mq_meta_entry *e = &mq_model_meta(m)->items[i];
        char text[320];
        mq_meta_value_format(&e->v, text, sizeof text, 160);
        printf("  %-*s  %-8s %s\n", (int)w, e->key, mq_meta_type_name(e->v.type), text);
    }
}

/* The attention and expert details estimate uses: V head size, sliding-window layers, experts. */
static void print_family_details(const struct mq_config *c)
{
    if (c->head_dim_v && c->head_dim_v != c->head_dim)
        printf("          head_dim K %" PRIu64 ", V %" PRIu64 "\n", c->head_dim, c->head_dim_v);
    if (c->sliding_window && c->swa_layers) {
        printf("          sliding window %" PRIu64 " tokens on %" PRIu64 " of %" PRIu64 " layers", c->sliding_window,
               c->swa_layers, c->num_layers);
        if (c->swa_period > 1)
            printf(" (all but the last of every %" PRIu32 "), as llama.cpp runs it\n", c->swa_period);
        else if (c->swa_period == 0)
            printf(" (listed per layer), as llama.cpp runs it\n");
        else
            printf(", as llama.cpp runs it\n");
    }
    if (c->num_experts && c->experts_used)
        printf("          experts %" PRIu64 ", %" PRIu64 " used per token\n", c->num_experts, c->experts_used);
    else if (c->num_experts)
        printf("          experts %" PRIu64 " (how many a token uses is not stated: no num_experts_per_tok / "
               "expert_used_count)\n", c->num_experts);
}

static void print_text(const struct mq_model *m)
{
    char a[64], b[64], sh[256];
    bool gguf = is_gguf(m);
    const struct mq_file_info f0 = file_info(m, 0);
    printf("input:    %s\n", mq_model_input_path(m));
    if (gguf && mq_model_n_files(m) == 1)
        printf("format:   gguf v%u, alignment %u, %zu tensor%s, 1 file\n", f0.gguf_version,
               f0.gguf_alignment, mq_model_n_tensors(m), mq_model_n_tensors(m) == 1 ? "" : "s");
    else if (gguf && mq_model_split_parts(m))
        printf("format:   gguf v%u, alignment %u, %zu tensor%s, a split model of %u parts (read as one; metadata "
               "from part 1)\n",
               f0.gguf_version, f0.gguf_alignment, mq_model_n_tensors(m), mq_model_n_tensors(m) == 1 ? "" : "s",
               mq_model_split_parts(m));
    else
        printf("format:   %s, %zu file%s\n", mq_model_format(m), mq_model_n_files(m), mq_model_n_files(m) == 1 ? "" : "s");
    for (size_t i = 0; i < mq_model_n_files(m); i++) {
        const struct mq_file_info f = file_info(m, i);
        printf("  file %zu: %s (%s bytes, header %s bytes)\n", i, f.path, cli_group(f.size, a, sizeof a),
               cli_group(f.header_bytes, b, sizeof b));
    }
    const struct mq_config *c = mq_model_config(m);
    if (c->present && gguf) {
        printf("config:   from the GGUF metadata: %s, layers %" PRIu64 ", hidden %" PRIu64 ", heads %" PRIu64 " (kv %" PRIu64
               "), head_dim %" PRIu64 ", ffn %" PRIu64 ", vocab %" PRIu64 ", context %" PRIu64 "\n",
               c->model_type, c->num_layers, c->hidden_size, c->num_heads, c->num_kv_heads, c->head_dim,
               c->intermediate_size, c->vocab_size, c->max_position);
    } else if (c->present) {
        printf("config:   %s (%s %s), layers %" PRIu64 ", hidden %" PRIu64 ", heads %" PRIu64 " (kv %" PRIu64
               "), head_dim %" PRIu64 ", ffn %" PRIu64 ", vocab %" PRIu64 ", dtype %s\n",
               c->path, c->model_type[0] ? c->model_type : "?", c->architecture[0] ? c->architecture : "?", c->num_layers,
               c->hidden_size, c->num_heads, c->num_kv_heads, c->head_dim, c->intermediate_size, c->vocab_size,
               c->torch_dtype[0] ? c->torch_dtype : "?");
    } else if (gguf) {
        printf("config:   none (no general.architecture with its hyperparameters in the metadata)\n");
    } else if (mq_model_lora(m)) {
        printf("config:   none (a LoRA adapter: convert --base names the base model's)\n");
    } else {
        printf("config:   none (no config.json beside the checkpoint)\n");
    }
    if (mq_model_lora(m)) {
        const struct mq_lora_config *lc = mq_model_lora(m);
        printf("adapter:  LoRA (%s): r %" PRIu64 "%s, alpha %g, scale %g (alpha / %s), targets %s, base %s\n", lc->path,
               lc->r, lc->rank_pattern ? " (rank_pattern: some modules differ)" : "", lc->alpha,
               lc->use_rslora ? lc->alpha / sqrt((double)lc->r) : lc->alpha / (double)lc->r,
               lc->use_rslora ? "sqrt(r), rsLoRA" : "r", lc->targets[0] ? lc->targets : "(not listed)",
               lc->base_model[0] ? lc->base_model : "(not named)");
    }
    if (c->present) print_family_details(c);
    if (gguf) {
        print_gguf_meta(m);
    } else {
        printf("metadata: %zu entr%s\n", mq_model_n_metadata(m), mq_model_n_metadata(m) == 1 ? "y" : "ies");
        const char *k, *v;
        for (size_t i = 0; mq_model_metadata(m, i, &k, &v); i++) printf("  %s = %s\n", k, v);
    }

    size_t w = 4, n_bnb = 0, n_bnb_stored = 0, shard_w = 5, n_fp8 = 0;
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        size_t l = strlen(mq_tensor_name(mq_model_tensor(m, i)));
        if (l > w) w = l;
        l = strlen(base_name(file_info(m, mq_tensor_file(mq_model_tensor(m, i))).path));
        if (l > shard_w) shard_w = l;
        struct mq_bnb_info bi;
        struct mq_fp8_info fi;
        if (mq_tensor_bnb_info(mq_model_tensor(m, i), &bi)) n_bnb++, n_bnb_stored += bi.n_stored;
        if (mq_tensor_fp8_info(mq_model_tensor(m, i), &fi)) n_fp8++;
    }
    if (w > 72) w = 72;
    if (n_bnb)
        printf("\nbitsandbytes: %zu quantized weight%s (%zu stored entries) shown as logical tensors: dtype and shape\n"
               "as dequantized, bytes of all the weight's entries as stored\n",
               n_bnb, n_bnb == 1 ? "" : "s", n_bnb_stored);
    if (n_fp8)
        printf("\nFP8: %zu weight%s stored as FP8 with their block scales (bytes: codes and scales); they are read\n"
               "dequantized to F32 (w = fp8 * scale_inv of the block)\n",
               n_fp8, n_fp8 == 1 ? "" : "s");
    bool qcol = n_bnb || n_fp8;
    printf("\n%-*s  %-11s %-22s %15s %15s  %-*s%s\n", (int)w, "name", gguf ? "type" : "dtype",
           gguf ? "ne (ggml order)" : "shape", "parameters", "bytes", qcol ? (int)shard_w : 0, "shard",
           qcol ? "  quantization" : "");
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        uint64_t ne[MQ_MAX_DIMS];
        char q[320];
        tensor_ne(t, ne);
        struct mq_bnb_info bi;
        struct mq_fp8_info fi;
        const char *ql = mq_tensor_bnb_info(t, &bi)   ? bnb_label(&bi, q, sizeof q)
                         : mq_tensor_fp8_info(t, &fi) ? fp8_label(&fi, q, sizeof q)
                                                      : "";
        printf("%-*s  %-11s %-22s %15s %15s  %-*s%s%s\n", (int)w, mq_tensor_name(t),
               gguf ? tensor_type(t) : mq_dtype_name(stored_dtype(t)),
               cli_shape(gguf ? ne : mq_tensor_shape(t), mq_tensor_ndim(t), sh, sizeof sh), cli_group(mq_tensor_numel(t), a, sizeof a),
               cli_group(stored_bytes(t), b, sizeof b), *ql ? (int)shard_w : 0, base_name(file_info(m, mq_tensor_file(t)).path),
               *ql ? "  " : "", ql);
    }
    struct dtype_total by[TOTAL_KEYS], all;
    totals(m, by, &all);
    printf("\ntotals by %s:\n", gguf ? "type" : "dtype");
    for (int d = 0; d < TOTAL_KEYS; d++) {
        if (!by[d].tensors) continue;
        printf("  %-11s %6" PRIu64 " tensors %18s parameters %18s bytes\n", total_label(m, d), by[d].tensors,
               cli_group(by[d].params, a, sizeof a), cli_group(by[d].bytes, b, sizeof b));
    }
    printf("  %-11s %6" PRIu64 " tensors %18s parameters %18s bytes (%.4f GB, %.4f GiB)\n", "all", all.tensors,
           cli_group(all.params, a, sizeof a), cli_group(all.bytes, b, sizeof b), (double)all.bytes / 1e9,
           (double)all.bytes / 1073741824.0);
}

/* "gguf" and "metadata_typed": version, alignment, data offset, and every key with its type. */
static void json_gguf(cJSON *root, const struct mq_model *m)
{
    const struct mq_file_info f0 = file_info(m, 0);
    cJSON *g = cJSON_AddObjectToObject(root, "gguf");
    cJSON_AddNumberToObject(g, "version", f0.gguf_version);
    cJSON_AddNumberToObject(g, "alignment", f0.gguf_alignment);
    cJSON_AddNumberToObject(g, "data_offset", (double)f0.header_bytes);
    cJSON *typed = cJSON_AddArrayToObject(root, "metadata_typed");
    for (size_t i = 0; i < mq_model_meta(m)->n; i++) {
        const struct mq_meta_entry *e = &mq_model_meta(m)->items[i];
        cJSON *o = cJSON_CreateObject();
        char text[320];
        mq_meta_value_format(&e->v, text, sizeof text, 160);
        cJSON_AddStringToObject(o, "key", e->key);
        cJSON_AddStringToObject(o, "type", mq_meta_type_name(e->v.type));
        if (e->v.type == MQ_META_ARRAY) {
            cJSON_AddStringToObject(o, "elem_type", mq_meta_type_name(e->v.elem_type));
            cJSON_AddNumberToObject(o, "count", (double)e->v.count);
        }
        cJSON_AddStringToObject(o, "value", text);
        cJSON_AddItemToArray(typed, o);
    }
}

static int print_json(const struct mq_model *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "schema_version", INSPECT_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "input", mq_model_input_path(m));
    cJSON_AddStringToObject(root, "format", mq_model_format(m));
    bool gguf = is_gguf(m) && (mq_model_n_files(m) == 1 || mq_model_split_parts(m));
    if (gguf) json_gguf(root, m);
    if (is_gguf(m) && mq_model_split_parts(m)) cJSON_AddNumberToObject(root, "split_parts", mq_model_split_parts(m));
    cJSON *files = cJSON_AddArrayToObject(root, "files");
    for (size_t i = 0; i < mq_model_n_files(m); i++) {
        const struct mq_file_info fi = file_info(m, i);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", fi.path);
        cJSON_AddNumberToObject(f, "bytes", (double)fi.size);
        cJSON_AddNumberToObject(f, "header_bytes", (double)fi.header_bytes);
        cJSON_AddItemToArray(files, f);
    }
    const struct mq_config *c = mq_model_config(m);
    if (c->present) {
        cJSON *cj = cJSON_AddObjectToObject(root, "config");
        cJSON_AddStringToObject(cj, "path", c->path);
        cJSON_AddStringToObject(cj, "model_type", c->model_type);
        cJSON_AddStringToObject(cj, "architecture", c->architecture);
        cJSON_AddStringToObject(cj, "torch_dtype", c->torch_dtype);
        cJSON_AddNumberToObject(cj, "num_layers", (double)c->num_layers);
        cJSON_AddNumberToObject(cj, "hidden_size", (double)c->hidden_size);
        cJSON_AddNumberToObject(cj, "intermediate_size", (double)c->intermediate_size);
        cJSON_AddNumberToObject(cj, "num_heads", (double)c->num_heads);
        cJSON_AddNumberToObject(cj, "num_kv_heads", (double)c->num_kv_heads);
        cJSON_AddNumberToObject(cj, "head_dim", (double)c->head_dim);
        cJSON_AddNumberToObject(cj, "vocab_size", (double)c->vocab_size);
        cJSON_AddNumberToObject(cj, "head_dim_v", (double)(c->head_dim_v ? c->head_dim_v : c->head_dim));
        if (c->sliding_window && c->swa_layers) {
            cJSON *sw = cJSON_AddObjectToObject(cj, "sliding_window");
            cJSON_AddNumberToObject(sw, "window", (double)c->sliding_window);
            cJSON_AddNumberToObject(sw, "layers", (double)c->swa_layers);
            if (c->swa_period) cJSON_AddNumberToObject(sw, "period", c->swa_period);
            else cJSON_AddNullToObject(sw, "period");
        } else {
            cJSON_AddNullToObject(cj, "sliding_window");
        }
        if (c->num_experts) {
            cJSON *ex = cJSON_AddObjectToObject(cj, "experts");
            cJSON_AddNumberToObject(ex, "count", (double)c->num_experts);
            if (c->experts_used) cJSON_AddNumberToObject(ex, "used_per_token", (double)c->experts_used);
            else cJSON_AddNullToObject(ex, "used_per_token");
        } else {
            cJSON_AddNullToObject(cj, "experts");
        }
    } else {
        cJSON_AddNullToObject(root, "config");
    }
    if (mq_model_lora(m)) {
        const struct mq_lora_config *lc = mq_model_lora(m);
        cJSON *ad = cJSON_AddObjectToObject(root, "adapter");
        cJSON_AddStringToObject(ad, "type", "lora");
        cJSON_AddStringToObject(ad, "config", lc->path);
        cJSON_AddNumberToObject(ad, "r", (double)lc->r);
        cJSON_AddNumberToObject(ad, "alpha", lc->alpha);
        cJSON_AddBoolToObject(ad, "use_rslora", lc->use_rslora);
        cJSON_AddNumberToObject(ad, "scale", lc->use_rslora ? lc->alpha / sqrt((double)lc->r) : lc->alpha / (double)lc->r);
        cJSON_AddBoolToObject(ad, "rank_pattern", lc->rank_pattern);
        cJSON_AddStringToObject(ad, "target_modules", lc->targets);
        cJSON_AddStringToObject(ad, "base_model", lc->base_model);
    } else {
        cJSON_AddNullToObject(root, "adapter");
    }
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    const char *mk, *mv;
    for (size_t i = 0; mq_model_metadata(m, i, &mk, &mv); i++) cJSON_AddStringToObject(md, mk, mv);
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", mq_tensor_name(t));
        cJSON_AddStringToObject(o, "dtype", mq_dtype_name(stored_dtype(t)));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; d < mq_tensor_ndim(t); d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)mq_tensor_shape(t)[d]));
        if (mq_tensor_ggml_type(t) >= 0) {
            uint64_t ne[MQ_MAX_DIMS];
            tensor_ne(t, ne);
            cJSON_AddStringToObject(o, "ggml_type", tensor_type(t));
            cJSON *nej = cJSON_AddArrayToObject(o, "ne");
            for (uint32_t d = 0; d < mq_tensor_ndim(t); d++) cJSON_AddItemToArray(nej, cJSON_CreateNumber((double)ne[d]));
        }
        cJSON_AddNumberToObject(o, "parameters", (double)mq_tensor_numel(t));
        cJSON_AddNumberToObject(o, "bytes", (double)stored_bytes(t));
        struct mq_bnb_info bi;
        struct mq_fp8_info fi;
        if (mq_tensor_bnb_info(t, &bi)) {
            char q[64];
            cJSON *bj = cJSON_AddObjectToObject(o, "bitsandbytes");
            cJSON_AddStringToObject(bj, "quant_type", mq_codec_info(bi.codec)->name);
            if (bi.codec != MQ_CODEC_INT8_ROW) {
                cJSON_AddNumberToObject(bj, "blocksize", bi.blocksize);
                cJSON_AddBoolToObject(bj, "double_quant", bi.double_quant);
            }
            cJSON_AddStringToObject(bj, "label", bnb_label(&bi, q, sizeof q));
            cJSON_AddNumberToObject(bj, "packed_bytes", (double)mq_tensor_nbytes(t));
            cJSON_AddNumberToObject(bj, "stored_tensors", bi.n_stored);
        }
        if (mq_tensor_fp8_info(t, &fi)) {
            cJSON *fj = cJSON_AddObjectToObject(o, "fp8");
            cJSON_AddStringToObject(fj, "read_as", "F32");
            if (fi.has_scale) {
                cJSON_AddStringToObject(fj, "scale_tensor", fi.scale_name);
                cJSON_AddStringToObject(fj, "scale_dtype", mq_dtype_name(fi.scale_dtype));
                cJSON *ss = cJSON_AddArrayToObject(fj, "scale_shape");
                cJSON_AddItemToArray(ss, cJSON_CreateNumber((double)fi.scale_rows));
                cJSON_AddItemToArray(ss, cJSON_CreateNumber((double)fi.scale_cols));
                cJSON *bs = cJSON_AddArrayToObject(fj, "block");
                cJSON_AddItemToArray(bs, cJSON_CreateNumber((double)fi.block_rows));
                cJSON_AddItemToArray(bs, cJSON_CreateNumber((double)fi.block_cols));
            }
        }
        cJSON_AddNumberToObject(o, "offset", (double)mq_tensor_offset(t));
        cJSON_AddStringToObject(o, "shard", base_name(file_info(m, mq_tensor_file(t)).path));
        cJSON_AddItemToArray(ts, o);
    }
    struct dtype_total by[TOTAL_KEYS], all;
    totals(m, by, &all);
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    /* by_dtype as before for every format; GGUF adds by_ggml_type */
    struct dtype_total byd_[MQ_DTYPE_COUNT];
    memset(byd_, 0, sizeof byd_);
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        struct mq_bnb_info bi;
        if (mq_tensor_bnb_info(t, &bi)) continue; /* in by_bitsandbytes */
        byd_[stored_dtype(t)].tensors++;
        byd_[stored_dtype(t)].params += mq_tensor_numel(t);
        byd_[stored_dtype(t)].bytes += stored_bytes(t);
    }
    cJSON *byd = cJSON_AddObjectToObject(tot, "by_dtype");
    for (int d = 0; d < MQ_DTYPE_COUNT; d++) {
        if (!byd_[d].tensors) continue;
        cJSON *o = cJSON_AddObjectToObject(byd, mq_dtype_name((enum mq_dtype)d));
        cJSON_AddNumberToObject(o, "tensors", (double)byd_[d].tensors);
        cJSON_AddNumberToObject(o, "parameters", (double)byd_[d].params);
        cJSON_AddNumberToObject(o, "bytes", (double)byd_[d].bytes);
    }
    bool any_bnb = false;
    for (int d = MQ_DTYPE_COUNT; d < MQ_DTYPE_COUNT + BNB_KINDS && !is_gguf(m); d++) any_bnb |= by[d].tensors > 0;
    if (any_bnb) {
        cJSON *byb = cJSON_AddObjectToObject(tot, "by_bitsandbytes");
        for (int d = MQ_DTYPE_COUNT; d < MQ_DTYPE_COUNT + BNB_KINDS; d++) {
            if (!by[d].tensors) continue;
            cJSON *o = cJSON_AddObjectToObject(byb, total_label(m, d));
            cJSON_AddNumberToObject(o, "tensors", (double)by[d].tensors);
            cJSON_AddNumberToObject(o, "parameters", (double)by[d].params);
            cJSON_AddNumberToObject(o, "bytes", (double)by[d].bytes);
        }
    }
    if (is_gguf(m)) {
        cJSON *byg = cJSON_AddObjectToObject(tot, "by_ggml_type");
        for (int d = 0; d < TOTAL_KEYS; d++) {
            if (!by[d].tensors) continue;
            cJSON *o = cJSON_AddObjectToObject(byg, total_label(m, d));
            cJSON_AddNumberToObject(o, "tensors", (double)by[d].tensors);
            cJSON_AddNumberToObject(o, "parameters", (double)by[d].params);
            cJSON_AddNumberToObject(o, "bytes", (double)by[d].bytes);
        }
    }
    cJSON_AddNumberToObject(tot, "tensors", (double)all.tensors);
    cJSON_AddNumberToObject(tot, "parameters", (double)all.params);
    cJSON_AddNumberToObject(tot, "bytes", (double)all.bytes);
    cJSON *warn = cJSON_AddArrayToObject(root, "warnings");
    for (size_t i = 0; i < mq_model_n_warnings(m); i++) cJSON_AddItemToArray(warn, cJSON_CreateString(mq_model_warning(m, i)));
    return cli_print_json(root);
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(inspect_help, stdout);
            return EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        else if (path) return cli_usage_error("inspect", "one PATH only");
        else path = argv[i];
    }
    if (!path) return cli_usage_error("inspect", "missing PATH");
    struct mq_error err;
    mq_error_clear(&err);
    struct mq_model *m;
    if (mq_model_open(path, &m, &err) != MQ_OK) return cli_fail(&err);
    int rc = EXIT_OK;
    if (json) rc = print_json(m);
    else print_text(m);
    if (!json)
        for (size_t i = 0; i < mq_model_n_warnings(m); i++) fprintf(stderr, "modelq: warning: %s\n", mq_model_warning(m, i));
    mq_model_free(m);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "modelq: error: cannot write to standard output\n");
        return EXIT_IO;
    }
    return rc;
}
