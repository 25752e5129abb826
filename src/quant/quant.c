/*
** quant.c - the public quantize/dequantize entry points (geometry checks, kernel dispatch) and
** the streaming "values that do not fit" check (see modelq/quant.h).
*/
#include "modelq/quant.h"

#include <inttypes.h>

#include "qcommon.h"

static enum mq_status check_geometry(enum mq_codec c, const struct mq_codec_params *params, size_t n,
                                     size_t *row_len, uint32_t *block, struct mq_error *err)
{
    *block = 0; /* set on every path, the error ones too (gcc 12 -O3 cannot prove the callers never read it) */
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci) return MQ_FAIL(err, MQ_E_USAGE, "codec", "unknown codec %d", (int)c);
    if (*row_len == 0) *row_len = n;
    uint32_t blk = mq_codec_block(c, params);
    if (blk == 0) return MQ_FAIL(err, MQ_E_USAGE, "block-size", "%s: block size 0", ci->name);
    if ((c == MQ_CODEC_NF4 || c == MQ_CODEC_FP4) && (blk & 1))
        return MQ_FAIL(err, MQ_E_USAGE, "block-size", "%s: block size %" PRIu32 " must be even", ci->name, blk);
    if (!ci->flat_blocks) {
        if (*row_len && *row_len % ci->block_elems != 0)
            return MQ_FAIL(err, MQ_E_USAGE, "row-block", "row length %zu is not a multiple of %s's block of %u",
                           *row_len, ci->name, ci->block_elems);
        if (*row_len && n % *row_len != 0)
            return MQ_FAIL(err, MQ_E_USAGE, "whole-rows", "%s: %zu values are not whole rows of %zu", ci->name,
                           n, *row_len);
    }
    *block = blk;
    return MQ_OK;
}

static bool needs_scales(enum mq_codec c)
{
    return c == MQ_CODEC_NF4 || c == MQ_CODEC_FP4 || c == MQ_CODEC_INT8_ROW || c == MQ_CODEC_INT8_ASYM;
}

enum mq_status mq_quantize(enum mq_codec c, const struct mq_codec_params *params, const float *src,
                           size_t n, size_t row_len, const struct mq_qbuf *out, bool fast,
                           struct mq_error *err)
{
    uint32_t block;
    MQ_TRY(check_geometry(c, params, n, &row_len, &block, err));
    if (n == 0) return MQ_OK;
    if (!src || !out || !out->data || (needs_scales(c) && !out->scales) ||
        (c == MQ_CODEC_INT8_ASYM && !out->zeros))
        return MQ_FAIL(err, MQ_E_USAGE, "buffers", "%s: missing input or output buffer", mq_codec_info(c)->name);
    const struct mq_codec_info *ci = mq_codec_info(c);
    (fast ? ci->quantize_fast : ci->quantize_ref)(src, n, row_len, block, out->data, out->scales, out->zeros);
    return MQ_OK;
}

enum mq_status mq_dequantize(enum mq_codec c, const struct mq_codec_params *params,
                             const struct mq_qbuf *in, size_t n, size_t row_len, float *dst,
                             struct mq_error *err)
{
    uint32_t block;
    MQ_TRY(check_geometry(c, params, n, &row_len, &block, err));
    if (n == 0) return MQ_OK;
    if (!dst || !in || !in->data || (needs_scales(c) && !in->scales) || (c == MQ_CODEC_INT8_ASYM && !in->zeros))
        return MQ_FAIL(err, MQ_E_USAGE, "buffers", "%s: missing input or output buffer", mq_codec_info(c)->name);
    mq_codec_info(c)->dequantize(in->data, in->scales, in->zeros, n, row_len, block, dst);
    return MQ_OK;
}

/* ---- values that do not fit ---- */

void mq_range_init(struct mq_range_check *rc) { memset(rc, 0, sizeof *rc); }

static void note_bad(struct mq_range_check *rc, uint64_t index, float v, bool nonfinite)
{
    if (rc->bad == 0) {
        rc->first_bad = index;
        rc->first_value = v;
    }
    rc->bad++;
    if (nonfinite) rc->nonfinite++;
}

/*
** One block of an fp16-scale ggml codec whose max|x| exceeds 65504: quantized with the reference
** kernel (the fast kernels give the same bytes) and dequantized. It is stored faithfully when
** every value comes back finite and within half the block's max|x|. Every overflow makes one of
** the two fail: an fp16 scale or min that rounds to Inf gives Inf/NaN values, and a search whose
** float32 intermediates overflow (Q6_K's sums of x^2 from ~3e17, giving scale 0) zeroes the block
** or the sub-block holding the largest values, an error of max|x|. A faithful encoding errs far
** less: at most a few level steps of about max|x|/8 for the 4-bit codecs (see test_range_checks).
*/
static bool block_round_trips(const struct mq_codec_info *ci, const float *x, uint32_t blk, float amax)
{
    uint8_t q[256]; /* the largest ggml block: Q6_K, 210 bytes */
    float y[256];
    ci->quantize_ref(x, blk, blk, blk, q, NULL, NULL);
    ci->dequantize(q, NULL, NULL, blk, blk, blk, y);
    for (uint32_t i = 0; i < blk; i++) {
        if (!(fabsf(y[i]) <= 3.402823466e38f)) return false;
        if (!(fabsf(y[i] - x[i]) <= 0.5f * amax)) return false; /* Inf difference: bad too */
    }
    return true;
}

/*
** |x| from which a value does not fit a codec without fp16 block scales: the element type's
** overflow (codec row), or for NF4/FP4 with double quantization 2^127. Their absmax comes back
** as dyn[q] * nested_absmax + offset with |dyn| <= 1, nested_absmax <= max(absmax) and
** 0 <= offset <= max(absmax), so up to twice the largest absmax: finite only below 2^127.
*/
static float elem_limit(enum mq_codec c, const struct mq_codec_info *ci, const struct mq_codec_params *params)
{
    if ((c == MQ_CODEC_NF4 || c == MQ_CODEC_FP4) && params && params->double_quant) return 0x1p127f;
    return ci->elem_overflow > 0 ? ci->elem_overflow : INFINITY;
}

/* Whether some |x[i]| is not below `bound` (or is NaN): the scan's fast first pass over a chunk,
 * which in a healthy model finds nothing, so the exact per-element and per-block checks below run
 * only on chunks that hold a suspect value. */
static bool any_abs_not_below_portable(const float *x, size_t n, float bound)
{
    bool hit = false;
    for (size_t i = 0; i < n; i++) hit |= !(fabsf(x[i]) < bound);
    return hit;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static bool any_abs_not_below_avx2(const float *x, size_t n, float bound)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), b = _mm256_set1_ps(bound);
    __m256 hit0 = _mm256_setzero_ps(), hit1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        /* _CMP_NLT_UQ: not (|x| < bound), true for NaN too */
        hit0 = _mm256_or_ps(hit0, _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), b, _CMP_NLT_UQ));
        hit1 = _mm256_or_ps(hit1, _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8)), b, _CMP_NLT_UQ));
    }
    return _mm256_movemask_ps(_mm256_or_ps(hit0, hit1)) != 0 || any_abs_not_below_portable(x + i, n - i, bound);
}
#endif

static bool any_abs_not_below(const float *x, size_t n, float bound)
{
#if defined(__x86_64__)
    if (mq_cpu_avx2()) return any_abs_not_below_avx2(x, n, bound);
#endif
    return any_abs_not_below_portable(x, n, bound);
}

void mq_range_scan(struct mq_range_check *rc, enum mq_codec c, const struct mq_codec_params *params,
                   const float *x, size_t n, size_t row_len)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    (void)row_len;
    if (!ci) return;
    if (!ci->fp16_scales) {
        /* element types: finite, and below the codec's overflow (F16, BF16, INT8_ROW, NF4/FP4-dq) */
        const float lim = elem_limit(c, ci, params);
        rc->limit = lim;
        if (!any_abs_not_below(x, n, lim)) { /* nothing at or above lim, no NaN */
            rc->seen += n;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            bool nonfinite = !(a <= 3.402823466e38f);
            if (nonfinite || a >= lim) note_bad(rc, rc->seen + i, x[i], nonfinite);
        }
        rc->seen += n;
        return;
    }
    /* fp16-scale ggml codecs: blocks lie within rows, and n is whole rows, so whole blocks. A chunk
     * whose |x| are all finite and <= MQ_F16_MAX passes every block check below. */
    if (!any_abs_not_below(x, n, nextafterf(MQ_F16_MAX, INFINITY))) {
        rc->seen += n;
        return;
    }
    const uint32_t blk = ci->block_elems;
    for (size_t lo = 0; lo < n; lo += blk) {
        size_t len = n - lo < blk ? n - lo : blk;
        float amax = 0.0f;
        bool any_nonfinite = false;
        for (size_t i = lo; i < lo + len; i++) {
            float a = fabsf(x[i]);
            if (!(a <= 3.402823466e38f)) any_nonfinite = true;
            else if (a > amax) amax = a;
        }
        if (any_nonfinite) {
            for (size_t i = lo; i < lo + len; i++)
                if (!(fabsf(x[i]) <= 3.402823466e38f)) note_bad(rc, rc->seen + i, x[i], true);
            continue;
        }
        /* A block whose max|x| <= 65504 cannot overflow: Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 scales are
         * amax/127, max/8 or max/16, range/15 or range/31 and min; IQ4_NL's and Q6_K's least-squares fits over non-zero
         * levels stay <= max|x|; K-quant super-scales are sub-scales (<= range) over 63/128; and
         * no float32 sum over a block of such values (256 x^2 <= 1.1e12) comes near overflow. */
        if (amax <= MQ_F16_MAX || len != blk) continue;
        if (block_round_trips(ci, x + lo, blk, amax)) continue;
        for (size_t i = lo; i < lo + len; i++)
            if (fabsf(x[i]) > MQ_F16_MAX) note_bad(rc, rc->seen + i, x[i], false);
    }
    rc->seen += n;
}

enum mq_status mq_range_finish(const struct mq_range_check *rc, const char *tensor, enum mq_codec c,
                               struct mq_error *err)
{
    if (rc->bad == 0) return MQ_OK;
    const struct mq_codec_info *ci = mq_codec_info(c);
    const char *name = ci ? ci->name : "?";
    if (rc->nonfinite)
        return MQ_FAIL(err, MQ_E_RANGE, "value-range",
                       "tensor '%s': %" PRIu64 " value(s) that do not fit %s (%" PRIu64
                       " NaN/Inf); first at flat index %" PRIu64 " (%g)",
                       tensor ? tensor : "?", rc->bad, name, rc->nonfinite, rc->first_bad,
                       (double)rc->first_value);
    if (ci && ci->fp16_scales)
        return MQ_FAIL(err, MQ_E_RANGE, "value-range",
                       "tensor '%s': %" PRIu64 " value(s) that do not fit %s (too large for the block scale: "
                       "the block would overflow or not round-trip); first at flat index %" PRIu64 " (%g)",
                       tensor ? tensor : "?", rc->bad, name, rc->first_bad, (double)rc->first_value);
    return MQ_FAIL(err, MQ_E_RANGE, "value-range",
                   "tensor '%s': %" PRIu64 " value(s) that do not fit %s (|x| >= %g overflows it); "
                   "first at flat index %" PRIu64 " (%g)",
                   tensor ? tensor : "?", rc->bad, name, (double)rc->limit, rc->first_bad,
                   (double)rc->first_value);
}
