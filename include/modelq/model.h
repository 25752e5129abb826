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
    struct cJSON *json;          /* config.json as parsed once (cJSON tree owned by the model; read-only:
                                    a program that links cJSON may read any key), NULL when absent */
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

/*
** The model and its tensors are opaque: read them with the accessors below. What they return
** points into the model (valid until mq_model_free()); nothing returned is freed by the caller.
**
** Growth: struct mq_config and struct mq_lora_config are allocated by the library and reached only
** through the const pointers below, so new fields are appended at their end and a program built
** against an older header keeps working. The *_info structs a caller passes in are filled whole
** (every field, 0 when not applicable); their layout changes only with the library's major version.
*/
struct mq_model;
struct mq_tensor;

/* ---- the model ---- */

/* "safetensors", "gguf" or "pytorch" (static string). */
MQ_API const char *mq_model_format(const struct mq_model *m);
/* The path given to mq_model_open(). */
MQ_API const char *mq_model_input_path(const struct mq_model *m);
/* Tensors in file order (shard order, then data offset); bitsandbytes and FP8 modules are one
** logical tensor each (see mq_tensor_bnb_info / mq_tensor_fp8_info). */
MQ_API size_t mq_model_n_tensors(const struct mq_model *m);
/* Tensor i, or NULL when i >= mq_model_n_tensors(m). */
MQ_API const struct mq_tensor *mq_model_tensor(const struct mq_model *m, size_t i);

/* One input file. */
struct mq_file_info {
    const char *path;            /* as opened (folder + shard name for shards) */
    uint64_t size;               /* file size at open */
    uint64_t header_bytes;       /* first byte after the header (safetensors header, GGUF tensor infos) */
    uint32_t gguf_version;       /* GGUF files: header version (2 or 3); else 0 */
    uint32_t gguf_alignment;     /* GGUF files: data alignment (general.alignment or 32); else 0 */
};
MQ_API size_t mq_model_n_files(const struct mq_model *m);
/* Fills *out for file i; false (and *out zeroed) when i >= mq_model_n_files(m). */
MQ_API bool mq_model_file_info(const struct mq_model *m, size_t i, struct mq_file_info *out);
/* A split GGUF (gguf-split convention): its N parts are files 0..N-1, part 1 first; 0 otherwise. */
MQ_API uint32_t mq_model_split_parts(const struct mq_model *m);
/* Bytes read from the input files while opening (headers only). */
MQ_API uint64_t mq_model_header_bytes_read(const struct mq_model *m);

/* Metadata as text: safetensors __metadata__ (first shard) or a GGUF's key/values. */
MQ_API size_t mq_model_n_metadata(const struct mq_model *m);
/* Key and value of entry i (either pointer may be NULL); false when i is past the end. */
MQ_API bool mq_model_metadata(const struct mq_model *m, size_t i, const char **key, const char **value);
/* GGUF inputs: the typed key/values in file order (empty for other formats). */
MQ_API const struct mq_meta *mq_model_meta(const struct mq_model *m);

/* config.json's fields (never NULL; ->present says whether there was one). For a LoRA adapter it
** is the base model's, once mq_model_load_base_config() has loaded it. */
MQ_API const struct mq_config *mq_model_config(const struct mq_model *m);
/* A LoRA adapter folder's adapter_config.json, or NULL when the model is no adapter. */
MQ_API const struct mq_lora_config *mq_model_lora(const struct mq_model *m);

/* Non-fatal findings while opening (index/total_size mismatches ...), one line each. */
MQ_API size_t mq_model_n_warnings(const struct mq_model *m);
/* Warning i, or NULL past the end. */
MQ_API const char *mq_model_warning(const struct mq_model *m, size_t i);

/* ---- one tensor ---- */

MQ_API const char *mq_tensor_name(const struct mq_tensor *t);
/* The logical element type: the dequantized type of a bitsandbytes weight, F32 for an FP8 weight,
** the plain equivalent of a GGUF F32/F16/BF16/I8..I64/F64 tensor and U8 for other GGUF types. */
MQ_API enum mq_dtype mq_tensor_dtype(const struct mq_tensor *t);
/* Dimensions (0 for a scalar, at most MQ_MAX_DIMS) and the shape, outermost first: shape[ndim-1]
** is the row length. The array has mq_tensor_ndim(t) entries. */
MQ_API uint32_t mq_tensor_ndim(const struct mq_tensor *t);
MQ_API const uint64_t *mq_tensor_shape(const struct mq_tensor *t);
/* Elements (product of the shape, 1 for a scalar). */
MQ_API uint64_t mq_tensor_numel(const struct mq_tensor *t);
/* Bytes mq_model_read() serves for the tensor (the packed codes of a bitsandbytes weight). */
MQ_API uint64_t mq_tensor_nbytes(const struct mq_tensor *t);
/* The input file (index for mq_model_file_info) holding its data. */
MQ_API size_t mq_tensor_file(const struct mq_tensor *t);
/* Absolute offset of its data in that file (a bitsandbytes weight: of the packed codes; a PyTorch
** view: of its storage). */
MQ_API uint64_t mq_tensor_offset(const struct mq_tensor *t);
/* The ggml type id as stored in a GGUF input (mq_ggml_type_name() names it); -1 when the tensor
** was not read from a GGUF. */
MQ_API int32_t mq_tensor_ggml_type(const struct mq_tensor *t);
/* Type and bytes as stored: an FP8 weight's F8 dtype and its codes + scales, a bitsandbytes
** module's entries in all (codes, side data, JSON blob); else mq_tensor_dtype / mq_tensor_nbytes. */
MQ_API enum mq_dtype mq_tensor_stored_dtype(const struct mq_tensor *t);
MQ_API uint64_t mq_tensor_stored_bytes(const struct mq_tensor *t);

/* A bitsandbytes-quantized Linear weight, as stored. */
struct mq_bnb_info {
    enum mq_codec codec;         /* MQ_CODEC_NF4, MQ_CODEC_FP4 or MQ_CODEC_INT8_ROW */
    uint32_t blocksize;          /* NF4/FP4: elements per absmax block; 0 for INT8_ROW */
    bool double_quant;           /* NF4/FP4: absmax stored as U8 codes + nested_absmax */
    uint32_t n_stored;           /* safetensors entries the module had (weight included) */
    uint64_t packed_bytes;       /* the packed codes (U8 nibbles, or I8 for INT8_ROW) */
    uint64_t stored_bytes;       /* all its entries' bytes (codes, side data, JSON blob) */
};
/* Fills *out and returns true for a bitsandbytes weight; false (and *out zeroed) otherwise. */
MQ_API bool mq_tensor_bnb_info(const struct mq_tensor *t, struct mq_bnb_info *out);

/* An FP8 weight, as stored (it reads as F32: w = fp8 * scale_inv of its block). */
struct mq_fp8_info {
    enum mq_dtype stored;        /* MQ_DTYPE_F8_E4M3 or MQ_DTYPE_F8_E5M2 */
    bool has_scale;
    const char *scale_name;      /* "P.weight_scale_inv", NULL without scales */
    enum mq_dtype scale_dtype;   /* F32 or BF16 */
    uint64_t scale_rows, scale_cols; /* the scale tensor's shape (1 x 1 for a scalar) */
    uint64_t block_rows, block_cols; /* elements of the weight per scale */
    uint64_t stored_bytes;       /* codes + scales */
};
/* Fills *out and returns true for an FP8 weight; false (and *out zeroed) otherwise. */
MQ_API bool mq_tensor_fp8_info(const struct mq_tensor *t, struct mq_fp8_info *out);

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
