/* hf_folder.c - the model-folder file names modelq reads and writes (hf_folder.h). */
#include "hf_folder.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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

bool mq_hf_is_modelq_shard(int dirfd, const char *name)
{
    static const char head[] = "{\"__metadata__\":{";
    static const char key[] = "\"modelq.tensor_xxh3\":\"";
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return false;
    char buf[8 + 512 + 1];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n < 8 + (ssize_t)sizeof head) return false;
    buf[n] = '\0';
    const char *json = buf + 8; /* after the u64 header length */
    return memcmp(json, head, sizeof head - 1) == 0 && memchr(json, '\0', (size_t)(n - 8)) == NULL &&
           strstr(json, key) != NULL;
}
