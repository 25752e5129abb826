/* hf_folder.c - the model-folder file names modelq reads and writes (hf_folder.h). */
#include "hf_folder.h"

#include <string.h>

const char *const mq_hf_side_files[MQ_HF_N_SIDE_FILES] = {
    "tokenizer.json",         "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json", "tokenizer.model",       "chat_template.jinja",
    "vocab.json",             "merges.txt",            "added_tokens.json",
};
const size_t mq_hf_n_side_files = sizeof mq_hf_side_files / sizeof mq_hf_side_files[0];

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool mq_hf_is_side_file(const char *name)
{
    for (size_t i = 0; i < MQ_HF_N_SIDE_FILES; i++)
        if (strcmp(name, mq_hf_side_files[i]) == 0) return true;
    return false;
}

static bool is_side_or_config(const char *name)
{
    return strcmp(name, "config.json") == 0 || mq_hf_is_side_file(name);
}

/* "model-00001-of-00003.safetensors": five digits, "-of-", five digits. */
static bool is_shard_name(const char *name)
{
    static const char pattern[] = "model-#####-of-#####.safetensors";
    if (strlen(name) != sizeof pattern - 1) return false;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '#' ? (name[i] < '0' || name[i] > '9') : name[i] != pattern[i]) return false;
    }
    return true;
}

bool mq_hf_is_written_name(const char *name)
{
    return is_side_or_config(name) || strcmp(name, "model.safetensors") == 0 ||
           strcmp(name, "model.safetensors.index.json") == 0 || is_shard_name(name);
}

bool mq_hf_is_checkpoint_name(const char *name)
{
    return is_side_or_config(name) || ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json");
}
