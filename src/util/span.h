/*
** span.h - a bounds-checked little-endian read cursor over bytes that came from a file.
**
** Multi-byte integers are assembled from bytes (never by casting a pointer), so unaligned and
** big-endian hosts behave. Every read checks the remaining length first; a short read returns
** nonzero and leaves the cursor where it was.
*/
#ifndef MODELQ_SPAN_H
#define MODELQ_SPAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct mq_span {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static inline size_t mq_span_left(const struct mq_span *s) { return s->len - s->off; }

static inline uint16_t mq_load_u16le(const uint8_t *b) { return (uint16_t)(b[0] | (b[1] << 8)); }
static inline uint32_t mq_load_u32le(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t mq_load_u64le(const uint8_t *b)
{
    return (uint64_t)mq_load_u32le(b) | ((uint64_t)mq_load_u32le(b + 4) << 32);
}
static inline void mq_store_u16le(uint8_t *b, uint16_t v) { b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }
static inline void mq_store_u32le(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static inline void mq_store_u64le(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static inline int mq_span_bytes(struct mq_span *s, size_t n, const uint8_t **out)
{
    if (n > mq_span_left(s)) return 1;
    *out = s->p + s->off;
    s->off += n;
    return 0;
}
static inline int mq_span_u8(struct mq_span *s, uint8_t *v)
{
    if (mq_span_left(s) < 1) return 1;
    *v = s->p[s->off++];
    return 0;
}
static inline int mq_span_u32le(struct mq_span *s, uint32_t *v)
{
    if (mq_span_left(s) < 4) return 1;
    *v = mq_load_u32le(s->p + s->off);
    s->off += 4;
    return 0;
}
static inline int mq_span_u64le(struct mq_span *s, uint64_t *v)
{
    if (mq_span_left(s) < 8) return 1;
    *v = mq_load_u64le(s->p + s->off);
    s->off += 8;
    return 0;
}

#endif /* MODELQ_SPAN_H */
