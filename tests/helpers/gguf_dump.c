/* gguf_dump.c - GGUF views from ggml and from @huggingface/gguf (see gguf_dump.h). */
#include "gguf_dump.h"
#include "why.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

#define GGUF_DUMP_JS_DEFAULT "tools/interop/gguf-dump.mjs"

static char *dup_str(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *p = malloc(n + 1);
    if (!p) abort();
    memcpy(p, s ? s : "", n + 1);
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) abort();
    return p;
}

const char *gguf_view_type_name(int type)
{
    static const char *const names[GGREF_GGUF_COUNT] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32",
                                                        "INT32", "FLOAT32", "BOOL",  "STRING", "ARRAY",
                                                        "UINT64", "INT64", "FLOAT64"};
    return type >= 0 && type < GGREF_GGUF_COUNT ? names[type] : "?";
}

static bool is_unsigned(int t)
{
    return t == GGREF_GGUF_UINT8 || t == GGREF_GGUF_UINT16 || t == GGREF_GGUF_UINT32 || t == GGREF_GGUF_UINT64 ||
           t == GGREF_GGUF_BOOL;
}
static bool is_signed(int t)
{
    return t == GGREF_GGUF_INT8 || t == GGREF_GGUF_INT16 || t == GGREF_GGUF_INT32 || t == GGREF_GGUF_INT64;
}
static bool is_float(int t) { return t == GGREF_GGUF_FLOAT32 || t == GGREF_GGUF_FLOAT64; }

static size_t scalar_size(int t)
{
    switch (t) {
    case GGREF_GGUF_UINT8: case GGREF_GGUF_INT8: case GGREF_GGUF_BOOL: return 1;
    case GGREF_GGUF_UINT16: case GGREF_GGUF_INT16: return 2;
    case GGREF_GGUF_UINT32: case GGREF_GGUF_INT32: case GGREF_GGUF_FLOAT32: return 4;
    case GGREF_GGUF_UINT64: case GGREF_GGUF_INT64: case GGREF_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Decodes one little-endian scalar of type t from raw array bytes (host is little-endian). */
static void value_from_bytes(struct gguf_view_value *out, int t, const unsigned char *p)
{
    switch (t) {
    case GGREF_GGUF_UINT8: out->u = p[0]; break;
    case GGREF_GGUF_BOOL: out->u = p[0] != 0; break;
    case GGREF_GGUF_INT8: out->i = (int8_t)p[0]; break;
    case GGREF_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); out->u = x; break; }
    case GGREF_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); out->i = x; break; }
    case GGREF_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); out->u = x; break; }
    case GGREF_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); out->i = x; break; }
    case GGREF_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); out->f = x; break; }
    case GGREF_GGUF_UINT64: memcpy(&out->u, p, 8); break;
    case GGREF_GGUF_INT64: memcpy(&out->i, p, 8); break;
    case GGREF_GGUF_FLOAT64: memcpy(&out->f, p, 8); break;
    default: break;
    }
}

static uint64_t file_size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

void gguf_view_free(struct gguf_view *v)
{
    if (!v) return;
    for (size_t k = 0; k < v->kv_len; k++) {
        struct gguf_view_kv *e = &v->kv[k];
        free(e->key);
        free(e->val.s);
        if (e->arr)
            for (uint64_t j = 0; j < e->n; j++) free(e->arr[j].s);
        free(e->arr);
    }
    free(v->kv);
    for (size_t t = 0; t < v->tensors_len; t++) free(v->tensors[t].name);
    free(v->tensors);
    memset(v, 0, sizeof *v);
}

/* ---- ggml --------------------------------------------------------------------------------- */

static void ggml_scalar(const struct mq_ggml *g, const struct gguf_context *c, int64_t id, int t,
                        struct gguf_view_value *out)
{
    switch (t) {
    case GGREF_GGUF_UINT8: out->u = g->gguf_get_val_u8(c, id); break;
    case GGREF_GGUF_INT8: out->i = g->gguf_get_val_i8(c, id); break;
    case GGREF_GGUF_UINT16: out->u = g->gguf_get_val_u16(c, id); break;
    case GGREF_GGUF_INT16: out->i = g->gguf_get_val_i16(c, id); break;
    case GGREF_GGUF_UINT32: out->u = g->gguf_get_val_u32(c, id); break;
    case GGREF_GGUF_INT32: out->i = g->gguf_get_val_i32(c, id); break;
    case GGREF_GGUF_FLOAT32: out->f = g->gguf_get_val_f32(c, id); break;
    case GGREF_GGUF_BOOL: out->u = g->gguf_get_val_bool(c, id) ? 1 : 0; break;
    case GGREF_GGUF_STRING: out->s = dup_str(g->gguf_get_val_str(c, id)); break;
    case GGREF_GGUF_UINT64: out->u = g->gguf_get_val_u64(c, id); break;
    case GGREF_GGUF_INT64: out->i = g->gguf_get_val_i64(c, id); break;
    case GGREF_GGUF_FLOAT64: out->f = g->gguf_get_val_f64(c, id); break;
    default: break;
    }
}

bool gguf_view_from_ggml(struct gguf_view *v, const struct mq_ggml *g, const char *path, bool no_alloc,
                         char *why, size_t why_len)
{
    memset(v, 0, sizeof *v);
    v->source = "ggml";
    if (!g || !g->handle) {
        mq_test_why(why, why_len, "ggml library not loaded");
        return false;
    }
    struct ggml_context *gctx = NULL;
    struct mq_gguf_init_params params = {no_alloc, &gctx};
    struct gguf_context *c = g->gguf_init_from_file(path, params);
    if (!c) {
        mq_test_why(why, why_len, "ggml refused %s (no_alloc=%s; ggml's reason is on stderr)", path,
            no_alloc ? "true" : "false");
        return false;
    }
    bool ok = true;
    v->version = g->gguf_get_version(c);
    v->alignment = g->gguf_get_alignment(c);
    v->data_offset = g->gguf_get_data_offset(c);
    v->file_size = file_size_of(path);
    int64_t n_kv = g->gguf_get_n_kv(c), n_t = g->gguf_get_n_tensors(c);
    v->n_kv = (uint64_t)n_kv;
    v->n_tensors = (uint64_t)n_t;
    v->kv = xcalloc((size_t)n_kv, sizeof *v->kv);
    for (int64_t k = 0; k < n_kv; k++) {
        struct gguf_view_kv *e = &v->kv[v->kv_len++];
        e->key = dup_str(g->gguf_get_key(c, k));
        e->type = g->gguf_get_kv_type(c, k);
        e->elem_type = -1;
        if (e->type != GGREF_GGUF_ARRAY) {
            ggml_scalar(g, c, k, e->type, &e->val);
            continue;
        }
        e->elem_type = g->gguf_get_arr_type(c, k);
        e->n = g->gguf_get_arr_n(c, k);
        e->arr = xcalloc((size_t)e->n, sizeof *e->arr);
        if (e->elem_type == GGREF_GGUF_STRING) {
            for (uint64_t j = 0; j < e->n; j++) e->arr[j].s = dup_str(g->gguf_get_arr_str(c, k, (size_t)j));
        } else if (scalar_size(e->elem_type) && e->n) {
            const unsigned char *p = g->gguf_get_arr_data(c, k);
            size_t es = scalar_size(e->elem_type);
            for (uint64_t j = 0; j < e->n; j++) value_from_bytes(&e->arr[j], e->elem_type, p + j * es);
        }
    }
    v->tensors = xcalloc((size_t)n_t, sizeof *v->tensors);
    for (int64_t i = 0; i < n_t && ok; i++) {
        struct gguf_view_tensor *t = &v->tensors[v->tensors_len++];
        t->name = dup_str(g->gguf_get_tensor_name(c, i));
        t->type = g->gguf_get_tensor_type(c, i);
        t->offset = g->gguf_get_tensor_offset(c, i);
        t->nbytes = g->gguf_get_tensor_size(c, i);
        const struct ggml_tensor *gt = gctx ? g->ggml_get_tensor(gctx, t->name) : NULL;
        if (!gt) {
            mq_test_why(why, why_len, "%s: ggml has no tensor '%s' in its context", path, t->name);
            ok = false;
            break;
        }
        if (g->gguf_get_tensor_ne) {
            memcpy(t->ne, g->gguf_get_tensor_ne(c, i), sizeof t->ne);
        } else if (!mq_ggml_tensor_ne(g, gt, t->ne, why, why_len)) {
            ok = false;
            break;
        }
        t->n_dims = (uint32_t)g->ggml_n_dims(gt);
        int64_t prod = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        if (prod != g->ggml_nelements(gt) || (uint64_t)g->ggml_nbytes(gt) != t->nbytes) {
            mq_test_why(why, why_len,
                "%s: tensor '%s': gguf ne gives %" PRId64 " elements and %" PRIu64 " bytes, ggml_tensor %" PRId64
                " and %zu",
                path, t->name, prod, t->nbytes, g->ggml_nelements(gt), g->ggml_nbytes(gt));
            ok = false;
            break;
        }
        if (!no_alloc) {
            const void *data = g->ggml_get_data(gt);
            if (!data && t->nbytes) {
                mq_test_why(why, why_len, "%s: tensor '%s' has no data with no_alloc=false", path, t->name);
                ok = false;
                break;
            }
            t->has_hash = true;
            t->data_hash = XXH64(data, (size_t)t->nbytes, 0);
        }
    }
    if (gctx) g->ggml_free(gctx);
    g->gguf_free(c);
    if (!ok) gguf_view_free(v);
    return ok;
}

/* ---- @huggingface/gguf ------------------------------------------------------------------- */

/* Appends s to cmd in single quotes (sh), escaping embedded quotes, then `tail`; false when
** cap is too small. */
static bool sh_quote(char *cmd, size_t cap, const char *s, const char *tail)
{
    size_t n = strlen(cmd), tl = strlen(tail);
    if (n + 1 >= cap) return false;
    cmd[n++] = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            if (n + 4 >= cap) return false;
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            if (n + 1 >= cap) return false;
            cmd[n++] = *s;
        }
    }
    if (n + 1 + tl >= cap) return false;
    cmd[n++] = '\'';
    memcpy(cmd + n, tail, tl + 1);
    return true;
}

static bool json_u64(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsString(item) || !item->valuestring[0] || item->valuestring[0] == '-') return false;
    char *end;
    errno = 0;
    *out = strtoull(item->valuestring, &end, 0);
    return errno == 0 && *end == 0;
}

static bool json_i64(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsString(item) || !item->valuestring[0]) return false;
    char *end;
    errno = 0;
    *out = strtoll(item->valuestring, &end, 10);
    return errno == 0 && *end == 0;
}

static bool json_int(const cJSON *item, int *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble != (double)(int)item->valuedouble) return false;
    *out = (int)item->valuedouble;
    return true;
}

/* One encoded value (see tools/interop/gguf-dump.mjs) of GGUF type t. */
static bool json_value(const cJSON *item, int t, struct gguf_view_value *out)
{
    if (t == GGREF_GGUF_BOOL) {
        if (!cJSON_IsBool(item)) return false;
        out->u = cJSON_IsTrue(item) ? 1 : 0;
        return true;
    }
    if (t == GGREF_GGUF_STRING) {
        if (!cJSON_IsString(item)) return false;
        out->s = dup_str(item->valuestring);
        return true;
    }
    if (is_float(t)) {
        uint64_t bits;
        if (!json_u64(item, &bits) || strncmp(item->valuestring, "0x", 2) != 0) return false;
        memcpy(&out->f, &bits, 8);
        return true;
    }
    if (is_unsigned(t)) return json_u64(item, &out->u);
    if (is_signed(t)) return json_i64(item, &out->i);
    return false;
}

static bool parse_js(struct gguf_view *v, const cJSON *doc, char *why, size_t why_len)
{
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(doc, "kv");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(doc, "tensors");
    int version;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(doc, "version"), &version) ||
        !json_u64(cJSON_GetObjectItemCaseSensitive(doc, "alignment"), &v->alignment) ||
        !json_u64(cJSON_GetObjectItemCaseSensitive(doc, "data_offset"), &v->data_offset) ||
        !json_u64(cJSON_GetObjectItemCaseSensitive(doc, "file_size"), &v->file_size) ||
        !json_u64(cJSON_GetObjectItemCaseSensitive(doc, "n_kv"), &v->n_kv) ||
        !json_u64(cJSON_GetObjectItemCaseSensitive(doc, "n_tensors"), &v->n_tensors) || !cJSON_IsArray(kv) ||
        !cJSON_IsArray(tensors)) {
        mq_test_why(why, why_len, "gguf-dump.mjs: unexpected JSON header fields");
        return false;
    }
    v->version = (uint32_t)version;
    size_t nk = (size_t)cJSON_GetArraySize(kv), nt = (size_t)cJSON_GetArraySize(tensors);
    v->kv = xcalloc(nk, sizeof *v->kv);
    const cJSON *it;
    cJSON_ArrayForEach(it, kv)
    {
        struct gguf_view_kv *e = &v->kv[v->kv_len++];
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(it, "key");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(it, "value");
        e->key = dup_str(cJSON_IsString(key) ? key->valuestring : "");
        if (!cJSON_IsString(key) || !json_int(cJSON_GetObjectItemCaseSensitive(it, "type"), &e->type) ||
            !json_int(cJSON_GetObjectItemCaseSensitive(it, "elem_type"), &e->elem_type) ||
            !json_u64(cJSON_GetObjectItemCaseSensitive(it, "n"), &e->n) || !value) {
            mq_test_why(why, why_len, "gguf-dump.mjs: bad kv entry '%s'", e->key);
            return false;
        }
        bool ok;
        if (e->type == GGREF_GGUF_ARRAY) {
            ok = cJSON_IsArray(value) && (uint64_t)cJSON_GetArraySize(value) == e->n;
            e->arr = xcalloc((size_t)e->n, sizeof *e->arr);
            size_t j = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, value)
            {
                if (!ok || j >= e->n) break;
                ok = json_value(x, e->elem_type, &e->arr[j++]);
            }
        } else {
            ok = json_value(value, e->type, &e->val);
        }
        if (!ok) {
            mq_test_why(why, why_len, "gguf-dump.mjs: value of '%s' (%s) not decodable", e->key, gguf_view_type_name(e->type));
            return false;
        }
    }
    v->tensors = xcalloc(nt, sizeof *v->tensors);
    cJSON_ArrayForEach(it, tensors)
    {
        struct gguf_view_tensor *t = &v->tensors[v->tensors_len++];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *ne = cJSON_GetObjectItemCaseSensitive(it, "ne");
        const cJSON *nbytes = cJSON_GetObjectItemCaseSensitive(it, "nbytes");
        int n_dims;
        t->name = dup_str(cJSON_IsString(name) ? name->valuestring : "");
        if (!cJSON_IsString(name) || !json_int(cJSON_GetObjectItemCaseSensitive(it, "n_dims"), &n_dims) ||
            !json_int(cJSON_GetObjectItemCaseSensitive(it, "type"), &t->type) ||
            !json_u64(cJSON_GetObjectItemCaseSensitive(it, "offset"), &t->offset) || !cJSON_IsArray(ne) ||
            cJSON_GetArraySize(ne) != n_dims || n_dims > 4 || n_dims < 0) {
            mq_test_why(why, why_len, "gguf-dump.mjs: bad tensor entry '%s'", t->name);
            return false;
        }
        t->n_dims = (uint32_t)n_dims;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (int d = 0; d < n_dims; d++)
            if (!json_i64(cJSON_GetArrayItem(ne, d), &t->ne[d])) {
                mq_test_why(why, why_len, "gguf-dump.mjs: bad ne of '%s'", t->name);
                return false;
            }
        if (cJSON_IsNull(nbytes)) t->nbytes = UINT64_MAX;
        else if (!json_u64(nbytes, &t->nbytes)) {
            mq_test_why(why, why_len, "gguf-dump.mjs: bad nbytes of '%s'", t->name);
            return false;
        }
    }
    return true;
}

bool gguf_view_from_js(struct gguf_view *v, const char *path, char *why, size_t why_len)
{
    memset(v, 0, sizeof *v);
    v->source = "@huggingface/gguf";
    const char *node = getenv("MODELQ_NODE"), *script = getenv("MODELQ_GGUF_DUMP_JS");
    if (!node || !*node) node = "node";
    if (!script || !*script) script = GGUF_DUMP_JS_DEFAULT;
    char cmd[8192] = "";
    if (!sh_quote(cmd, sizeof cmd, node, " ") || !sh_quote(cmd, sizeof cmd, script, " ") ||
        !sh_quote(cmd, sizeof cmd, path, " </dev/null")) {
        mq_test_why(why, why_len, "path too long: %s", path);
        return false;
    }
    FILE *p = popen(cmd, "r");
    if (!p) {
        mq_test_why(why, why_len, "popen(%s): %s", cmd, strerror(errno));
        return false;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        size_t r = fread(buf + len, 1, cap - len - 1, p);
        if (r == 0) break;
        len += r;
    }
    buf[len] = 0;
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        int code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (code == 127)
            mq_test_why(why, why_len, "'%s' not found (exit 127): install Node.js (tools/setup.sh)", node);
        else
            mq_test_why(why, why_len,
                "%s %s %s failed (exit %d; its message is on stderr); is @huggingface/gguf installed "
                "(tools/setup.sh runs npm ci in tools/interop)?",
                node, script, path, code);
        free(buf);
        return false;
    }
    cJSON *doc = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!doc) {
        mq_test_why(why, why_len, "gguf-dump.mjs printed something that is not JSON for %s", path);
        return false;
    }
    bool ok = parse_js(v, doc, why, why_len);
    cJSON_Delete(doc);
    if (!ok) gguf_view_free(v);
    return ok;
}

/* ---- comparisons ------------------------------------------------------------------------ */

static bool value_eq(int t, const struct gguf_view_value *a, const struct gguf_view_value *b)
{
    if (t == GGREF_GGUF_STRING) return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
    if (is_float(t)) return memcmp(&a->f, &b->f, sizeof a->f) == 0;
    if (is_signed(t)) return a->i == b->i;
    return a->u == b->u;
}

static void value_str(int t, const struct gguf_view_value *x, char *out, size_t len)
{
    if (t == GGREF_GGUF_STRING) snprintf(out, len, "\"%.200s\"", x->s ? x->s : "");
    else if (is_float(t)) snprintf(out, len, "%.17g", x->f);
    else if (is_signed(t)) snprintf(out, len, "%" PRId64, x->i);
    else snprintf(out, len, "%" PRIu64, x->u);
}

bool gguf_view_compare(const struct gguf_view *a, const struct gguf_view *b, char *why, size_t why_len)
{
    const char *A = a->source ? a->source : "a", *B = b->source ? b->source : "b";
#define DIFF_U(field)                                                                                     \
    if ((uint64_t)a->field != (uint64_t)b->field) {                                                        \
        mq_test_why(why, why_len, #field ": %s %" PRIu64 ", %s %" PRIu64, A, (uint64_t)a->field, B, (uint64_t)b->field); \
        return false;                                                                                      \
    }
    DIFF_U(version)
    DIFF_U(alignment)
    DIFF_U(data_offset)
    DIFF_U(file_size)
    DIFF_U(n_kv)
    DIFF_U(kv_len)
    DIFF_U(n_tensors)
    DIFF_U(tensors_len)
#undef DIFF_U
    for (size_t k = 0; k < a->kv_len; k++) {
        const struct gguf_view_kv *x = &a->kv[k], *y = &b->kv[k];
        if (strcmp(x->key, y->key) != 0) {
            mq_test_why(why, why_len, "kv %zu: key '%s' (%s) vs '%s' (%s)", k, x->key, A, y->key, B);
            return false;
        }
        if (x->type != y->type || x->elem_type != y->elem_type || x->n != y->n) {
            mq_test_why(why, why_len, "kv '%s': type %s elem %s n %" PRIu64 " (%s) vs type %s elem %s n %" PRIu64 " (%s)",
                x->key, gguf_view_type_name(x->type), gguf_view_type_name(x->elem_type), x->n, A,
                gguf_view_type_name(y->type), gguf_view_type_name(y->elem_type), y->n, B);
            return false;
        }
        char s1[256], s2[256];
        if (x->type != GGREF_GGUF_ARRAY) {
            if (!value_eq(x->type, &x->val, &y->val)) {
                value_str(x->type, &x->val, s1, sizeof s1);
                value_str(x->type, &y->val, s2, sizeof s2);
                mq_test_why(why, why_len, "kv '%s' (%s): %s %s, %s %s", x->key, gguf_view_type_name(x->type), A, s1, B, s2);
                return false;
            }
            continue;
        }
        for (uint64_t j = 0; j < x->n; j++)
            if (!value_eq(x->elem_type, &x->arr[j], &y->arr[j])) {
                value_str(x->elem_type, &x->arr[j], s1, sizeof s1);
                value_str(x->elem_type, &y->arr[j], s2, sizeof s2);
                mq_test_why(why, why_len, "kv '%s'[%" PRIu64 "] (%s): %s %s, %s %s", x->key, j,
                    gguf_view_type_name(x->elem_type), A, s1, B, s2);
                return false;
            }
    }
    for (size_t i = 0; i < a->tensors_len; i++) {
        const struct gguf_view_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) != 0) {
            mq_test_why(why, why_len, "tensor %zu: name '%s' (%s) vs '%s' (%s)", i, x->name, A, y->name, B);
            return false;
        }
        if (memcmp(x->ne, y->ne, sizeof x->ne) != 0) {
            mq_test_why(why, why_len,
                "tensor '%s': ne [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "] (%s) vs [%" PRId64 ",%" PRId64
                ",%" PRId64 ",%" PRId64 "] (%s)",
                x->name, x->ne[0], x->ne[1], x->ne[2], x->ne[3], A, y->ne[0], y->ne[1], y->ne[2], y->ne[3], B);
            return false;
        }
        if (x->type != y->type || x->offset != y->offset) {
            mq_test_why(why, why_len, "tensor '%s': type %d offset %" PRIu64 " (%s) vs type %d offset %" PRIu64 " (%s)",
                x->name, x->type, x->offset, A, y->type, y->offset, B);
            return false;
        }
        if (x->nbytes != UINT64_MAX && y->nbytes != UINT64_MAX && x->nbytes != y->nbytes) {
            mq_test_why(why, why_len, "tensor '%s': nbytes %" PRIu64 " (%s) vs %" PRIu64 " (%s)", x->name, x->nbytes, A,
                y->nbytes, B);
            return false;
        }
        if (x->has_hash && y->has_hash && x->data_hash != y->data_hash) {
            mq_test_why(why, why_len, "tensor '%s': data xxh64 %016" PRIx64 " (%s) vs %016" PRIx64 " (%s)", x->name,
                x->data_hash, A, y->data_hash, B);
            return false;
        }
    }
    return true;
}

bool gguf_view_check_layout(const struct gguf_view *v, char *why, size_t why_len)
{
    const char *S = v->source ? v->source : "view";
    uint64_t al = v->alignment;
    if (v->version != 3) {
        mq_test_why(why, why_len, "%s: version %" PRIu32 ", want 3", S, v->version);
        return false;
    }
    if (al == 0 || (al & (al - 1)) != 0) {
        mq_test_why(why, why_len, "%s: alignment %" PRIu64 " is not a power of two", S, al);
        return false;
    }
    if (v->data_offset % al != 0) {
        mq_test_why(why, why_len, "%s: data offset %" PRIu64 " not a multiple of %" PRIu64, S, v->data_offset, al);
        return false;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < v->tensors_len; i++) {
        const struct gguf_view_tensor *t = &v->tensors[i];
        if (t->nbytes == UINT64_MAX) {
            mq_test_why(why, why_len, "%s: tensor '%s' has a size this parser cannot tell (type %d)", S, t->name, t->type);
            return false;
        }
        if (t->offset != next) {
            mq_test_why(why, why_len, "%s: tensor '%s' at offset %" PRIu64 ", expected %" PRIu64 " (contiguous, padded to %" PRIu64
                ")", S, t->name, t->offset, next, al);
            return false;
        }
        next += (t->nbytes + al - 1) / al * al;
    }
    if (v->data_offset + next != v->file_size) {
        mq_test_why(why, why_len, "%s: file is %" PRIu64 " bytes, header + padded data make %" PRIu64, S, v->file_size,
            v->data_offset + next);
        return false;
    }
    return true;
}

const struct gguf_view_kv *gguf_view_find_kv(const struct gguf_view *v, const char *key)
{
    for (size_t k = 0; k < v->kv_len; k++)
        if (strcmp(v->kv[k].key, key) == 0) return &v->kv[k];
    return NULL;
}

const struct gguf_view_tensor *gguf_view_find_tensor(const struct gguf_view *v, const char *name)
{
    for (size_t i = 0; i < v->tensors_len; i++)
        if (strcmp(v->tensors[i].name, name) == 0) return &v->tensors[i];
    return NULL;
}

/* The KV `key` with scalar type `type`, or NULL with why filled. */
static const struct gguf_view_kv *expect_kv(const struct gguf_view *v, const char *key, int type, char *why,
                                            size_t why_len)
{
    const struct gguf_view_kv *e = gguf_view_find_kv(v, key);
    if (!e) {
        mq_test_why(why, why_len, "%s: no key '%s'", v->source, key);
        return NULL;
    }
    if (e->type != type) {
        mq_test_why(why, why_len, "%s: key '%s' is %s, want %s", v->source, key, gguf_view_type_name(e->type),
            gguf_view_type_name(type));
        return NULL;
    }
    return e;
}

bool gguf_view_expect_uint(const struct gguf_view *v, const char *key, int type, uint64_t value, char *why,
                           size_t why_len)
{
    const struct gguf_view_kv *e = expect_kv(v, key, type, why, why_len);
    if (!e) return false;
    if (!is_unsigned(type) || e->val.u != value) {
        mq_test_why(why, why_len, "%s: key '%s' = %" PRIu64 ", want %" PRIu64, v->source, key, e->val.u, value);
        return false;
    }
    return true;
}

bool gguf_view_expect_int(const struct gguf_view *v, const char *key, int type, int64_t value, char *why,
                          size_t why_len)
{
    const struct gguf_view_kv *e = expect_kv(v, key, type, why, why_len);
    if (!e) return false;
    if (!is_signed(type) || e->val.i != value) {
        mq_test_why(why, why_len, "%s: key '%s' = %" PRId64 ", want %" PRId64, v->source, key, e->val.i, value);
        return false;
    }
    return true;
}

bool gguf_view_expect_float(const struct gguf_view *v, const char *key, int type, double value, char *why,
                            size_t why_len)
{
    const struct gguf_view_kv *e = expect_kv(v, key, type, why, why_len);
    if (!e) return false;
    double want = type == GGREF_GGUF_FLOAT32 ? (double)(float)value : value;
    if (!is_float(type) || memcmp(&e->val.f, &want, sizeof want) != 0) {
        mq_test_why(why, why_len, "%s: key '%s' = %.17g, want %.17g", v->source, key, e->val.f, want);
        return false;
    }
    return true;
}

bool gguf_view_expect_str(const struct gguf_view *v, const char *key, const char *value, char *why,
                          size_t why_len)
{
    const struct gguf_view_kv *e = expect_kv(v, key, GGREF_GGUF_STRING, why, why_len);
    if (!e) return false;
    if (strcmp(e->val.s, value) != 0) {
        mq_test_why(why, why_len, "%s: key '%s' = \"%.200s\", want \"%.200s\"", v->source, key, e->val.s, value);
        return false;
    }
    return true;
}

bool gguf_view_expect_array(const struct gguf_view *v, const char *key, int elem_type, uint64_t n, char *why,
                            size_t why_len)
{
    const struct gguf_view_kv *e = expect_kv(v, key, GGREF_GGUF_ARRAY, why, why_len);
    if (!e) return false;
    if (e->elem_type != elem_type || e->n != n) {
        mq_test_why(why, why_len, "%s: key '%s' is an array of %" PRIu64 " %s, want %" PRIu64 " %s", v->source, key, e->n,
            gguf_view_type_name(e->elem_type), n, gguf_view_type_name(elem_type));
        return false;
    }
    return true;
}

bool gguf_view_expect_tensor(const struct gguf_view *v, const char *name, int type, uint32_t n_dims,
                             const int64_t ne[4], char *why, size_t why_len)
{
    const struct gguf_view_tensor *t = gguf_view_find_tensor(v, name);
    if (!t) {
        mq_test_why(why, why_len, "%s: no tensor '%s'", v->source, name);
        return false;
    }
    if (t->type != type || memcmp(t->ne, ne, sizeof t->ne) != 0 || (n_dims && t->n_dims != n_dims)) {
        mq_test_why(why, why_len,
            "%s: tensor '%s' is type %d n_dims %" PRIu32 " ne [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
            "], want type %d n_dims %" PRIu32 " ne [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
            v->source, name, t->type, t->n_dims, t->ne[0], t->ne[1], t->ne[2], t->ne[3], type, n_dims, ne[0], ne[1],
            ne[2], ne[3]);
        return false;
    }
    return true;
}

void gguf_view_print(FILE *f, const struct gguf_view *v)
{
    fprintf(f, "# GGUF as read by %s: version %" PRIu32 ", alignment %" PRIu64 ", data at %" PRIu64 ", %" PRIu64
               " bytes, %" PRIu64 " kv, %" PRIu64 " tensors\n",
            v->source, v->version, v->alignment, v->data_offset, v->file_size, v->n_kv, v->n_tensors);
    char s[256];
    for (size_t k = 0; k < v->kv_len; k++) {
        const struct gguf_view_kv *e = &v->kv[k];
        if (e->type == GGREF_GGUF_ARRAY) {
            fprintf(f, "  %s: ARRAY of %" PRIu64 " %s", e->key, e->n, gguf_view_type_name(e->elem_type));
            for (uint64_t j = 0; j < e->n && j < 4; j++) {
                value_str(e->elem_type, &e->arr[j], s, sizeof s);
                fprintf(f, "%s%s", j ? ", " : " [", s);
            }
            fprintf(f, "%s\n", e->n > 4 ? ", ...]" : e->n ? "]" : "");
        } else {
            value_str(e->type, &e->val, s, sizeof s);
            fprintf(f, "  %s: %s %s\n", e->key, gguf_view_type_name(e->type), s);
        }
    }
    for (size_t i = 0; i < v->tensors_len; i++) {
        const struct gguf_view_tensor *t = &v->tensors[i];
        fprintf(f, "  tensor %s: type %d n_dims %" PRIu32 " ne [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                   "] offset %" PRIu64 " nbytes %" PRIu64,
                t->name, t->type, t->n_dims, t->ne[0], t->ne[1], t->ne[2], t->ne[3], t->offset, t->nbytes);
        if (t->has_hash) fprintf(f, " xxh64 %016" PRIx64, t->data_hash);
        fputc('\n', f);
    }
}
