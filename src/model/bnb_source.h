/*
** bnb_source.h - private: the elements of a bitsandbytes logical tensor (mq_tensor.bnb, set by
** formats/bnb_read.c) as float32, for the conversion pipeline and tests.
*/
#ifndef MODELQ_BNB_SOURCE_H
#define MODELQ_BNB_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "model_impl.h"

/*
** Elements [first, first + n) (flat, row-major) of tensor `t`, which must have t->bnb, into dst:
** what bitsandbytes' dequantization gives in the tensor's dtype, widened to float32.
**   NF4/FP4  absmax[b] = F32 absmax, or with double quant map[q[b]] * nested_absmax[b/256] +
**            offset (float32, the stored nested_quant_map as map); element i = code_book[nibble]
**            * absmax[i / blocksize] (high nibble = even i), float32;
**   INT8_ROW element (r, j) = q * SCB[r] * 7.874015718698502e-3f (float32, left to right);
** then rounded (RNE) to t->dtype: BF16 / F16 as bitsandbytes' dequantize_4bit and transformers'
** int8 dequantization return, F32 unchanged. Any range: only the packed bytes, absmax / codes /
** nested entries or SCB rows that cover it are read (bounded preads, about 80 KB of scratch).
*/
enum mq_status mq_bnb_read_f32(const struct mq_model *m, size_t t, uint64_t first, size_t n, float *dst,
                               struct mq_error *err);

#endif /* MODELQ_BNB_SOURCE_H */
