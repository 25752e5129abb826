/*
** model_impl.h - private: the full definitions of struct mq_model and struct mq_tensor, which
** include/modelq/model.h declares opaque.
**
** The library (src/model, src/pipeline, src/api, src/report, formats/) and white-box tests include
** this header; the CLI and library users see only the accessors of modelq/model.h
** (mq_model_tensor(), mq_tensor_name() ...). The fields are format-specific (from_gguf, ggml_type,
** bnb, fp8, view) and change with the readers, which is why they are not public.
*/
#ifndef MODELQ_MODEL_IMPL_H
#define MODELQ_MODEL_IMPL_H

#include "modelq/model.h"

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

#endif /* MODELQ_MODEL_IMPL_H */
