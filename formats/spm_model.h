/*
** spm_model.h - a SentencePiece tokenizer.model (a serialized sentencepiece.ModelProto).
**
** Only the fields a llama.cpp SPM vocabulary is built from are kept; every other field (and
** every extension, field >= 200) is skipped by its wire type. Byte layout (protobuf, proto2):
** a message is a sequence of (key, value) with key = varint(field << 3 | wire_type);
** wire type 0 varint (LEB128, at most 10 bytes), 1 fixed64, 2 varint length + bytes,
** 5 fixed32 (little-endian); 3/4 (groups) appear in no SentencePiece message.
**
**   ModelProto      1 pieces (repeated SentencePiece)   2 trainer_spec   3 normalizer_spec
**   SentencePiece   1 piece (string)   2 score (float, fixed32)   3 type (enum, default NORMAL)
**   TrainerSpec     3 model_type (1 UNIGRAM default, 2 BPE, 3 WORD, 4 CHAR)
**                   24 treat_whitespace_as_suffix   35 byte_fallback
**                   40 unk_id (0)   41 bos_id (1)   42 eos_id (2)   43 pad_id (-1)
**   NormalizerSpec  1 name   2 precompiled_charsmap (bytes)   3 add_dummy_prefix (true)
**                   4 remove_extra_whitespaces (true)   5 escape_whitespaces (true)
** (google/sentencepiece src/sentencepiece_model.proto; defaults in parentheses.) A field given
** twice keeps its last value, and an embedded message given twice is merged, as protobuf does.
**
** mq_spm_parse() checks the bytes (truncated varints, lengths beyond the buffer, wrong wire
** types, int32 values out of range, too many pieces) and what every SentencePiece model must
** satisfy: non-empty UTF-8 pieces without NUL, a known piece type, a finite score, the unk_id
** piece the one UNKNOWN piece, bos/eos/pad ids -1 or a piece, BYTE pieces named <0xHH>, and all
** 256 of them when byte_fallback. What llama.cpp can reproduce is the caller's decision
** (gguf_vocab.c). Every error is one line naming the file.
*/
#ifndef MODELQ_FORMATS_SPM_MODEL_H
#define MODELQ_FORMATS_SPM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"

enum mq_spm_type {
    MQ_SPM_NORMAL = 1,
    MQ_SPM_UNKNOWN = 2,
    MQ_SPM_CONTROL = 3,
    MQ_SPM_USER_DEFINED = 4,
    MQ_SPM_UNUSED = 5,
    MQ_SPM_BYTE = 6
};

enum mq_spm_model_type { MQ_SPM_UNIGRAM = 1, MQ_SPM_BPE = 2, MQ_SPM_WORD = 3, MQ_SPM_CHAR = 4 };

#define MQ_SPM_FILE_MAX (256u * 1024 * 1024) /* real models: Llama 2 0.5 MB, Gemma 3 4.7 MB */
#define MQ_SPM_PIECES_MAX (1u << 24)         /* as tokenizer.json vocabularies (gguf_vocab.c) */

struct mq_spm_piece {
    const char *text; /* NUL-terminated, in mq_spm_model.pool */
    uint32_t len;
    float score;
    int32_t type; /* enum mq_spm_type */
};

struct mq_spm_model {
    struct mq_spm_piece *pieces;
    uint32_t n_pieces;
    char *pool;
    int32_t model_type;
    int32_t unk_id, bos_id, eos_id, pad_id;
    bool byte_fallback, treat_whitespace_as_suffix;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    size_t charsmap_len;
    char normalizer_name[64]; /* cut to 63 bytes; "" when absent */
};

/* Parses `len` bytes of a tokenizer.model (`path` only names it in messages). On success the
** caller frees `m` with mq_spm_free; on failure `m` holds nothing to free. */
enum mq_status mq_spm_parse(const uint8_t *buf, size_t len, const char *path, struct mq_spm_model *m,
                            struct mq_error *err);

/* Reads and parses `path` (at most MQ_SPM_FILE_MAX bytes). */
enum mq_status mq_spm_read(const char *path, struct mq_spm_model *m, struct mq_error *err);

void mq_spm_free(struct mq_spm_model *m);

#endif
