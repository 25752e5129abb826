/*
** ckd.h - checked arithmetic for every size that comes from a file.
**
** Each helper returns 0 on success and 1 on overflow (the <stdckdint.h> convention), and always
** writes the wrapped result, so `if (mq_ckd_mul_u64(&n, a, b)) return MQ_FAIL(...)` reads naturally.
*/
#ifndef MODELQ_CKD_H
#define MODELQ_CKD_H

#include <stddef.h>
#include <stdint.h>

static inline int mq_ckd_add_u64(uint64_t *r, uint64_t a, uint64_t b) { return __builtin_add_overflow(a, b, r); }
static inline int mq_ckd_mul_u64(uint64_t *r, uint64_t a, uint64_t b) { return __builtin_mul_overflow(a, b, r); }
static inline int mq_ckd_sub_u64(uint64_t *r, uint64_t a, uint64_t b) { return __builtin_sub_overflow(a, b, r); }
static inline int mq_ckd_add_size(size_t *r, size_t a, size_t b) { return __builtin_add_overflow(a, b, r); }
static inline int mq_ckd_mul_size(size_t *r, size_t a, size_t b) { return __builtin_mul_overflow(a, b, r); }

/* u64 -> size_t, failing where size_t is narrower. */
static inline int mq_ckd_u64_to_size(size_t *r, uint64_t v)
{
    *r = (size_t)v;
    return (uint64_t)*r != v;
}

/* ceil(a / b) for b > 0 without overflow. */
static inline uint64_t mq_div_ceil_u64(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

#endif /* MODELQ_CKD_H */
