/*
** llama_cpp.c - dlopen of the pinned llama.cpp and a minimal evaluation loop (see llama_cpp.h).
**
** The three by-value structs below mirror include/llama.h of the llama.cpp build in
** @node-llama-cpp/linux-x64 3.22.1 (the one with `enum llama_load_mode load_mode` and
** `enum llama_lazy_mode lazy_mode` in llama_model_params, llama.cpp PR #20834 and later, and
** n_rs_seq / n_outputs_max / n_outputs_max_per_seq in llama_context_params). Every offset was
** confirmed by disassembling the library's llama_model_default_params() and
** llama_context_default_params() (they store each default at its offset) and llama_batch_init()
** (which fills the batch's pointer fields). Only fields this file sets or checks matter; the rest
** keep the library's defaults because we start from the struct the library returns.
*/
#include "llama_cpp.h"
#include "why.h"

#include <dlfcn.h>
#include <glob.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mirrored ABI ------------------------------------------------------------------------ */

struct lc_model_params {                 /* struct llama_model_params */
    void *devices;                       /* ggml_backend_dev_t *, NULL = all */
    const void *tensor_buft_overrides;
    int32_t n_gpu_layers;                /* default -1 (all) */
    int32_t split_mode;                  /* default 1 (LLAMA_SPLIT_MODE_LAYER) */
    int32_t load_mode;                   /* enum llama_load_mode: -1 AUTO (default), 0 NONE, 1 MMAP ... */
    int32_t lazy_mode;                   /* enum llama_lazy_mode, default 1 */
    int32_t main_gpu;                    /* default 0 */
    const float *tensor_split;
    void *progress_callback;
    void *progress_callback_user_data;
    const void *kv_overrides;
    bool vocab_only;
    bool check_tensors;
    bool use_extra_bufts;                /* default true (CPU weight repacking) */
    bool no_host;
    bool no_alloc;
    bool load_mtp;
};
_Static_assert(sizeof(struct lc_model_params) == 80, "llama_model_params is 80 bytes");
_Static_assert(offsetof(struct lc_model_params, main_gpu) == 0x20, "llama_model_params.main_gpu");
_Static_assert(offsetof(struct lc_model_params, vocab_only) == 0x48, "llama_model_params.vocab_only");

struct lc_context_params {               /* struct llama_context_params */
    uint32_t n_ctx;                      /* default 512 */
    uint32_t n_batch;                    /* default 2048 */
    uint32_t n_ubatch;                   /* default 512 */
    uint32_t n_seq_max;                  /* default 1 */
    uint32_t n_rs_seq;                   /* default 0 */
    uint32_t n_outputs_max;              /* default 0 (= n_batch) */
    uint32_t n_outputs_max_per_seq;      /* default 1 */
    int32_t n_threads;                   /* default 4 (GGML_DEFAULT_N_THREADS) */
    int32_t n_threads_batch;             /* default 4 */
    int32_t ctx_type;                    /* default 0 */
    int32_t rope_scaling_type;           /* default -1 (from the model) */
    int32_t pooling_type;                /* default -1 */
    int32_t attention_type;              /* default -1 */
    int32_t flash_attn_type;             /* default -1 (auto); 0 disabled */
    float rope_freq_base, rope_freq_scale;     /* 0 = from the model */
    float yarn_ext_factor, yarn_attn_factor;   /* -1 = from the model */
    float yarn_beta_fast, yarn_beta_slow;      /* -1 */
    uint32_t yarn_orig_ctx;
    float defrag_thold;                  /* -1 */
    void *cb_eval, *cb_eval_user_data;
    int32_t type_k, type_v;              /* enum ggml_type, default 1 (F16); 0 = F32 */
    void *abort_callback, *abort_callback_data;
    bool embeddings;                     /* default false */
    bool offload_kqv;                    /* default true */
    bool no_perf;                        /* default true */
    bool op_offload;                     /* default true */
    bool swa_full;                       /* default true */
    bool kv_unified;                     /* default false */
    void *samplers;
    size_t n_samplers;
    void *ctx_other;
};
_Static_assert(sizeof(struct lc_context_params) == 160, "llama_context_params is 160 bytes");
_Static_assert(offsetof(struct lc_context_params, n_threads) == 0x1c, "llama_context_params.n_threads");
_Static_assert(offsetof(struct lc_context_params, flash_attn_type) == 0x34, "llama_context_params.flash_attn_type");
_Static_assert(offsetof(struct lc_context_params, type_k) == 0x68, "llama_context_params.type_k");
_Static_assert(offsetof(struct lc_context_params, embeddings) == 0x80, "llama_context_params.embeddings");
_Static_assert(offsetof(struct lc_context_params, samplers) == 0x88, "llama_context_params.samplers");

struct lc_batch {                        /* struct llama_batch */
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;                      /* nonzero: output this position's logits */
};
_Static_assert(sizeof(struct lc_batch) == 56, "llama_batch is 56 bytes");

enum { LC_GGML_LOG_WARN = 3, LC_GGML_LOG_ERROR = 4, LC_GGML_LOG_CONT = 5 };
enum { LC_GGML_TYPE_F32 = 0, LC_GGML_TYPE_F16 = 1 };
enum { LC_LOAD_MODE_NONE = 0 };

typedef void (*lc_log_fn)(int level, const char *text, void *user);

struct mq_llama_cpp {
    void *llama, *ggml;
    char dir[1024];
    char backend[256];
    char log[2048];        /* recent warning/error text from llama.cpp */
    char kv_line[2][512];  /* the first two "llama_kv_cache: size = ..." lines (info level): a model with
                              sliding-window layers logs its non-SWA cache, then its SWA cache */
    int n_kv_lines;
    double compute_mib;    /* "~llama_context: CPU compute buffer size is X MiB" (logged when a context is
                              freed, 4 decimals); -1 when not seen */
    int last_level;
#define LC_MAX_LAYERS 512
    char layer_dev[LC_MAX_LAYERS][24]; /* "load_tensors: layer N assigned to device D" of the last load */
    bool verbose;          /* $MODELQ_LLAMA_LOG set: everything llama.cpp logs goes to stderr */

    void (*backend_init)(void);
    void (*backend_free)(void);
    void (*log_set)(lc_log_fn, void *);
    void (*load_all_from_path)(const char *dir);
    void *(*load_backend)(const char *path);
    size_t (*reg_count)(void);
    size_t (*dev_count)(void);
    struct lc_model_params (*model_default_params)(void);
    struct lc_context_params (*context_default_params)(void);
    void *(*model_load)(const char *path, struct lc_model_params);
    void (*model_free)(void *);
    void *(*init_from_model)(void *model, struct lc_context_params);
    void (*free_ctx)(void *);
    int32_t (*decode)(void *ctx, struct lc_batch);
    float *(*get_logits_ith)(void *ctx, int32_t i);
    uint32_t (*n_ctx)(const void *);
    uint32_t (*n_batch)(const void *);
    uint32_t (*n_ubatch)(const void *);
    uint32_t (*n_seq_max)(const void *);
    int32_t (*n_threads)(void *);
    int32_t (*n_threads_batch)(void *);
    void *(*adapter_lora_init)(void *model, const char *path);
    void (*adapter_lora_free)(void *adapter);
    int32_t (*set_adapters_lora)(void *ctx, void **adapters, size_t n, float *scales);
    const void *(*model_get_vocab)(const void *);
    int32_t (*vocab_n_tokens)(const void *);
    int32_t (*model_n_embd)(const void *);
    int32_t (*model_n_layer)(const void *);
    int32_t (*model_n_head)(const void *);
    int32_t (*model_n_head_kv)(const void *);
    int32_t (*model_rope_type)(const void *);
    float (*model_rope_freq_scale_train)(const void *);
    uint64_t (*model_n_params)(const void *);
    int32_t (*model_meta_val_str)(const void *, const char *key, char *buf, size_t size);
};

struct mq_llama_cpp_model {
    struct mq_llama_cpp *lc;
    void *model;
    int n_vocab;
};

/* ---- logging ------------------------------------------------------------------------------ */

static void on_log(int level, const char *text, void *user)
{
    struct mq_llama_cpp *lc = user;
    if (lc->verbose) fputs(text, stderr);
    if (strncmp(text, "llama_kv_cache: size =", 22) == 0 && lc->n_kv_lines < 2)
        snprintf(lc->kv_line[lc->n_kv_lines++], sizeof lc->kv_line[0], "%s", text);
    const char *cb = strstr(text, "CPU compute buffer size is");
    if (cb && strncmp(text, "~llama_context:", 15) == 0) sscanf(cb, "CPU compute buffer size is %lf MiB", &lc->compute_mib);
    int il;
    char dev[24];
    if (sscanf(text, "load_tensors: layer %d assigned to device %23[^,]", &il, dev) == 2 && il >= 0 && il < LC_MAX_LAYERS)
        snprintf(lc->layer_dev[il], sizeof lc->layer_dev[il], "%s", dev);
    if (level != LC_GGML_LOG_CONT) lc->last_level = level;
    if (lc->last_level < LC_GGML_LOG_WARN) return;
    size_t have = strlen(lc->log), add = strlen(text);
    if (add >= sizeof lc->log) {
        text += add - (sizeof lc->log - 1);
        add = sizeof lc->log - 1;
    }
    if (have + add >= sizeof lc->log) { /* keep the most recent text */
        size_t drop = have + add - (sizeof lc->log - 1);
        memmove(lc->log, lc->log + drop, have - drop + 1);
        have -= drop;
    }
    memcpy(lc->log + have, text, add + 1);
}

/* ---- opening ------------------------------------------------------------------------------ */

/* First file matching dir/pattern, into out. */
static bool find_lib(const char *dir, const char *pattern, char *out, size_t cap)
{
    char pat[1200];
    snprintf(pat, sizeof pat, "%s/%s", dir, pattern);
    glob_t g;
    bool ok = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0 && strlen(g.gl_pathv[0]) < cap;
    if (ok) snprintf(out, cap, "%s", g.gl_pathv[0]);
    globfree(&g);
    return ok;
}

static int note_backend(struct dl_phdr_info *info, size_t size, void *user)
{
    (void)size;
    struct mq_llama_cpp *lc = user;
    const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    if (base && strncmp(base + 1, "libggml-cpu", 11) == 0) snprintf(lc->backend, sizeof lc->backend, "%s", base + 1);
    return 0;
}

struct mq_llama_cpp *mq_llama_cpp_open(char *why, size_t why_len)
{
    struct mq_llama_cpp *lc = calloc(1, sizeof *lc);
    if (!lc) {
        mq_test_why(why, why_len, "out of memory");
        return NULL;
    }
    const char *env = getenv("MODELQ_LLAMA_DIR");
    snprintf(lc->dir, sizeof lc->dir, "%s", env && *env ? env : MQ_LLAMA_CPP_DEFAULT_DIR);
    lc->verbose = getenv("MODELQ_LLAMA_LOG") != NULL;
    char path[1200];
    if (!find_lib(lc->dir, "libllama.v*.so", path, sizeof path) &&
        !find_lib(lc->dir, "libllama.so", path, sizeof path)) {
        mq_test_why(why, why_len, "no libllama in %s; run tools/setup.sh (npm ci in tools/interop)", lc->dir);
        goto fail;
    }
    /* RTLD_LOCAL: llama.cpp's C++ symbols stay out of the global namespace. Its RUNPATH ($ORIGIN)
    ** finds libggml and libggml-base beside it. */
    if (!(lc->llama = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        mq_test_why(why, why_len, "cannot load %s: %s", path, dlerror());
        goto fail;
    }
    if ((!find_lib(lc->dir, "libggml.v*.so", path, sizeof path) &&
         !find_lib(lc->dir, "libggml.so", path, sizeof path)) ||
        !(lc->ggml = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        mq_test_why(why, why_len, "cannot load libggml from %s: %s", lc->dir, dlerror());
        goto fail;
    }
    struct {
        void *lib;
        const char *name;
        void **slot;
    } syms[] = {
        {lc->llama, "llama_backend_init", (void **)&lc->backend_init},
        {lc->llama, "llama_backend_free", (void **)&lc->backend_free},
        {lc->llama, "llama_log_set", (void **)&lc->log_set},
        {lc->ggml, "ggml_backend_load_all_from_path", (void **)&lc->load_all_from_path},
        {lc->ggml, "ggml_backend_load", (void **)&lc->load_backend},
        {lc->ggml, "ggml_backend_reg_count", (void **)&lc->reg_count},
        {lc->ggml, "ggml_backend_dev_count", (void **)&lc->dev_count},
        {lc->llama, "llama_model_default_params", (void **)&lc->model_default_params},
        {lc->llama, "llama_context_default_params", (void **)&lc->context_default_params},
        {lc->llama, "llama_model_load_from_file", (void **)&lc->model_load},
        {lc->llama, "llama_model_free", (void **)&lc->model_free},
        {lc->llama, "llama_init_from_model", (void **)&lc->init_from_model},
        {lc->llama, "llama_free", (void **)&lc->free_ctx},
        {lc->llama, "llama_decode", (void **)&lc->decode},
        {lc->llama, "llama_get_logits_ith", (void **)&lc->get_logits_ith},
        {lc->llama, "llama_n_ctx", (void **)&lc->n_ctx},
        {lc->llama, "llama_n_batch", (void **)&lc->n_batch},
        {lc->llama, "llama_n_ubatch", (void **)&lc->n_ubatch},
        {lc->llama, "llama_n_seq_max", (void **)&lc->n_seq_max},
        {lc->llama, "llama_n_threads", (void **)&lc->n_threads},
        {lc->llama, "llama_n_threads_batch", (void **)&lc->n_threads_batch},
        {lc->llama, "llama_adapter_lora_init", (void **)&lc->adapter_lora_init},
        {lc->llama, "llama_adapter_lora_free", (void **)&lc->adapter_lora_free},
        {lc->llama, "llama_set_adapters_lora", (void **)&lc->set_adapters_lora},
        {lc->llama, "llama_model_get_vocab", (void **)&lc->model_get_vocab},
        {lc->llama, "llama_vocab_n_tokens", (void **)&lc->vocab_n_tokens},
        {lc->llama, "llama_model_n_embd", (void **)&lc->model_n_embd},
        {lc->llama, "llama_model_n_layer", (void **)&lc->model_n_layer},
        {lc->llama, "llama_model_n_head", (void **)&lc->model_n_head},
        {lc->llama, "llama_model_n_head_kv", (void **)&lc->model_n_head_kv},
        {lc->llama, "llama_model_rope_type", (void **)&lc->model_rope_type},
        {lc->llama, "llama_model_rope_freq_scale_train", (void **)&lc->model_rope_freq_scale_train},
        {lc->llama, "llama_model_n_params", (void **)&lc->model_n_params},
        {lc->llama, "llama_model_meta_val_str", (void **)&lc->model_meta_val_str},
        {lc->llama, "llama_load_mode_from_str", NULL}, /* only present in the layout mirrored here */
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(syms[i].lib, syms[i].name);
        if (!p) {
            mq_test_why(why, why_len, "%s: missing symbol %s (not the llama.cpp build these struct layouts are for)", lc->dir,
                syms[i].name);
            goto fail;
        }
        if (syms[i].slot) memcpy(syms[i].slot, &p, sizeof p);
    }
    lc->log_set(on_log, lc);
    lc->backend_init();
    const char *cpu = getenv("MODELQ_LLAMA_CPU_BACKEND");
    if (cpu && *cpu) {
        if (!lc->load_backend(cpu)) {
            mq_test_why(why, why_len, "ggml_backend_load(%s) failed: %s", cpu, lc->log);
            goto fail;
        }
    } else {
        lc->load_all_from_path(lc->dir);
    }
    dl_iterate_phdr(note_backend, lc);
    if (lc->reg_count() == 0 || lc->dev_count() == 0 || !lc->backend[0]) {
        mq_test_why(why, why_len, "no CPU backend registered from %s (%s)", cpu && *cpu ? cpu : lc->dir, lc->log);
        goto fail;
    }

    /* the defaults must be the ones the mirrored layout predicts */
    struct lc_model_params mp = lc->model_default_params();
    struct lc_context_params cp = lc->context_default_params();
    if (mp.devices || mp.n_gpu_layers != -1 || mp.split_mode != 1 || mp.load_mode != -1 || mp.main_gpu != 0 ||
        mp.tensor_split || mp.kv_overrides || mp.vocab_only || mp.check_tensors || !mp.use_extra_bufts || mp.no_alloc) {
        mq_test_why(why, why_len, "llama_model_default_params() does not match the mirrored llama_model_params layout");
        goto fail;
    }
    if (cp.n_ctx != 512 || cp.n_batch != 2048 || cp.n_ubatch != 512 || cp.n_seq_max != 1 || cp.n_threads <= 0 ||
        cp.n_threads_batch <= 0 || cp.flash_attn_type != -1 || cp.type_k != LC_GGML_TYPE_F16 ||
        cp.type_v != LC_GGML_TYPE_F16 || cp.embeddings || !cp.offload_kqv || cp.kv_unified || cp.samplers ||
        cp.n_samplers || cp.ctx_other) {
        mq_test_why(why, why_len, "llama_context_default_params() does not match the mirrored llama_context_params layout");
        goto fail;
    }
    lc->log[0] = '\0';
    return lc;
fail:
    mq_llama_cpp_close(lc);
    return NULL;
}

void mq_llama_cpp_close(struct mq_llama_cpp *lc)
{
    if (!lc) return;
    /* The libraries stay loaded: ggml keeps registered backends (and their threads' state) in
    ** static objects that are only torn down at exit; dlclose before that is not supported. */
    if (lc->log_set) lc->log_set(NULL, NULL);
    free(lc);
}

const char *mq_llama_cpp_backend(const struct mq_llama_cpp *lc) { return lc->backend; }
const char *mq_llama_cpp_dir(const struct mq_llama_cpp *lc) { return lc->dir; }

/* ---- models ------------------------------------------------------------------------------- */

/* llama_model_load_from_file with mp; the model, or NULL with the reason (llama.cpp's log) in why */
static struct mq_llama_cpp_model *load_model(struct mq_llama_cpp *lc, const char *gguf, struct lc_model_params mp,
                                             char *why, size_t why_len)
{
    struct mq_llama_cpp_model *m = calloc(1, sizeof *m);
    if (!m) {
        mq_test_why(why, why_len, "out of memory");
        return NULL;
    }
    m->lc = lc;
    lc->log[0] = '\0';
    m->model = lc->model_load(gguf, mp);
    if (!m->model) {
        mq_test_why(why, why_len, "llama.cpp cannot load %s: %s", gguf, lc->log[0] ? lc->log : "(no message)");
        free(m);
        return NULL;
    }
    m->n_vocab = lc->vocab_n_tokens(lc->model_get_vocab(m->model));
    return m;
}

struct mq_llama_cpp_model *mq_llama_cpp_load(struct mq_llama_cpp *lc, const char *gguf,
                                             struct mq_llama_cpp_info *info, char *why, size_t why_len)
{
    struct lc_model_params mp = lc->model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = LC_LOAD_MODE_NONE; /* read the tensors into llama.cpp's buffers */
    mp.check_tensors = true;
    struct mq_llama_cpp_model *m = load_model(lc, gguf, mp, why, why_len);
    if (m && info) {
        memset(info, 0, sizeof *info);
        if (lc->model_meta_val_str(m->model, "general.architecture", info->arch, sizeof info->arch) < 0)
            info->arch[0] = '\0';
        info->n_vocab = m->n_vocab;
        info->n_embd = lc->model_n_embd(m->model);
        info->n_layer = lc->model_n_layer(m->model);
        info->n_head = lc->model_n_head(m->model);
        info->n_head_kv = lc->model_n_head_kv(m->model);
        info->rope_type = lc->model_rope_type(m->model);
        info->rope_freq_scale_train = lc->model_rope_freq_scale_train(m->model);
        info->n_params = lc->model_n_params(m->model);
    }
    return m;
}

struct mq_llama_cpp_model *mq_llama_cpp_load_placed(struct mq_llama_cpp *lc, const char *gguf,
                                                    const struct mq_llama_cpp_place *place, char *why, size_t why_len)
{
    enum { LC_MAX_DEVICES = 16 }; /* llama_max_devices() */
    float split[LC_MAX_DEVICES] = {0};
    if (place->n_split < 0 || place->n_split > LC_MAX_DEVICES) {
        mq_test_why(why, why_len, "%d split ratios (at most %d)", place->n_split, LC_MAX_DEVICES);
        return NULL;
    }
    memset(lc->layer_dev, 0, sizeof lc->layer_dev);
    struct lc_model_params mp = lc->model_default_params();
    mp.n_gpu_layers = place->n_gpu_layers;
    mp.load_mode = LC_LOAD_MODE_NONE;
    if (place->tensor_split) {
        memcpy(split, place->tensor_split, (size_t)place->n_split * sizeof *split);
        mp.tensor_split = split; /* read during the load only */
    }
    return load_model(lc, gguf, mp, why, why_len);
}

const char *mq_llama_cpp_layer_device(const struct mq_llama_cpp *lc, int il)
{
    return il >= 0 && il < LC_MAX_LAYERS ? lc->layer_dev[il] : "";
}

void mq_llama_cpp_free(struct mq_llama_cpp_model *m)
{
    if (!m) return;
    m->lc->model_free(m->model);
    free(m);
}

int mq_llama_cpp_eval(struct mq_llama_cpp_model *m, const struct mq_llama_cpp_ctx_opts *opts,
                      const int32_t *tokens, size_t n, float *logits, char *why, size_t why_len)
{
    struct mq_llama_cpp *lc = m->lc;
    const uint32_t n_ctx = opts && opts->n_ctx > 0 ? (uint32_t)opts->n_ctx : 128;
    const int32_t threads = opts && opts->n_threads > 0 ? opts->n_threads : 1;
    if (n == 0 || n > n_ctx) {
        mq_test_why(why, why_len, "%zu tokens do not fit a context of %u", n, n_ctx);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab) {
            mq_test_why(why, why_len, "token %d at %zu is outside the vocabulary of %d", tokens[i], i, m->n_vocab);
            return -1;
        }
    lc->log[0] = '\0';
    struct lc_context_params cp = lc->context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = cp.n_ubatch = n_ctx; /* the whole sequence is one micro-batch */
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.flash_attn_type = 0; /* disabled: the plain softmax(QK^T)V graph */
    cp.type_k = cp.type_v = opts && opts->kv_f16 ? LC_GGML_TYPE_F16 : LC_GGML_TYPE_F32;
    void *ctx = lc->init_from_model(m->model, cp);
    if (!ctx) {
        mq_test_why(why, why_len, "llama_init_from_model failed: %s", lc->log);
        return -1;
    }
    int rc = -1;
    void *adapter = NULL;
    int32_t *tok = malloc(n * sizeof *tok), *pos = malloc(n * sizeof *pos), *nseq = malloc(n * sizeof *nseq);
    int32_t seq0 = 0, **seq = malloc(n * sizeof *seq);
    int8_t *out = malloc(n);
    if (!tok || !pos || !nseq || !seq || !out) {
        mq_test_why(why, why_len, "out of memory");
        goto done;
    }
    /* the context must have taken what was asked (a layout mismatch would show here) */
    if (lc->n_ctx(ctx) < n_ctx || lc->n_batch(ctx) != n_ctx || lc->n_ubatch(ctx) != n_ctx || lc->n_seq_max(ctx) != 1 ||
        lc->n_threads(ctx) != threads || lc->n_threads_batch(ctx) != threads) {
        mq_test_why(why, why_len,
            "context parameters not applied (n_ctx %u n_batch %u n_ubatch %u n_seq_max %u threads %d/%d): "
            "llama_context_params layout mismatch", lc->n_ctx(ctx), lc->n_batch(ctx), lc->n_ubatch(ctx),
            lc->n_seq_max(ctx), lc->n_threads(ctx), lc->n_threads_batch(ctx));
        goto done;
    }
    if (opts && opts->lora) {
        /* llama-adapter.cpp: the file's general.architecture must be the model's, every pair's
         * shapes fit its base tensor; a failure is logged and NULL returned */
        adapter = lc->adapter_lora_init(m->model, opts->lora);
        float scale = opts->lora_scale;
        if (!adapter) {
            mq_test_why(why, why_len, "llama_adapter_lora_init(%s) failed: %s", opts->lora, lc->log);
            goto done;
        }
        if (lc->set_adapters_lora(ctx, &adapter, 1, &scale) != 0) {
            mq_test_why(why, why_len, "llama_set_adapters_lora failed: %s", lc->log);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        tok[i] = tokens[i];
        pos[i] = (int32_t)i;
        nseq[i] = 1;
        seq[i] = &seq0;
        out[i] = 1;
    }
    struct lc_batch b = {(int32_t)n, tok, NULL, pos, nseq, seq, out};
    int32_t r = lc->decode(ctx, b);
    if (r != 0) {
        mq_test_why(why, why_len, "llama_decode returned %d: %s", r, lc->log);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const float *row = lc->get_logits_ith(ctx, (int32_t)i);
        if (!row) {
            mq_test_why(why, why_len, "no logits for position %zu: %s", i, lc->log);
            goto done;
        }
        memcpy(logits + i * (size_t)m->n_vocab, row, (size_t)m->n_vocab * sizeof *row);
    }
    rc = 0;
done:
    free(tok);
    free(pos);
    free(nseq);
    free(seq);
    free(out);
    lc->free_ctx(ctx);
    if (adapter) lc->adapter_lora_free(adapter);
    return rc;
}

int mq_llama_cpp_kv(struct mq_llama_cpp_model *m, const struct mq_llama_cpp_kv_opts *o, struct mq_llama_cpp_kv *out,
                    char *why, size_t why_len)
{
    struct mq_llama_cpp *lc = m->lc;
    memset(out, 0, sizeof *out);
    lc->log[0] = '\0';
    lc->n_kv_lines = 0;
    lc->compute_mib = -1;
    struct lc_context_params cp = lc->context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_batch = cp.n_ubatch = o->n_ubatch ? o->n_ubatch : 256;
    cp.swa_full = o->swa_full;
    cp.n_seq_max = o->n_seq > 0 ? (uint32_t)o->n_seq : 1;
    cp.n_threads = cp.n_threads_batch = 1;
    cp.flash_attn_type = o->flash_attn ? 1 : 0; /* enabled / disabled */
    cp.type_k = o->type_k;
    cp.type_v = o->type_v;
    void *ctx = lc->init_from_model(m->model, cp);
    if (!ctx) {
        mq_test_why(why, why_len, "llama_init_from_model failed: %s", lc->log);
        return -1;
    }
    out->n_ctx = lc->n_ctx(ctx);
    if (o->on_context) o->on_context(o->user);
    lc->free_ctx(ctx);
    out->compute_mib = lc->compute_mib;
    /* "llama_kv_cache: size =    1.00 MiB (  1024 cells,   2 layers,  1/1 seqs), K (f16): ..., V (f16): ..." */
    for (int i = 0; i < lc->n_kv_lines || i == 0; i++) {
        double mib = 0;
        unsigned cells = 0, layers = 0, s1 = 0, s2 = 0;
        if (i >= lc->n_kv_lines ||
            sscanf(lc->kv_line[i], "llama_kv_cache: size = %lf MiB ( %u cells, %u layers, %u/%u seqs)", &mib, &cells,
                   &layers, &s1, &s2) != 5) {
            mq_test_why(why, why_len, "no KV cache size line in llama.cpp's log: '%s'", i < lc->n_kv_lines ? lc->kv_line[i] : "");
            return -1;
        }
        if (i == 0) out->mib = mib, out->cells = cells, out->layers = layers;
        else out->swa_mib = mib, out->swa_cells = cells, out->swa_layers = layers;
    }
    return 0;
}
