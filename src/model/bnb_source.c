/* bnb_source.c - reading bitsandbytes logical tensors as float32 (see bnb_source.h). */
#include "bnb_source.h"

#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "fileio.h"
#include "modelq/half.h"
#include "modelq/quant.h"
#include "span.h"

/* Elements decoded per round of preads: bounds the scratch whatever n is. */
#define PIECE 16384u

struct scratch {
    uint8_t codes[PIECE + 1];       /* packed nibbles (PIECE/2 + 1) or int8 codes (PIECE) */
    uint8_t side[(PIECE + 2) * 4];  /* F32 absmax / SCB entries, or U8 absmax codes */
    float scale[PIECE + 2];         /* absmax per block, or SCB per row, decoded */
    uint8_t nested[8 * 4];          /* F32 nested_absmax covering the piece's blocks */
};

static float f32le(const uint8_t *p)
{
    uint32_t u = mq_load_u32le(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* `len` bytes at byte `off` of a stored part (bounds proven at open; asserted here). */
static enum mq_status read_part(const struct mq_model *m, const struct mq_bnb_part *p, uint64_t off, void *buf,
                                size_t len, const char *tname, struct mq_error *err)
{
    if (off > p->nbytes || len > p->nbytes - off)
        return MQ_FAIL(err, MQ_E_INTERNAL, "read-range", "tensor '%s': bitsandbytes read past its stored bytes", tname);
    const struct mq_file *f = &m->files[p->file];
    return mq_pread_full(f->fd, f->path, buf, len, p->offset + off, err);
}

static float round_to(enum mq_dtype d, float v)
{
    if (d == MQ_DTYPE_BF16) return mq_bf16_to_f32(mq_f32_to_bf16(v));
    if (d == MQ_DTYPE_F16) return mq_f16_to_f32(mq_f32_to_f16(v));
    return v;
}

/* NF4/FP4 elements [a, a + k), k <= PIECE. */
static enum mq_status piece_4bit(const struct mq_model *m, const struct mq_tensor *t, uint64_t a, size_t k,
                                 float *dst, struct scratch *sc, struct mq_error *err)
{
    const struct mq_bnb_source *s = t->bnb;
    const struct mq_bnb_part packed = {t->file, t->offset, t->nbytes};
    const uint64_t B = s->blocksize, last = a + k - 1;
    const uint64_t b0 = a / 2, nbytes = last / 2 - b0 + 1;
    const uint64_t k0 = a / B, nblk = last / B - k0 + 1;
    MQ_TRY(read_part(m, &packed, b0, sc->codes, (size_t)nbytes, t->name, err));
    if (!s->double_quant) {
        MQ_TRY(read_part(m, &s->absmax, k0 * 4, sc->side, (size_t)nblk * 4, t->name, err));
        for (uint64_t j = 0; j < nblk; j++) sc->scale[j] = f32le(sc->side + 4 * j);
    } else {
        const uint64_t j0 = k0 / MQ_BNB_NESTED_BLOCK, nj = (k0 + nblk - 1) / MQ_BNB_NESTED_BLOCK - j0 + 1;
        MQ_TRY(read_part(m, &s->absmax, k0, sc->side, (size_t)nblk, t->name, err));
        MQ_TRY(read_part(m, &s->nested_absmax, j0 * 4, sc->nested, (size_t)nj * 4, t->name, err));
        for (uint64_t j = 0; j < nblk; j++) {
            float nested = f32le(sc->nested + 4 * ((k0 + j) / MQ_BNB_NESTED_BLOCK - j0));
            sc->scale[j] = s->nested_map[sc->side[j]] * nested + s->offset; /* two float32 roundings */
        }
    }
    float book[16];
    for (unsigned c = 0; c < 16; c++) book[c] = s->codec == MQ_CODEC_FP4 ? mq_fp4_value(c) : mq_nf4_value(c);
    for (size_t i = 0; i < k; i++) {
        uint64_t e = a + i;
        uint8_t byte = sc->codes[e / 2 - b0];
        unsigned c = (e & 1) ? (byte & 15u) : (byte >> 4);
        dst[i] = round_to(t->dtype, book[c] * sc->scale[e / B - k0]);
    }
    return MQ_OK;
}

/* INT8_ROW elements [a, a + k), k <= PIECE. */
static enum mq_status piece_int8(const struct mq_model *m, const struct mq_tensor *t, uint64_t a, size_t k,
                                 float *dst, struct scratch *sc, struct mq_error *err)
{
    const struct mq_bnb_source *s = t->bnb;
    const struct mq_bnb_part packed = {t->file, t->offset, t->nbytes};
    const uint64_t row = t->shape[1], r0 = a / row, nrows = (a + k - 1) / row - r0 + 1;
    MQ_TRY(read_part(m, &packed, a, sc->codes, k, t->name, err));
    MQ_TRY(read_part(m, &s->scb, r0 * 4, sc->side, (size_t)nrows * 4, t->name, err));
    for (uint64_t j = 0; j < nrows; j++) sc->scale[j] = f32le(sc->side + 4 * j);
    for (size_t i = 0; i < k; i++) {
        float q = (float)(int8_t)sc->codes[i];
        dst[i] = round_to(t->dtype, q * sc->scale[(a + i) / row - r0] * 7.874015718698502e-3f);
    }
    return MQ_OK;
}

enum mq_status mq_bnb_read_f32(const struct mq_model *m, size_t t, uint64_t first, size_t n, float *dst,
                               struct mq_error *err)
{
    if (t >= m->n_tensors || !m->tensors[t].bnb)
        return MQ_FAIL(err, MQ_E_INTERNAL, "bnb", "tensor %zu is not a bitsandbytes weight", t);
    const struct mq_tensor *ts = &m->tensors[t];
    uint64_t end;
    if (mq_ckd_add_u64(&end, first, n) || end > ts->numel)
        return MQ_FAIL(err, MQ_E_USAGE, "read-range", "tensor '%s': elements [%llu, +%zu) past its %llu", ts->name,
                       (unsigned long long)first, n, (unsigned long long)ts->numel);
    if (n == 0) return MQ_OK;
    struct scratch *sc = malloc(sizeof *sc);
    if (!sc) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory reading tensor '%s'", ts->name);
    enum mq_status s = MQ_OK;
    for (size_t done = 0; done < n && s == MQ_OK;) {
        size_t k = n - done < PIECE ? n - done : PIECE;
        s = ts->bnb->codec == MQ_CODEC_INT8_ROW ? piece_int8(m, ts, first + done, k, dst + done, sc, err)
                                                : piece_4bit(m, ts, first + done, k, dst + done, sc, err);
        done += k;
    }
    free(sc);
    return s;
}
