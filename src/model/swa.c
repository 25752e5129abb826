/* swa.c - the families llama.cpp runs with sliding-window layers (see swa.h). */
#include "swa.h"

#include "model_impl.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static const struct mq_swa_family families[] = {
    {"gemma2", {"Gemma2ForCausalLM"}, {"gemma2"}, 2, 4096, 4096},
    {"gemma3", {"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"}, {"gemma3", "gemma3_text"}, 6, 0, 4096},
};

static bool listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n && names[i]; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

const struct mq_swa_family *mq_swa_family_of_gguf(const char *arch)
{
    for (size_t i = 0; arch && i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].gguf_arch, arch) == 0) return &families[i];
    return NULL;
}

const struct mq_swa_family *mq_swa_family_of_config(const char *architecture, const char *model_type)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        const struct mq_swa_family *f = &families[i];
        if (architecture && architecture[0] ? listed(f->hf_archs, 3, architecture)
                                            : model_type && listed(f->model_types, 3, model_type))
            return f;
    }
    return NULL;
}

uint64_t mq_swa_layers_by_period(uint64_t n_layers, uint64_t period)
{
    if (period == 0) return n_layers;
    /* per full period p - 1 sliding layers, then the first p - 1 of the rest */
    uint64_t rest = n_layers % period;
    return n_layers / period * (period - 1) + (rest < period - 1 ? rest : period - 1);
}

void mq_swa_record(struct mq_config *c, uint64_t window, uint64_t layers, uint64_t period)
{
    if (!window || !layers) return;
    c->sliding_window = window;
    c->swa_layers = layers;
    c->swa_period = (uint32_t)(period > UINT32_MAX ? UINT32_MAX : period);
}
