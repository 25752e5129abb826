/*
** modelq/model.h - a checkpoint opened for reading: its files, tensors, metadata and config.
**
** mq_model_open() accepts a .safetensors file, a model.safetensors.index.json, a Hugging Face
** model folder (model.safetensors or the index, plus config.json), a .gguf file, or a PyTorch
** checkpoint (pytorch_model.bin, the zip format of torch.save since 1.6, read without Python by a
** restricted unpickler) and its pytorch_model.bin.index.json. Opening reads
** and validates headers only; tensor data is reached later with mq_model_read(), a bounded
** pread at the tensor's offset (no mmap, no whole-file reads, any alignment).
**
** Shapes are stored outermost-first, as safetensors and PyTorch write them: a Linear weight is
** [out_features, in_features], so shape[ndim-1] is the row length.
*/
#ifndef MODELQ_MODEL_H
#define MODELQ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/dtype.h"
#include "modelq/error.h"
#include "modelq/meta.h"
#include "modelq/export.h"

#define MQ_MAX_DIMS 8

/* Where one stored safetensors entry of a bitsandbytes module lives. */
struct mq_bnb_part {
    uint32_t file;               /* index into mq_model.files */
    uint64_t offset;             /* absolute offset of the data in that file */
    uint64_t nbytes;
};

/*
** A bitsandbytes-quantized Linear weight (../shared/docs/bitsandbytes.md sections 4-5), seen as
** one logical tensor: formats/bnb_read.c replaces the module's stored entries (P.weight and its
** quant_state / absmax / quant_map / nested_* companions, or P.weight + P.SCB + P.weight_format)
** by a single mq_tensor "P.weight" with the original dtype and shape, whose file/offset/nbytes are
** those of the packed codes (U8 nibbles, or I8 for INT8_ROW) and whose `bnb` points here.
*/
struct mq_bnb_source {
    enum mq_codec codec;         /* MQ_CODEC_NF4, MQ_CODEC_FP4 or MQ_CODEC_INT8_ROW */
    uint32_t blocksize;          /* NF4/FP4: elements per absmax block (flat, row-major) */
    bool double_quant;           /* NF4/FP4: absmax stored as U8 codes + nested_absmax */
    float offset;                /* double quant: nested_offset, as float32 */
    uint64_t n_absmax;           /* NF4/FP4: ceil(numel / blocksize); INT8_ROW: rows */
    struct mq_bnb_part absmax;   /* NF4/FP4: F32[n_absmax], or U8 codes with double quant */
    struct mq_bnb_part nested_absmax; /* double quant: F32[ceil(n_absmax / 256)] */
    struct mq_bnb_part scb;      /* INT8_ROW: SCB, F32 per row */
    float nested_map[256];       /* double quant: nested_quant_map as stored (bnb decodes with it) */
    uint32_t n_stored;           /* safetensors entries the module had (weight included) */
    uint64_t stored_bytes;       /* their bytes in all (packed codes, side data, JSON blob) */
};

/*
** An FP8 weight (formats/fp8_read.c): a safetensors F8_E4M3 / F8_E5M2 tensor P.weight, with or
** without its block scales P.weight_scale_inv (F32 or BF16 [ceil(rows/block_rows),
** ceil(cols/block_cols)], or one scalar for the whole tensor), seen as ONE logical F32 tensor:
** its dtype is F32, nbytes = numel * 4, and mq_model_read() returns the dequantized values
** w = fp8 * scale_inv[r / block_rows][c / block_cols] as float32 little-endian. The scale tensor
** is no tensor of its own any more.
*/
struct mq_fp8_source {
    enum mq_dtype stored;        /* MQ_DTYPE_F8_E4M3 or MQ_DTYPE_F8_E5M2 */
    struct mq_bnb_part data;     /* the FP8 codes, numel bytes */
    bool has_scale;
    char *scale_name;            /* "P.weight_scale_inv" (owned), NULL without scales */
    enum mq_dtype scale_dtype;   /* F32 or BF16 */
    uint64_t scale_rows, scale_cols; /* the scale tensor's shape (1 x 1 for a scalar) */
    struct mq_bnb_part scale;    /* the scales, row-major */
    uint64_t block_rows, block_cols; /* elements of the weight per scale */
    uint64_t stored_bytes;       /* codes + scales */
};

/* A PyTorch tensor's view of its storage (src/tensor_view.h; private). */
struct mq_view;

struct mq_tensor {
    char *name;
    enum mq_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS]; /* outermost first; a scalar has ndim 0 */
    uint64_t numel;              /* product of shape (1 for a scalar) */
    uint64_t nbytes;             /* bytes of data in the file */
    uint32_t file;               /* index into mq_model.files */
    uint64_t offset;             /* absolute offset of the data in that file */
    bool from_gguf;              /* read from a GGUF file: ggml_type is meaningful */
    int32_t ggml_type;           /* GGUF inputs: the ggml type id (dtype is then the plain
                                    equivalent for F32/F16/BF16/I8..I64/F64, else U8) */
    struct mq_bnb_source *bnb;   /* bitsandbytes weight (owned by the model), else NULL: dtype,
                                    shape and numel are then the logical (dequantized) tensor's,
                                    nbytes/offset the packed codes' (read it with the pipeline's
                                    bitsandbytes reader, not as dtype elements) */
    struct mq_fp8_source *fp8;   /* FP8 weight (owned by the model), else NULL: see above */
    struct mq_view *view;        /* PyTorch inputs (owned by the model): storage, element offset and
                                    strides; mq_model_read() gathers a strided view and checks the
                                    storage's CRC-32 on first use. NULL for other formats. */
};

struct mq_file {
    char *path;          /* as opened (folder + shard name for shards) */
    int fd;
    uint64_t size;       /* file size at open */
    uint64_t data_start; /* first byte after the header */
    uint32_t gguf_version;   /* GGUF files: header version (2 or 3); 0 for other formats */
    uint32_t gguf_alignment; /* GGUF files: data alignment (general.alignment or 32); else 0 */
    uint64_t gguf_header_sum_at; /* GGUF files: offset of the UINT64 value of modelq.header_xxh3
                                    (what verify zeroes before hashing the header), 0 = no such key */
};

struct mq_kv {
    char *key;
    char *value;
};

struct cJSON; /* <cjson/cJSON.h> */

/* The fields of config.json modelq uses; 0 / "" when absent. */
struct mq_config {
    bool present;
    char *path;
    char model_type[64];
    char architecture[128];      /* architectures[0] */
    char torch_dtype[32];        /* "torch_dtype" or transformers v5 "dtype" */
    uint64_t hidden_size;
    uint64_t intermediate_size;
    uint64_t num_layers;         /* num_hidden_layers */
    uint64_t num_heads;          /* num_attention_heads */
    uint64_t num_kv_heads;       /* num_key_value_heads, default num_heads */
    uint64_t head_dim;           /* head_dim, default hidden_size / num_heads */
    uint64_t vocab_size;
    uint64_t max_position;       /* max_position_embeddings */
    int tie_word_embeddings;     /* -1 unknown, 0, 1 */
    uint64_t num_experts;        /* num_local_experts / num_experts (MoE), 0 = dense */
    uint64_t experts_used;       /* num_experts_per_tok (a GGUF's expert_used_count), 0 unknown */
    uint64_t head_dim_v;         /* V head size: a GGUF's attention.value_length, else head_dim */
    /* Sliding-window attention as llama.cpp runs the model (src/model/swa.h): the layers that only
     * see the last `sliding_window` tokens, and get llama.cpp's smaller SWA KV cache. */
    uint64_t sliding_window;     /* tokens a sliding layer attends to (llama.cpp's n_swa); 0 = none */
    uint64_t swa_layers;         /* how many layers slide (0 = every layer has full attention) */
    uint32_t swa_period;         /* they are all but the last of every swa_period layers; 0 = listed
                                    per layer (config.json layer_types, a GGUF's pattern array) */
    struct cJSON *json;          /* config.json as parsed once (cJSON tree, owned), NULL when absent */
};

/*
** A PEFT LoRA adapter folder: adapter_config.json beside adapter_model.safetensors (or .bin), whose
** tensors are "base_model.model.<module>.lora_A.weight" [r, in] and "...lora_B.weight" [out, r];
** the update of <module>.weight is scale * B x A with scale alpha / r (rsLoRA: alpha / sqrt(r)).
** The fields modelq uses, checked when the folder is opened (src/model/lora_config.c).
*/
struct mq_lora_config {
    char *path;                  /* adapter_config.json */
    uint64_t r;                  /* "r": the rank ("rank_pattern" may give some modules another) */
    double alpha;                /* "lora_alpha" (PEFT's default 8 when absent) */
    bool use_rslora;             /* "use_rslora": scale alpha / sqrt(r) instead of alpha / r */
    bool fan_in_fan_out;         /* "fan_in_fan_out": the base stores (in, out) weights (GPT-2 Conv1D) */
    bool rank_pattern;           /* a non-empty "rank_pattern" (per-module ranks) */
    bool alpha_pattern;          /* a non-empty "alpha_pattern" (per-module alphas) */
    char base_model[256];        /* "base_model_name_or_path", "" when absent */
    char targets[256];           /* "target_modules": the names joined by ", ", or the regex */
};

struct mq_model {
    const char *format;          /* "safetensors" or "gguf" (static string) */
    char *input_path;
    struct mq_file *files;
    size_t n_files;
    struct mq_tensor *tensors;   /* in file order: shard order, then data offset */
    size_t n_tensors;
    struct mq_kv *metadata;      /* __metadata__ (first shard) or GGUF key/values as text */
    size_t n_metadata;
    struct mq_meta meta;         /* GGUF inputs: the typed key/values, in file order */
    struct mq_config config;
    char **warnings;             /* non-fatal findings (index/total_size mismatches ...) */
    size_t n_warnings;
    uint64_t header_bytes_read;  /* bytes read from input files while opening */
    struct mq_lora_config *lora; /* a LoRA adapter folder (owned), else NULL: m->config is then the
                                    base model's, loaded by the caller (mq_model_load_base_config) */
    uint32_t split_parts;        /* a split GGUF (gguf-split convention): its N parts are files
                                    0..N-1, part 1 first; 0 = not a split model */
    /* internal: allocated capacities of the arrays above */
    size_t cap_files, cap_tensors, cap_metadata, cap_warnings;
};

/*
** Opens `path` (see above). On success *out owns the model: free it with mq_model_free().
** On failure *out is NULL and `err` names the file, the tensor where there is one, and the check.
*/
MQ_API enum mq_status mq_model_open(const char *path, struct mq_model **out, struct mq_error *err);

/*
** An adapter (m->lora) has no config.json of its own: loads the base model's into m->config from
** `base` (a model folder, its config.json, or an org/name[@revision] in the local Hugging Face
** cache), or, with `base` NULL, from the adapter's base_model_name_or_path found in that cache.
** Errors say where modelq looked.
*/
MQ_API enum mq_status mq_model_load_base_config(struct mq_model *m, const char *base, struct mq_error *err);

/* Closes the files and frees everything. Accepts NULL. */
MQ_API void mq_model_free(struct mq_model *m);

/* Index of the tensor called `name`, or -1. */
MQ_API long mq_model_find(const struct mq_model *m, const char *name);

/* Reads `len` bytes of tensor `t`'s data starting `offset` bytes into it: the bytes of the tensor
** laid out contiguously, row-major, even when the file stores a strided PyTorch view, and the
** float32 values of an FP8 weight. */
MQ_API enum mq_status mq_model_read(const struct mq_model *m, size_t t, uint64_t offset, void *buf,
                             size_t len, struct mq_error *err);

/* llama.cpp's name of a ggml type id ("F32", "Q8_0", ...); NULL for unknown or removed ids. */
MQ_API const char *mq_ggml_type_name(int32_t id);

/* Row length (innermost dimension; 1 for scalars) and row count of a tensor. */
MQ_API uint64_t mq_tensor_row_len(const struct mq_tensor *t);
MQ_API uint64_t mq_tensor_rows(const struct mq_tensor *t);

#endif /* MODELQ_MODEL_H */
