/* llama_quantize.c - llama_model_quantize from the pinned libllama (see llama_quantize.h). */
#include "llama_quantize.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama_lib.h"
#include "log_tail.h"

/* include/llama.h of the release, as laid out by its llama_model_quantize_default_params() */
struct llama_model_quantize_params {
    int32_t nthread;              /* <= 0: hardware_concurrency */
    int32_t ftype;                /* enum llama_ftype */
    int32_t output_tensor_type;   /* enum ggml_type; GGML_TYPE_COUNT = no override */
    int32_t token_embedding_type; /* enum ggml_type; GGML_TYPE_COUNT = no override */
    bool allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run;
    const void *imatrix;          /* const struct llama_model_imatrix_data * */
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    uint8_t release_tail[8];      /* written by the defaults (00 00 00 00 02 00 00 00); kept */
};
_Static_assert(sizeof(struct llama_model_quantize_params) == 64, "llama_model_quantize_params layout");
_Static_assert(offsetof(struct llama_model_quantize_params, allow_requantize) == 16, "bools at 16");
_Static_assert(offsetof(struct llama_model_quantize_params, imatrix) == 24, "pointers at 24");

enum { GGML_TYPE_COUNT_RELEASE = 43, LLAMA_FTYPE_MOSTLY_Q8_0 = 7 };

typedef void (*log_cb)(int level, const char *text, void *user_data);

static struct mq_llama L;
static bool opened;
static struct {
    struct llama_model_quantize_params (*defaults)(void);
    uint32_t (*quantize)(const char *in, const char *out, const struct llama_model_quantize_params *p);
    void (*log_set)(log_cb cb, void *user_data);
} F;

static struct log_tail log_tail;
static long imatrix_seen; /* N of the last "have importance matrix data with N entries", -1: none */

/* keeps the last few KiB of llama.cpp's log for failure messages */
static void log_capture(int level, const char *text, void *user_data)
{
    (void)level, (void)user_data;
    const char *im = strstr(text, "have importance matrix data with ");
    if (im) imatrix_seen = strtol(im + strlen("have importance matrix data with "), NULL, 10);
    log_tail_append(&log_tail, text);
}

bool mq_llama_quantize_open(char *why, size_t why_len)
{
    if (opened) return true;
    if (!mq_llama_open(&L, why, why_len)) return false;
    struct {
        const char *name;
        void *slot;
    } syms[] = {{"llama_model_quantize_default_params", &F.defaults},
                {"llama_model_quantize", &F.quantize},
                {"llama_log_set", &F.log_set}};
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(L.handle, syms[i].name);
        if (!p) {
            snprintf(why, why_len, "%s: missing symbol %s", L.path, syms[i].name);
            return false;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    struct llama_model_quantize_params d = F.defaults();
    static const uint8_t tail[8] = {0, 0, 0, 0, 2, 0, 0, 0};
    if (d.nthread != 0 || d.ftype != LLAMA_FTYPE_MOSTLY_Q8_0 || d.output_tensor_type != GGML_TYPE_COUNT_RELEASE ||
        d.token_embedding_type != GGML_TYPE_COUNT_RELEASE || d.allow_requantize || !d.quantize_output_tensor ||
        d.only_copy || d.pure || d.keep_split || d.dry_run || d.imatrix || d.kv_overrides || d.tt_overrides ||
        d.prune_layers || memcmp(d.release_tail, tail, sizeof tail) != 0) {
        snprintf(why, why_len, "%s: llama_model_quantize_default_params() is not the expected layout/defaults",
                 L.path);
        return false;
    }
    F.log_set(log_capture, NULL);
    opened = true;
    return true;
}

int mq_llama_quantize_run(const char *in, const char *out, int ftype, int nthread, char *why, size_t why_len)
{
    return mq_llama_quantize_run_imatrix(in, out, ftype, nthread, NULL, why, why_len);
}

int mq_llama_quantize_run_imatrix(const char *in, const char *out, int ftype, int nthread,
                                  const struct mq_llama_imatrix *entries, char *why, size_t why_len)
{
    /* the release's struct llama_model_imatrix_data {const char *name; const float *data; size_t size;} */
    _Static_assert(sizeof(struct mq_llama_imatrix) == 24, "llama_model_imatrix_data layout");
    struct llama_model_quantize_params p = F.defaults();
    p.ftype = ftype;
    p.nthread = nthread;
    p.imatrix = entries;
    long n_entries = 0;
    for (const struct mq_llama_imatrix *e = entries; e && e->name; e++) n_entries++;
    log_tail_clear(&log_tail);
    imatrix_seen = -1;
    uint32_t rc = F.quantize(in, out, &p);
    if (rc != 0) snprintf(why, why_len, "llama_model_quantize(%s, ftype %d) = %u: %s", in, ftype, rc, log_tail.buf);
    else if (entries && imatrix_seen != n_entries) {
        snprintf(why, why_len, "llama_model_quantize(%s, ftype %d): passed %ld imatrix entries, its log says %ld", in,
                 ftype, n_entries, imatrix_seen);
        return -1;
    }
    return (int)rc;
}
