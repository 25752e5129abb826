/*
** modelq/quant.h - quantizing float32 data with the codecs of modelq/codec.h.
**
** Typical use for one tensor (streaming, bounded memory):
**   1. mq_range_init(&rc); for each chunk: mq_range_scan(&rc, codec, params, chunk, n);
**      mq_range_finish(&rc, tensor_name, &err) refuses NaN/Inf, values whose f16/bf16 output
**      would overflow, and values whose block would not survive its fp16 scale, naming the
**      tensor, the first flat index and the count.
**   2. for each chunk: mq_quantize(codec, params, chunk, n, row_len, &out, &err), advancing the
**      out pointers by mq_codec_data_bytes() / mq_codec_side_count() of the chunk.
**   3. NF4/FP4 with params.double_quant: mq_bnb_double_quant() over the whole absmax array.
** Chunks must be whole rows (per-row codecs) or whole blocks (flat codecs), except the last.
*/
#ifndef MODELQ_QUANT_H
#define MODELQ_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/error.h"
#include "modelq/export.h"

/* Output (quantize) or input (dequantize) buffers of one chunk; see codec.h for the layout. */
struct mq_qbuf {
    uint8_t *data;   /* mq_codec_data_bytes(n) bytes */
    float *scales;   /* mq_codec_side_count(n) floats (NF4/FP4 absmax, INT8_ROW SCB, INT8_ASYM scale) */
    int8_t *zeros;   /* INT8_ASYM zero points, mq_codec_side_count(n) entries */
};

/*
** Quantizes n float32 values (rows of row_len; row_len 0 = one row). `fast` selects the fast
** kernel (byte-identical to the reference). Fails with MQ_E_USAGE when n/row_len do not fit the
** codec's geometry (per-row codecs need row_len % block == 0 and n % row_len == 0; bitsandbytes
** blocks must be even and >= 2) or a needed buffer is NULL.
*/
MQ_API enum mq_status mq_quantize(enum mq_codec c, const struct mq_codec_params *params, const float *src,
                           size_t n, size_t row_len, const struct mq_qbuf *out, bool fast,
                           struct mq_error *err);

/* Inverse of mq_quantize (same geometry rules); writes n floats to dst. */
MQ_API enum mq_status mq_dequantize(enum mq_codec c, const struct mq_codec_params *params,
                             const struct mq_qbuf *in, size_t n, size_t row_len, float *dst,
                             struct mq_error *err);

/* ---- values that do not fit ---- */

/*
** Streaming range check. A value is bad when it is NaN or +-Inf; or, for codecs that store
** elements in a narrower float (codec row elem_overflow: F16, BF16, INT8_ROW's fp16 cast), when
** it rounds to an infinity there; or, for ggml codecs with fp16 block scales, when it lies in a
** block that would not be stored faithfully and |x| > 65504 itself (the values that push the
** scale over). Scales cannot overflow while a block's max|x| <= 65504, so only such blocks are
** quantized (reference kernel, scratch buffer) and dequantized: every value must come back
** finite and within max|x|/2 (an overflowing scale gives Inf/NaN; an overflowing K-quant search
** zeroes the block). NF4/FP4 with double quantization refuse |x| >= 2^127 (their absmax would
** come back infinite). Blocks of tiny values may still quantize to zero (fp16 scales underflow),
** as llama-quantize does.
*/
struct mq_range_check {
    uint64_t seen;        /* values scanned so far (the flat index of the next chunk) */
    uint64_t bad;         /* bad values found */
    uint64_t first_bad;   /* flat index of the first bad value (valid when bad > 0) */
    float first_value;    /* that value */
    uint64_t nonfinite;   /* of which NaN/Inf */
    float limit;          /* codecs without fp16 scales: |x| from which a value does not fit */
};

MQ_API void mq_range_init(struct mq_range_check *rc);
/* Scans the next n values of a tensor (chunking as for mq_quantize; row_len as there). */
MQ_API void mq_range_scan(struct mq_range_check *rc, enum mq_codec c, const struct mq_codec_params *params,
                   const float *x, size_t n, size_t row_len);
/* MQ_OK when no bad value was seen, else MQ_E_RANGE (check "value-range") naming the tensor. */
MQ_API enum mq_status mq_range_finish(const struct mq_range_check *rc, const char *tensor, enum mq_codec c,
                               struct mq_error *err);

/* ---- bitsandbytes helpers ---- */

#define MQ_BNB_NESTED_BLOCK 256u

MQ_API float mq_nf4_value(unsigned code);      /* NF4 code book entry (exact float32) */
MQ_API float mq_nf4_threshold(unsigned i);     /* midpoint between codes i and i+1, i < 15 */
MQ_API float mq_fp4_value(unsigned code);      /* FP4 code book entry (/12 normalized) */
MQ_API float mq_bnb_dynamic_value(unsigned code); /* the signed 8-bit dynamic map, code 0..255 */
MQ_API void mq_bnb_dynamic_map(float out[256]);   /* all 256 entries (written as nested_quant_map) */

/*
** Double quantization of nb absmax values: offset = float32 mean (summed in double),
** c = absmax - offset, blocks of 256: nested_absmax[b] = max|c|, qabs[i] = nearest dynamic-map
** index of c*(1/nested_absmax) (ties to the lower index; an all-equal block gives index 0).
** nested_absmax has ceil(nb/256) entries.
*/
MQ_API void mq_bnb_double_quant(const float *absmax, size_t nb, uint8_t *qabs, float *nested_absmax,
                         float *offset);
/* absmax[i] = dyn[qabs[i]] * nested_absmax[i/256] + offset, in float32. */
MQ_API void mq_bnb_double_dequant(const uint8_t *qabs, const float *nested_absmax, float offset, size_t nb,
                           float *absmax);

/* ---- SIMD selection ---- */

/* "avx2+f16c" or "portable": what the fast kernels use on this machine. */
MQ_API const char *mq_quant_simd_name(void);
/* Tests/benchmarks: -1 = automatic (default), 0 = force portable, 1 = use SIMD if the CPU has it. */
MQ_API void mq_quant_set_simd(int mode);

#endif /* MODELQ_QUANT_H */
