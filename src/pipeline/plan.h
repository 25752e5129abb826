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
#include "modelq/plugin.h"
#include "model_impl.h"
#include "modelq/qstats.h"
#include "modelq/target.h"

/*
** Where an output tensor's elements come from and how they are read: the reader's op. Every
** source but a generated one is a list of segments of input tensors, concatenated in order
** (one segment for an input taken as it is, n_expert segments for a stacked expert tensor, a row
** range of one input for a split); the plan tensor's shape is that of the result.
*/
enum mq_src_kind {
    MQ_SRC_FLOAT,     /* F32/F16/BF16 input elements (src_codec says which) */
    MQ_SRC_QUANT,     /* a GGUF block-quantized tensor modelq can dequantize (src_codec's kernel) */
    MQ_SRC_FILTER,    /* elements only the reader can decode (bitsandbytes: `filter`, any element
                         range as f32; src_codec the stored codec, for messages); never copied */
    MQ_SRC_RAW,       /* bytes copied unchanged (int types, F64, kept quantized tensors) */
    MQ_SRC_GENERATED  /* float32 data computed by the writer (e.g. rope_freqs) */
};

/* The reader's read-as-f32 for MQ_SRC_FILTER: elements [first, first + n) of input tensor t. */
typedef enum mq_status (*mq_read_f32_fn)(const struct mq_model *m, size_t t, uint64_t first, size_t n, float *dst,
                                         struct mq_error *err);

/* Elements [first, first + n) of input tensor `tensor`, stored as the bytes [off, off + bytes) of
** its data: whole rows (whole blocks of a block-quantized type). */
struct mq_src_seg {
    size_t tensor;
    uint64_t first, n;
    uint64_t off, bytes;
};

/*
** Transforms: named per-tensor operations (contributed by the architecture table and the
** writers with mq_plan_add_xform), applied in one place, src/xform.c, to every chunk, in list
** order. Each states what it needs from chunking (mq_xform_whole_rows, mq_xform_row_group).
*/
enum mq_xform_kind {
    MQ_XFORM_PERMUTE_HEADS, /* Llama Q/K (convert_hf_to_gguf LlamaModel.permute): `n` heads; within
                               each head of hd = rows / n rows, output row 2i+j is source row
                               j*hd/2 + i. A 1-D tensor (a bias) permutes its elements as rows.
                               Needs whole head groups of rows in a chunk. */
    MQ_XFORM_TRANSPOSE,     /* a 2-D F32/F16/BF16 source [a, b] read as [b, a]: output row r is
                               source column r (the shape becomes [b, a]). Needs whole rows; one
                               segment; done by the loader, before the other transforms. */
    MQ_XFORM_ADD_CONST,     /* every element + `c`, a float32 addition (Gemma's RMSNorm w + 1) */
    MQ_XFORM_ADD_LORA,      /* + the LoRA update `lora` (lora_merge.h), in the base's row order:
                               first in the list */
    MQ_XFORM_COUNT
};

struct mq_lora_delta;

struct mq_xform {
    enum mq_xform_kind kind;
    uint64_t n;                    /* PERMUTE_HEADS: heads */
    float c;                       /* ADD_CONST: the constant */
    const struct mq_lora_delta *lora; /* ADD_LORA: owned by the plan (mq_plan.lora) */
};

#define MQ_MAX_XFORMS 4

struct mq_plan_tensor {
    char *name;                    /* output name (owned) */
    enum mq_src_kind kind;
    enum mq_codec src_codec;       /* FLOAT / QUANT / FILTER sources */
    mq_read_f32_fn filter;         /* FILTER sources */
    size_t nseg;                   /* 0 when generated */
    struct mq_src_seg seg_one;     /* the segment when nseg == 1 (no pointer to it: tensors move) */
    struct mq_src_seg *segs;       /* the segments when nseg > 1 (owned) */
    size_t nxf;
    struct mq_xform xf[MQ_MAX_XFORMS];
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
    float *generated;              /* MQ_SRC_GENERATED: numel floats (owned) */
    /* --imatrix (imatrix_plan.c): the importances of the tensor's columns, row_len floats per
     * matrix (a 3-D expert tensor has one matrix per expert, imatrix_mat_rows rows each), owned
     * by the mq_imatrix; NULL = quantized without. Rows are then kept whole. */
    const float *imatrix;
    uint64_t imatrix_mat_rows;
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

/* Segment k of t's source. */
static inline const struct mq_src_seg *mq_plan_seg(const struct mq_plan_tensor *t, size_t k)
{
    return t->nseg > 1 ? &t->segs[k] : &t->seg_one;
}

struct mq_writer_ops;
struct mq_outfile;
struct mq_plan;

/*
** imatrix_plan.c: with opt->imatrix, points every tensor that a weighted codec quantizes at its
** importances (matched by output name, shapes checked), warns about those it lacks, refuses an
** imatrix of another model, and records the quantize.imatrix.* keys. Runs after the types are
** chosen, before the layout.
*/
enum mq_status mq_plan_attach_imatrix(struct mq_plan *p, struct mq_error *err);

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
    const struct mq_convert_tap *tap; /* watches tensor t[tap_tensor] (convert.h); NULL = none */
    size_t tap_tensor;
    struct mq_lora_state *lora;    /* --lora adapters merged while converting (lora_merge.c), or NULL */
};

/* struct mq_writer_ops, a writer's ops table: modelq/plugin.h (the plug-in API). */


/* plan.c */
enum mq_status mq_plan_build(struct mq_plan *p, const struct mq_model *m, const struct mq_convert_options *o,
                             enum mq_target target, const struct mq_writer_ops *writer, struct mq_error *err);
void mq_plan_free(struct mq_plan *p);
/* mq_plan_add, mq_plan_add_stacked, mq_plan_add_split: the plug-in API (modelq/plugin.h). */
/* Adds transform `x` to tensor t (checks what it needs: shape, source type; at most
** MQ_MAX_XFORMS). PERMUTE_HEADS of a 1-D tensor and TRANSPOSE change t's rows / shape. */
enum mq_status mq_plan_add_xform(struct mq_plan_tensor *t, struct mq_xform x, struct mq_error *err);
/* Frees what tensor t owns (a tensor dropped from the plan). */
void mq_plan_tensor_release(struct mq_plan_tensor *t);
/* The input tensor a tensor comes from (its first segment), or NULL when generated. */
const struct mq_tensor *mq_plan_src_tensor(const struct mq_plan *p, const struct mq_plan_tensor *t);
/* Stored input bytes a tensor reads (bitsandbytes: the packed codes), for reports and progress. */
uint64_t mq_plan_src_bytes(const struct mq_plan *p, const struct mq_plan_tensor *t);
/* The source type's name: the dtype, the stored codec ("q4_K", "nf4"), or "F32" when generated. */
const char *mq_plan_src_type_name(const struct mq_plan *p, const struct mq_plan_tensor *t);

/* xform.c: what the transforms of t need from chunking, and their application. */
bool mq_xform_whole_rows(const struct mq_plan_tensor *t);       /* no chunk cuts a row */
uint64_t mq_xform_row_group(const struct mq_plan_tensor *t);    /* rows per chunk: a multiple (0: any) */
bool mq_xform_transposed(const struct mq_plan_tensor *t);       /* the loader reads columns */
/* Applies the element transforms to the f32 values of output rows [row0, row0 + nrows) (or, for
** a piece of a row, elements [first, first + n)), in list order; tmp holds n floats. */
void mq_xform_apply(const struct mq_plan_tensor *t, uint64_t row0, uint64_t nrows, uint64_t first, size_t n,
                    float *v, float *tmp);
/* Source access through the segments: stored bytes [off, off + len) of the concatenation, and
** (FILTER sources) elements [first, first + n) as f32. */
enum mq_status mq_src_read_bytes(const struct mq_plan *p, const struct mq_plan_tensor *t, uint64_t off, void *buf,
                                 size_t len, struct mq_error *err);
enum mq_status mq_src_read_filtered(const struct mq_plan *p, const struct mq_plan_tensor *t, uint64_t first, size_t n,
                                    float *dst, struct mq_error *err);

/* convert_run.c: runs the data through the codecs; out NULL = dry run (nothing written). With
** p->tap, stats must be on (the watched tensor's chunks are dequantized). */
enum mq_status mq_plan_run(struct mq_plan *p, struct mq_outfile *out, unsigned threads, bool stats,
                           struct mq_error *err);

#endif /* MODELQ_PLAN_H */
