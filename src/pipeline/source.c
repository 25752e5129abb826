/*
** source.c - an output tensor's source read through its segments (plan.h: struct mq_src_seg).
**
** The source is the concatenation of its segments: stored bytes for the byte readers (raw
** copies, F32/F16/BF16 elements, ggml blocks; every segment is whole rows, so whole blocks, and
** the byte offset of an element is the same function of its index as in one tensor), elements
** for a reader's filter (bitsandbytes). A read that spans segments is split at their boundaries.
*/
#include "plan.h"

enum mq_status mq_src_read_bytes(const struct mq_plan *p, const struct mq_plan_tensor *t, uint64_t off, void *buf,
                                 size_t len, struct mq_error *err)
{
    uint8_t *dst = buf;
    uint64_t base = 0; /* source offset of segment k */
    for (size_t k = 0; k < t->nseg && len > 0; k++) {
        const struct mq_src_seg *s = mq_plan_seg(t, k);
        if (off < base + s->bytes) {
            uint64_t at = off - base;
            size_t take = s->bytes - at < len ? (size_t)(s->bytes - at) : len;
            MQ_TRY(mq_model_read(p->model, s->tensor, s->off + at, dst, take, err));
            dst += take;
            off += take;
            len -= take;
        }
        base += s->bytes;
    }
    if (len > 0)
        return MQ_FAIL(err, MQ_E_INTERNAL, "read-range", "tensor '%s': read past the end of its source", t->name);
    return MQ_OK;
}

enum mq_status mq_src_read_filtered(const struct mq_plan *p, const struct mq_plan_tensor *t, uint64_t first, size_t n,
                                    float *dst, struct mq_error *err)
{
    if (!t->filter) return MQ_FAIL(err, MQ_E_INTERNAL, "filter", "tensor '%s': no filter to read it", t->name);
    uint64_t base = 0; /* first element of segment k */
    for (size_t k = 0; k < t->nseg && n > 0; k++) {
        const struct mq_src_seg *s = mq_plan_seg(t, k);
        if (first < base + s->n) {
            uint64_t at = first - base;
            size_t take = s->n - at < n ? (size_t)(s->n - at) : n;
            MQ_TRY(t->filter(p->model, s->tensor, s->first + at, take, dst, err));
            dst += take;
            first += take;
            n -= take;
        }
        base += s->n;
    }
    if (n > 0)
        return MQ_FAIL(err, MQ_E_INTERNAL, "read-range", "tensor '%s': read past the end of its source", t->name);
    return MQ_OK;
}
