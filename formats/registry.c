/* registry.c - the one table of file-format readers, and bidding between them. */
#include "format.h"

static const struct mq_reader_ops *const readers[] = {
    &mq_safetensors_reader,
    &mq_gguf_reader,
    &mq_pytorch_reader,
};

const struct mq_reader_ops *mq_reader_for(const uint8_t *head, size_t len, const char *path)
{
    const struct mq_reader_ops *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        int score = readers[i]->probe(head, len, path);
        if (score > best_score) {
            best = readers[i];
            best_score = score;
        }
    }
    return best;
}
