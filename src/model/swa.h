/*
** swa.h - private: which layers llama.cpp runs with sliding-window attention (SWA), per family.
**
** llama.cpp gives a model with sliding layers two KV caches (llama_kv_cache_iswa): the full
** layers keep a cell for every token of the context, the sliding layers only for the window plus
** one micro-batch (see estimate.h for the sizes). Whether a family slides, its window and which
** layers is each architecture's loader (llama.cpp src/models/<arch>.cpp, load_arch_hparams):
**
**   gemma2  window {a}.attention.sliding_window, default 4096; period 2 (every other layer)
**   gemma3  window {a}.attention.sliding_window, none without the key (then no layer slides);
**           period 6 (five of six)
**
** A period p (llama_hparams::set_swa_pattern, dense_first false): layer il slides when p == 0 or
** il % p < p - 1, i.e. the last layer of every p is full, p = 1 none. A GGUF's
** {a}.attention.sliding_window_pattern replaces the period: a scalar is the period, an array
** (BOOL or integers) says per layer, non-zero = sliding (llama_model_base::load_swa_pattern).
**
** Every other family keeps all layers full in llama.cpp, whatever its config says: Phi-3's
** sliding_window is switched off by the loader ("Phi SWA is currently disabled"), Mistral's and
** Qwen's (use_sliding_window) are not read. The same table serves config.json (src/model/config.c,
** through the converter's choice of architecture) and GGUF metadata (formats/gguf_config.c).
*/
#ifndef MODELQ_SWA_H
#define MODELQ_SWA_H

#include <stdint.h>

struct mq_swa_family {
    const char *gguf_arch;        /* general.architecture */
    const char *hf_archs[3];      /* config.json architectures[0] llama.cpp's converter writes as gguf_arch */
    const char *model_types[3];   /* or, without architectures, config.json model_type */
    uint32_t period;              /* llama.cpp's default period */
    uint64_t gguf_window;         /* the window without the GGUF key; 0 = no sliding layers */
    uint64_t hf_window;           /* the window without config.json's sliding_window (transformers' default) */
};

/* The family of a GGUF architecture name, or NULL (no sliding layers). */
const struct mq_swa_family *mq_swa_family_of_gguf(const char *arch);
/* The family of config.json's architectures[0] (or, when that is empty, model_type), or NULL. */
const struct mq_swa_family *mq_swa_family_of_config(const char *architecture, const char *model_type);
/* How many of n_layers layers slide with period p (see above). */
uint64_t mq_swa_layers_by_period(uint64_t n_layers, uint64_t period);

#endif /* MODELQ_SWA_H */
