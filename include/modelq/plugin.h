/*
** modelq/plugin.h - what an output writer (a plug-in: formats/bnb_out.c, formats/gguf_write.c)
** needs from the conversion pipeline: its ops table, the plan seen through accessors, the output
** file that appears complete or not at all, and the names of modelq's checksum records.
**
** How a conversion drives a writer (src/api/convert.c, src/pipeline/):
**   1. the pipeline plans one output tensor per input tensor, then calls prepare() (the writer may
**      keep its state with mq_plan_set_writer_state);
**   2. the target's rules give every tensor its codec; layout() then places the tensors
**      (mq_plan_tensor_set_offset, side data with mq_plan_tensor_set_side) and states the files
**      and sizes (mq_plan_set_files, mq_plan_set_sizes, mq_plan_set_side_bytes);
**   3. the pipeline writes every tensor's bytes at its offset (tensor_side() gets the side values
**      of tensors that asked to keep them);
**   4. finish() writes headers, constant tensors and extra files, through the mq_outfile the
**      pipeline created from the layout; release() frees the writer's state, also after errors.
** The plan is opaque: writers read it through mq_plan_tensor_info() and change it only through
** the setters below. Everything a writer reads points into the plan (valid until it is freed).
**
** Ownership of mq_outfile: the pipeline creates, commits and aborts the output of a conversion;
** a writer that writes a file of its own (gguf_write.c's header-only file) uses
** mq_outfile_create / mq_outfile_commit / mq_outfile_abort itself.
*/
#ifndef MODELQ_PLUGIN_H
#define MODELQ_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/convert.h"
#include "modelq/dtype.h"
#include "modelq/error.h"
#include "modelq/export.h"
#include "modelq/meta.h"
#include "modelq/model.h"
#include "modelq/target.h"

/* ---- checksum records (what each covers: src/pipeline/checksums.h) ---- */

#define MQ_CHECKSUM_TENSORS_KEY "modelq.tensor_xxh3"
#define MQ_CHECKSUM_HEADER_KEY "modelq.header_xxh3"
#define MQ_CHECKSUM_FILES_KEY "modelq.files_xxh3"

/* A safetensors shard's header begins with exactly this, so the 16 hex digits of its header
** checksum are at file offset MQ_ST_HEADER_SUM_AT (after the u64 length prefix). */
#define MQ_ST_HEADER_SUM_PREFIX "{\"__metadata__\":{\"" MQ_CHECKSUM_HEADER_KEY "\":\""
#define MQ_ST_HEADER_SUM_AT (8u + sizeof MQ_ST_HEADER_SUM_PREFIX - 1u)
#define MQ_ST_HEADER_SUM_DIGITS 16u

/* ---- the output file: complete or not at all ---- */

/*
** Data goes to a temporary file beside the output (".NAME.modelq-tmp-PID"); commit = fsync,
** rename over the output, fsync the folder; abort (and SIGINT/SIGTERM with
** mq_convert_install_signal_cleanup) removes the temporary file. Folder outputs and split sets
** address their files as one offset space (file k starts at the sum of the sizes before it).
*/
struct mq_outfile;

/* A single file of `size` bytes (free space checked and reserved first). */
MQ_API enum mq_status mq_outfile_create(const char *path, uint64_t size, struct mq_outfile **out,
                                        struct mq_error *err);
/* Thread-safe positional write of all len bytes. */
MQ_API enum mq_status mq_outfile_pwrite(struct mq_outfile *f, const void *buf, size_t len, uint64_t off,
                                        struct mq_error *err);
/* Thread-safe positional read (checksums read the written data back). */
MQ_API enum mq_status mq_outfile_pread(struct mq_outfile *f, void *buf, size_t len, uint64_t off,
                                       struct mq_error *err);
/* Writes a whole small file into the temporary folder (folder outputs only). */
MQ_API enum mq_status mq_outfile_add_file(struct mq_outfile *f, const char *name, const void *data, size_t len,
                                          struct mq_error *err);
/* Shrinks data file k to `size` bytes (writers whose tail is only known at the end). */
MQ_API enum mq_status mq_outfile_truncate(struct mq_outfile *f, size_t k, uint64_t size, struct mq_error *err);
/* fsync + rename + fsync(dir); frees f in every case. */
MQ_API enum mq_status mq_outfile_commit(struct mq_outfile *f, struct mq_error *err);
/* Removes the temporary file; frees f. Accepts NULL. */
MQ_API void mq_outfile_abort(struct mq_outfile *f);

/* ---- the plan, seen by a writer ---- */

struct mq_plan;

/* One output tensor as planned (filled by mq_plan_tensor_info). */
struct mq_plan_tensor_info {
    const char *name;              /* output name */
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];   /* output shape, outermost first */
    uint64_t numel, row_len, rows; /* rows = numel / row_len */
    bool convert;                  /* false: the source bytes are copied unchanged */
    enum mq_codec codec;           /* when convert */
    struct mq_codec_params params; /* when convert */
    bool quantized;                /* the codec is a quantizer (not a plain float type) */
    enum mq_dtype raw_dtype;       /* copies: the element type */
    int32_t raw_ggml_type;         /* copies from a GGUF: the ggml type, else -1 */
    uint64_t bytes;                /* output bytes of the tensor data */
    uint64_t offset;               /* absolute offset in the output (after layout) */
    bool generated;                /* computed by the writer, no input tensor */
    bool float_source;             /* read from F32/F16/BF16 input elements */
    bool raw_source;               /* its source bytes can only be copied (int types, F64, a
                                      quantized type kept as stored) */
    enum mq_dtype src_dtype;       /* the (first) input tensor's dtype; F32 when generated */
    long src_index;                /* that input tensor (mq_model_tensor's index), -1 when generated */
    uint64_t xxh3;                 /* XXH3-64 of the bytes written (in finish, unless own_checksums) */
};

MQ_API size_t mq_plan_n_tensors(const struct mq_plan *p);
/* Tensor i's output name (NULL past the end): what sorting and messages need, without a copy. */
MQ_API const char *mq_plan_tensor_name(const struct mq_plan *p, size_t i);
/* Fills *out for tensor i; false (and *out zeroed) when i >= mq_plan_n_tensors(p). */
MQ_API bool mq_plan_tensor_info(const struct mq_plan *p, size_t i, struct mq_plan_tensor_info *out);
/* The input model, the options and the target of the conversion. */
MQ_API const struct mq_model *mq_plan_model(const struct mq_plan *p);
MQ_API const struct mq_convert_options *mq_plan_options(const struct mq_plan *p);
MQ_API enum mq_target mq_plan_target(const struct mq_plan *p);
/* The output metadata (writers of containers that have key/values add theirs in prepare). */
MQ_API struct mq_meta *mq_plan_meta(struct mq_plan *p);

/* The writer's own state (freed by its release()). */
MQ_API void *mq_plan_writer_state(const struct mq_plan *p);
MQ_API void mq_plan_set_writer_state(struct mq_plan *p, void *state);

/* ---- prepare: the writer's names, tensors and transforms ----
** When prepare() starts, the plan holds one tensor per input tensor, in input order (tensor i
** reads input i). Indexes stay valid until mq_plan_keep(). */

/* Appends an output tensor (name copied): input tensor `src` as it is (its shape, dtype and
** source), or with src -1 an empty tensor. */
MQ_API enum mq_status mq_plan_add(struct mq_plan *p, const char *name, long src, struct mq_error *err);
/* Appends an output tensor that stacks n input tensors of one shape and source type (experts
** stored one by one): shape [n, shape...], elements the concatenation of theirs, in order. */
MQ_API enum mq_status mq_plan_add_stacked(struct mq_plan *p, const char *name, const long *srcs, size_t n,
                                          struct mq_error *err);
/* Appends an output tensor made of rows [row0, row0 + rows) of input tensor src (a fused tensor
** split): its shape with the outermost dimension `rows`. */
MQ_API enum mq_status mq_plan_add_split(struct mq_plan *p, const char *name, long src, uint64_t row0, uint64_t rows,
                                        struct mq_error *err);
/* Appends an F32 tensor [n] the writer computed (rope_freqs); the plan owns v from now on (malloc'd;
** freed also when this fails). */
MQ_API enum mq_status mq_plan_add_generated(struct mq_plan *p, const char *name, float *v, uint64_t n,
                                            struct mq_error *err);
/* Renames tensor i (name copied). */
MQ_API enum mq_status mq_plan_tensor_set_name(struct mq_plan *p, size_t i, const char *name, struct mq_error *err);
/* Transforms of tensor i's values, applied in the order added: Llama's Q/K row permutation with
** n_heads heads (convert_hf_to_gguf's permute; a 1-D bias permutes its elements as rows), and
** + c on every element (Gemma's RMSNorm weight + 1). */
MQ_API enum mq_status mq_plan_tensor_permute_heads(struct mq_plan *p, size_t i, uint64_t n_heads, struct mq_error *err);
MQ_API enum mq_status mq_plan_tensor_add_const(struct mq_plan *p, size_t i, float c, struct mq_error *err);
/* The plan keeps tensors order[0..n) in that order (each index once) and frees the others
** (dropped inputs, experts now inside a stacked tensor). On failure the plan is unchanged. */
MQ_API enum mq_status mq_plan_keep(struct mq_plan *p, const size_t *order, size_t n, struct mq_error *err);

/* ---- layout ---- */

/* Layout: tensor i's data at absolute `offset`. */
MQ_API void mq_plan_tensor_set_offset(struct mq_plan *p, size_t i, uint64_t offset);
/* Side data of tensor i (NF4/FP4 absmax, INT8_ROW SCB: float32 per block / row): with
** side_offset > 0 each chunk's values are written there (little-endian); with keep they are
** collected and handed to tensor_side() once the tensor is done (double quantization). */
MQ_API void mq_plan_tensor_set_side(struct mq_plan *p, size_t i, uint64_t side_offset, bool keep);
/* Reads tensor i's 2-D F32/F16/BF16 source [a, b] transposed, as [b, a] (a GPT-2 Conv1D weight
** stored [in, out]): its shape, rows and output bytes follow. */
MQ_API enum mq_status mq_plan_tensor_read_transposed(struct mq_plan *p, size_t i, struct mq_error *err);
/* Folder writers: the data files (names and sizes stay owned by the writer until release). */
MQ_API void mq_plan_set_files(struct mq_plan *p, size_t n, const char *const *names, const uint64_t *sizes);
/* Header bytes (the first tensor's offset) and the total output bytes; finish may set the final
** size again (a tail known only at the end). */
MQ_API void mq_plan_set_sizes(struct mq_plan *p, uint64_t data_start, uint64_t file_size);
MQ_API void mq_plan_set_file_size(struct mq_plan *p, uint64_t file_size);
/* Folder writers: at most this many bytes of small files (config, tokenizer) added in finish. */
MQ_API void mq_plan_set_side_bytes(struct mq_plan *p, uint64_t bytes);
/* The llama_ftype a GGUF records: the target's (>= 0), -1 none, -2 the input GGUF's (--type auto
** of a GGUF input); the writer may resolve -2. */
MQ_API int mq_plan_file_type(const struct mq_plan *p);
MQ_API void mq_plan_set_file_type(struct mq_plan *p, int file_type);
/* The header bytes set at layout (mq_plan_set_sizes). */
MQ_API uint64_t mq_plan_data_start(const struct mq_plan *p);
/* The data files are a split set of sibling files (a split GGUF), not a folder. */
MQ_API void mq_plan_set_split_set(struct mq_plan *p, bool split_set);

/* ---- the writer's ops ---- */

struct mq_writer_ops {
    const char *name;              /* --format value: "gguf" */
    const char *ext;               /* output extension that selects it: ".gguf" */
    /* Does the container store this codec? (GGUF: ggml types only.) */
    bool (*stores_codec)(enum mq_codec c);
    /* Names tensors, adds generated tensors and metadata; runs before the type rules. */
    enum mq_status (*prepare)(struct mq_plan *p, struct mq_error *err);
    /* After the type rules: the file type, every tensor's offset, the header and file sizes. */
    enum mq_status (*layout)(struct mq_plan *p, struct mq_error *err);
    /* Tensors with side data kept: all n side values of tensor i, once its data is done (any thread). */
    enum mq_status (*tensor_side)(struct mq_plan *p, size_t i, const float *side, uint64_t n,
                                  struct mq_outfile *out, struct mq_error *err);
    /* After the data (every tensor's xxh3 filled): headers, constant tensors, extra files. */
    enum mq_status (*finish)(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err);
    /* The output is a folder of data files (layout calls mq_plan_set_files). */
    bool folder;
    /* The writer checksums what it wrote itself (the run skips its per-tensor XXH3 pass). */
    bool own_checksums;
    void (*release)(struct mq_plan *p);
    /* An input in this writer's own format (a GGUF base for --lora) already has its names and
     * layouts: the name of the input tensor a Hugging Face module weight is (e.g.
     * "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight") and the head count its
     * rows were permuted by (0: none). NULL: the format has no such mapping. */
    enum mq_status (*input_name_of_hf)(const struct mq_model *m, const char *hf, char *out, size_t cap,
                                       uint64_t *permute_heads, struct mq_error *err);
};

#endif /* MODELQ_PLUGIN_H */
