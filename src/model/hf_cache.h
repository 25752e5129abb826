/* hf_cache.h - private: a Hugging Face repository id resolved in the local cache (hf_cache.c). */
#ifndef MODELQ_HF_CACHE_H
#define MODELQ_HF_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "modelq/error.h"

/* Does `spec` look like "org/name" or "org/name@revision" (and nothing else)? */
bool mq_hf_cache_is_repo_id(const char *spec);

/* The snapshot folder of `spec` in the cache, into out[cap]; an error says where it looked. */
enum mq_status mq_hf_cache_resolve(const char *spec, char *out, size_t cap, struct mq_error *err);

#endif
