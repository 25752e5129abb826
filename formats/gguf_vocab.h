/*
** gguf_vocab.h - a Hugging Face tokenizer as the tokenizer.* metadata llama.cpp reads.
**
** Two tokenizer families are converted from tokenizer.json, both BPE models (and SentencePiece
** tokenizer.model files, see mq_gguf_vocab_from_spm_config below):
**
**   byte-level BPE (GPT-2, Llama 3, Qwen2: a ByteLevel pre-tokenizer, no byte_fallback)
**       tokenizer.ggml.model "gpt2", the merges, and tokenizer.ggml.pre named after the
**       pre-tokenizer configuration found in tokenizer.json (see mq_gguf_vocab_pre_names()):
**       llama.cpp picks its splitting regex by that name only, so an unknown configuration is
**       refused rather than guessed.
**
**   BPE with byte fallback (Llama 2, Mistral: tokenizer.json converted from SentencePiece,
**   "▁" for spaces, <0x00>..<0xFF> byte tokens)
**       tokenizer.ggml.model "llama", pre "default", add_space_prefix from the normalizer or
**       Metaspace pre-tokenizer (the forms accepted are rows of spm_forms in gguf_vocab.c: Llama 2,
**       Replace only, Gemma's Replace + Split(" "), Mistral's Metaspace), and synthesised scores. llama.cpp's SPM tokenizer merges the
**       adjacent pair whose concatenation is a token with the highest score (leftmost on ties)
**       and never looks at merges, while Hugging Face's BPE applies the merge of lowest rank
**       (leftmost on ties). With
**           score(t) = -(rank of the first merge whose result is t)
**           score(t) = -(number of merges) for every token no merge produces
**       both pick the same pair at every step provided (a) every split of a merged token into two
**       tokens is itself a merge and (b) a token's merges are ranked next to each other:
**       tokenizer.json files converted from SentencePiece models (Llama 2, Mistral) list their
**       merges exactly so. (Any score works for the tokens no merge produces - single characters,
**       bytes and added tokens are never the result of a bigram - and -(number of merges) keeps
**       unreachable multi-character tokens below every real merge.) Where (a) fails, as in a BPE
**       trained directly with byte_fallback, llama.cpp may merge a pair that is no merge; and two
**       overlapping pairs forming the same token ("ab"+"a" and "a"+"ba") are taken leftmost by
**       llama.cpp but by rank by Hugging Face - as between Hugging Face and SentencePiece itself.
**       tests/test_gguf_vocab.c checks the ids against llama.cpp itself.
**
** Token types (tokenizer.ggml.token_type): 1 normal, 2 unknown (the model's unk_token), 3
** control (special added tokens), 4 user-defined (non-special added tokens), 5 unused (the
** "[PAD<id>]" fill up to config vocab_size, and ids tokenizer.json leaves empty), 6 byte
** (<0xNN> tokens of a byte-fallback model).
*/
#ifndef MODELQ_FORMATS_GGUF_VOCAB_H
#define MODELQ_FORMATS_GGUF_VOCAB_H

#include <stdint.h>

#include "modelq/error.h"
#include "modelq/meta.h"

/*
** Reads model_dir/tokenizer.json (required) and, when present, tokenizer_config.json,
** config.json, generation_config.json and chat_template.jinja, and sets in `out`:
**   tokenizer.ggml.model, .pre (STRING); .tokens (ARRAY STRING, vocab_size entries);
**   .scores (ARRAY FLOAT32, "llama" only); .token_type (ARRAY INT32); .merges (ARRAY STRING);
**   .bos_token_id, .eos_token_id, .unknown_token_id, .padding_token_id (UINT32, when known);
**   .add_bos_token, .add_eos_token (BOOL, always); .add_space_prefix (BOOL, "llama" only);
**   tokenizer.chat_template (STRING) and tokenizer.chat_template.<name> when there are templates.
** Any tokenizer.* key already in `out` is removed first; other keys are left alone. On failure
** `out` is unchanged.
**
** vocab_size is config_vocab_size (the embedding rows), or the tokenizer's size when 0. A token
** id at or beyond config_vocab_size is an error; ids below it that tokenizer.json does not use
** become "[PAD<id>]" unused tokens.
**
** Special token ids come from tokenizer_config.json's bos_token/eos_token/unk_token/pad_token
** (looked up in the vocabulary), then config.json's and generation_config.json's *_token_id
** (first element of a list), the first source that names one winning; a byte-fallback model's
** unknown token defaults to model.unk_token. add_bos/add_eos come from tokenizer_config.json's
** add_bos_token/add_eos_token, else from tokenizer.json's TemplateProcessing post-processor.
*/
enum mq_status mq_gguf_vocab_from_hf(const char *model_dir, uint64_t config_vocab_size, struct mq_meta *out,
                                     struct mq_error *err);

/* The same with config.json already parsed (mq_config.json, or NULL when there is none): the
** converter's form, so config.json is read once. mq_gguf_vocab_from_hf reads it with
** mq_config_read_json (src/config.c), the one reader of config.json. */
struct cJSON;
enum mq_status mq_gguf_vocab_from_hf_config(const char *model_dir, const struct cJSON *config,
                                            uint64_t config_vocab_size, struct mq_meta *out, struct mq_error *err);

/*
** A SentencePiece tokenizer.model (formats/spm_model.h) as llama.cpp's converter writes it
** (convert_hf_to_gguf.py _create_vocab_sentencepiece + SpecialVocab): tokenizer.ggml.model
** "llama", pre "default", every piece with its score and type (USER_DEFINED pieces as NORMAL, as
** the converter writes them), "[PAD<id>]" (score -10000, unused) up to config_vocab_size, then
** added_tokens.json (user-defined, score -1000) and tokenizer_config.json added_tokens_decoder
** (control when special or looking special - "<|...|>", "<unused...>", "<pad>", "<mask>" ... -
** else user-defined with "▁" written " "; score -1000) over them; no merges. add_space_prefix is
** normalizer_spec.add_dummy_prefix. Special ids as for tokenizer.json, then trainer_spec's
** unk/bos/eos/pad ids; add_bos_token defaults to true when there is a BOS (llama.cpp's and
** transformers' default for these tokenizers). Refused with the reason: what llama.cpp's SPM
** tokenizer cannot reproduce (Unigram/WORD/CHAR models, a normalization map, remove_extra_whitespaces,
** whitespace as suffix, a byte without a token), a piece id at or beyond config_vocab_size.
** Added tokens with ids beyond the vocabulary are skipped, as the converter skips them.
*/
enum mq_status mq_gguf_vocab_from_spm_config(const char *model_dir, const struct cJSON *config,
                                             uint64_t config_vocab_size, struct mq_meta *out, struct mq_error *err);

/*
** Which tokenizer file a family converts: the `vocab` field of its row in gguf_families.c (the
** one place the precedence is set), from llama.cpp's converter's set_vocab of each model class:
**   MQ_VOCAB_JSON_ONLY    tokenizer.json (tokenizer.model is not read): TextModel's default
**   MQ_VOCAB_MODEL_FIRST  tokenizer.model when present, else tokenizer.json
**   MQ_VOCAB_GEMMA        the same, a tokenizer.model written with add_space_prefix false
**                         (Gemma 2, Gemma 3; a tokenizer.json keeps the prefix it declares)
*/
enum mq_vocab_rule { MQ_VOCAB_JSON_ONLY = 0, MQ_VOCAB_MODEL_FIRST, MQ_VOCAB_GEMMA };

/* The vocabulary of a model folder by `rule`. A folder with no file to convert is refused
** (MQ_E_UNSUPPORTED, "tokenizer-missing") naming --no-vocab; nothing is ever written as "none". */
enum mq_status mq_gguf_vocab_from_folder(const char *model_dir, const struct cJSON *config, uint64_t config_vocab_size,
                                         enum mq_vocab_rule rule, struct mq_meta *out, struct mq_error *err);

/* Comma-separated tokenizer.ggml.pre names whose configuration is recognised (for messages). */
const char *mq_gguf_vocab_pre_names(void);

#endif
