/*
** modelq/convert.h - one-pass conversion of a checkpoint into a (quantized) output file.
**
** Outline of mq_convert():
**   1. open the input (mq_model_open), pick the output writer (--format or the extension);
**   2. plan: every input tensor gets an output name, shape and type (the target's rule table,
**      shared with `estimate`; --tensor-type / --keep overrides; shape fallback), the writer adds
**      its metadata, and lays the file out (every offset and the total size known up front);
**   3. run: N threads take row-aligned chunks (block-aligned pieces of rows longer than a
**      chunk) in order, read them with pread, convert to f32,
**      check the values, quantize, and pwrite each to its planned offset in a temporary file
**      beside the output; memory is bounded by threads x chunk size whatever the model size;
**   4. checksum every tensor's bytes (XXH3-64), write the header last, fsync, rename over the
**      output, fsync the folder. Any error or SIGINT/SIGTERM removes the temporary file.
** The output bytes do not depend on the thread count or on SIMD (kernels are byte-identical).
*/
#ifndef MODELQ_CONVERT_H
#define MODELQ_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/error.h"
#include "modelq/qstats.h"
#include "modelq/target.h"
#include "modelq/export.h"

struct mq_imatrix;

struct mq_type_override {
    const char *pattern;   /* POSIX extended regex searched in the output tensor name */
    const char *type;      /* codec name (q8_0, q6_K, f16 ...) */
};

/*
** Watching one tensor's values as the run quantizes them (the HTML report's staircase sample,
** modelq/report.h). After planning, pick() is called for the output tensors in plan order that
** are converted (name, input name, output codec, row length); the first it accepts is watched, and none
** accepted is MQ_E_USAGE with the message `missing`, before any data is read. chunk() then gets
** every chunk of that tensor: flat elements [first, first + n), whole blocks of the codec (whole
** rows for per-row scales), the f32 values before quantization and the dequantized ones. It is
** called from the worker threads, chunks in any order: it must lock and not depend on the order.
*/
struct mq_convert_tap {
    bool (*pick)(void *ctx, const char *name, const char *src_name, enum mq_codec codec, uint64_t row_len);
    void (*chunk)(void *ctx, uint64_t first, size_t n, const float *orig, const float *deq);
    void *ctx;
    const char *missing;           /* the error when pick() accepts no tensor */
};

/* A LoRA adapter merged while converting (--lora DIR[:SCALE]): its folder and the user's scale. */
struct mq_lora_merge {
    const char *path;
    double scale;                  /* 1 = as trained (alpha / r) */
};

/*
** Options: `struct mq_convert_options o; mq_convert_options_init(&o);` fills every field with its
** default and records in o.struct_size the size of the struct as THIS header defines it; then set
** the fields needed. Growth: new fields are only appended (after progress_ctx), so a program built
** against an older header keeps working with a newer library (the fields it does not know keep
** their defaults), and one built against a newer header works with an older library as long as it
** leaves the fields that library does not know at their defaults; otherwise, and for options not
** set up by mq_convert_options_init(), mq_convert() fails with MQ_E_USAGE (check "options-size").
*/
struct mq_convert_options {
    size_t struct_size;            /* set by mq_convert_options_init(); do not change */
    const char *input;
    const char *output;            /* file (GGUF); NULL with dry_run */
    const char *format;            /* "gguf"; NULL = from the output's extension */
    const char *type;              /* convert target name; NULL = "auto" */
    unsigned threads;              /* 0 = all online CPUs */
    bool dry_run;                  /* plan (and with stats: quantize in memory), write nothing */
    bool stats;                    /* per-tensor error statistics (dequantize and compare) */
    bool allow_requantize;         /* GGUF input: requantize already-quantized tensors */
    bool no_fallback;              /* a tensor whose rows do not fit its type is an error */
    bool pure;                     /* one type for every eligible tensor (no output Q6_K etc.) */
    bool reference_kernels;        /* use the plain C kernels (the bytes are the same) */
    bool raw_names;                /* GGUF: unsupported architecture -> tensor names unchanged */
    bool no_vocab;                 /* GGUF: no tokenizer (tokenizer.ggml.model "none", token ids only);
                                      without it a folder whose tokenizer cannot be converted is refused */
    bool double_quant;             /* NF4/FP4: double quantization of the absmax (nf4-dq implies it) */
    uint32_t blocksize;            /* NF4/FP4 block (bitsandbytes: 64..4096, power of two); 0 = 64 */
    uint64_t max_shard_size;       /* folder outputs: bytes per safetensors shard, 0 = one file;
                                      GGUF outputs: the same as split_max_size */
    uint64_t split_max_size;       /* GGUF: split into parts of at most this many tensor-data bytes
                                      (gguf-split's --split-max-size; a larger tensor gets a part of
                                      its own); 0 = no size limit */
    uint32_t split_max_tensors;    /* GGUF: at most this many tensors per part; 0 = no limit */
    bool force;                    /* folder outputs: replace an existing folder even when it holds
                                      files modelq did not write (they are deleted) */
    const char *base;              /* a LoRA adapter input: the base model (folder, config.json or
                                      org/name in the local Hugging Face cache); NULL = the adapter's
                                      base_model_name_or_path, looked up in that cache */
    const struct mq_lora_merge *loras; /* adapters added to the base weights, W + scale (alpha/r) B A */
    size_t n_loras;
    const char *report_path;       /* a file the caller writes after success (the JSON report):
                                      checked like the output before any data is read; NULL = none */
    const char *report_html_path;  /* the HTML report (modelq/report.h), written by the caller after
                                      success: checked like report_path; NULL = none */
    const struct mq_convert_tap *tap; /* watch one tensor (implies stats); NULL = none */
    /* llama-quantize --imatrix: importances per weight column (modelq/imatrix.h), used by the
     * types whose ggml quantizer takes them (Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL Q4_K Q5_K Q6_K). Either a
     * file (read by mq_convert) or one the caller loaded with mq_imatrix_load (wins); GGUF only. */
    const char *imatrix_path;
    const struct mq_imatrix *imatrix;
    /* Tests only (negative controls): 0 normal Q/K permutation, 1 none, 2 K permuted with the
     * query head count. Not reachable from the command line. */
    int debug_qk_permute;
    const struct mq_type_override *overrides;
    size_t n_overrides;
    const char *const *keep;       /* regexes: matching tensors keep their source precision */
    size_t n_keep;
    /* warnings (one line each: the reader's findings, a --tensor-type pattern that retypes
     * nothing): called from the calling thread before the data pass; may be NULL */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
    /* progress: called from the calling thread about 5 times a second; may be NULL */
    void (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
    void *progress_ctx;
};

/* What happened to one tensor. */
struct mq_convert_tensor {
    char *name;                    /* output name */
    char *src_name;                /* input name */
    const char *src_type;          /* "BF16", "Q8_0" ... */
    const char *out_type;          /* "q8_0", "f32", or the source type for copies */
    uint64_t numel;
    uint64_t bytes;                /* bytes written (or that would be) */
    double bpw;                    /* bytes x 8 / numel */
    const char *why;               /* rule that chose the type */
    bool fell_back;
    bool overridden;
    uint32_t lora_terms;           /* --lora updates merged into it (0: none) */
    bool have_stats;
    struct mq_qstats stats;
};

struct mq_convert_report {
    char *input, *output, *format;
    const char *target;            /* target name */
    int file_type;                 /* llama_ftype written, -1 none */
    unsigned threads;
    struct mq_convert_tensor *tensors;
    size_t n_tensors;
    uint64_t params, quantized_params;
    uint64_t tensor_bytes;         /* sum of tensor bytes (what `estimate` predicts) */
    uint64_t file_bytes;           /* whole output file (header, padding); split: all parts */
    size_t n_parts;                /* split GGUF output: parts written, 0 = one file */
    char *first_part;              /* split GGUF output: the path of part 1 (what llama.cpp opens) */
    uint64_t input_bytes;          /* tensor bytes read */
    uint64_t n_fallback;
    double seconds;
    bool dry_run;
    bool have_stats;
    struct mq_qstats total_stats;  /* over all quantized elements */
};

/* Defaults in the first struct_size bytes of *o (the rest of a newer header's struct zeroed) and
** o->struct_size = struct_size. Call it through the macro, which passes the caller's sizeof. */
MQ_API void mq_convert_options_init_sized(struct mq_convert_options *o, size_t struct_size);
#define mq_convert_options_init(o) mq_convert_options_init_sized((o), sizeof *(o))
/* The earlier name of mq_convert_options_init (source compatible). */
#define mq_convert_options_default(o) mq_convert_options_init(o)

/* The Hugging Face architectures (config.json architectures[0]) a GGUF output maps to llama.cpp's
** names, ", "-separated: "LlamaForCausalLM, MistralForCausalLM, ...". */
MQ_API const char *mq_convert_architectures(void);

/* Runs the conversion; fills `rep` (free with mq_convert_report_free) also on dry runs. */
MQ_API enum mq_status mq_convert(const struct mq_convert_options *o, struct mq_convert_report *rep,
                          struct mq_error *err);
MQ_API void mq_convert_report_free(struct mq_convert_report *rep);

/*
** Integrity check of a file or folder modelq wrote (what each checksum covers: src/checksums.h).
** GGUF: the header checksum (modelq.header_xxh3), every tensor's (modelq.tensor_xxh3), the zero
** padding and the file size. bitsandbytes folder: in every shard the header checksum and one
** checksum per stored entry, and the folder's other files (config.json, the index, tokenizer
** files). Older modelq files carry tensor checksums only: they are checked, header_covered is false.
** on_item (may be NULL) is called for every header, file and tensor checked, in order.
** Damaged or missing checksum records, uncovered entries, nonzero padding and a wrong file size
** are errors (MQ_E_CORRUPT naming the file); mismatching checksums are counted in `res`.
*/
enum mq_verify_kind { MQ_VERIFY_HEADER, MQ_VERIFY_FILE, MQ_VERIFY_TENSOR };
struct mq_verify_result {
    bool has_checksums;   /* false: the file carries none (nothing was checked) */
    bool header_covered;  /* headers (and a folder's other files) were checked too; false when
                             written by an older modelq (tensor data only) */
    size_t n_checked;     /* tensors (stored entries) checked */
    size_t n_bad;         /* ... whose bytes do not match */
    size_t n_parts;       /* headers and other files checked */
    size_t n_parts_bad;   /* ... that do not match */
};
MQ_API enum mq_status mq_verify(const char *path,
                         void (*on_item)(void *ctx, enum mq_verify_kind kind, const char *name, uint64_t stored,
                                         uint64_t actual),
                         void *ctx, struct mq_verify_result *res, struct mq_error *err);

/* Installs SIGINT/SIGTERM handlers that remove in-progress temporary files, then re-raise. */
MQ_API void mq_convert_install_signal_cleanup(void);

#endif /* MODELQ_CONVERT_H */
