/*
** spm_model.c - SentencePiece tokenizer.model (protobuf) reader; the layout is in spm_model.h.
**
** Two passes over the bytes: the first checks every field and counts the pieces and their text
** bytes, the second (same code, `store` set) copies them into arrays sized by the first, so
** memory is bounded by the file size before anything is allocated.
*/
#include "spm_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "fileio.h"
#include "json_strict.h" /* utf8_valid */
#include "span.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* ModelProto / SentencePiece / TrainerSpec / NormalizerSpec field numbers (spm_model.h). */
enum { MP_PIECES = 1, MP_TRAINER = 2, MP_NORMALIZER = 3 };
enum { SP_PIECE = 1, SP_SCORE = 2, SP_TYPE = 3 };
enum { TS_MODEL_TYPE = 3, TS_WS_SUFFIX = 24, TS_BYTE_FALLBACK = 35, TS_UNK = 40, TS_BOS = 41, TS_EOS = 42, TS_PAD = 43 };
enum { NS_NAME = 1, NS_CHARSMAP = 2, NS_DUMMY_PREFIX = 3, NS_EXTRA_WS = 4, NS_ESCAPE_WS = 5 };

struct rd {
    const char *path;
    const uint8_t *base; /* for byte offsets in messages */
    struct mq_error *err;
};

static size_t at(const struct rd *r, const struct mq_span *s) { return (size_t)(s->p + s->off - r->base); }

static enum mq_status corrupt(const struct rd *r, const struct mq_span *s, const char *what)
{
    return MQ_FAIL(r->err, MQ_E_CORRUPT, "spm-protobuf", "%s: %s at byte %zu (not a SentencePiece model)", r->path,
                   what, at(r, s));
}

/* LEB128: 7 bits a byte, low first; the tenth byte may only carry the top bit of 64. */
static enum mq_status rd_varint(const struct rd *r, struct mq_span *s, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint8_t b;
        if (mq_span_u8(s, &b)) return corrupt(r, s, "truncated varint");
        if (i == 9 && b > 1) return corrupt(r, s, "varint longer than 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return MQ_OK;
        }
    }
    return corrupt(r, s, "varint longer than 10 bytes");
}

/* The next key; *field 0 marks the end of the span. */
static enum mq_status rd_key(const struct rd *r, struct mq_span *s, uint32_t *field, int *wire)
{
    *field = 0;
    if (mq_span_left(s) == 0) return MQ_OK;
    uint64_t k = 0;
    MQ_TRY(rd_varint(r, s, &k));
    if ((k >> 3) == 0 || (k >> 3) > 536870911u) return corrupt(r, s, "field number 0 or over 2^29-1");
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return MQ_OK;
}

/* A length-delimited value as its own span. */
static enum mq_status rd_len(const struct rd *r, struct mq_span *s, struct mq_span *sub)
{
    uint64_t n = 0;
    MQ_TRY(rd_varint(r, s, &n));
    if (n > mq_span_left(s)) {
        char what[128];
        snprintf(what, sizeof what, "length %llu runs past the end (%zu bytes left)", (unsigned long long)n,
                 mq_span_left(s));
        return corrupt(r, s, what);
    }
    const uint8_t *p;
    (void)mq_span_bytes(s, (size_t)n, &p);
    *sub = (struct mq_span){p, (size_t)n, 0};
    return MQ_OK;
}

static enum mq_status skip(const struct rd *r, struct mq_span *s, int wire)
{
    uint64_t v = 0;
    const uint8_t *p;
    struct mq_span sub = {0};
    switch (wire) {
    case WT_VARINT: return rd_varint(r, s, &v);
    case WT_FIXED64: return mq_span_bytes(s, 8, &p) ? corrupt(r, s, "truncated fixed64") : MQ_OK;
    case WT_LEN: return rd_len(r, s, &sub);
    case WT_FIXED32: return mq_span_bytes(s, 4, &p) ? corrupt(r, s, "truncated fixed32") : MQ_OK;
    default: return corrupt(r, s, "wire type 3, 4, 6 or 7 (groups or invalid)");
    }
}

static enum mq_status want_wire(const struct rd *r, const struct mq_span *s, int wire, int want, const char *name)
{
    if (wire == want) return MQ_OK;
    char what[128];
    snprintf(what, sizeof what, "%s has wire type %d, want %d", name, wire, want);
    return corrupt(r, s, what);
}

static enum mq_status rd_bool(const struct rd *r, struct mq_span *s, int wire, const char *name, bool *out)
{
    uint64_t v = 0;
    MQ_TRY(want_wire(r, s, wire, WT_VARINT, name));
    MQ_TRY(rd_varint(r, s, &v));
    *out = v != 0;
    return MQ_OK;
}

/* int32 fields are sign-extended to 64 bits on the wire (-1 is ten bytes). */
static enum mq_status rd_i32(const struct rd *r, struct mq_span *s, int wire, const char *name, int32_t *out)
{
    uint64_t v = 0;
    MQ_TRY(want_wire(r, s, wire, WT_VARINT, name));
    MQ_TRY(rd_varint(r, s, &v));
    if (v > 0x7fffffffu && v < 0xffffffff80000000ull) {
        char what[128];
        snprintf(what, sizeof what, "%s is not an int32", name);
        return corrupt(r, s, what);
    }
    *out = (int32_t)(int64_t)v;
    return MQ_OK;
}

static enum mq_status parse_trainer(const struct rd *r, struct mq_span s, struct mq_spm_model *m)
{
    uint32_t f = 0;
    int w = 0;
    for (;;) {
        MQ_TRY(rd_key(r, &s, &f, &w));
        if (!f) return MQ_OK;
        switch (f) {
        case TS_MODEL_TYPE: MQ_TRY(rd_i32(r, &s, w, "trainer_spec.model_type", &m->model_type)); break;
        case TS_WS_SUFFIX:
            MQ_TRY(rd_bool(r, &s, w, "trainer_spec.treat_whitespace_as_suffix", &m->treat_whitespace_as_suffix));
            break;
        case TS_BYTE_FALLBACK: MQ_TRY(rd_bool(r, &s, w, "trainer_spec.byte_fallback", &m->byte_fallback)); break;
        case TS_UNK: MQ_TRY(rd_i32(r, &s, w, "trainer_spec.unk_id", &m->unk_id)); break;
        case TS_BOS: MQ_TRY(rd_i32(r, &s, w, "trainer_spec.bos_id", &m->bos_id)); break;
        case TS_EOS: MQ_TRY(rd_i32(r, &s, w, "trainer_spec.eos_id", &m->eos_id)); break;
        case TS_PAD: MQ_TRY(rd_i32(r, &s, w, "trainer_spec.pad_id", &m->pad_id)); break;
        default: MQ_TRY(skip(r, &s, w));
        }
    }
}

static enum mq_status parse_normalizer(const struct rd *r, struct mq_span s, struct mq_spm_model *m)
{
    uint32_t f = 0;
    int w = 0;
    struct mq_span v = {0};
    for (;;) {
        MQ_TRY(rd_key(r, &s, &f, &w));
        if (!f) return MQ_OK;
        switch (f) {
        case NS_NAME:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "normalizer_spec.name"));
            MQ_TRY(rd_len(r, &s, &v));
            snprintf(m->normalizer_name, sizeof m->normalizer_name, "%.*s",
                     (int)(v.len < sizeof m->normalizer_name ? v.len : sizeof m->normalizer_name - 1),
                     (const char *)v.p);
            for (char *c = m->normalizer_name; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?'; /* for messages */
            break;
        case NS_CHARSMAP:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "normalizer_spec.precompiled_charsmap"));
            MQ_TRY(rd_len(r, &s, &v));
            m->charsmap_len = v.len;
            break;
        case NS_DUMMY_PREFIX: MQ_TRY(rd_bool(r, &s, w, "normalizer_spec.add_dummy_prefix", &m->add_dummy_prefix)); break;
        case NS_EXTRA_WS:
            MQ_TRY(rd_bool(r, &s, w, "normalizer_spec.remove_extra_whitespaces", &m->remove_extra_whitespaces));
            break;
        case NS_ESCAPE_WS:
            MQ_TRY(rd_bool(r, &s, w, "normalizer_spec.escape_whitespaces", &m->escape_whitespaces));
            break;
        default: MQ_TRY(skip(r, &s, w));
        }
    }
}

/* One SentencePiece message; pieces[idx] (and its text at *pool_off) when `store`. */
static enum mq_status parse_piece(const struct rd *r, struct mq_span s, uint32_t idx, bool store,
                                  struct mq_spm_model *m, size_t *pool_off)
{
    uint32_t f = 0;
    int w = 0;
    struct mq_span text = {NULL, 0, 0};
    bool have_text = false;
    uint32_t bits = 0;
    int32_t type = MQ_SPM_NORMAL;
    const size_t start = at(r, &s);
    for (;;) {
        MQ_TRY(rd_key(r, &s, &f, &w));
        if (!f) break;
        switch (f) {
        case SP_PIECE:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "piece"));
            MQ_TRY(rd_len(r, &s, &text));
            have_text = true;
            break;
        case SP_SCORE:
            MQ_TRY(want_wire(r, &s, w, WT_FIXED32, "score"));
            if (mq_span_u32le(&s, &bits)) return corrupt(r, &s, "truncated score");
            break;
        case SP_TYPE: MQ_TRY(rd_i32(r, &s, w, "type", &type)); break;
        default: MQ_TRY(skip(r, &s, w));
        }
    }
    float score;
    memcpy(&score, &bits, sizeof score);
    size_t bad;
    if (!have_text || text.len == 0)
        return MQ_FAIL(r->err, MQ_E_CORRUPT, "spm-piece", "%s: pieces[%u] (byte %zu) is empty (SentencePiece pieces "
                       "must not be)", r->path, idx, start);
    if (memchr(text.p, 0, text.len) || !utf8_valid(text.p, text.len, &bad))
        return MQ_FAIL(r->err, MQ_E_CORRUPT, "spm-piece", "%s: pieces[%u] (byte %zu) is not UTF-8 text without NUL",
                       r->path, idx, start);
    if (text.len > UINT32_MAX)
        return MQ_FAIL(r->err, MQ_E_LIMIT, "spm-piece", "%s: pieces[%u] is over 4 GB", r->path, idx);
    if (type < MQ_SPM_NORMAL || type > MQ_SPM_BYTE)
        return MQ_FAIL(r->err, MQ_E_CORRUPT, "spm-piece", "%s: pieces[%u] has type %d (1..6: NORMAL, UNKNOWN, "
                       "CONTROL, USER_DEFINED, UNUSED, BYTE)", r->path, idx, (int)type);
    if (!isfinite(score))
        return MQ_FAIL(r->err, MQ_E_CORRUPT, "spm-piece", "%s: pieces[%u] has a score that is not finite", r->path, idx);
    if (mq_ckd_add_size(pool_off, *pool_off, text.len + 1)) /* cannot: the texts are within the file */
        return MQ_FAIL(r->err, MQ_E_OVERFLOW, "spm-piece", "%s: piece text sizes overflow", r->path);
    if (store) {
        char *dst = m->pool + *pool_off - text.len - 1;
        memcpy(dst, text.p, text.len);
        dst[text.len] = '\0';
        m->pieces[idx] = (struct mq_spm_piece){dst, (uint32_t)text.len, score, type};
    }
    return MQ_OK;
}

static enum mq_status parse_top(const struct rd *r, const uint8_t *buf, size_t len, bool store,
                                struct mq_spm_model *m, uint32_t *n_pieces, size_t *pool_bytes)
{
    struct mq_span s = {buf, len, 0}, sub;
    uint32_t f = 0;
    int w = 0;
    uint32_t n = 0;
    size_t pool = 0;
    for (;;) {
        MQ_TRY(rd_key(r, &s, &f, &w));
        if (!f) break;
        switch (f) {
        case MP_PIECES:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "pieces"));
            MQ_TRY(rd_len(r, &s, &sub));
            if (n >= MQ_SPM_PIECES_MAX)
                return MQ_FAIL(r->err, MQ_E_LIMIT, "spm-pieces", "%s: more than %u pieces (the vocabulary limit)",
                               r->path, MQ_SPM_PIECES_MAX);
            MQ_TRY(parse_piece(r, sub, n, store, m, &pool));
            n++;
            break;
        case MP_TRAINER:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "trainer_spec"));
            MQ_TRY(rd_len(r, &s, &sub));
            MQ_TRY(parse_trainer(r, sub, m));
            break;
        case MP_NORMALIZER:
            MQ_TRY(want_wire(r, &s, w, WT_LEN, "normalizer_spec"));
            MQ_TRY(rd_len(r, &s, &sub));
            MQ_TRY(parse_normalizer(r, sub, m));
            break;
        default: MQ_TRY(skip(r, &s, w));
        }
    }
    *n_pieces = n;
    *pool_bytes = pool;
    return MQ_OK;
}

static void set_defaults(struct mq_spm_model *m)
{
    memset(m, 0, sizeof *m);
    m->model_type = MQ_SPM_UNIGRAM;
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;
}

static bool is_byte_name(const struct mq_spm_piece *p, unsigned *value)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *t = p->text, *h, *l;
    if (p->len != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>' || !t[3] || !t[4] || !(h = strchr(hex, t[3])) ||
        !(l = strchr(hex, t[4])))
        return false;
    *value = (unsigned)((h - hex) * 16 + (l - hex));
    return true;
}

/* What every SentencePiece model satisfies (the checks sentencepiece's ModelInterface makes). */
static enum mq_status check_model(const char *path, const struct mq_spm_model *m, struct mq_error *err)
{
    if (m->n_pieces == 0) return MQ_FAIL(err, MQ_E_CORRUPT, "spm-pieces", "%s: the model has no pieces", path);
    const int32_t n = (int32_t)m->n_pieces;
    if (m->unk_id < 0 || m->unk_id >= n)
        return MQ_FAIL(err, MQ_E_CORRUPT, "spm-special", "%s: trainer_spec.unk_id %d is not a piece (0..%d)", path,
                       (int)m->unk_id, (int)n - 1);
    const struct {
        const char *name;
        int32_t id;
    } ids[3] = {{"bos_id", m->bos_id}, {"eos_id", m->eos_id}, {"pad_id", m->pad_id}};
    for (int k = 0; k < 3; k++)
        if (ids[k].id < -1 || ids[k].id >= n)
            return MQ_FAIL(err, MQ_E_CORRUPT, "spm-special", "%s: trainer_spec.%s %d is neither -1 nor a piece (0..%d)",
                           path, ids[k].name, (int)ids[k].id, (int)n - 1);
    bool seen[256] = {false};
    for (uint32_t i = 0; i < m->n_pieces; i++) {
        const struct mq_spm_piece *p = &m->pieces[i];
        if ((p->type == MQ_SPM_UNKNOWN) != ((int32_t)i == m->unk_id))
            return MQ_FAIL(err, MQ_E_CORRUPT, "spm-special",
                           "%s: pieces[%u] %s UNKNOWN but trainer_spec.unk_id is %d (the unk piece is the one "
                           "UNKNOWN piece)", path, i, p->type == MQ_SPM_UNKNOWN ? "is" : "is not", (int)m->unk_id);
        unsigned b;
        if (p->type == MQ_SPM_BYTE) {
            if (!is_byte_name(p, &b))
                return MQ_FAIL(err, MQ_E_CORRUPT, "spm-piece", "%s: pieces[%u] is a BYTE piece not named <0xHH>", path,
                               i);
            seen[b] = true;
        }
    }
    for (unsigned b = 0; m->byte_fallback && b < 256; b++)
        if (!seen[b])
            return MQ_FAIL(err, MQ_E_CORRUPT, "spm-piece",
                           "%s: trainer_spec.byte_fallback is set but there is no BYTE piece <0x%02X>", path, b);
    return MQ_OK;
}

enum mq_status mq_spm_parse(const uint8_t *buf, size_t len, const char *path, struct mq_spm_model *m,
                            struct mq_error *err)
{
    const struct rd r = {path, buf, err};
    uint32_t n;
    size_t pool;
    set_defaults(m);
    MQ_TRY(parse_top(&r, buf, len, false, m, &n, &pool)); /* counts; leaves nothing allocated */
    set_defaults(m);
    m->pieces = calloc(n ? n : 1, sizeof *m->pieces);
    m->pool = malloc(pool ? pool : 1);
    enum mq_status s = MQ_OK;
    if (!m->pieces || !m->pool) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    uint32_t n2 = 0;
    size_t pool2 = 0;
    if (s == MQ_OK) s = parse_top(&r, buf, len, true, m, &n2, &pool2);
    if (s == MQ_OK && (n2 != n || pool2 != pool))
        s = MQ_FAIL(err, MQ_E_INTERNAL, "spm-protobuf", "%s: the two passes disagree", path);
    m->n_pieces = n;
    if (s == MQ_OK) s = check_model(path, m, err);
    if (s != MQ_OK) mq_spm_free(m);
    return s;
}

enum mq_status mq_spm_read(const char *path, struct mq_spm_model *m, struct mq_error *err)
{
    char *buf;
    size_t len;
    memset(m, 0, sizeof *m);
    MQ_TRY(mq_read_small_file(path, MQ_SPM_FILE_MAX, "tokenizer-size", &buf, &len, err));
    enum mq_status s = mq_spm_parse((const uint8_t *)buf, len, path, m, err);
    free(buf);
    return s;
}

void mq_spm_free(struct mq_spm_model *m)
{
    if (!m) return;
    free(m->pieces);
    free(m->pool);
    m->pieces = NULL;
    m->pool = NULL;
    m->n_pieces = 0;
}
