/*
** stwrite.h - development-only safetensors writers for fixtures, tests and benchmarks.
**
** Not the product's writer: these put exactly the bytes asked for (including broken ones) so
** every validation rule can be exercised, and write sparse files (header only, data a hole) so
** a 70B-shaped checkpoint costs a few kilobytes of disk, or dense ones with streamed data
** (tools/mkbigmodel.c) for benchmarks and memory tests.
*/
#ifndef MODELQ_STWRITE_H
#define MODELQ_STWRITE_H

#include <stddef.h>
#include <stdint.h>

/* [N u64 LE = header_len_field][header bytes][data]; returns 0 on success. */
int stw_write_raw(const char *path, uint64_t header_len_field, const void *header, size_t header_len,
                  const void *data, size_t data_len);

/* As stw_write_raw with N = header_len, then the file is extended to 8 + N + data_len as a hole. */
int stw_write_sparse(const char *path, const char *header, uint64_t data_len);

/* Llama-shaped checkpoint description for sparse test models. */
struct stw_llama {
    unsigned layers, hidden, ffn, vocab, heads, kv_heads;
    const char *dtype;   /* "F16" or "BF16" */
    unsigned shards;     /* >= 1; 1 writes model.safetensors, else an index + shards */
    int tied;            /* no lm_head.weight */
};

/* Writes config.json and the checkpoint into the existing folder `dir`. Returns 0 on success. */
int stw_write_llama_sparse(const char *dir, const struct stw_llama *spec);

/*
** Fills elements [first, first + n) of tensor `name` (n_elems elements in all, row-major) as
** little-endian values of the spec's dtype (2 bytes each for F16/BF16) into out.
*/
typedef void (*stw_fill_fn)(void *user, const char *name, uint64_t n_elems, uint64_t first, uint64_t n, void *out);

/* As stw_write_llama_sparse, but with real data: every tensor is streamed through `fill` in
** chunks of 4 MiB, so memory stays bounded whatever the model size. Returns 0 on success. */
int stw_write_llama_dense(const char *dir, const struct stw_llama *spec, stw_fill_fn fill, void *user);

/* Parameter count of that checkpoint (for checks). */
uint64_t stw_llama_params(const struct stw_llama *spec);

#endif
