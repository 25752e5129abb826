/*
** bnbwrite.h - development-only writer of bitsandbytes-style safetensors files, for fixtures
** (tools/mkbnb.c) and tests.
**
** Not the product's writer (formats/bnb_write.c): a plain in-memory list of tensors written in
** name order with {"__metadata__": {"format": "pt"}}, so tests can also build broken files
** (replace or drop any entry). The quantized groups follow ../shared/docs/bitsandbytes.md
** sections 4.1, 4.2 and 5.2, with modelq's codecs (mq_quantize, mq_bnb_double_quant).
*/
#ifndef MODELQ_BNBWRITE_H
#define MODELQ_BNBWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"

struct bnbw;

/* An empty list; NULL when out of memory. */
struct bnbw *bnbw_new(void);
void bnbw_free(struct bnbw *w);

/* Adds (or replaces) tensor `name` with a copy of `nbytes` bytes. dtype: safetensors name.
** Returns 0 on success. */
int bnbw_add(struct bnbw *w, const char *name, const char *dtype, unsigned ndim, const uint64_t *shape,
             const void *data, size_t nbytes);
/* Drops tensor `name`; 0 when it existed. */
int bnbw_remove(struct bnbw *w, const char *name);
/* The stored bytes of `name` (editable in place), or NULL. */
uint8_t *bnbw_data(struct bnbw *w, const char *name, size_t *nbytes);

/*
** Quantizes x (float32, n = product of shape, row-major) as a bitsandbytes Linear4bit weight
** called `weight` ("P.weight"): adds P.weight (U8 [(n+1)/2, 1]), .absmax, .quant_map,
** .quant_state.bitsandbytes__nf4|fp4 and, with double_quant, .nested_absmax and
** .nested_quant_map. codec: MQ_CODEC_NF4 or MQ_CODEC_FP4; dtype: "bfloat16", "float16" or
** "float32" (recorded in the JSON). Returns 0 on success.
*/
int bnbw_add_4bit(struct bnbw *w, const char *weight, enum mq_codec codec, unsigned blocksize, bool double_quant,
                  const char *dtype, unsigned ndim, const uint64_t *shape, const float *x);

/* LLM.int8: P.weight (I8 [rows, cols]), P.SCB (F32 [rows]) and, when weight_format, the U8
** scalar P.weight_format = 0. `prefix` is the module path P. Returns 0 on success. */
int bnbw_add_int8(struct bnbw *w, const char *prefix, uint64_t rows, uint64_t cols, const float *x,
                  bool weight_format);

/* The quant_state JSON as bitsandbytes writes it (json.dumps: ", " and ": ", as_dict key order,
** nested_offset as Python's repr of the float32 widened). Returns its length (< cap), 0 if it
** does not fit. */
size_t bnbw_qstate_json(char *buf, size_t cap, const char *quant_type, unsigned blocksize, const char *dtype,
                        unsigned ndim, const uint64_t *shape, bool nested, float offset);

/* Python repr() of a double: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
void bnbw_py_repr(double v, char *buf, size_t cap);

/* Writes the safetensors file (tensors in name order, header padded with spaces to 8 bytes).
** Returns 0 on success. */
int bnbw_write(const struct bnbw *w, const char *path);

#endif
