/*
** modelq/estimate.h - memory for *this* model, from headers and config.json only.
**
** Weights per target come from mq_target_plan_tensor() (the same rules `convert` uses). With a
** config.json, also:
**   KV cache   as llama.cpp allocates it: cells = batch x pad256(ctx) (each of `batch` sequences gets
**              ctx tokens, rounded up to a multiple of 256 cells as llama.cpp pads n_ctx per
**              sequence); a model with sliding-window layers (Gemma 2/3: config.sliding_window,
**              swa_layers) keeps those in a second cache of swa_cells = batch x pad256(min(pad256(ctx),
**              window + ubatch)) cells (llama_kv_cache_iswa: the window plus one micro-batch), or
**              as many as the full layers with swa_full (llama.cpp's --swa-full);
**              bytes = (full layers x cells + sliding layers x swa_cells) x (row(type_k, kv_heads x
**              head_dim) + row(type_v, kv_heads x head_dim_v)), row(type, n) = n / block x block
**              bytes (f16: 2n); llama.cpp needs head_dim (head_dim_v) to fill type_k's (type_v's) blocks
**   overhead   = runtime reserve (default 512 MiB: CUDA context, allocator slack)
**                + compute buffer 4 bytes x ub x max(vocab + 2E, 3 ff + 3E [+ n_kv / 2 with -fa],
**                  attention), ub = min(ctx x batch, ubatch), n_kv = the cache's cells, attention =
**                  (heads + 1) x n_kv + 5E + 2 kv_dim, or with flash attention 5E + 4 kv_dim + n_kv / 2
**                (llama.cpp's CPU compute buffer: the logits stage, the FFN stage or one layer's
**                attention scores and mask; fitted to what llama.cpp reports, within 10%)
**   inference  = weights + KV cache + overhead
**   placement  (--ngl, --gpu, --tensor-split; src/api/estimate_place.c) as the pinned llama.cpp's
**              load_tensors places layers (split mode "layer"): of the n_layer repeating layers and
**              the output layer (output_norm, output; counted as layer n_layer), the last ngl go to
**              the GPUs: layer il (0..n_layer) is offloaded when il >= i0 = max(n_layer + 1 - ngl, 0);
**              ngl = n_layer + 1 offloads everything, ngl = 1 the output layer only. Token embeddings
**              always stay on the host; a model without an output tensor gets token_embd duplicated
**              for the output layer. Offloaded layer il goes to the first device k whose cumulative
**              split point exceeds (il - i0) / min(ngl, n_layer + 1) (float arithmetic, as
**              llama.cpp), the points being the running sums of --tensor-split ratios (else of the
**              devices' sizes: llama.cpp's free memory) over their total. Each tensor takes its size
**              rounded up to 32 bytes (ggml's buffer alignment). A layer's KV cache is on its device
**              (offload_kqv), its cells as above (sliding layers the SWA cells). Compute buffers: a
**              device with a repeating layer 4 x ub x max(FFN, attention stages) (and the output
**              stage if it holds the output layer), with the output layer only 4 x ub x (vocab + E);
**              the host the same when it holds a layer, else 4 x ub x (E + vocab + mask).
**   training   (activations NOT counted; they depend on sequence length and checkpointing):
**     full fine-tune, mixed-precision AdamW: 16 bytes/param (16-bit weights 2 + grads 2,
**       fp32 master 4 + Adam m 4 + v 4)
**     LoRA rank r on every linear layer: 16-bit base weights + 16 bytes x r x (in + out) per layer
**     QLoRA: NF4 + double-quant base weights + the same adapters
*/
#ifndef MODELQ_ESTIMATE_H
#define MODELQ_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/model.h"
#include "modelq/target.h"
#include "modelq/export.h"

#define MQ_ESTIMATE_DEFAULT_CTX 4096
#define MQ_ESTIMATE_DEFAULT_LORA_RANK 16
#define MQ_ESTIMATE_DEFAULT_RESERVE (512ull << 20)
#define MQ_ESTIMATE_UBATCH 512
#define MQ_TRAIN_BYTES_PER_PARAM 16
#define MQ_ESTIMATE_MAX_GPUS 16 /* llama.cpp's LLAMA_MAX_DEVICES */

/*
** Options: mq_estimate_options_init(&o) sets the defaults and o.struct_size (the struct's size as
** this header defines it); fields are only appended (after reserve_bytes), with the same rules as
** struct mq_convert_options (modelq/convert.h): mq_estimate_model() fails with MQ_E_USAGE
** ("options-size") for options not set up by mq_estimate_options_init() or carrying a field this
** library does not know. struct mq_estimate (an output the caller allocates) embeds a copy of the
** options and is therefore NOT safe to grow this way: it changes with the library's version.
*/
struct mq_estimate_options {
    size_t struct_size;      /* set by mq_estimate_options_init(); do not change */
    uint64_t ctx;            /* tokens of context (default 4096) */
    uint64_t batch;          /* sequences (default 1) */
    enum mq_codec kv_type_k; /* KV cache types (llama.cpp's -ctk / -ctv): f32 f16 bf16 q8_0 q4_0 q4_1 */
    enum mq_codec kv_type_v; /* iq4_nl q5_0 q5_1; default f16 */
    bool flash_attn;         /* llama.cpp's -fa: a quantized V cache needs it */
    uint64_t ubatch;         /* llama.cpp's -ub, tokens per micro-batch (default 512; 0 = default) */
    bool swa_full;           /* llama.cpp's --swa-full: sliding layers get a full-size cache */
    uint32_t lora_rank;      /* default 16 */
    uint64_t lora_params;    /* a real adapter's parameters (estimate --lora ADAPTER: its rank and
                                targets); 0 = lora_rank on every linear layer */
    uint64_t reserve_bytes;  /* fixed runtime reserve (default 512 MiB; per GPU in placement) */
    /* placement (see above) */
    bool place;              /* asked for (--ngl, --gpu, --tensor-split, --fit) */
    int64_t n_gpu_layers;    /* llama.cpp's -ngl: the last N of the n_layer + 1 layers (output included);
                                above n_layer + 1 (or negative, llama.cpp's -1 "all") = all */
    uint32_t n_gpus;         /* devices: --gpu sizes and/or --tensor-split ratios */
    uint64_t gpu_bytes[MQ_ESTIMATE_MAX_GPUS];   /* --gpu: each device's memory, 0 = not given */
    float tensor_split[MQ_ESTIMATE_MAX_GPUS];   /* --tensor-split ratios; all 0 = by gpu_bytes */
    bool fit;                /* --fit: per row the largest -ngl and context that fit every device */
};

/* Where one row's model goes (with placement). */
struct mq_estimate_place {
    uint64_t gpu_weights[MQ_ESTIMATE_MAX_GPUS];
    uint64_t host_weights;
    uint64_t gpu_total[MQ_ESTIMATE_MAX_GPUS];   /* weights + KV + compute + reserve */
    uint64_t host_total;                        /* host weights + KV + compute */
    bool fits;                                  /* every device with a known size holds its total */
    int64_t fit_ngl;                            /* --fit: largest -ngl at opt.ctx that fits, -1 none */
    uint64_t fit_ctx;                           /* --fit: largest context (multiple of 256, at most
                                                   max(trained, --ctx)) at opt's -ngl that fits, 0 none */
};

struct mq_estimate_row {
    enum mq_target target;
    uint64_t bytes;             /* weights as the target stores them */
    uint64_t quantized_params;  /* parameters the target quantizes */
    uint64_t kept_params;       /* parameters left unquantized (source dtype, F32/F16 per rules) */
    uint64_t n_fallback;        /* tensors that fell back to another type */
    double bpw;                 /* bytes x 8 / all parameters: scales and kept tensors included */
    uint64_t inference_bytes;   /* weights + KV + overhead (0 without config) */
    struct mq_estimate_place place; /* with placement */
};

struct mq_estimate {
    uint64_t n_tensors;
    uint64_t params;            /* sum of element counts */
    uint64_t source_bytes;      /* tensor bytes as stored */
    struct mq_estimate_row rows[MQ_ESTIMATE_ROWS];
    bool have_config;
    struct mq_estimate_options opt;
    uint64_t kv_per_token;      /* bytes of K+V per token (cell), all layers */
    uint64_t kv_cells;          /* cells llama.cpp allocates: batch x pad256(ctx) (per full-attention layer) */
    uint64_t kv_swa_cells;      /* per sliding-window layer (0 without such layers; see above) */
    uint64_t kv_bytes;          /* both caches */
    uint64_t compute_bytes;
    uint64_t overhead_bytes;    /* reserve + compute */
    uint64_t linear_params;     /* parameters in linear layers (LoRA targets) */
    uint64_t linear_layers;
    uint64_t lora_params;
    uint64_t train_full_bytes;
    uint64_t train_lora_bytes;
    uint64_t train_qlora_bytes;
    uint64_t expert_params;     /* parameters in MoE expert tensors (HF "*.experts.N.*", GGUF "*_exps*") */
    uint64_t active_params;     /* parameters used per token: all but the experts, plus experts_used /
                                   num_experts of the experts' (MoE with both known; else = params) */
    uint64_t trained_ctx;       /* the context the model was trained for (max_position_embeddings,
                                   a GGUF's context_length), 0 unknown */
    char rope_scaling[32];      /* configured RoPE scaling type ("linear", "yarn", "llama3"), "" none */
    double rope_factor;         /* its factor, 0 when none */
    /* placement (opt.place, with a config) */
    bool placed;
    int64_t ngl;                /* opt.n_gpu_layers capped at n_layer + 1 */
    int64_t gpu_first[MQ_ESTIMATE_MAX_GPUS], gpu_layers[MQ_ESTIMATE_MAX_GPUS]; /* repeating layers
                                   [first, first + n) on each GPU (contiguous; n = 0: none) */
    int output_gpu;             /* the output layer's GPU, -1 host */
    bool tied_output;           /* no output tensor: the output layer holds a copy of token_embd */
    uint64_t gpu_kv[MQ_ESTIMATE_MAX_GPUS], host_kv;
    uint64_t gpu_compute[MQ_ESTIMATE_MAX_GPUS], host_compute;
};

/* Defaults in the first struct_size bytes of *o and o->struct_size = struct_size; use the macro. */
MQ_API void mq_estimate_options_init_sized(struct mq_estimate_options *o, size_t struct_size);
#define mq_estimate_options_init(o) mq_estimate_options_init_sized((o), sizeof *(o))
/* The earlier name of mq_estimate_options_init (source compatible). */
#define mq_estimate_options_default(o) mq_estimate_options_init(o)

/* The row of target t (one with an estimate_row in the target table), or NULL. */
MQ_API const struct mq_estimate_row *mq_estimate_row_of(const struct mq_estimate *e, enum mq_target t);

/* Fills `out` from the model's headers and config. Reads no tensor data. A KV cache type llama.cpp
** cannot use (quantized V without flash attention, a row that does not fill the type's blocks,
** a type that is not a KV type) is MQ_E_USAGE naming it. */
MQ_API enum mq_status mq_estimate_model(const struct mq_model *m, const struct mq_estimate_options *opt,
                                 struct mq_estimate *out, struct mq_error *err);

/* llama.cpp's layer split: the GPU of layer il (0..n_layer, n_layer = output) with ngl layers
** offloaded over opt's devices, or -1 for the host. */
MQ_API int mq_estimate_layer_gpu(const struct mq_estimate_options *opt, uint64_t n_layer, int64_t ngl, uint64_t il);

#endif /* MODELQ_ESTIMATE_H */
