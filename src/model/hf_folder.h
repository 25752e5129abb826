/*
** hf_folder.h - private: the files of a Hugging Face model folder that modelq reads or writes.
**
** One table, used by three parts that must agree: the bitsandbytes writer copies these side files
** into its output folder; the output rules (outpath.c) protect them in an input folder (an -o or
** --report naming one is refused) and recognise them as modelq's own when an existing output
** folder is about to be replaced.
*/
#ifndef MODELQ_HF_FOLDER_H
#define MODELQ_HF_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

/* Tokenizer and generation files that sit beside config.json, copied byte for byte. */
#define MQ_HF_N_SIDE_FILES 9
extern const char *const mq_hf_side_files[MQ_HF_N_SIDE_FILES];
extern const size_t mq_hf_n_side_files;

/* Is `name` one of mq_hf_side_files? */
bool mq_hf_is_side_file(const char *name);

/* A name modelq writes into a bitsandbytes output folder: config.json, a side file,
** model.safetensors, model-NNNNN-of-NNNNN.safetensors or model.safetensors.index.json. */
bool mq_hf_is_written_name(const char *name);

/*
** Was the safetensors file `name` in the folder open as `dirfd` written by modelq? modelq's
** shards open with {"__metadata__":{ and carry "modelq.tensor_xxh3" in its first bytes (every
** version); a downloaded checkpoint does not. Reads at most 8 + 512 bytes.
*/
bool mq_hf_is_modelq_shard(int dirfd, const char *name);

/* A name that is part of a checkpoint in an input folder: config.json, a side file, any
** *.safetensors or *.safetensors.index.json. (Not *.gguf: a GGUF beside a safetensors checkpoint
** is usually an earlier output, which a run may replace; a GGUF input is protected as an input.) */
bool mq_hf_is_checkpoint_name(const char *name);

#endif
