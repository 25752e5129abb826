/*
** quantize_compare.h - two GGUFs of the same model, tensor for tensor, as the llama-quantize
** comparisons need them: modelq's file against llama.cpp's (llama_model_quantize), both read with
** ggml's own GGUF reader (gguf_dump.h), tensors matched by name (llama-quantize writes them sorted
** by name), each one's ggml type, shape, byte count and data hash compared, and general.file_type.
*/
#ifndef MODELQ_TEST_QUANTIZE_COMPARE_H
#define MODELQ_TEST_QUANTIZE_COMPARE_H

#include <stdbool.h>

#include "ggml_ref.h"

/*
** Returns how many of ref's tensors differ in ours (or are missing), logging each with `label`
** unless `quiet` (a negative control expects differences), and prints one summary line with the
** ggml types seen. A tensor count or file type that differs fails the test (not when quiet).
** `experts`, when not NULL, gets the number of ref's 3-D tensors (ne[2] > 1).
*/
int quantize_compare_files(const struct mq_ggml *G, const char *label, const char *ours, const char *ref, bool quiet,
                           int *experts);

#endif
