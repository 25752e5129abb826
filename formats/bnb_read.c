/*
** bnb_read.c - bitsandbytes modules in a safetensors checkpoint, seen as logical tensors.
**
** What bitsandbytes' save_pretrained stores per quantized Linear with module path P
** (../shared/docs/bitsandbytes.md sections 4.1, 4.2 and 5.2):
**
**   4-bit (Linear4bit, NF4 or FP4), n = out*in elements, nb = ceil(n / blocksize):
**     P.weight                                  U8  [(n+1)/2, 1]  nibbles, element 2k high
**     P.weight.quant_state.bitsandbytes__nf4    U8  [len]         JSON (suffix __fp4 for FP4):
**         {"quant_type", "blocksize", "dtype", "shape"[, "nested_blocksize", "nested_dtype",
**          "nested_offset"]}  - exactly these keys; the nested three only with double quant
**     P.weight.absmax                           F32 [nb], or U8 [nb] codes with double quant
**     P.weight.quant_map                        F32 [16]   the NF4 / FP4 code book
**     P.weight.nested_absmax                    F32 [ceil(nb/256)]   double quant only
**     P.weight.nested_quant_map                 F32 [256]  the dynamic map, double quant only
**   8-bit (Linear8bitLt, LLM.int8):
**     P.weight         I8  [out, in]
**     P.SCB            F32 [out]      row absmax
**     P.weight_format  U8  []         0 = row layout (the only one that loads); optional here,
**                                     since transformers drops it and older files lack it
**
** mq_bnb_read() runs after a safetensors checkpoint (and its config.json) is loaded. It finds
** these groups, validates every entry and the config's quantization_config, and replaces each
** group in m->tensors by ONE logical tensor P.weight: dtype = the JSON "dtype" (4-bit) or the
** config's torch_dtype (8-bit, default F16: LLM.int8 casts weights to fp16), shape = the logical
** shape, file/offset/nbytes = the packed codes, `bnb` = where the side data lives. The small
** entries (JSON, quant_map, nested_quant_map, weight_format) are read here; absmax, SCB and the
** codes are read later, only the ranges needed (src/bnb_source.c).
**
** Checks, each its own name in the error (which names the file and the tensor):
**   bnb-missing        a companion the group needs is absent (absmax, quant_map, nested_*, P.weight)
**   bnb-weight         P.weight has the wrong dtype or shape for its kind
**   bnb-quant-state    the JSON entry: U8 1-D, at most 4096 bytes, one per weight (not both
**                      __nf4 and __fp4), strict RFC 8259 JSON object
**   bnb-quant-state-keys  keys other than the allowed ones, a duplicate, a missing one, or the
**                      nested keys only in part
**   bnb-quant-type     quant_type not the suffix's; an unknown bitsandbytes__ suffix
**   bnb-blocksize      blocksize not one of 32..4096 (powers of two); nested_blocksize not 256
**   bnb-dtype          dtype not float16/bfloat16/float32, nested_dtype not float32, a config
**                      torch_dtype (8-bit) that is not one of those
**   bnb-shape          shape not 1..8 non-negative integers, or n overflows
**   bnb-weight-shape   packed [(n+1)/2, 1] does not match the JSON shape
**   bnb-absmax         absmax dtype or count (ceil(n/blocksize))
**   bnb-nested         nested_absmax / nested_quant_map dtype or count, a non-finite
**                      nested_offset or map entry, nested entries without double quant
**   bnb-quant-map      quant_map is not F32[16] equal to the code book of quant_type
**   bnb-scb            SCB not F32 [out]
**   bnb-weight-format  weight_format not a U8 scalar equal to 0
**   bnb-orphan         a companion entry (absmax, quant_map, nested_*, weight_format) whose
**                      weight is not a bitsandbytes weight (an SCB without its weight is
**                      bnb-missing)
**   bnb-config         config.json's quantization_config disagrees with the tensors (quant
**                      method, load_in_4bit/8bit, bnb_4bit_quant_type whose default is fp4,
**                      bnb_4bit_use_double_quant, quant storage other than uint8), or says
**                      8-bit while an I8 weight has no SCB
** A module's entries in two shards are read, with a warning (transformers v4 needs one shard).
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "fileio.h"
#include "format.h"
#include "json_strict.h"
#include "modelq/quant.h"
#include "span.h"

#define BNB_STATE_MAX 4096u   /* JSON entry cap; bitsandbytes writes about 160 bytes */
#define BNB_QS ".quant_state.bitsandbytes__"

/* What becomes of each input tensor. */
enum role { ROLE_PLAIN, ROLE_WEIGHT, ROLE_COMPANION };

struct name_ix {
    const char *name;
    size_t i;
};

struct bnb_ctx {
    struct mq_model *m;
    struct mq_error *err;
    struct name_ix *by_name;     /* tensor names sorted */
    uint8_t *role;               /* enum role per tensor */
    struct mq_bnb_source **src;  /* per tensor: the source of a ROLE_WEIGHT tensor */
    enum mq_dtype *dtype;        /* per ROLE_WEIGHT tensor: logical dtype */
    uint32_t *ndim;
    uint64_t (*shape)[MQ_MAX_DIMS];
    size_t n_4bit, n_8bit;
    const char *first_4bit;      /* a weight name for config messages */
    const char *first_8bit;
    bool any_nf4, any_fp4, any_plain4, any_dq;
    const char *name_nf4, *name_fp4, *name_plain4, *name_dq;
};

static int cmp_name_ix(const void *a, const void *b)
{
    return strcmp(((const struct name_ix *)a)->name, ((const struct name_ix *)b)->name);
}

/* Index of the tensor called `name`, or -1. */
static long find(const struct bnb_ctx *c, const char *name)
{
    size_t lo = 0, hi = c->m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->by_name[mid].name, name);
        if (r == 0) return (long)c->by_name[mid].i;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Index of base + suffix, or -1. */
static long find2(const struct bnb_ctx *c, const char *base, size_t base_len, const char *suffix)
{
    char name[1024];
    int n = snprintf(name, sizeof name, "%.*s%s", (int)base_len, base, suffix);
    if (n < 0 || (size_t)n >= sizeof name) return -1;
    return find(c, name);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "FILE: tensor 'NAME': CHECK: message" */
static enum mq_status tensor_fail(struct bnb_ctx *c, const struct mq_tensor *t, enum mq_status code, const char *check,
                                  int line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum mq_status tensor_fail(struct bnb_ctx *c, const struct mq_tensor *t, enum mq_status code, const char *check,
                                  int line, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mq_error_set_at(c->err, code, check, __FILE__, line, "%s: tensor '%s': %s: %s", c->m->files[t->file].path,
                           t->name, check, msg);
}
#define TFAIL(t, check, ...) tensor_fail(c, (t), MQ_E_CORRUPT, (check), __LINE__, __VA_ARGS__)

/* "CONFIG: bnb-config: message" */
static enum mq_status config_fail(struct bnb_ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum mq_status config_fail(struct bnb_ctx *c, int line, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mq_error_set_at(c->err, MQ_E_CORRUPT, "bnb-config", __FILE__, line, "%s: bnb-config: %s",
                           c->m->config.path ? c->m->config.path : "config.json", msg);
}
#define CFAIL(...) config_fail(c, __LINE__, __VA_ARGS__)

/* Reads all of a small tensor's data. */
static enum mq_status read_small(struct bnb_ctx *c, const struct mq_tensor *t, void *buf, size_t len)
{
    const struct mq_file *f = &c->m->files[t->file];
    MQ_TRY(mq_pread_full(f->fd, f->path, buf, len, t->offset, c->err));
    c->m->header_bytes_read += len;
    return MQ_OK;
}

static float load_f32le(const uint8_t *p)
{
    uint32_t u = mq_load_u32le(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool is_1d(const struct mq_tensor *t, enum mq_dtype d, uint64_t n)
{
    return t->dtype == d && t->ndim == 1 && t->shape[0] == n;
}

static struct mq_bnb_part part_of(const struct mq_tensor *t)
{
    return (struct mq_bnb_part){t->file, t->offset, t->nbytes};
}

/* Marks a companion tensor and adds it to the source's stored totals. */
static void claim(struct bnb_ctx *c, long i, struct mq_bnb_source *s)
{
    c->role[i] = ROLE_COMPANION;
    s->n_stored++;
    s->stored_bytes += c->m->tensors[i].nbytes;
}

static bool dtype_from_torch(const char *s, enum mq_dtype *d)
{
    if (strcmp(s, "float16") == 0) *d = MQ_DTYPE_F16;
    else if (strcmp(s, "bfloat16") == 0) *d = MQ_DTYPE_BF16;
    else if (strcmp(s, "float32") == 0) *d = MQ_DTYPE_F32;
    else return false;
    return true;
}

/* An integral JSON number in [0, 2^53]. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

/* The parsed quant_state JSON. */
struct qstate {
    char quant_type[8];
    uint64_t blocksize;
    enum mq_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];
    uint64_t numel;
    bool nested;
    float offset;
};

static enum mq_status parse_qstate(struct bnb_ctx *c, const struct mq_tensor *qs, const char *text, size_t len,
                                   struct qstate *q)
{
    struct json_strict_result jr;
    const struct json_strict_rules rules = {.max_depth = 4}; /* <= BNB_STATE_MAX bytes: its size bounds the tree */
    if (!json_strict_check(text, len, &rules, &jr))
        return TFAIL(qs, "bnb-quant-state", "not valid JSON: %s at byte %zu", jr.detail, jr.where);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return MQ_FAIL(c->err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = MQ_OK;
    static const char *const keys[7] = {"quant_type", "blocksize", "dtype", "shape",
                                        "nested_blocksize", "nested_dtype", "nested_offset"};
    const cJSON *v[7] = {0};
    if (!cJSON_IsObject(root)) s = TFAIL(qs, "bnb-quant-state", "the JSON is not an object");
    for (const cJSON *f = cJSON_IsObject(root) ? root->child : NULL; f && s == MQ_OK; f = f->next) {
        int k = 0;
        while (k < 7 && strcmp(keys[k], f->string) != 0) k++;
        if (k == 7) s = TFAIL(qs, "bnb-quant-state-keys", "unexpected key \"%s\" (bitsandbytes refuses extra keys)", f->string);
        else if (v[k]) s = TFAIL(qs, "bnb-quant-state-keys", "key \"%s\" appears twice", f->string);
        else v[k] = f;
    }
    for (int k = 0; k < 4 && s == MQ_OK; k++)
        if (!v[k]) s = TFAIL(qs, "bnb-quant-state-keys", "missing key \"%s\"", keys[k]);
    int n_nested = (v[4] != NULL) + (v[5] != NULL) + (v[6] != NULL);
    if (s == MQ_OK && n_nested != 0 && n_nested != 3)
        s = TFAIL(qs, "bnb-quant-state-keys", "nested_blocksize, nested_dtype and nested_offset come together (%d of 3 present)",
                  n_nested);
    if (s == MQ_OK && (!cJSON_IsString(v[0]) || (strcmp(v[0]->valuestring, "nf4") != 0 && strcmp(v[0]->valuestring, "fp4") != 0)))
        s = TFAIL(qs, "bnb-quant-type", "quant_type must be \"nf4\" or \"fp4\"");
    if (s == MQ_OK) snprintf(q->quant_type, sizeof q->quant_type, "%s", v[0]->valuestring);
    if (s == MQ_OK && (!json_uint(v[1], &q->blocksize) || q->blocksize < 32 || q->blocksize > 4096 ||
                       (q->blocksize & (q->blocksize - 1)) != 0))
        s = TFAIL(qs, "bnb-blocksize", "blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096");
    if (s == MQ_OK && (!cJSON_IsString(v[2]) || !dtype_from_torch(v[2]->valuestring, &q->dtype)))
        s = TFAIL(qs, "bnb-dtype", "dtype must be \"float16\", \"bfloat16\" or \"float32\"");
    if (s == MQ_OK) {
        int nd = cJSON_IsArray(v[3]) ? cJSON_GetArraySize(v[3]) : -1;
        if (nd < 1 || nd > MQ_MAX_DIMS) s = TFAIL(qs, "bnb-shape", "shape must be an array of 1 to %d dimensions", MQ_MAX_DIMS);
        q->ndim = nd > 0 ? (uint32_t)nd : 0;
        q->numel = 1;
        int d = 0;
        for (const cJSON *e = s == MQ_OK ? v[3]->child : NULL; e && s == MQ_OK; e = e->next, d++) {
            if (!json_uint(e, &q->shape[d])) s = TFAIL(qs, "bnb-shape", "dimension %d is not a non-negative integer", d);
            else if (mq_ckd_mul_u64(&q->numel, q->numel, q->shape[d]) || q->numel > (UINT64_MAX >> 4))
                s = TFAIL(qs, "bnb-shape", "the element count overflows");
        }
    }
    q->nested = n_nested == 3;
    if (s == MQ_OK && q->nested) {
        uint64_t nb;
        if (!json_uint(v[4], &nb) || nb != MQ_BNB_NESTED_BLOCK)
            s = TFAIL(qs, "bnb-blocksize", "nested_blocksize must be 256");
        else if (!cJSON_IsString(v[5]) || strcmp(v[5]->valuestring, "float32") != 0)
            s = TFAIL(qs, "bnb-dtype", "nested_dtype must be \"float32\"");
        else if (!cJSON_IsNumber(v[6]) || !isfinite((float)v[6]->valuedouble))
            s = TFAIL(qs, "bnb-nested", "nested_offset must be a finite number");
        else
            q->offset = (float)v[6]->valuedouble; /* torch.tensor(float(offset)): float32 */
    }
    cJSON_Delete(root);
    return s;
}

/* The 4-bit module whose JSON entry is tensor `qi` (quant type from its suffix). */
static enum mq_status group_4bit(struct bnb_ctx *c, size_t qi)
{
    struct mq_model *m = c->m;
    const struct mq_tensor *qs = &m->tensors[qi];
    const char *name = qs->name;
    const char *mark = strstr(name, BNB_QS);
    while (mark && strstr(mark + 1, BNB_QS)) mark = strstr(mark + 1, BNB_QS);
    const char *suffix = mark + strlen(BNB_QS);
    bool fp4 = strcmp(suffix, "fp4") == 0;
    if (!fp4 && strcmp(suffix, "nf4") != 0)
        return TFAIL(qs, "bnb-quant-type", "unknown suffix \"bitsandbytes__%s\" (nf4 or fp4)", suffix);
    size_t blen = (size_t)(mark - name); /* "P.weight" */
    if (fp4 && find2(c, name, blen, BNB_QS "nf4") >= 0)
        return TFAIL(qs, "bnb-quant-state", "the weight also has a bitsandbytes__nf4 entry");
    long wi = find2(c, name, blen, "");
    if (wi < 0) return TFAIL(qs, "bnb-missing", "no tensor '%.*s' (the packed weight) beside it", (int)blen, name);
    const struct mq_tensor *w = &m->tensors[wi];
    if (qs->dtype != MQ_DTYPE_U8 || qs->ndim != 1 || qs->nbytes == 0 || qs->nbytes > BNB_STATE_MAX)
        return TFAIL(qs, "bnb-quant-state", "must be U8 [len] with 1 to %u bytes of JSON (is %s, %llu bytes)", BNB_STATE_MAX,
                     mq_dtype_name(qs->dtype), (unsigned long long)qs->nbytes);
    char text[BNB_STATE_MAX + 1];
    MQ_TRY(read_small(c, qs, text, (size_t)qs->nbytes));
    text[qs->nbytes] = '\0';
    struct qstate q;
    memset(&q, 0, sizeof q);
    MQ_TRY(parse_qstate(c, qs, text, (size_t)qs->nbytes, &q));
    if (strcmp(q.quant_type, fp4 ? "fp4" : "nf4") != 0)
        return TFAIL(qs, "bnb-quant-type", "quant_type \"%s\" but the entry is bitsandbytes__%s", q.quant_type, suffix);

    uint64_t packed = q.numel / 2 + (q.numel & 1);
    if (w->dtype != MQ_DTYPE_U8 || w->ndim != 2 || w->shape[1] != 1)
        return TFAIL(w, "bnb-weight", "a 4-bit weight must be U8 [(n+1)/2, 1] (is %s with %u dims); other quant_storage "
                     "dtypes are not read", mq_dtype_name(w->dtype), w->ndim);
    if (w->shape[0] != packed)
        return TFAIL(w, "bnb-weight-shape", "[%llu, 1] packed bytes, but the quant_state shape has %llu elements (needs %llu)",
                     (unsigned long long)w->shape[0], (unsigned long long)q.numel, (unsigned long long)packed);

    struct mq_bnb_source *s = calloc(1, sizeof *s);
    if (!s) return MQ_FAIL(c->err, MQ_E_NOMEM, "alloc", "out of memory");
    c->src[wi] = s;
    c->role[wi] = ROLE_WEIGHT;
    c->dtype[wi] = q.dtype;
    c->ndim[wi] = q.ndim;
    memcpy(c->shape[wi], q.shape, sizeof q.shape);
    s->codec = fp4 ? MQ_CODEC_FP4 : MQ_CODEC_NF4;
    s->blocksize = (uint32_t)q.blocksize;
    s->double_quant = q.nested;
    s->offset = q.offset;
    s->n_absmax = mq_div_ceil_u64(q.numel, q.blocksize);
    s->n_stored = 1;
    s->stored_bytes = w->nbytes;
    claim(c, (long)qi, s);

    long ai = find2(c, name, blen, ".absmax");
    if (ai < 0) return TFAIL(w, "bnb-missing", "no '%s.absmax' beside it", w->name);
    const struct mq_tensor *a = &m->tensors[ai];
    if (!is_1d(a, q.nested ? MQ_DTYPE_U8 : MQ_DTYPE_F32, s->n_absmax))
        return TFAIL(a, "bnb-absmax", "must be %s [%llu] (ceil(%llu / %llu)%s)", q.nested ? "U8" : "F32",
                     (unsigned long long)s->n_absmax, (unsigned long long)q.numel, (unsigned long long)q.blocksize,
                     q.nested ? ", codes with double quant" : "");
    s->absmax = part_of(a);
    claim(c, ai, s);

    long mi = find2(c, name, blen, ".quant_map");
    if (mi < 0) return TFAIL(w, "bnb-missing", "no '%s.quant_map' beside it", w->name);
    const struct mq_tensor *qm = &m->tensors[mi];
    if (!is_1d(qm, MQ_DTYPE_F32, 16)) return TFAIL(qm, "bnb-quant-map", "must be F32 [16]");
    uint8_t mapb[64];
    MQ_TRY(read_small(c, qm, mapb, sizeof mapb));
    for (unsigned k = 0; k < 16; k++) {
        float want = fp4 ? mq_fp4_value(k) : mq_nf4_value(k), got = load_f32le(mapb + 4 * k);
        if (got != want) /* value compare: bitsandbytes' FP4 table holds +0 where modelq has -0 */
            return TFAIL(qm, "bnb-quant-map", "entry %u is %.9g, the %s code book has %.9g", k, (double)got, q.quant_type,
                         (double)want);
    }
    claim(c, mi, s);

    long ni = find2(c, name, blen, ".nested_absmax"), nmi = find2(c, name, blen, ".nested_quant_map");
    if (!q.nested) {
        if (ni >= 0 || nmi >= 0)
            return TFAIL(&m->tensors[ni >= 0 ? ni : nmi], "bnb-nested", "nested statistics but the quant_state has no "
                         "nested_* keys (no double quant)");
    } else {
        if (ni < 0) return TFAIL(w, "bnb-missing", "double quant but no '%s.nested_absmax' beside it", w->name);
        if (nmi < 0) return TFAIL(w, "bnb-missing", "double quant but no '%s.nested_quant_map' beside it", w->name);
        const struct mq_tensor *na = &m->tensors[ni], *nm = &m->tensors[nmi];
        uint64_t nn = mq_div_ceil_u64(s->n_absmax, MQ_BNB_NESTED_BLOCK);
        if (!is_1d(na, MQ_DTYPE_F32, nn))
            return TFAIL(na, "bnb-nested", "must be F32 [%llu] (ceil(%llu absmax / 256))", (unsigned long long)nn,
                         (unsigned long long)s->n_absmax);
        if (!is_1d(nm, MQ_DTYPE_F32, 256)) return TFAIL(nm, "bnb-nested", "must be F32 [256]");
        uint8_t nmb[1024];
        MQ_TRY(read_small(c, nm, nmb, sizeof nmb));
        unsigned differ = 0;
        for (unsigned k = 0; k < 256; k++) {
            s->nested_map[k] = load_f32le(nmb + 4 * k);
            if (!isfinite(s->nested_map[k])) return TFAIL(nm, "bnb-nested", "entry %u is not finite", k);
            differ += s->nested_map[k] != mq_bnb_dynamic_value(k);
        }
        if (differ)
            MQ_TRY(mq_model_warn(m, c->err, "%s: tensor '%s': %u of 256 entries differ from bitsandbytes' dynamic map; "
                                 "the stored map is used, as bitsandbytes does", m->files[nm->file].path, nm->name, differ));
        s->nested_absmax = part_of(na);
        claim(c, ni, s);
        claim(c, nmi, s);
    }
    c->n_4bit++;
    if (!c->first_4bit) c->first_4bit = w->name;
    if (fp4 && !c->any_fp4) c->any_fp4 = true, c->name_fp4 = w->name;
    if (!fp4 && !c->any_nf4) c->any_nf4 = true, c->name_nf4 = w->name;
    if (q.nested && !c->any_dq) c->any_dq = true, c->name_dq = w->name;
    if (!q.nested && !c->any_plain4) c->any_plain4 = true, c->name_plain4 = w->name;
    return MQ_OK;
}

/* The 8-bit module whose SCB is tensor `si`. */
static enum mq_status group_8bit(struct bnb_ctx *c, size_t si, enum mq_dtype dtype)
{
    struct mq_model *m = c->m;
    const struct mq_tensor *scb = &m->tensors[si];
    size_t plen = strlen(scb->name) - 4; /* "P" */
    long wi = find2(c, scb->name, plen, ".weight");
    if (wi < 0) return TFAIL(scb, "bnb-missing", "no '%.*s.weight' beside it", (int)plen, scb->name);
    const struct mq_tensor *w = &m->tensors[wi];
    if (c->role[wi] != ROLE_PLAIN) return TFAIL(scb, "bnb-weight", "'%s' is also a 4-bit weight", w->name);
    if (w->dtype != MQ_DTYPE_I8 || w->ndim != 2)
        return TFAIL(w, "bnb-weight", "an LLM.int8 weight must be I8 [out, in] (is %s with %u dims)", mq_dtype_name(w->dtype),
                     w->ndim);
    if (!is_1d(scb, MQ_DTYPE_F32, w->shape[0]))
        return TFAIL(scb, "bnb-scb", "must be F32 [%llu] (one per row of '%s')", (unsigned long long)w->shape[0], w->name);
    struct mq_bnb_source *s = calloc(1, sizeof *s);
    if (!s) return MQ_FAIL(c->err, MQ_E_NOMEM, "alloc", "out of memory");
    c->src[wi] = s;
    c->role[wi] = ROLE_WEIGHT;
    c->dtype[wi] = dtype;
    c->ndim[wi] = 2;
    memcpy(c->shape[wi], w->shape, sizeof w->shape);
    s->codec = MQ_CODEC_INT8_ROW;
    s->n_absmax = w->shape[0];
    s->scb = part_of(scb);
    s->n_stored = 1;
    s->stored_bytes = w->nbytes;
    claim(c, (long)si, s);
    long fi = find2(c, scb->name, plen, ".weight_format");
    if (fi >= 0) {
        const struct mq_tensor *f = &m->tensors[fi];
        uint8_t v = 1;
        if (f->dtype != MQ_DTYPE_U8 || f->ndim != 0) return TFAIL(f, "bnb-weight-format", "must be a U8 scalar (shape [])");
        MQ_TRY(read_small(c, f, &v, 1));
        if (v != 0)
            return TFAIL(f, "bnb-weight-format", "is %u; only 0 (row layout) loads (1 col32, 2 col_turing, 3 col_ampere)", v);
        claim(c, fi, s);
    }
    c->n_8bit++;
    if (!c->first_8bit) c->first_8bit = w->name;
    return MQ_OK;
}

/* Companion names without their module. */
static enum mq_status check_orphans(struct bnb_ctx *c)
{
    static const struct {
        const char *suffix, *module_suffix, *why;
    } comp[] = {
        {".weight.absmax", ".weight", "no quant_state.bitsandbytes__nf4|fp4 entry"},
        {".weight.quant_map", ".weight", "no quant_state.bitsandbytes__nf4|fp4 entry"},
        {".weight.nested_absmax", ".weight", "no quant_state.bitsandbytes__nf4|fp4 entry"},
        {".weight.nested_quant_map", ".weight", "no quant_state.bitsandbytes__nf4|fp4 entry"},
        {".weight_format", ".weight", "no SCB entry"},
    };
    for (size_t i = 0; i < c->m->n_tensors; i++) {
        if (c->role[i] != ROLE_PLAIN) continue;
        const struct mq_tensor *t = &c->m->tensors[i];
        for (size_t k = 0; k < sizeof comp / sizeof comp[0]; k++)
            if (ends_with(t->name, comp[k].suffix))
                return TFAIL(t, "bnb-orphan", "a bitsandbytes entry, but '%.*s%s' is not a bitsandbytes weight (%s)",
                             (int)(strlen(t->name) - strlen(comp[k].suffix)), t->name, comp[k].module_suffix,
                             comp[k].why);
    }
    return MQ_OK;
}

/* A bool key of quantization_config: -1 absent, 0, 1; 2 = not a bool. */
static int qc_bool(const cJSON *qc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(qc, key);
    if (!v || cJSON_IsNull(v)) return -1;
    return cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : 2;
}

/* A string key: its value, "" when absent or null, NULL when not a string. */
static const char *qc_str(const cJSON *qc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(qc, key);
    if (!v || cJSON_IsNull(v)) return "";
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* config.json's quantization_config against the modules found (transformers' rules, doc 4.3-4.4). */
static enum mq_status check_config(struct bnb_ctx *c, const cJSON *qc)
{
    if (!qc) {
        if (c->n_4bit + c->n_8bit)
            MQ_TRY(mq_model_warn(c->m, c->err, "%s: bitsandbytes weights but %s: transformers will not load them as "
                                 "pre-quantized", c->m->input_path,
                                 c->m->config.present ? "config.json has no quantization_config" : "no config.json"));
        return MQ_OK;
    }
    if (!cJSON_IsObject(qc)) return c->n_4bit + c->n_8bit ? CFAIL("quantization_config is not an object") : MQ_OK;
    const char *method = qc_str(qc, "quant_method");
    bool bnb = method && strcmp(method, "bitsandbytes") == 0;
    if (!bnb) {
        if (c->n_4bit + c->n_8bit)
            return CFAIL("quant_method is %s%s%s, but tensor '%s' is a bitsandbytes weight", method ? "\"" : "",
                         method ? method : "not a string", method ? "\"" : "",
                         c->first_4bit ? c->first_4bit : c->first_8bit);
        return MQ_OK; /* another method: not ours to check */
    }
    static const char *const bools[] = {"load_in_4bit", "load_in_8bit", "bnb_4bit_use_double_quant"};
    for (size_t k = 0; k < 3; k++)
        if (qc_bool(qc, bools[k]) == 2) return CFAIL("\"%s\" must be true or false", bools[k]);
    static const char *const strs[] = {"bnb_4bit_quant_type", "bnb_4bit_quant_storage"};
    for (size_t k = 0; k < 2; k++)
        if (!qc_str(qc, strs[k])) return CFAIL("\"%s\" must be a string", strs[k]);
    bool in4 = qc_bool(qc, "load_in_4bit") == 1, in8 = qc_bool(qc, "load_in_8bit") == 1;
    if (in4 && in8) return CFAIL("load_in_4bit and load_in_8bit are both true");
    if (c->n_4bit && !in4)
        return CFAIL("tensor '%s' is a 4-bit weight but load_in_4bit is not true", c->first_4bit);
    if (c->n_8bit && !in8)
        return CFAIL("tensor '%s' is an LLM.int8 weight but load_in_8bit is not true", c->first_8bit);
    if (in4) {
        const char *qt = qc_str(qc, "bnb_4bit_quant_type");
        const char *want = qt[0] ? qt : "fp4"; /* transformers' default */
        if (strcmp(want, "nf4") != 0 && strcmp(want, "fp4") != 0)
            return CFAIL("bnb_4bit_quant_type \"%s\" is not nf4 or fp4", want);
        bool nf4 = strcmp(want, "nf4") == 0;
        if (nf4 ? c->any_fp4 : c->any_nf4)
            return CFAIL("bnb_4bit_quant_type is \"%s\"%s but tensor '%s' is %s", want, qt[0] ? "" : " (the default)",
                         nf4 ? c->name_fp4 : c->name_nf4, nf4 ? "fp4" : "nf4");
        bool dq = qc_bool(qc, "bnb_4bit_use_double_quant") == 1;
        if (dq ? c->any_plain4 : c->any_dq)
            return CFAIL("bnb_4bit_use_double_quant is %s but tensor '%s' is %s double quant", dq ? "true" : "false",
                         dq ? c->name_plain4 : c->name_dq, dq ? "without" : "with");
        const char *st = qc_str(qc, "bnb_4bit_quant_storage");
        if (st[0] && strcmp(st, "uint8") != 0)
            return CFAIL("bnb_4bit_quant_storage \"%s\": only uint8 storage is read", st);
    }
    if (in8) {
        /* transformers requires SCB beside every int8 weight */
        for (size_t i = 0; i < c->m->n_tensors; i++) {
            const struct mq_tensor *t = &c->m->tensors[i];
            if (c->role[i] == ROLE_PLAIN && t->dtype == MQ_DTYPE_I8 && t->ndim == 2 && ends_with(t->name, ".weight"))
                return TFAIL(t, "bnb-missing", "load_in_8bit, but no '%.*s.SCB' beside this I8 weight",
                             (int)(strlen(t->name) - 7), t->name);
        }
    }
    if ((in4 || in8) && c->n_4bit + c->n_8bit == 0)
        MQ_TRY(mq_model_warn(c->m, c->err, "%s: quantization_config says %s, but no tensor is a bitsandbytes weight",
                             c->m->config.path, in4 ? "load_in_4bit" : "load_in_8bit"));
    return MQ_OK;
}

/* Replaces every group by its logical tensor; frees the companions' names. */
static void rebuild(struct bnb_ctx *c)
{
    struct mq_model *m = c->m;
    size_t k = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        struct mq_tensor t = m->tensors[i];
        if (c->role[i] == ROLE_COMPANION) {
            free(t.name);
            continue;
        }
        if (c->role[i] == ROLE_WEIGHT) {
            struct mq_bnb_source *s = c->src[i];
            c->src[i] = NULL;
            t.bnb = s;
            t.dtype = c->dtype[i];
            t.ndim = c->ndim[i];
            memcpy(t.shape, c->shape[i], sizeof t.shape);
            t.numel = 1;
            for (uint32_t d = 0; d < t.ndim; d++) t.numel *= t.shape[d]; /* checked when parsed */
        }
        m->tensors[k++] = t;
    }
    m->n_tensors = k;
}

static enum mq_status warn_split_shards(struct bnb_ctx *c)
{
    for (size_t i = 0; i < c->m->n_tensors; i++) {
        const struct mq_bnb_source *s = c->m->tensors[i].bnb;
        if (!s) continue;
        uint32_t f = c->m->tensors[i].file;
        bool split = s->codec == MQ_CODEC_INT8_ROW ? s->scb.file != f
                                                   : s->absmax.file != f || (s->double_quant && s->nested_absmax.file != f);
        if (split)
            MQ_TRY(mq_model_warn(c->m, c->err, "%s: tensor '%s': its bitsandbytes entries are in two shards "
                                 "(transformers v4 needs them in one)", c->m->input_path, c->m->tensors[i].name));
    }
    return MQ_OK;
}

enum mq_status mq_bnb_read(struct mq_model *m, struct mq_error *err)
{
    size_t n = m->n_tensors;
    /* config.json's quantization_config (null counts as absent) */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(m->config.json, "quantization_config");
    if (cJSON_IsNull(qc)) qc = NULL;
    bool maybe = qc != NULL;
    for (size_t i = 0; i < n && !maybe; i++) {
        const char *nm = m->tensors[i].name;
        maybe = strstr(nm, BNB_QS) || ends_with(nm, ".SCB") || ends_with(nm, ".weight_format") ||
                ends_with(nm, ".weight.absmax") || ends_with(nm, ".weight.quant_map") ||
                ends_with(nm, ".weight.nested_absmax") || ends_with(nm, ".weight.nested_quant_map");
    }
    if (!maybe) return MQ_OK; /* the common case: nothing of bitsandbytes, nothing allocated */

    struct bnb_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    struct bnb_ctx *c = &ctx;
    c->m = m;
    c->err = err;
    size_t cap = n ? n : 1;
    c->by_name = malloc(cap * sizeof *c->by_name);
    c->role = calloc(cap, 1);
    c->src = calloc(cap, sizeof *c->src);
    c->dtype = calloc(cap, sizeof *c->dtype);
    c->ndim = calloc(cap, sizeof *c->ndim);
    c->shape = calloc(cap, sizeof *c->shape);
    enum mq_status s = MQ_OK;
    if (!c->by_name || !c->role || !c->src || !c->dtype || !c->ndim || !c->shape)
        s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK) {
        for (size_t i = 0; i < n; i++) c->by_name[i] = (struct name_ix){m->tensors[i].name, i};
        qsort(c->by_name, n, sizeof *c->by_name, cmp_name_ix);
    }
    /* 8-bit weights take their dtype from the config (LLM.int8 computes in fp16 by default) */
    enum mq_dtype dtype8 = MQ_DTYPE_F16;
    if (s == MQ_OK && m->config.torch_dtype[0] && !dtype_from_torch(m->config.torch_dtype, &dtype8)) {
        for (size_t i = 0; i < n && s == MQ_OK; i++)
            if (ends_with(m->tensors[i].name, ".SCB"))
                s = CFAIL("torch_dtype \"%s\" is not float16, bfloat16 or float32 (the dtype of tensor '%s' "
                          "dequantized)", m->config.torch_dtype, m->tensors[i].name);
    }
    for (size_t i = 0; i < n && s == MQ_OK; i++)
        if (strstr(m->tensors[i].name, BNB_QS)) s = group_4bit(c, i);
    for (size_t i = 0; i < n && s == MQ_OK; i++)
        if (ends_with(m->tensors[i].name, ".SCB")) s = group_8bit(c, i, dtype8);
    if (s == MQ_OK) s = check_orphans(c);
    if (s == MQ_OK) s = check_config(c, qc);
    if (s == MQ_OK) {
        rebuild(c);
        s = warn_split_shards(c);
    }
    if (c->src)
        for (size_t i = 0; i < n; i++) free(c->src[i]);
    free(c->by_name);
    free(c->role);
    free(c->src);
    free(c->dtype);
    free(c->ndim);
    free(c->shape);
    return s;
}
