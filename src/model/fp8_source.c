/*
** fp8_source.c - reading an FP8 weight as float32 (mq_model_read of a tensor with `fp8` set).
**
** w[r][c] = fp8(code[r][c]) * scale_inv[r / block_rows][c / block_cols], computed in float32:
** DeepSeek-V3's inference/kernel.py weight_dequant (y = x * s, one s per 128 x 128 block, the
** scale grid ceil(M/128) x ceil(N/128)) and transformers' fine-grained FP8 integration use the
** same product. A weight without scales has scale 1. Codes are read in pieces with one pread
** each; the scales of each row segment are read once and reused while rows stay in one block row.
*/
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "modelq/half.h"
#include "span.h"
#include "tensor_view.h"

#define PIECE 65536u

struct fp8_scratch {
    uint8_t codes[PIECE];
    uint8_t raw[(PIECE + 2) * 4];
    float scale[PIECE + 2];
    float table[256];
};

static enum mq_status read_part(const struct mq_model *m, const struct mq_bnb_part *p, uint64_t off, void *buf,
                                size_t len, struct mq_error *err)
{
    const struct mq_file *f = &m->files[p->file];
    return mq_pread_full(f->fd, f->path, buf, len, p->offset + off, err);
}

/* Scales [first, first + n) of the scale tensor as float32. */
static enum mq_status read_scales(const struct mq_model *m, const struct mq_fp8_source *s, uint64_t first, size_t n,
                                  struct fp8_scratch *sc, struct mq_error *err)
{
    size_t esz = s->scale_dtype == MQ_DTYPE_BF16 ? 2 : 4;
    MQ_TRY(read_part(m, &s->scale, first * esz, sc->raw, n * esz, err));
    for (size_t i = 0; i < n; i++) {
        if (esz == 2) {
            sc->scale[i] = mq_bf16_to_f32(mq_load_u16le(sc->raw + 2 * i));
        } else {
            uint32_t u = mq_load_u32le(sc->raw + 4 * i);
            memcpy(&sc->scale[i], &u, sizeof u);
        }
    }
    return MQ_OK;
}

/* Elements [e0, e1) as float32 little-endian into out. */
static enum mq_status read_elems(const struct mq_model *m, const struct mq_tensor *t, uint64_t e0, uint64_t e1,
                                 uint8_t *out, struct fp8_scratch *sc, struct mq_error *err)
{
    const struct mq_fp8_source *s = t->fp8;
    const uint64_t cols = mq_tensor_row_len(t);
    for (int b = 0; b < 256; b++) sc->table[b] = mq_fp8_to_f32(s->stored, (uint8_t)b);
    for (uint64_t e = e0; e < e1;) {
        size_t k = e1 - e < PIECE ? (size_t)(e1 - e) : PIECE;
        MQ_TRY(read_part(m, &s->data, e, sc->codes, k, err));
        uint64_t have_row = UINT64_MAX, have_lo = 0, have_hi = 0; /* the scales in sc->scale */
        for (size_t i = 0; i < k;) {
            uint64_t r = (e + i) / cols, c = (e + i) % cols;
            size_t seg = cols - c < k - i ? (size_t)(cols - c) : k - i; /* this row's part of the piece */
            float one = 1.0f;
            const float *scales = &one;
            uint64_t lo = 0;
            if (s->has_scale) {
                uint64_t srow = r / s->block_rows;
                lo = c / s->block_cols;
                uint64_t hi = (c + seg - 1) / s->block_cols;
                if (srow != have_row || lo < have_lo || hi > have_hi) {
                    MQ_TRY(read_scales(m, s, srow * s->scale_cols + lo, (size_t)(hi - lo + 1), sc, err));
                    have_row = srow, have_lo = lo, have_hi = hi;
                }
                scales = sc->scale + (lo - have_lo);
            }
            for (size_t j = 0; j < seg; j++) {
                float sv = s->has_scale ? scales[(c + j) / s->block_cols - lo] : 1.0f;
                float v = sc->table[sc->codes[i + j]] * sv;
                uint32_t u;
                memcpy(&u, &v, sizeof u);
                mq_store_u32le(out + 4 * (e - e0 + i + j), u);
            }
            i += seg;
        }
        e += k;
    }
    return MQ_OK;
}

enum mq_status mq_fp8_source_read(const struct mq_model *m, const struct mq_tensor *t, uint64_t off, void *buf,
                                  size_t len, struct mq_error *err)
{
    if (len == 0) return MQ_OK;
    struct fp8_scratch *sc = malloc(sizeof *sc);
    if (!sc) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory reading tensor '%s'", t->name);
    uint64_t e0 = off / 4, e1 = (off + len + 3) / 4;
    enum mq_status s;
    if (off % 4 == 0 && len % 4 == 0) {
        s = read_elems(m, t, e0, e1, buf, sc, err);
    } else { /* a byte range that cuts values: decode whole values, keep the bytes asked for */
        uint8_t *tmp = malloc((size_t)(e1 - e0) * 4);
        s = tmp ? read_elems(m, t, e0, e1, tmp, sc, err)
                : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory reading tensor '%s'", t->name);
        if (s == MQ_OK) memcpy(buf, tmp + (off - e0 * 4), len);
        free(tmp);
    }
    free(sc);
    return s;
}
