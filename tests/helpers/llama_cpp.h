/*
** llama_cpp.h - llama.cpp itself (libllama + ggml from the pinned npm package
** @node-llama-cpp/linux-x64 3.22.1), loaded with dlopen, to run a GGUF modelq wrote and read the
** logits of every position. No Node in the loop: the C API is called directly.
**
** Where the libraries come from: $MODELQ_LLAMA_DIR when set, else
** tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64 relative to the working
** directory (tests run from the repository root; tools/setup.sh installs it with `npm ci`).
** That folder holds libllama.v0.5.0.so, libggml.v0.5.0.so, libggml-base.so and one CPU backend per
** x86 level (libggml-cpu-{x64,sse42,haswell,skylakex,icelake,zen4,...}.so); its
** _nlcBuildMetadata.json names the llama.cpp build ("release": "v0.5.0", CPU only).
**
** Backends: libllama is built with GGML_BACKEND_DL, so no compute backend is linked in. As
** node-llama-cpp's addon does, mq_llama_cpp_open() calls ggml_backend_load_all_from_path(dir):
** ggml scores every libggml-cpu-*.so in the folder against this CPU (ggml_backend_score) and
** registers the best one. $MODELQ_LLAMA_CPU_BACKEND=FILE (a path) registers that one file
** instead (ggml_backend_load), e.g. libggml-cpu-x64.so to get the same kernels on every machine.
** (ggml's own $GGML_BACKEND_PATH, one extra backend file, is honoured by load_all as usual.)
** The chosen file's name is in `backend` after open.
**
** ABI: the structs passed by value (llama_model_params 80 bytes, llama_context_params 160 bytes,
** llama_batch 56 bytes) are mirrored in llama_cpp.c from that release's include/llama.h; the
** layout was checked against the library's own llama_model_default_params() /
** llama_context_default_params() code, and open/load check the defaults it returns and read
** the values back through getters (llama_n_batch, llama_n_threads ...), so a different
** libllama fails loudly instead of misreading a field.
**
** Sanitizers: the libraries are not instrumented but load and run fine inside an ASan+UBSan
** process (their allocations go through ASan's interposed malloc/new; LeakSanitizer reports
** nothing), so tests call this in-process, no child process needed.
**
** Evaluation is deterministic: one thread, a fresh context per sequence, no flash attention,
** one sequence, every position's logits requested (llama_batch.logits[i] = 1).
*/
#ifndef MODELQ_TEST_LLAMA_CPP_H
#define MODELQ_TEST_LLAMA_CPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQ_LLAMA_CPP_DEFAULT_DIR "tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

struct mq_llama_cpp;        /* the loaded libraries (one per process is enough) */
struct mq_llama_cpp_model;  /* one loaded GGUF */

/* What llama.cpp read from the file (through its public getters). */
struct mq_llama_cpp_info {
    char arch[64];     /* general.architecture */
    int n_vocab;       /* llama_vocab_n_tokens */
    int n_embd, n_layer, n_head, n_head_kv;
    int rope_type;     /* llama_model_rope_type: 0 NORM (adjacent pairs), 2 NEOX (rotate half) */
    float rope_freq_scale_train; /* llama_model_rope_freq_scale_train: 1 / rope.scaling.factor, else 1 */
    uint64_t n_params; /* llama_model_n_params */
};

/* Options of one evaluation context. */
struct mq_llama_cpp_ctx_opts {
    int n_ctx;         /* context size (>= longest sequence); 0 = 128 */
    int n_threads;     /* 0 = 1 */
    bool kv_f16;       /* KV cache in F16 (llama.cpp's default); false = F32 */
    const char *lora;  /* a GGUF LoRA adapter applied to this context (llama_adapter_lora_init +
                          llama_set_adapters_lora, as --lora does), NULL = none */
    float lora_scale;  /* its user scale (llama.cpp's --lora-scaled; --lora is 1) */
};

/*
** Loads the libraries and registers the CPU backend. Returns NULL with a reason in `why` when
** a library, a symbol or a backend is missing, or the struct defaults are not the expected ones.
*/
struct mq_llama_cpp *mq_llama_cpp_open(char *why, size_t why_len);
void mq_llama_cpp_close(struct mq_llama_cpp *lc);
/* The backend file registered (e.g. "libggml-cpu-icelake.so") and the libraries' folder. */
const char *mq_llama_cpp_backend(const struct mq_llama_cpp *lc);
const char *mq_llama_cpp_dir(const struct mq_llama_cpp *lc);

/*
** Loads a GGUF (read into memory, no mmap; llama.cpp's check_tensors on, so NaN/Inf values or
** bad quantization scales are load errors). NULL on failure, with llama.cpp's error lines in
** `why`.
*/
struct mq_llama_cpp_model *mq_llama_cpp_load(struct mq_llama_cpp *lc, const char *gguf,
                                             struct mq_llama_cpp_info *info, char *why, size_t why_len);
void mq_llama_cpp_free(struct mq_llama_cpp_model *m);

/*
** Placement (llama_model_params.n_gpu_layers, split_mode "layer", tensor_split): a model loaded
** with these, over whatever GPU devices are registered (tests: fake_gpu.h), without check_tensors
** (a device buffer is not host memory). `tensor_split` has n_split ratios (<= 16, llama.cpp's
** LLAMA_MAX_DEVICES), or NULL: llama.cpp then splits by each device's free memory.
*/
struct mq_llama_cpp_place {
    int n_gpu_layers;
    const float *tensor_split;
    int n_split;
};
struct mq_llama_cpp_model *mq_llama_cpp_load_placed(struct mq_llama_cpp *lc, const char *gguf,
                                                    const struct mq_llama_cpp_place *place, char *why, size_t why_len);
/* The device llama.cpp assigned layer il to (its "load_tensors: layer N assigned to device D" debug
** lines of the last load; il = n_layer is the output layer), "" when not logged. */
const char *mq_llama_cpp_layer_device(const struct mq_llama_cpp *lc, int il);

/*
** Runs `n` tokens (positions 0..n-1, sequence 0) in one batch through a fresh context and
** writes n x n_vocab float logits, position-major, to `logits`. Returns 0, or -1 with a reason.
*/
int mq_llama_cpp_eval(struct mq_llama_cpp_model *m, const struct mq_llama_cpp_ctx_opts *opts,
                      const int32_t *tokens, size_t n, float *logits, char *why, size_t why_len);

/* A KV cache as llama.cpp allocates it for one context. */
struct mq_llama_cpp_kv_opts {
    uint32_t n_ctx;
    int n_seq;            /* 0 = 1 */
    int type_k, type_v;   /* ggml type ids (1 = F16) */
    bool flash_attn;
    uint32_t n_ubatch;    /* n_batch = n_ubatch = this; 0 = 256 */
    bool swa_full;        /* llama.cpp's --swa-full (the library's default is true, its tools' false) */
    void (*on_context)(void *user); /* called while the context exists (its buffers allocated), or NULL */
    void *user;
};
struct mq_llama_cpp_kv {
    uint32_t n_ctx;       /* llama_n_ctx of the context (after llama.cpp's padding) */
    uint32_t cells, layers; /* from llama.cpp's (first) "llama_kv_cache: size = ..." line: the only cache,
                               or a sliding-window model's non-SWA cache */
    double mib;           /* its size, MiB with 2 decimals */
    /* A sliding-window model (llama_kv_cache_iswa) logs a second line, for its SWA cache; 0 otherwise */
    uint32_t swa_cells, swa_layers;
    double swa_mib;
    double compute_mib;   /* the CPU compute buffer llama.cpp reserved (MiB, 4 decimals), -1 when not logged */
};
/* Creates (and frees) a context with these settings and reads its KV cache's size. 0 or -1. */
int mq_llama_cpp_kv(struct mq_llama_cpp_model *m, const struct mq_llama_cpp_kv_opts *o, struct mq_llama_cpp_kv *out,
                    char *why, size_t why_len);

#endif /* MODELQ_TEST_LLAMA_CPP_H */
