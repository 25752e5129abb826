/* cmd_estimate.c - `modelq estimate PATH`: the memory table for this model (headers only). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "modelq/estimate.h"

#define ESTIMATE_SCHEMA_VERSION 1
#define GIB 1073741824.0

static const char *const estimate_help =
    "usage: modelq estimate PATH|ORG/NAME[@REV] [--ctx N] [--batch B] [--ubatch U] [-ctk T] [-ctv T] [-fa]\n"
    "                       [--swa-full] [--lora-rank R | --lora ADAPTER] [--ngl N] [--gpu SIZE[,SIZE...]]\n"
    "                       [--tensor-split R[,R...]] [--fit] [--json]\n"
    "\n"
    "Memory for this model from its headers and config.json, or for a .gguf from its own metadata\n"
    "(tensor data is never read). Tensors a GGUF already stores quantized are counted as stored.\n"
    "Weights: one row per target - FP32, FP16/BF16, GGUF Q8_0, bitsandbytes LLM.int8, modelq INT8 asym,\n"
    "bitsandbytes NF4 (block 64), NF4 + double quant, GGUF Q4_0, GGUF IQ4_NL - with bits per weight\n"
    "including scales and the tensors each target leaves unquantized (the rules `convert` uses).\n"
    "\n"
    "With config.json, inference VRAM = weights + KV cache + overhead:\n"
    "  KV cache  layers x cells x (row(K type) + row(V type)), as llama.cpp allocates it: cells = batch x\n"
    "            ctx rounded up to a multiple of 256; row(T) = kv_heads x head_dim values in type T\n"
    "            (f16: 2 bytes each; q8_0: 34 bytes per 32; V rows use the V head size). Sliding-window\n"
    "            layers (Gemma 2: every other layer, Gemma 3: five of six) get llama.cpp's SWA cache:\n"
    "            batch x min(ctx cells, window + ubatch) rounded up to 256 cells (ctx cells with\n"
    "            --swa-full). With -fa a quantized type's blocks must divide head_dim, as in llama.cpp\n"
    "  overhead  512 MiB runtime reserve + compute buffer 4 x ub x max(vocab + 2E, 3 ff + 3E, (heads + 1) x\n"
    "            kv + 5E + 2 kv_dim), ub = min(ctx x batch, ubatch), kv = cache cells (with -fa: no scores,\n"
    "            an f16 mask: 5E + 4 kv_dim + kv/2); llama.cpp's CPU compute buffer within 10%\n"
    "Placement (--ngl/--gpu/--tensor-split/--fit), as the pinned llama.cpp splits layers (split mode\n"
    "\"layer\"): of the n_layer repeating layers plus the output layer (output_norm + output, counted\n"
    "as layer n_layer), the LAST N go to the GPUs: layer il is offloaded when il >= max(n_layer + 1 - N, 0)\n"
    "(N = n_layer + 1: everything; N = 1: the output layer only); token embeddings stay on the host (a\n"
    "model without an output tensor also gets a copy of token_embd on the output layer's device).\n"
    "Offloaded layer il goes to the first device whose cumulative split point exceeds (il - first) / N,\n"
    "points = running sums of the --tensor-split ratios (default: the --gpu sizes; llama.cpp uses free\n"
    "memory) over their total. Per device: its layers' weights (each tensor padded to 32 bytes), their\n"
    "KV cache, a compute buffer (4 x ub x max(FFN, attention stage) with a repeating layer, plus the\n"
    "logits stage with the output layer; 4 x ub x (vocab + E) with the output layer only) and the\n"
    "reserve; the host the rest (its compute buffer 4 x ub x (E + vocab + mask) when it holds no layer).\n"
    "Weights and KV per device equal llama.cpp's buffers; compute buffers within 25% (the host's with\n"
    "every layer offloaded, a small buffer, within 35%). Not modelled: llama.cpp's pipeline parallelism\n"
    "(several GPUs, everything offloaded, CUDA) keeps extra copies of the compute buffers.\n"
    "\n"
    "and training (activations not counted): full fine-tune with mixed-precision AdamW (16 bytes/param),\n"
    "LoRA (16-bit base + 16 bytes per adapter parameter), QLoRA (NF4 + double-quant base + adapters).\n"
    "\n"
    "  --ctx N        context length in tokens (default 4096)\n"
    "  --batch B      sequences in parallel (default 1; llama.cpp: -np B with -c ctx x B)\n"
    "  -ctk, --cache-type-k T, -ctv, --cache-type-v T\n"
    "                 KV cache types as llama.cpp names them: f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0\n"
    "                 q5_1 (default f16); a quantized V needs -fa\n"
    "  -fa, --flash-attn  flash attention (as llama.cpp's -fa)\n"
    "  -ub, --ubatch U  tokens per micro-batch (llama.cpp's -ub, default 512; its -b is at least U)\n"
    "  --swa-full     full-size cache for sliding-window layers too (llama.cpp's --swa-full)\n"
    "  --lora-rank R  LoRA rank on every linear layer (default 16)\n"
    "  --lora ADAPTER the LoRA/QLoRA rows with a real PEFT adapter's rank and targets (its parameter\n"
    "                 count); PATH itself an adapter folder: its size as a GGUF adapter\n"
    "  -ngl, --ngl, --n-gpu-layers N\n"
    "                 layers on the GPUs, output layer included (llama.cpp's -ngl; all: n_layer + 1)\n"
    "  --gpu SIZE[,SIZE...]  each GPU's memory (24GiB, 16GB, 8000MiB; G = GiB); the table gains per-GPU\n"
    "                 totals and whether they fit\n"
    "  -ts, --tensor-split R[,R...]  layer ratios per GPU (llama.cpp's -ts, split mode layer)\n"
    "  --fit          per target: the largest -ngl (at --ctx) and the largest context (a multiple of\n"
    "                 256 up to the trained context, at --ngl) that fit every GPU (needs --gpu)\n"
    "  --json         one JSON document (field \"schema_version\" = 1)\n"
    "GB = 10^9 bytes, GiB = 2^30 bytes.\n";

/* A memory size: digits with an optional unit B, KB/MB/GB/TB (10^3k), KiB/MiB/GiB/TiB or K/M/G/T (2^10k). */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return false;
    double v = strtod(s, &end);
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1024.0},
                 {"M", 1048576.0}, {"G", 1073741824.0}, {"T", 1099511627776.0}, {"KiB", 1024.0},
                 {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(end, units[i].unit) == 0) {
            double b = v * units[i].mul;
            if (!(b >= 1.0 && b < 1.8e19)) return false;
            *out = (uint64_t)b;
            return true;
        }
    return false;
}

/* "a,b,c" (llama.cpp's -ts also takes '/') into at most MQ_ESTIMATE_MAX_GPUS items; count or -1. */
static int split_list(const char *arg, char items[][32])
{
    int n = 0;
    for (const char *p = arg;;) {
        size_t len = strcspn(p, ",/");
        if (n == MQ_ESTIMATE_MAX_GPUS || len == 0 || len >= 32) return -1;
        memcpy(items[n], p, len);
        items[n++][len] = '\0';
        if (!p[len]) return n;
        p += len + 1;
    }
}

/*
** Tensors of a GGUF stored in a block-quantized ggml type (the reader gives them dtype U8: ggml
** has no U8 type). No target re-quantizes them, so every row counts them as stored.
*/
struct stored_quantized {
    uint64_t tensors, params, bytes;
};

static struct stored_quantized count_stored_quantized(const struct mq_model *m)
{
    struct stored_quantized q = {0, 0, 0};
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        if (mq_tensor_ggml_type(t) < 0 || mq_tensor_dtype(t) != MQ_DTYPE_U8) continue; /* a GGUF quantized type */
        q.tensors++;
        q.params += mq_tensor_numel(t);
        q.bytes += mq_tensor_nbytes(t);
    }
    return q;
}

static void print_placement(const struct mq_model *m, const struct mq_estimate *e);

static void print_text(const struct mq_model *m, const struct mq_estimate *e)
{
    char a[64], b[64], c[64];
    if (mq_model_split_parts(m))
        printf("model:       %s (%s, a split model of %u parts, read as one)\n", mq_model_input_path(m), mq_model_format(m), mq_model_split_parts(m));
    else
        printf("model:       %s (%s, %zu file%s)\n", mq_model_input_path(m), mq_model_format(m), mq_model_n_files(m), mq_model_n_files(m) == 1 ? "" : "s");
    printf("parameters:  %s in %" PRIu64 " tensors; stored as %s bytes (%.4f GB, %.4f GiB)\n",
           cli_group(e->params, a, sizeof a), e->n_tensors, cli_group(e->source_bytes, b, sizeof b),
           (double)e->source_bytes / 1e9, (double)e->source_bytes / GIB);
    if (e->expert_params)
        printf("MoE:         %" PRIu64 " experts, %" PRIu64 " used per token: %s parameters in experts; %s active per "
               "token\n", mq_model_config(m)->num_experts, mq_model_config(m)->experts_used, cli_group(e->expert_params, a, sizeof a),
               cli_group(e->active_params, b, sizeof b));
    printf("\nweights by target\n");
    printf("%-24s %6s %18s %10s %10s %8s %16s %16s\n", "target", "bpw", "bytes", "GB", "GiB", "vs FP32", "quantized",
           "unquantized");
    double fp32 = (double)mq_estimate_row_of(e, MQ_TARGET_F32)->bytes;
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        const struct mq_estimate_row *r = &e->rows[k];
        printf("%-24s %6.3f %18s %10.4f %10.4f %7.1f%% %16s %16s\n", mq_target_info(r->target)->label, r->bpw,
               cli_group(r->bytes, a, sizeof a), (double)r->bytes / 1e9, (double)r->bytes / GIB,
               fp32 > 0 ? 100.0 * (double)r->bytes / fp32 : 0.0, cli_group(r->quantized_params, b, sizeof b),
               cli_group(r->kept_params, c, sizeof c));
    }
    printf("bpw = bytes x 8 / all parameters (scales, zero points and unquantized tensors included).\n"
           "unquantized = parameters the target keeps: GGUF keeps norms/1-D tensors in F32 (and gives output.weight\n"
           "Q6_K in 4-bit files); bitsandbytes quantizes only linear layers (embeddings and lm_head stay %s).\n",
           mq_model_config(m)->torch_dtype[0] ? mq_model_config(m)->torch_dtype : "in the source dtype");
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++)
        if (e->rows[k].n_fallback)
            printf("note: %s: %" PRIu64 " tensor(s) fall back to another type (row length not a multiple of the block)\n",
                   mq_target_info(e->rows[k].target)->label, e->rows[k].n_fallback);

    struct stored_quantized sq = count_stored_quantized(m);
    if (sq.tensors)
        printf("note: %" PRIu64 " tensor(s) (%s parameters) are already quantized in this GGUF; every row counts them "
               "as stored (%s bytes): modelq does not re-quantize quantized input.\n",
               sq.tensors, cli_group(sq.params, a, sizeof a), cli_group(sq.bytes, b, sizeof b));

    if (!e->have_config) {
        if (strcmp(mq_model_format(m), "gguf") == 0)
            printf("\nno layers/heads in the GGUF metadata (general.architecture and its block_count, head_count ...): "
                   "KV cache, inference VRAM and training need them.\n");
        else
            printf("\nno config.json with layers/heads: KV cache, inference VRAM and training need it.\n");
        return;
    }
    const struct mq_config *cf = mq_model_config(m);
    const char *tk = mq_codec_info(e->opt.kv_type_k)->name, *tv = mq_codec_info(e->opt.kv_type_v)->name;
    printf("\ninference VRAM at ctx %" PRIu64 ", batch %" PRIu64 " (KV cache K %s, V %s%s)\n", e->opt.ctx, e->opt.batch,
           tk, tv, e->opt.flash_attn ? ", flash attention" : "");
    char hd[48];
    if (cf->head_dim_v && cf->head_dim_v != cf->head_dim)
        snprintf(hd, sizeof hd, "%" PRIu64 "/%" PRIu64 " head_dim K/V", cf->head_dim, cf->head_dim_v);
    else
        snprintf(hd, sizeof hd, "%" PRIu64 " head_dim", cf->head_dim);
    if (e->kv_swa_cells) {
        char d[64];
        printf("  KV cache: %" PRIu64 " full layers x %s cells + %" PRIu64 " sliding-window layers (window %" PRIu64
               ") x %s cells (as llama.cpp pads them) x K+V rows of %" PRIu64 " kv heads x %s = %s bytes (%.4f GB, "
               "%.4f GiB)\n",
               cf->num_layers - cf->swa_layers, cli_group(e->kv_cells, c, sizeof c), cf->swa_layers, cf->sliding_window,
               cli_group(e->kv_swa_cells, d, sizeof d), cf->num_kv_heads, hd, cli_group(e->kv_bytes, a, sizeof a),
               (double)e->kv_bytes / 1e9, (double)e->kv_bytes / GIB);
    } else {
        printf("  KV cache: %" PRIu64 " layers x %s cells (as llama.cpp pads them) x K+V rows of %" PRIu64 " kv heads x "
               "%s = %s bytes (%.4f GB, %.4f GiB; %s bytes/cell)\n",
               cf->num_layers, cli_group(e->kv_cells, c, sizeof c), cf->num_kv_heads, hd,
               cli_group(e->kv_bytes, a, sizeof a), (double)e->kv_bytes / 1e9, (double)e->kv_bytes / GIB,
               cli_group(e->kv_per_token, b, sizeof b));
    }
    printf("  overhead: %.0f MiB reserve + %.2f MiB compute buffer = %.4f GiB\n",
           (double)e->opt.reserve_bytes / 1048576.0, (double)e->compute_bytes / 1048576.0,
           (double)e->overhead_bytes / GIB);
    printf("%-24s %12s %12s %12s %12s\n", "target", "weights GiB", "KV GiB", "total GB", "total GiB");
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        const struct mq_estimate_row *r = &e->rows[k];
        printf("%-24s %12.4f %12.4f %12.4f %12.4f\n", mq_target_info(r->target)->label, (double)r->bytes / GIB,
               (double)e->kv_bytes / GIB, (double)r->inference_bytes / 1e9, (double)r->inference_bytes / GIB);
    }
    if (e->placed) print_placement(m, e);
    printf("\ntraining (activations not counted: they depend on sequence length, batch and checkpointing)\n");
    printf("  %-52s %12.4f GB %12.4f GiB\n", "full fine-tune, mixed-precision AdamW (16 B/param)",
           (double)e->train_full_bytes / 1e9, (double)e->train_full_bytes / GIB);
    char label[128];
    snprintf(label, sizeof label, "LoRA r=%u%s, 16-bit base, %s adapter params", e->opt.lora_rank,
             e->opt.lora_params ? " (--lora)" : "", cli_group(e->lora_params, a, sizeof a));
    printf("  %-52s %12.4f GB %12.4f GiB\n", label, (double)e->train_lora_bytes / 1e9, (double)e->train_lora_bytes / GIB);
    snprintf(label, sizeof label, "QLoRA r=%u, NF4 + double-quant base", e->opt.lora_rank);
    printf("  %-52s %12.4f GB %12.4f GiB\n", label, (double)e->train_qlora_bytes / 1e9,
           (double)e->train_qlora_bytes / GIB);
    if (e->opt.lora_params)
        printf("  (the adapter's own modules and ranks; adapters cost 16 B/param like full fine-tuning)\n");
    else
        printf("  (LoRA adapters on the %" PRIu64 " linear layers; adapters cost 16 B/param like full fine-tuning)\n",
               e->linear_layers);
}

/* Where llama.cpp puts it: one line per device, then per target the GiB on each (and whether it fits). */
static void print_placement(const struct mq_model *m, const struct mq_estimate *e)
{
    const struct mq_estimate_options *o = &e->opt;
    const uint32_t n = o->n_gpus ? o->n_gpus : 1;
    const uint64_t L = mq_model_config(m)->num_layers;
    printf("\nplacement: -ngl %" PRId64 " of %" PRIu64 " layers + output, %u GPU%s (llama.cpp split mode layer)%s\n",
           e->ngl, L, n, n == 1 ? "" : "s", e->tied_output ? "; tied output: token_embd copied to its device" : "");
    int64_t offloaded = 0;
    for (uint32_t k = 0; k < n; k++) {
        char size[32] = "size not given", lay[64] = "nothing";
        if (o->gpu_bytes[k]) snprintf(size, sizeof size, "%.2f GiB", (double)o->gpu_bytes[k] / GIB);
        if (e->gpu_layers[k])
            snprintf(lay, sizeof lay, "layers %" PRId64 "-%" PRId64 "%s", e->gpu_first[k],
                     e->gpu_first[k] + e->gpu_layers[k] - 1, e->output_gpu == (int)k ? " + output" : "");
        else if (e->output_gpu == (int)k)
            snprintf(lay, sizeof lay, "the output layer only");
        offloaded += e->gpu_layers[k];
        printf("  GPU%u (%s): %s; KV %.4f GiB, compute %.4f GiB, reserve %.0f MiB\n", k, size, lay,
               (double)e->gpu_kv[k] / GIB, (double)e->gpu_compute[k] / GIB, (double)o->reserve_bytes / 1048576.0);
    }
    char hl[64] = "";
    if (offloaded < (int64_t)L) snprintf(hl, sizeof hl, ", layers 0-%" PRId64, (int64_t)L - offloaded - 1);
    printf("  host: token embeddings%s%s; KV %.4f GiB, compute %.4f GiB\n", hl, e->output_gpu < 0 ? ", output" : "",
           (double)e->host_kv / GIB, (double)e->host_compute / GIB);
    printf("%-24s", "target");
    for (uint32_t k = 0; k < n; k++) printf("  GPU%u GiB %-4s", k, o->gpu_bytes[k] ? "fits" : "");
    printf("  %9s", "host GiB");
    if (o->fit) printf("  %8s %9s", "max -ngl", "max ctx");
    printf("\n");
    for (int r = 0; r < MQ_ESTIMATE_ROWS; r++) {
        const struct mq_estimate_place *p = &e->rows[r].place;
        printf("%-24s", mq_target_info(e->rows[r].target)->label);
        for (uint32_t k = 0; k < n; k++)
            printf("  %9.4f %-4s", (double)p->gpu_total[k] / GIB,
                   !o->gpu_bytes[k] ? "" : p->gpu_total[k] <= o->gpu_bytes[k] ? "yes" : "NO");
        printf("  %9.4f", (double)p->host_total / GIB);
        if (o->fit) {
            if (p->fit_ngl < 0) printf("  %8s", "none");
            else printf("  %8" PRId64, p->fit_ngl);
            if (p->fit_ctx) printf(" %9" PRIu64, p->fit_ctx);
            else printf(" %9s", "none");
        }
        printf("\n");
    }
    printf("GPU GiB = its weights + KV + compute + reserve; host = the rest of the weights + its KV and compute.\n");
    if (o->fit)
        printf("max -ngl: the most layers that fit every GPU at ctx %" PRIu64 "; max ctx: the longest context (steps of "
               "256, up to the trained one) at -ngl %" PRId64 ".\n", o->ctx, e->ngl);
}

static void add_bytes(cJSON *o, const char *key, uint64_t v)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "bytes", (double)v);
    cJSON_AddNumberToObject(x, "GB", (double)v / 1e9);
    cJSON_AddNumberToObject(x, "GiB", (double)v / GIB);
}

static int print_json(const struct mq_model *m, const struct mq_estimate *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "schema_version", ESTIMATE_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "input", mq_model_input_path(m));
    cJSON_AddNumberToObject(root, "files", (double)mq_model_n_files(m));
    if (mq_model_split_parts(m)) cJSON_AddNumberToObject(root, "split_parts", mq_model_split_parts(m));
    cJSON_AddNumberToObject(root, "tensors", (double)e->n_tensors);
    cJSON_AddNumberToObject(root, "parameters", (double)e->params);
    if (e->expert_params) {
        cJSON *moe = cJSON_AddObjectToObject(root, "moe");
        cJSON_AddNumberToObject(moe, "experts", (double)mq_model_config(m)->num_experts);
        cJSON_AddNumberToObject(moe, "experts_used", (double)mq_model_config(m)->experts_used);
        cJSON_AddNumberToObject(moe, "expert_parameters", (double)e->expert_params);
        cJSON_AddNumberToObject(moe, "active_parameters", (double)e->active_params);
    } else {
        cJSON_AddNullToObject(root, "moe");
    }
    cJSON_AddNumberToObject(root, "source_bytes", (double)e->source_bytes);
    struct stored_quantized sq = count_stored_quantized(m);
    if (sq.tensors) {
        cJSON *q = cJSON_AddObjectToObject(root, "stored_quantized");
        cJSON_AddNumberToObject(q, "tensors", (double)sq.tensors);
        cJSON_AddNumberToObject(q, "parameters", (double)sq.params);
        cJSON_AddNumberToObject(q, "bytes", (double)sq.bytes);
    }
    cJSON *rows = cJSON_AddArrayToObject(root, "targets");
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        const struct mq_estimate_row *r = &e->rows[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target", mq_target_info(r->target)->name);
        cJSON_AddStringToObject(o, "label", mq_target_info(r->target)->label);
        cJSON_AddNumberToObject(o, "bits_per_weight", r->bpw);
        cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
        cJSON_AddNumberToObject(o, "GB", (double)r->bytes / 1e9);
        cJSON_AddNumberToObject(o, "GiB", (double)r->bytes / GIB);
        cJSON_AddNumberToObject(o, "quantized_parameters", (double)r->quantized_params);
        cJSON_AddNumberToObject(o, "unquantized_parameters", (double)r->kept_params);
        cJSON_AddNumberToObject(o, "fallback_tensors", (double)r->n_fallback);
        if (e->have_config) add_bytes(o, "inference", r->inference_bytes);
        if (e->placed) {
            const uint32_t n = e->opt.n_gpus ? e->opt.n_gpus : 1;
            cJSON *pl = cJSON_AddObjectToObject(o, "placement"), *gw = cJSON_AddArrayToObject(pl, "gpu_weights_bytes");
            cJSON *gt = cJSON_AddArrayToObject(pl, "gpu_total_bytes"), *gf = cJSON_AddArrayToObject(pl, "gpu_fits");
            for (uint32_t d = 0; d < n; d++) {
                cJSON_AddItemToArray(gw, cJSON_CreateNumber((double)r->place.gpu_weights[d]));
                cJSON_AddItemToArray(gt, cJSON_CreateNumber((double)r->place.gpu_total[d]));
                cJSON_AddItemToArray(gf, e->opt.gpu_bytes[d] ? cJSON_CreateBool(r->place.gpu_total[d] <= e->opt.gpu_bytes[d])
                                                             : cJSON_CreateNull());
            }
            cJSON_AddNumberToObject(pl, "host_weights_bytes", (double)r->place.host_weights);
            cJSON_AddNumberToObject(pl, "host_total_bytes", (double)r->place.host_total);
            cJSON_AddBoolToObject(pl, "fits", r->place.fits);
            if (e->opt.fit) {
                if (r->place.fit_ngl >= 0) cJSON_AddNumberToObject(pl, "fit_ngl", (double)r->place.fit_ngl);
                else cJSON_AddNullToObject(pl, "fit_ngl");
                if (r->place.fit_ctx) cJSON_AddNumberToObject(pl, "fit_ctx", (double)r->place.fit_ctx);
                else cJSON_AddNullToObject(pl, "fit_ctx");
            }
        }
        cJSON_AddItemToArray(rows, o);
    }
    if (e->have_config) {
        cJSON *inf = cJSON_AddObjectToObject(root, "inference");
        cJSON_AddNumberToObject(inf, "ctx", (double)e->opt.ctx);
        if (e->trained_ctx) cJSON_AddNumberToObject(inf, "trained_ctx", (double)e->trained_ctx);
        else cJSON_AddNullToObject(inf, "trained_ctx");
        if (e->rope_scaling[0]) {
            cJSON *rs = cJSON_AddObjectToObject(inf, "rope_scaling");
            cJSON_AddStringToObject(rs, "type", e->rope_scaling);
            cJSON_AddNumberToObject(rs, "factor", e->rope_factor);
        } else {
            cJSON_AddNullToObject(inf, "rope_scaling");
        }
        cJSON_AddNumberToObject(inf, "batch", (double)e->opt.batch);
        cJSON_AddNumberToObject(inf, "kv_bytes_per_token", (double)e->kv_per_token);
        cJSON_AddNumberToObject(inf, "kv_cells", (double)e->kv_cells);
        cJSON_AddNumberToObject(inf, "ubatch", (double)e->opt.ubatch);
        cJSON_AddBoolToObject(inf, "swa_full", e->opt.swa_full);
        if (e->kv_swa_cells) {
            const struct mq_config *cf = mq_model_config(m);
            cJSON *sw = cJSON_AddObjectToObject(inf, "sliding_window");
            cJSON_AddNumberToObject(sw, "window", (double)cf->sliding_window);
            cJSON_AddNumberToObject(sw, "layers", (double)cf->swa_layers);
            cJSON_AddNumberToObject(sw, "full_layers", (double)(cf->num_layers - cf->swa_layers));
            cJSON_AddNumberToObject(sw, "cells", (double)e->kv_swa_cells);
        } else {
            cJSON_AddNullToObject(inf, "sliding_window");
        }
        cJSON_AddStringToObject(inf, "cache_type_k", mq_codec_info(e->opt.kv_type_k)->name);
        cJSON_AddStringToObject(inf, "cache_type_v", mq_codec_info(e->opt.kv_type_v)->name);
        cJSON_AddBoolToObject(inf, "flash_attn", e->opt.flash_attn);
        add_bytes(inf, "kv_cache", e->kv_bytes);
        add_bytes(inf, "compute_buffer", e->compute_bytes);
        add_bytes(inf, "overhead", e->overhead_bytes);
        if (e->placed) {
            const uint32_t n = e->opt.n_gpus ? e->opt.n_gpus : 1;
            cJSON *pl = cJSON_AddObjectToObject(inf, "placement");
            cJSON_AddNumberToObject(pl, "n_gpu_layers", (double)e->ngl);
            cJSON_AddNumberToObject(pl, "n_layer", (double)mq_model_config(m)->num_layers);
            cJSON_AddBoolToObject(pl, "tied_output", e->tied_output);
            cJSON_AddNumberToObject(pl, "reserve_bytes_per_gpu", (double)e->opt.reserve_bytes);
            cJSON *devs = cJSON_AddArrayToObject(pl, "gpus");
            for (uint32_t k = 0; k < n; k++) {
                cJSON *d = cJSON_CreateObject();
                if (e->opt.gpu_bytes[k]) cJSON_AddNumberToObject(d, "memory_bytes", (double)e->opt.gpu_bytes[k]);
                else cJSON_AddNullToObject(d, "memory_bytes");
                cJSON_AddNumberToObject(d, "tensor_split", e->opt.tensor_split[k]);
                cJSON_AddNumberToObject(d, "first_layer", (double)e->gpu_first[k]);
                cJSON_AddNumberToObject(d, "layers", (double)e->gpu_layers[k]);
                cJSON_AddBoolToObject(d, "output", e->output_gpu == (int)k);
                cJSON_AddNumberToObject(d, "kv_bytes", (double)e->gpu_kv[k]);
                cJSON_AddNumberToObject(d, "compute_bytes", (double)e->gpu_compute[k]);
                cJSON_AddItemToArray(devs, d);
            }
            cJSON *h = cJSON_AddObjectToObject(pl, "host");
            cJSON_AddNumberToObject(h, "kv_bytes", (double)e->host_kv);
            cJSON_AddNumberToObject(h, "compute_bytes", (double)e->host_compute);
            cJSON_AddBoolToObject(h, "output", e->output_gpu < 0);
        } else {
            cJSON_AddNullToObject(inf, "placement");
        }
        cJSON *tr = cJSON_AddObjectToObject(root, "training");
        cJSON_AddStringToObject(tr, "note", "activations not counted");
        cJSON_AddNumberToObject(tr, "lora_rank", e->opt.lora_rank);
        cJSON_AddNumberToObject(tr, "lora_parameters", (double)e->lora_params);
        cJSON_AddStringToObject(tr, "lora_from", e->opt.lora_params ? "adapter" : "rank");
        add_bytes(tr, "full_adamw_mixed_precision", e->train_full_bytes);
        add_bytes(tr, "lora", e->train_lora_bytes);
        add_bytes(tr, "qlora", e->train_qlora_bytes);
    } else {
        cJSON_AddNullToObject(root, "inference");
        cJSON_AddNullToObject(root, "training");
    }
    return cli_print_json(root);
}

/* --ctx beyond the context the model was trained for: say so, and whether RoPE scaling is set. */
static void warn_context(const struct mq_estimate *e, bool ctx_given)
{
    /* only for a context the user asked for (the default 4096 may exceed a tiny model's) */
    if (!ctx_given || !e->trained_ctx || e->opt.ctx <= e->trained_ctx) return;
    if (e->rope_scaling[0])
        fprintf(stderr, "modelq: warning: --ctx %" PRIu64 " is above the %" PRIu64 " tokens the model was trained "
                "for; its configuration sets RoPE scaling (%s, factor %g), which is how it is meant to go further\n",
                e->opt.ctx, e->trained_ctx, e->rope_scaling, e->rope_factor);
    else
        fprintf(stderr, "modelq: warning: --ctx %" PRIu64 " is above the %" PRIu64 " tokens the model was trained "
                "for, and its configuration sets no RoPE scaling: quality past that is not to be expected\n",
                e->opt.ctx, e->trained_ctx);
}

/* PATH is a LoRA adapter: its parameters and its size as a GGUF adapter of each type convert writes. */
static int print_adapter(const struct mq_model *m, bool json)
{
    const struct mq_lora_config *lc = mq_model_lora(m);
    uint64_t params = 0, q8 = 0;
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        params += mq_tensor_numel(t);
        /* q8_0: rows of whole 32-blocks in Q8_0 (34 bytes per 32), others F16 (as convert writes them) */
        const uint64_t row = mq_tensor_row_len(t);
        q8 += row % 32 == 0 ? mq_tensor_numel(t) / 32 * 34 : mq_tensor_numel(t) * 2;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "adapter", lc->path);
        cJSON_AddNumberToObject(root, "r", (double)lc->r);
        cJSON_AddNumberToObject(root, "alpha", lc->alpha);
        cJSON_AddNumberToObject(root, "parameters", (double)params);
        cJSON *b = cJSON_AddObjectToObject(root, "gguf_adapter_bytes");
        cJSON_AddNumberToObject(b, "f32", (double)params * 4);
        cJSON_AddNumberToObject(b, "f16", (double)params * 2);
        cJSON_AddNumberToObject(b, "q8_0", (double)q8);
        return cli_print_json(root);
    }
    char a[64];
    printf("adapter:     %s: LoRA r %" PRIu64 ", alpha %g, %s parameters in %zu tensors\n", lc->path, lc->r,
           lc->alpha, cli_group(params, a, sizeof a), mq_model_n_tensors(m));
    printf("as a GGUF adapter (llama.cpp keeps it beside the base weights):\n");
    printf("  f32  %12.4f GB\n  f16  %12.4f GB\n  q8_0 %12.4f GB\n", (double)params * 4 / 1e9,
           (double)params * 2 / 1e9, (double)q8 / 1e9);
    printf("merged into the base (convert --lora) it adds nothing to the file; for the base's table: "
           "modelq estimate BASE --lora %s\n", mq_model_input_path(m));
    return EXIT_OK;
}

int cmd_estimate(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, ctx_given = false;
    struct mq_estimate_options opt;
    mq_estimate_options_default(&opt);
    const char *lora_path = NULL;
    int n_sizes = 0, n_ratios = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(estimate_help, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--flash-attn") == 0 || strcmp(a, "-fa") == 0) {
            opt.flash_attn = true;
        } else if (strcmp(a, "--swa-full") == 0) {
            opt.swa_full = true;
        } else if (strcmp(a, "--ubatch") == 0 || strcmp(a, "-ub") == 0) {
            if (i + 1 >= argc || !cli_parse_u64(argv[i + 1], &v) || v > UINT32_MAX)
                return cli_usage_error("estimate", "%s needs a positive integer below 2^32", a);
            opt.ubatch = v;
            i++;
        } else if (strcmp(a, "--cache-type-k") == 0 || strcmp(a, "-ctk") == 0 || strcmp(a, "--cache-type-v") == 0 ||
                   strcmp(a, "-ctv") == 0) {
            enum mq_codec c;
            if (i + 1 >= argc || !mq_codec_from_name(argv[i + 1], &c))
                return cli_usage_error("estimate", "%s needs a type: f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0 q5_1", a);
            i++;
            if (a[strlen(a) - 1] == 'k') opt.kv_type_k = c;
            else opt.kv_type_v = c;
        } else if (strcmp(a, "--ctx") == 0 || strcmp(a, "--batch") == 0 || strcmp(a, "--lora-rank") == 0) {
            if (i + 1 >= argc || !cli_parse_u64(argv[i + 1], &v))
                return cli_usage_error("estimate", "%s needs a positive integer", a);
            i++;
            if (strcmp(a, "--ctx") == 0) opt.ctx = v, ctx_given = true;
            else if (strcmp(a, "--batch") == 0) opt.batch = v;
            else if (v > 65536) return cli_usage_error("estimate", "--lora-rank %" PRIu64 " is too large", v);
            else opt.lora_rank = (uint32_t)v;
        } else if (strcmp(a, "--ngl") == 0 || strcmp(a, "-ngl") == 0 || strcmp(a, "--n-gpu-layers") == 0) {
            const char *val = i + 1 < argc ? argv[i + 1] : NULL;
            if (val && (strcmp(val, "all") == 0 || strcmp(val, "-1") == 0)) opt.n_gpu_layers = -1;
            else if (val && strcmp(val, "0") == 0) opt.n_gpu_layers = 0;
            else if (val && cli_parse_u64(val, &v) && v <= INT32_MAX) opt.n_gpu_layers = (int64_t)v;
            else return cli_usage_error("estimate", "%s needs a layer count (0 or more, or 'all')", a);
            opt.place = true;
            i++;
        } else if (strcmp(a, "--gpu") == 0 || strcmp(a, "--tensor-split") == 0 || strcmp(a, "-ts") == 0) {
            bool gpu = strcmp(a, "--gpu") == 0;
            char items[MQ_ESTIMATE_MAX_GPUS][32];
            int n = i + 1 < argc ? split_list(argv[i + 1], items) : -1;
            if (n < 0)
                return cli_usage_error("estimate", "%s needs 1 to %d comma-separated %s", a, MQ_ESTIMATE_MAX_GPUS,
                                       gpu ? "sizes (24GiB,16GiB)" : "ratios (3,1)");
            for (int k = 0; k < n; k++) {
                char *end;
                double r;
                if (gpu && !parse_size(items[k], &opt.gpu_bytes[k]))
                    return cli_usage_error("estimate", "--gpu: '%s' is not a memory size (24GiB, 16GB, 8000MiB)",
                                           items[k]);
                if (!gpu && (r = strtod(items[k], &end), *end || !(r >= 0 && r <= 1e30)))
                    return cli_usage_error("estimate", "%s: '%s' is not a ratio (a number, 0 or more)", a, items[k]);
                if (!gpu) opt.tensor_split[k] = (float)r;
            }
            if (gpu) n_sizes = n;
            else n_ratios = n;
            opt.place = true;
            i++;
        } else if (strcmp(a, "--fit") == 0) {
            opt.fit = opt.place = true;
        } else if (strcmp(a, "--lora") == 0) {
            if (i + 1 >= argc) return cli_usage_error("estimate", "--lora needs an adapter folder");
            lora_path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("estimate", "unknown option '%s'", a);
        } else if (path) {
            return cli_usage_error("estimate", "one PATH only");
        } else {
            path = a;
        }
    }
    if (!path) return cli_usage_error("estimate", "missing PATH");
    if (n_sizes && n_ratios && n_sizes != n_ratios)
        return cli_usage_error("estimate", "--tensor-split has %d ratios for %d --gpu devices", n_ratios, n_sizes);
    if (opt.fit && !n_sizes) return cli_usage_error("estimate", "--fit needs --gpu SIZE[,SIZE...] (the memory to fit)");
    opt.n_gpus = (uint32_t)(n_sizes > n_ratios ? n_sizes : n_ratios);
    struct mq_error err;
    mq_error_clear(&err);
    struct mq_model *m;
    if (lora_path) {
        if (mq_model_open(lora_path, &m, &err) != MQ_OK) return cli_fail(&err);
        if (!mq_model_lora(m)) {
            mq_model_free(m);
            return cli_usage_error("estimate", "--lora %s: not a LoRA adapter folder (no adapter_config.json)",
                                   lora_path);
        }
        opt.lora_rank = (uint32_t)mq_model_lora(m)->r;
        for (size_t i = 0; i < mq_model_n_tensors(m); i++) opt.lora_params += mq_tensor_numel(mq_model_tensor(m, i));
        mq_model_free(m);
    }
    if (mq_model_open(path, &m, &err) != MQ_OK) return cli_fail(&err);
    if (mq_model_lora(m)) {
        int rc = print_adapter(m, json);
        mq_model_free(m);
        return rc;
    }
    struct mq_estimate e;
    int rc;
    if (mq_estimate_model(m, &opt, &e, &err) != MQ_OK) {
        rc = cli_fail(&err);
    } else {
        for (size_t i = 0; i < mq_model_n_warnings(m); i++) fprintf(stderr, "modelq: warning: %s\n", mq_model_warning(m, i));
        warn_context(&e, ctx_given);
        rc = json ? print_json(m, &e) : (print_text(m, &e), EXIT_OK);
    }
    mq_model_free(m);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "modelq: error: cannot write to standard output\n");
        return EXIT_IO;
    }
    return rc;
}
