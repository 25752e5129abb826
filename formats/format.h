/*
** format.h - how a file format plugs into modelq.
**
** Each reader exports one `const struct mq_reader_ops`; formats/registry.c holds the only table
** that names them all. Detection works by bidding (libarchive style): every reader scores the
** first bytes of a file and its path, and the highest non-zero score reads it.
*/
#ifndef MODELQ_FORMAT_H
#define MODELQ_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "model_build.h"

#define MQ_PROBE_BYTES 64

struct mq_reader_ops {
    const char *name;
    /* 0 = not mine ... 100 = certainly mine. `head` holds up to MQ_PROBE_BYTES first bytes. */
    int (*probe)(const uint8_t *head, size_t len, const char *path);
    /*
    ** Validates the file at `path` and appends it and its tensors to `m` (tensor offsets absolute).
    ** Errors name `path` and, where there is one, the tensor.
    */
    enum mq_status (*read_file)(struct mq_model *m, const char *path, struct mq_error *err);
};

extern const struct mq_reader_ops mq_safetensors_reader;
extern const struct mq_reader_ops mq_gguf_reader;
extern const struct mq_reader_ops mq_pytorch_reader;

/* The reader that bids highest for this file, or NULL. */
const struct mq_reader_ops *mq_reader_for(const uint8_t *head, size_t len, const char *path);

/*
** bitsandbytes modules (bnb_read.c): after a safetensors checkpoint and its config.json are
** loaded, each NF4/FP4/LLM.int8 group of entries becomes one logical tensor with `bnb` set.
*/
enum mq_status mq_bnb_read(struct mq_model *m, struct mq_error *err);

/* A sharded safetensors checkpoint from its model.safetensors.index.json, or a sharded PyTorch one
** from its pytorch_model.bin.index.json (same JSON; the shards are read by `shard_reader`)
** (safetensors_index.c). */
enum mq_status mq_safetensors_read_index(struct mq_model *m, const char *index_path,
                                         const struct mq_reader_ops *shard_reader, struct mq_error *err);

/*
** FP8 weights (fp8_read.c): after a safetensors checkpoint and its config.json are loaded, each
** F8_E4M3 / F8_E5M2 tensor (and its P.weight_scale_inv, if any) becomes one logical F32 tensor
** with `fp8` set.
*/
enum mq_status mq_fp8_read(struct mq_model *m, struct mq_error *err);

struct mq_writer_ops; /* modelq/plugin.h */
/* Writer registry (formats/writers.c): by --format name, or by the output path's extension. */
const struct mq_writer_ops *mq_writer_by_name(const char *name);
const struct mq_writer_ops *mq_writer_for_path(const char *path);
/* "gguf" ... for messages */
const char *mq_writer_names(void);
/* The Hugging Face architectures the GGUF writer maps (formats/gguf_families.c), ", "-separated. */
const char *mq_gguf_architecture_list(void);

#endif
