/*
** llama_need.h - the pinned llama.cpp for a Criterion test: opened once per test process; when it
** cannot be loaded the test is skipped with the reason, or fails when $CI is set (CI installs it).
*/
#ifndef MODELQ_TEST_LLAMA_NEED_H
#define MODELQ_TEST_LLAMA_NEED_H

#include "ggml_ref.h"
#include "llama_cpp.h"

struct mq_llama_cpp *llama_cpp_or_skip(void);

/* For the llama-quantize comparisons: ggml (its GGUF reader and quantizers) and libllama's
 * llama_model_quantize, opened once per test process; the test is skipped with the reason (or
 * fails when $CI is set) when either cannot be loaded. */
const struct mq_ggml *llama_quantize_or_skip(void);

#endif
