/*
** plan.h - private: the conversion plan and the ops a writer (formats/) plugs in with.
**
** The pipeline (src/convert*.c) builds one mq_plan_tensor per output tensor, asks the writer to
** name tensors and add metadata (prepare), applies the target's rules, asks the writer to lay
** the file out (layout: absolute offset of every tensor, header size, file size), runs the data
** through the codecs into those offsets, and finally asks the writer for the header bytes
** (header), which may carry checksums of the data.
*/
#ifndef MODELQ_PLAN_H
#define MODELQ_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/convert.h"
#include "modelq/meta.h"
#include "modelq/model.h"
#include "modelq/qstats.h"
#include "modelq/target.h"

enum mq_src_kind {
    MQ_SRC_FLOAT,     /* F32/F16/BF16 input elements (src_codec says which) */
    MQ_SRC_QUANT,     /* a GGUF block-quantized tensor modelq can dequantize (src_codec), or a
                         bitsandbytes weight (bnb set; read with mq_bnb_read_f32) */
    MQ_SRC_RAW,       /* bytes copied unchanged (int types, F64, kept quantized tensors) */
    MQ_SRC_GENERATED  /* float32 data computed by the writer (e.g. rope_freqs) */
};

struct mq_plan_tensor {
    char *name;                    /* output name (owned) */
    long src;                      /* input tensor index, -1 when generated */
    enum mq_src_kind kind;
    enum mq_codec src_codec;       /* FLOAT / QUANT sources */
    const struct mq_bnb_source *bnb; /* bitsandbytes source: never copied, always dequantized */
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];   /* output shape, outermost first */
    uint64_t numel, row_len, rows; /* rows = numel / row_len */
    bool convert;                  /* false: raw copy of the source bytes */
    enum mq_codec codec;           /* when convert */
    struct mq_codec_params params;
    enum mq_dtype raw_dtype;       /* raw copies: the element type (plain dtypes) */
    int32_t raw_ggml_type;         /* raw copies from GGUF: the ggml type, else -1 */
    uint64_t bytes;                /* output bytes of the tensor data */
    uint64_t offset;               /* absolute offset in the output file (layout) */
    const char *why;
    bool fell_back, overridden, quantized;
    uint32_t permute_heads;        /* >0: Llama Q/K row permutation with this many heads */
    bool conv1d;                   /* a GPT-2 Conv1D weight, stored [in, out] (writers may transpose) */
    bool transpose;                /* 2-D F32/F16/BF16 source read transposed: output row r = source
                                      column r (shape, row_len and rows are the output's) */
    float *generated;              /* MQ_SRC_GENERATED: numel floats (owned) */
    /* side data (NF4/FP4 absmax, INT8_ROW SCB: float32 per block / row), set by the writer:
     * side_offset > 0: each chunk's values are written there (absolute, little-endian);
     * side_keep: collected for the whole tensor and handed to writer->tensor_side at its end
     * (double quantization needs all of them). */
    uint64_t side_offset;
    bool side_keep;
    float *side_buf;               /* internal to the run */
    /* results */
    uint64_t xxh3;
    bool have_stats;
    struct mq_qstats stats;
};

struct mq_writer_ops;
struct mq_outfile;

struct mq_plan {
    const struct mq_model *model;
    const struct mq_convert_options *opt;
    enum mq_target target;
    struct mq_plan_tensor *t;
    size_t n, cap;
    struct mq_meta meta;           /* output metadata (writers that have any) */
    int file_type;                 /* llama_ftype for GGUF, -1 none */
    uint64_t data_start;           /* header bytes (layout) */
    uint64_t file_size;            /* total output bytes (layout) */
    const struct mq_writer_ops *writer;
    void *writer_state;
    size_t n_files;                /* folder writers: data files (shards) in the output folder */
    const char *const *file_names;
    const uint64_t *file_sizes;
    uint64_t side_bytes;           /* folder writers: at most this many bytes of small files (config, tokenizer) */
    bool split_set;                /* a split GGUF: file_names are the parts' paths, beside each other
                                      (not in a folder); written as one set (mq_outfile_create_set) */
    bool have_stats;               /* mq_plan_run with stats: over all quantized elements */
    struct mq_qstats total_stats;
};

struct mq_writer_ops {
    const char *name;              /* --format value: "gguf" */
    const char *ext;               /* output extension that selects it: ".gguf" */
    /* Does the container store this codec? (GGUF: ggml types only.) */
    bool (*stores_codec)(enum mq_codec c);
    /* Names tensors, adds generated tensors and metadata; runs before the type rules. */
    enum mq_status (*prepare)(struct mq_plan *p, struct mq_error *err);
    /* After the type rules: the file type, every t[i].offset, p->data_start and p->file_size. */
    enum mq_status (*layout)(struct mq_plan *p, struct mq_error *err);
    /* Tensors with side_keep: all n side values of tensor i, once its data is done (any thread). */
    enum mq_status (*tensor_side)(struct mq_plan *p, size_t i, const float *side, uint64_t n,
                                  struct mq_outfile *out, struct mq_error *err);
    /* After the data (t[i].xxh3 filled): headers, constant tensors, extra files. */
    enum mq_status (*finish)(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err);
    /* The output is a folder of data files (layout fills p->n_files / file_names / file_sizes). */
    bool folder;
    /* The writer checksums what it wrote itself (the run skips its per-tensor XXH3 pass). */
    bool own_checksums;
    void (*release)(struct mq_plan *p);
};

/* Writer registry (formats/registry.c): by --format name, or by the output path's extension. */
const struct mq_writer_ops *mq_writer_by_name(const char *name);
const struct mq_writer_ops *mq_writer_for_path(const char *path);
/* "gguf" ... for messages */
const char *mq_writer_names(void);

/* plan.c */
enum mq_status mq_plan_build(struct mq_plan *p, const struct mq_model *m, const struct mq_convert_options *o,
                             enum mq_target target, const struct mq_writer_ops *writer, struct mq_error *err);
void mq_plan_free(struct mq_plan *p);
/* Appends an output tensor (name copied); returns its index through *idx. */
enum mq_status mq_plan_add(struct mq_plan *p, const char *name, long src, struct mq_error *err);

/* convert_run.c: runs the data through the codecs; out NULL = dry run (nothing written). */
enum mq_status mq_plan_run(struct mq_plan *p, struct mq_outfile *out, unsigned threads, bool stats,
                           struct mq_error *err);

#endif /* MODELQ_PLAN_H */
