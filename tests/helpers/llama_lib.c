/* llama_lib.c - dlopen of libllama for vocabulary checks (see llama_lib.h). */
#include "llama_lib.h"

#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_tail.h"

#define LLAMA_DIR "tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

/*
** struct llama_model_params of llama.cpp v0.5.0's include/llama.h (the release node-llama-cpp
** 3.22.1 was built from), field for field. 80 bytes on x86-64; passed and returned by value.
*/
struct llama_model_params {
    void *devices;                     /* ggml_backend_dev_t *, NULL-terminated */
    const void *tensor_buft_overrides; /* const struct llama_model_tensor_buft_override * */
    int32_t n_gpu_layers;
    int32_t split_mode;                /* enum llama_split_mode (LAYER = 1) */
    int32_t load_mode;                 /* enum llama_load_mode (AUTO = -1) */
    int32_t lazy_mode;                 /* enum llama_lazy_mode (AUTO = 1) */
    int32_t main_gpu;
    const float *tensor_split;
    void *progress_callback;           /* llama_progress_callback */
    void *progress_callback_user_data;
    const void *kv_overrides;          /* const struct llama_model_kv_override * */
    bool vocab_only;
    bool check_tensors;
    bool use_extra_bufts;
    bool no_host;
    bool no_alloc;
    bool load_mtp;
};
_Static_assert(sizeof(struct llama_model_params) == 80, "llama_model_params is 80 bytes in llama.cpp v0.5.0");

typedef void (*log_cb)(int level, const char *text, void *user_data);

static struct {
    void (*backend_init)(void);
    struct llama_model_params (*default_params)(void);
    void *(*load_from_file)(const char *path, struct llama_model_params params);
    void (*model_free)(void *model);
    const void *(*get_vocab)(const void *model);
    int32_t (*tokenize)(const void *vocab, const char *text, int32_t text_len, int32_t *tokens, int32_t n_tokens_max,
                        bool add_special, bool parse_special);
    void (*log_set)(log_cb cb, void *user_data);
    int32_t (*n_tokens)(const void *vocab);
    int (*vocab_type)(const void *vocab);
    int32_t (*bos)(const void *vocab);
    int32_t (*eos)(const void *vocab);
    bool (*get_add_bos)(const void *vocab);
    bool (*get_add_eos)(const void *vocab);
    float (*get_score)(const void *vocab, int32_t id);
    const char *(*get_text)(const void *vocab, int32_t id);
} F;

/* The last few KiB of llama.cpp's log, for failure messages (its logging is otherwise silenced). */
static struct log_tail log_tail;

static void log_capture(int level, const char *text, void *user_data)
{
    (void)level;
    (void)user_data;
    log_tail_append(&log_tail, text);
}

static bool find_library(char *out, size_t cap)
{
    const char *env = getenv("MODELQ_LLAMA_LIB");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return true;
    }
    glob_t g;
    bool ok = false;
    if (glob(LLAMA_DIR "/libllama*.so*", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !ok; i++) {
            if (strstr(g.gl_pathv[i], "libllama-common")) continue; /* the C++ "common" helpers */
            snprintf(out, cap, "%s", g.gl_pathv[i]);
            ok = true;
        }
        globfree(&g);
    }
    if (!ok) snprintf(out, cap, "%s/libllama*.so", LLAMA_DIR);
    return ok;
}

bool mq_llama_open(struct mq_llama *l, char *why, size_t why_len)
{
    memset(l, 0, sizeof *l);
    if (!find_library(l->path, sizeof l->path)) {
        snprintf(why, why_len, "no %s; run tools/setup.sh (npm ci in tools/interop)", l->path);
        return false;
    }
    l->handle = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->handle) {
        snprintf(why, why_len, "cannot load %s (%s); run tools/setup.sh (npm ci in tools/interop)", l->path, dlerror());
        return false;
    }
    struct {
        const char *name;
        void *slot;
    } syms[] = {
        {"llama_backend_init", &F.backend_init},     {"llama_model_default_params", &F.default_params},
        {"llama_model_load_from_file", &F.load_from_file}, {"llama_model_free", &F.model_free},
        {"llama_model_get_vocab", &F.get_vocab},     {"llama_tokenize", &F.tokenize},
        {"llama_log_set", &F.log_set},               {"llama_vocab_n_tokens", &F.n_tokens},
        {"llama_vocab_type", &F.vocab_type},         {"llama_vocab_bos", &F.bos},
        {"llama_vocab_eos", &F.eos},                 {"llama_vocab_get_add_bos", &F.get_add_bos},
        {"llama_vocab_get_add_eos", &F.get_add_eos}, {"llama_vocab_get_score", &F.get_score},
        {"llama_vocab_get_text", &F.get_text},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(l->handle, syms[i].name);
        if (!p) {
            snprintf(why, why_len, "%s: missing symbol %s", l->path, syms[i].name);
            dlclose(l->handle);
            l->handle = NULL;
            return false;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    /* the defaults of v0.5.0's llama_model_default_params(): a different layout shows here */
    struct llama_model_params p = F.default_params();
    if (p.devices || p.n_gpu_layers != -1 || p.split_mode != 1 || p.load_mode != -1 || p.lazy_mode != 1 ||
        p.main_gpu != 0 || p.tensor_split || p.kv_overrides || p.vocab_only || p.check_tensors || !p.use_extra_bufts ||
        p.no_host || p.no_alloc || p.load_mtp) {
        snprintf(why, why_len,
                 "%s: llama_model_default_params() does not match the v0.5.0 struct layout (n_gpu_layers %d, split_mode %d, "
                 "load_mode %d, lazy_mode %d, main_gpu %d, use_extra_bufts %d)",
                 l->path, p.n_gpu_layers, p.split_mode, p.load_mode, p.lazy_mode, p.main_gpu, p.use_extra_bufts);
        dlclose(l->handle);
        l->handle = NULL;
        return false;
    }
    F.log_set(log_capture, NULL);
    F.backend_init();
    return true;
}

void *mq_llama_load_vocab(struct mq_llama *l, const char *gguf_path, char *why, size_t why_len)
{
    (void)l;
    struct llama_model_params p = F.default_params();
    p.vocab_only = true;
    log_tail_clear(&log_tail);
    void *model = F.load_from_file(gguf_path, p);
    if (!model) snprintf(why, why_len, "llama_model_load_from_file(%s) failed; llama.cpp log:\n%s", gguf_path, log_tail.buf);
    return model;
}

void mq_llama_free_model(struct mq_llama *l, void *model)
{
    (void)l;
    if (model) F.model_free(model);
}

int32_t mq_llama_tokenize(struct mq_llama *l, void *model, const char *text, size_t len, bool add_special,
                          int32_t *ids, int32_t cap)
{
    (void)l;
    return F.tokenize(F.get_vocab(model), text, (int32_t)len, ids, cap, add_special, true);
}

int32_t mq_llama_n_tokens(struct mq_llama *l, void *model) { (void)l; return F.n_tokens(F.get_vocab(model)); }
int mq_llama_vocab_type(struct mq_llama *l, void *model) { (void)l; return F.vocab_type(F.get_vocab(model)); }
int32_t mq_llama_bos(struct mq_llama *l, void *model) { (void)l; return F.bos(F.get_vocab(model)); }
int32_t mq_llama_eos(struct mq_llama *l, void *model) { (void)l; return F.eos(F.get_vocab(model)); }
bool mq_llama_add_bos(struct mq_llama *l, void *model) { (void)l; return F.get_add_bos(F.get_vocab(model)); }
bool mq_llama_add_eos(struct mq_llama *l, void *model) { (void)l; return F.get_add_eos(F.get_vocab(model)); }
float mq_llama_score(struct mq_llama *l, void *model, int32_t id) { (void)l; return F.get_score(F.get_vocab(model), id); }
const char *mq_llama_text(struct mq_llama *l, void *model, int32_t id) { (void)l; return F.get_text(F.get_vocab(model), id); }
