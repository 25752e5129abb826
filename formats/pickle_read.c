/*
** pickle_read.c - the restricted unpickler (see pickle_read.h).
**
** Pickle is a stack machine (CPython Lib/pickletools.py documents every opcode). torch.save
** writes a state dict as, in protocol 2:
**   PROTO 2, GLOBAL 'collections OrderedDict', EMPTY_TUPLE, REDUCE      the dict
**   MARK, then per tensor: BINUNICODE name,
**     GLOBAL 'torch._utils _rebuild_tensor_v2', MARK,
**       MARK 'storage' GLOBAL 'torch FloatStorage' key location numel TUPLE, BINPERSID
**       offset, (sizes) TUPLE, (strides) TUPLE, NEWFALSE, OrderedDict() (the hooks),
**     TUPLE, REDUCE
**   SETITEMS, then {'_metadata': OrderedDict(...)} BUILD, STOP
** with BINPUT/BINGET memo traffic throughout. Values live in an arena freed at once; the memo,
** the stack and the mark stack are arrays with caps. Checks (the `check` of each error):
** pickle-truncated, pickle-limit, pickle-opcode, pickle-global, pickle-reduce, pickle-args,
** pickle-build, pickle-persid, pickle-memo, pickle-stack, pickle-int, pickle-string,
** pickle-not-state-dict, max-dims.
*/
#include "pickle_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "span.h"

#define MAX_STACK (1u << 20)   /* values on the stack (SETITEMS batches are 1000 pairs) */
#define MAX_MARKS 256u         /* nesting of MARKs (a state dict uses 3) */
#define MAX_MEMO (1u << 22)    /* memo slots */
#define MAX_STRING (1u << 20)  /* one string or bytes value (tensor names are short) */
#define MAX_ARENA (1ull << 30) /* every value together */
#define ARENA_CHUNK (1u << 16)

struct mq_pickle_arena {
    struct mq_pickle_arena *next;
    size_t used, cap;
    uint64_t total; /* bytes of all chunks (kept in the head) */
    max_align_t data[];
};

enum pv_kind { PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_DICT, PV_CLASS, PV_STORAGE, PV_TENSOR };
enum pv_class { CL_ORDERED_DICT, CL_REBUILD_TENSOR, CL_REBUILD_PARAMETER, CL_SIZE, CL_STORAGE };

static const char *const kind_names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                         "class", "storage", "tensor"};

struct pv {
    enum pv_kind kind;
    bool odict;                 /* PV_DICT made by OrderedDict() */
    int64_t i;                  /* PV_INT, PV_BOOL */
    double f;
    const char *s;              /* PV_STR / PV_BYTES (NUL-terminated copy), PV_CLASS: its dotted name */
    size_t slen;
    struct pv **items;          /* PV_TUPLE / PV_LIST; PV_DICT: key, value, key, value ... */
    size_t n, cap;
    enum pv_class cls;          /* PV_CLASS */
    enum mq_dtype dtype;        /* PV_CLASS CL_STORAGE, PV_STORAGE */
    const char *key;            /* PV_STORAGE */
    uint64_t numel;             /* PV_STORAGE */
    struct mq_pickle_tensor *t; /* PV_TENSOR (name unset) */
};

struct up {
    struct mq_span in;
    const char *where;
    struct mq_pickle_arena *arena;
    struct pv **stack;
    size_t sp;
    size_t marks[MAX_MARKS];
    size_t n_marks;
    struct pv **memo;
    size_t n_memo, cap_memo;
    size_t op_at; /* byte offset of the opcode being run */
    struct mq_error *err;
};

#define PFAIL(u, code, check, fmt, ...)                                                                              \
    MQ_FAIL((u)->err, code, check, "%s: " check ": " fmt " (byte %zu)", (u)->where, __VA_ARGS__, (u)->op_at)

static void *arena_alloc(struct up *u, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct mq_pickle_arena *a = u->arena;
    if (!a || a->cap - a->used < n) {
        uint64_t total = a ? a->total : 0;
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (total + cap > MAX_ARENA) {
            PFAIL(u, MQ_E_LIMIT, "pickle-limit", "values need more than %llu bytes", (unsigned long long)MAX_ARENA);
            return NULL;
        }
        struct mq_pickle_arena *c = malloc(sizeof *c + cap);
        if (!c) {
            MQ_FAIL(u->err, MQ_E_NOMEM, "alloc", "%s: out of memory", u->where);
            return NULL;
        }
        c->next = a;
        c->used = 0;
        c->cap = cap;
        c->total = total + cap;
        u->arena = a = c;
    }
    void *p = (char *)a->data + a->used;
    a->used += n;
    memset(p, 0, n);
    return p;
}

static struct pv *new_pv(struct up *u, enum pv_kind k)
{
    struct pv *v = arena_alloc(u, sizeof *v);
    if (v) v->kind = k;
    return v;
}

/* Appends to a list/tuple/dict's items (arrays grow by doubling inside the arena). */
static enum mq_status add_item(struct up *u, struct pv *c, struct pv *x)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct pv **items = arena_alloc(u, cap * sizeof *items);
        if (!items) return u->err->code;
        if (c->n) memcpy(items, c->items, c->n * sizeof *items);
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n++] = x;
    return MQ_OK;
}

static enum mq_status push(struct up *u, struct pv *v)
{
    if (!v) return u->err->code;
    if (u->sp == MAX_STACK) return PFAIL(u, MQ_E_LIMIT, "pickle-stack", "more than %u values on the stack", MAX_STACK);
    u->stack[u->sp++] = v;
    return MQ_OK;
}

/* The bottom of the current frame: the last mark, or 0. */
static size_t frame_base(const struct up *u) { return u->n_marks ? u->marks[u->n_marks - 1] : 0; }

static enum mq_status pop(struct up *u, struct pv **v)
{
    if (u->sp <= frame_base(u)) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "pops an empty stack");
    *v = u->stack[--u->sp];
    return MQ_OK;
}

/* Pops everything above the last mark, and the mark. */
static enum mq_status pop_mark(struct up *u, size_t *base)
{
    if (u->n_marks == 0) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "needs a MARK and there is none");
    *base = u->marks[--u->n_marks];
    return MQ_OK;
}

static enum mq_status need(struct up *u, size_t n, const uint8_t **p, const char *what)
{
    if (mq_span_bytes(&u->in, n, p))
        return PFAIL(u, MQ_E_CORRUPT, "pickle-truncated", "%s needs %zu bytes, %zu left", what, n, mq_span_left(&u->in));
    return MQ_OK;
}

static enum mq_status make_tuple(struct up *u, size_t base)
{
    struct pv *t = new_pv(u, PV_TUPLE);
    if (!t) return u->err->code;
    for (size_t i = base; i < u->sp; i++) MQ_TRY(add_item(u, t, u->stack[i]));
    u->sp = base;
    return push(u, t);
}

/* A string or bytes value of n bytes that follow. */
static enum mq_status read_string(struct up *u, uint64_t n, enum pv_kind k, const char *op)
{
    if (n > MAX_STRING)
        return PFAIL(u, MQ_E_LIMIT, "pickle-limit", "%s of %llu bytes is over the %u-byte limit", op, (unsigned long long)n,
                     MAX_STRING);
    const uint8_t *p = NULL;
    MQ_TRY(need(u, (size_t)n, &p, op));
    struct pv *v = new_pv(u, k);
    char *s = v ? arena_alloc(u, (size_t)n + 1) : NULL;
    if (!s) return u->err->code;
    memcpy(s, p, (size_t)n);
    v->s = s;
    v->slen = (size_t)n;
    return push(u, v);
}

/* Printable form of a name from the file for a message (control bytes and quotes become '?'). */
static const char *printable(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static const struct {
    const char *name;
    enum mq_dtype dtype;
} storage_classes[] = {
    {"FloatStorage", MQ_DTYPE_F32},  {"DoubleStorage", MQ_DTYPE_F64}, {"HalfStorage", MQ_DTYPE_F16},
    {"BFloat16Storage", MQ_DTYPE_BF16}, {"LongStorage", MQ_DTYPE_I64}, {"IntStorage", MQ_DTYPE_I32},
    {"ShortStorage", MQ_DTYPE_I16},  {"CharStorage", MQ_DTYPE_I8},    {"ByteStorage", MQ_DTYPE_U8},
    {"BoolStorage", MQ_DTYPE_BOOL},  {"ComplexFloatStorage", MQ_DTYPE_C64},
};

bool mq_pickle_storage_dtype(const char *name, enum mq_dtype *out)
{
    for (size_t i = 0; i < sizeof storage_classes / sizeof storage_classes[0]; i++)
        if (strcmp(storage_classes[i].name, name) == 0) {
            *out = storage_classes[i].dtype;
            return true;
        }
    return false;
}

/* GLOBAL / STACK_GLOBAL: only the names of a state dict. */
static enum mq_status push_global(struct up *u, const char *module, const char *name)
{
    struct pv *v = new_pv(u, PV_CLASS);
    if (!v) return u->err->code;
    if (strcmp(module, "collections") == 0 && strcmp(name, "OrderedDict") == 0) v->cls = CL_ORDERED_DICT;
    else if (strcmp(module, "torch._utils") == 0 && strcmp(name, "_rebuild_tensor_v2") == 0) v->cls = CL_REBUILD_TENSOR;
    else if (strcmp(module, "torch._utils") == 0 && strcmp(name, "_rebuild_parameter") == 0) v->cls = CL_REBUILD_PARAMETER;
    else if (strcmp(module, "torch") == 0 && strcmp(name, "Size") == 0) v->cls = CL_SIZE;
    else if (strcmp(module, "torch") == 0 && mq_pickle_storage_dtype(name, &v->dtype)) v->cls = CL_STORAGE;
    else {
        char a[96], b[96];
        return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-global",
                     "refused global '%s.%s' (a state dict names only OrderedDict, torch rebuild functions, torch.Size "
                     "and storage classes; nothing from the file is executed)",
                     printable(module, a, sizeof a), printable(name, b, sizeof b));
    }
    size_t ml = strlen(module), nl = strlen(name);
    char *dotted = arena_alloc(u, ml + nl + 2);
    if (!dotted) return u->err->code;
    snprintf(dotted, ml + nl + 2, "%s.%s", module, name);
    v->s = dotted;
    return push(u, v);
}

static bool is_int(const struct pv *v) { return v->kind == PV_INT || v->kind == PV_BOOL; }

/* A size/stride tuple (ints only, at most MQ_MAX_DIMS). */
static enum mq_status int_tuple(struct up *u, const struct pv *t, int64_t *out, uint32_t *n, const char *what)
{
    if (t->kind != PV_TUPLE)
        return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "_rebuild_tensor_v2: %s is a %s, not a tuple", what, kind_names[t->kind]);
    if (t->n > MQ_MAX_DIMS)
        return PFAIL(u, MQ_E_LIMIT, "max-dims", "tensor with %zu dimensions, at most %d supported", t->n, MQ_MAX_DIMS);
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PV_INT)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "_rebuild_tensor_v2: %s[%zu] is a %s, not an int", what, i,
                         kind_names[t->items[i]->kind]);
        out[i] = t->items[i]->i;
    }
    *n = (uint32_t)t->n;
    return MQ_OK;
}

static bool empty_hooks(const struct pv *h) { return h->kind == PV_DICT && h->n == 0; }

/* REDUCE: callable(*args), for the whitelisted callables on their exact argument types. */
static enum mq_status reduce(struct up *u, struct pv *fn, struct pv *args)
{
    if (fn->kind != PV_CLASS)
        return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-reduce", "REDUCE calls a %s (only the rebuild functions may be called)",
                     kind_names[fn->kind]);
    if (args->kind != PV_TUPLE)
        return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "REDUCE of %s with a %s instead of an argument tuple", fn->s,
                     kind_names[args->kind]);
    struct pv **a = args->items;
    size_t n = args->n;
    switch (fn->cls) {
    case CL_ORDERED_DICT: {
        if (n != 0) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "OrderedDict() called with %zu arguments (expects none)", n);
        struct pv *d = new_pv(u, PV_DICT);
        if (!d) return u->err->code;
        d->odict = true;
        return push(u, d);
    }
    case CL_SIZE:
        if (n != 1 || a[0]->kind != PV_TUPLE)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s", "torch.Size expects one tuple of ints");
        for (size_t i = 0; i < a[0]->n; i++)
            if (a[0]->items[i]->kind != PV_INT)
                return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s", "torch.Size expects one tuple of ints");
        return push(u, a[0]);
    case CL_REBUILD_PARAMETER:
        if (n != 3 || a[0]->kind != PV_TENSOR || !is_int(a[1]) || !empty_hooks(a[2]))
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s",
                         "_rebuild_parameter expects (tensor, requires_grad, empty hooks)");
        return push(u, a[0]);
    case CL_REBUILD_TENSOR: {
        if (n != 6 && n != 7)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "_rebuild_tensor_v2 called with %zu arguments (expects 6 or 7)", n);
        if (a[0]->kind != PV_STORAGE)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "_rebuild_tensor_v2: the storage is a %s", kind_names[a[0]->kind]);
        if (a[1]->kind != PV_INT || a[1]->i < 0)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s", "_rebuild_tensor_v2: the storage offset is not an int >= 0");
        if (!is_int(a[4]) || !empty_hooks(a[5]) || (n == 7 && a[6]->kind != PV_NONE && a[6]->kind != PV_DICT))
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s",
                         "_rebuild_tensor_v2: requires_grad, hooks or metadata of the wrong type");
        struct mq_pickle_tensor *t = arena_alloc(u, sizeof *t);
        if (!t) return u->err->code;
        uint32_t nd_stride;
        MQ_TRY(int_tuple(u, a[2], t->shape, &t->ndim, "size"));
        MQ_TRY(int_tuple(u, a[3], t->stride, &nd_stride, "stride"));
        if (nd_stride != t->ndim)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "_rebuild_tensor_v2: %u sizes but %u strides", t->ndim, nd_stride);
        t->key = a[0]->key;
        t->dtype = a[0]->dtype;
        t->storage_numel = a[0]->numel;
        t->offset = (uint64_t)a[1]->i;
        struct pv *v = new_pv(u, PV_TENSOR);
        if (!v) return u->err->code;
        v->t = t;
        return push(u, v);
    }
    case CL_STORAGE: break;
    }
    return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-reduce", "REDUCE calls %s (only the rebuild functions may be called)", fn->s);
}

/* BINPERSID: ('storage', torch.<T>Storage, key, location, numel) -> a storage reference. */
static enum mq_status persid(struct up *u, struct pv *pid)
{
    struct pv **a = pid->items;
    if (pid->kind != PV_TUPLE || pid->n != 5 || a[0]->kind != PV_STR || strcmp(a[0]->s, "storage") != 0 ||
        a[1]->kind != PV_CLASS || a[1]->cls != CL_STORAGE || a[2]->kind != PV_STR || a[3]->kind != PV_STR ||
        a[4]->kind != PV_INT || a[4]->i < 0)
        return PFAIL(u, MQ_E_CORRUPT, "pickle-persid", "%s",
                     "persistent id is not ('storage', storage class, key, location, numel)");
    const char *k = a[2]->s;
    if (a[2]->slen == 0 || a[2]->slen > 64 || strspn(k, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-.") != a[2]->slen ||
        strcmp(k, ".") == 0 || strcmp(k, "..") == 0) {
        char b[80];
        return PFAIL(u, MQ_E_CORRUPT, "pickle-persid", "storage key '%s' is not a plain name", printable(k, b, sizeof b));
    }
    struct pv *s = new_pv(u, PV_STORAGE);
    if (!s) return u->err->code;
    s->key = k;
    s->dtype = a[1]->dtype;
    s->numel = (uint64_t)a[4]->i;
    return push(u, s);
}

/* BUILD: only an OrderedDict's {'_metadata': ...} (the module versions a state dict carries). */
static enum mq_status build(struct up *u, struct pv *obj, struct pv *state)
{
    bool ok = obj->kind == PV_DICT && obj->odict && state->kind == PV_DICT;
    for (size_t i = 0; ok && i < state->n; i += 2)
        ok = state->items[i]->kind == PV_STR && strcmp(state->items[i]->s, "_metadata") == 0;
    if (!ok)
        return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-build",
                     "BUILD on %s %s with a %s state refused (only an OrderedDict's _metadata is accepted)",
                     obj->odict ? "an" : "a", obj->odict ? "OrderedDict" : kind_names[obj->kind], kind_names[state->kind]);
    return push(u, obj);
}

static enum mq_status memo_put(struct up *u, uint64_t idx)
{
    if (u->sp == 0) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "memoizes an empty stack");
    /* CPython's pickler numbers memo slots 0, 1, 2 ... in order: a new index is the next one */
    if (idx > u->n_memo || idx >= MAX_MEMO)
        return PFAIL(u, MQ_E_CORRUPT, "pickle-memo", "memo index %llu skips ahead of the %zu slots filled",
                     (unsigned long long)idx, u->n_memo);
    if (idx == u->n_memo) {
        if (u->n_memo == u->cap_memo) {
            size_t cap = u->cap_memo ? u->cap_memo * 2 : 256;
            struct pv **m = realloc(u->memo, cap * sizeof *m);
            if (!m) return MQ_FAIL(u->err, MQ_E_NOMEM, "alloc", "%s: out of memory", u->where);
            u->memo = m;
            u->cap_memo = cap;
        }
        u->n_memo++;
    }
    u->memo[idx] = u->stack[u->sp - 1];
    return MQ_OK;
}

static enum mq_status memo_get(struct up *u, uint64_t idx)
{
    if (idx >= u->n_memo)
        return PFAIL(u, MQ_E_CORRUPT, "pickle-memo", "memo index %llu was never set (%zu slots)", (unsigned long long)idx,
                     u->n_memo);
    return push(u, u->memo[idx]);
}

static enum mq_status push_int(struct up *u, int64_t i)
{
    struct pv *v = new_pv(u, PV_INT);
    if (v) v->i = i;
    return push(u, v);
}

/* "module\nname\n" of GLOBAL. */
static enum mq_status read_line(struct up *u, char *out, size_t cap)
{
    const uint8_t *start = u->in.p + u->in.off;
    const uint8_t *nl = memchr(start, '\n', mq_span_left(&u->in) < cap ? mq_span_left(&u->in) : cap);
    if (!nl) return PFAIL(u, MQ_E_CORRUPT, "pickle-truncated", "GLOBAL name is not a line of under %zu bytes", cap);
    size_t n = (size_t)(nl - start);
    if (memchr(start, 0, n)) return PFAIL(u, MQ_E_CORRUPT, "pickle-string", "%s", "GLOBAL name holds a NUL byte");
    memcpy(out, start, n);
    out[n] = '\0';
    u->in.off += n + 1;
    return MQ_OK;
}

static const char *op_name(uint8_t op)
{
    switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'F': return "FLOAT";
    case 'p': return "PUT";
    case 'g': return "GET";
    default: return "an unknown opcode";
    }
}

/* Runs one opcode; *done at STOP. */
static enum mq_status step(struct up *u, bool *done)
{
    const uint8_t *p = NULL;
    u->op_at = u->in.off;
    MQ_TRY(need(u, 1, &p, "an opcode"));
    uint8_t op = p[0];
    struct pv *a = NULL, *b = NULL, *c = NULL; /* set by pop() before any use */
    size_t base = 0;
    switch (op) {
    case 0x80: /* PROTO */
        MQ_TRY(need(u, 1, &p, "PROTO"));
        if (p[0] < 2 || p[0] > 5) return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-opcode", "pickle protocol %u", p[0]);
        return MQ_OK;
    case 0x95: /* FRAME: a length hint */
        return need(u, 8, &p, "FRAME");
    case '.':
        *done = true;
        return MQ_OK;
    case '(':
        if (u->n_marks == MAX_MARKS) return PFAIL(u, MQ_E_LIMIT, "pickle-stack", "MARKs nest deeper than %u", MAX_MARKS);
        u->marks[u->n_marks++] = u->sp;
        return MQ_OK;
    case ')': return push(u, new_pv(u, PV_TUPLE));
    case ']': return push(u, new_pv(u, PV_LIST));
    case '}': return push(u, new_pv(u, PV_DICT));
    case 't':
        MQ_TRY(pop_mark(u, &base));
        return make_tuple(u, base);
    case 0x85: case 0x86: case 0x87: {
        size_t k = (size_t)(op - 0x84);
        if (u->sp - frame_base(u) < k) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "TUPLE%zu of too few values", k);
        return make_tuple(u, u->sp - k);
    }
    case 'N': return push(u, new_pv(u, PV_NONE));
    case 0x88: case 0x89:
        if ((a = new_pv(u, PV_BOOL))) a->i = op == 0x88;
        return push(u, a);
    case 'K': MQ_TRY(need(u, 1, &p, "BININT1")); return push_int(u, p[0]);
    case 'M': MQ_TRY(need(u, 2, &p, "BININT2")); return push_int(u, mq_load_u16le(p));
    case 'J': MQ_TRY(need(u, 4, &p, "BININT")); return push_int(u, (int32_t)mq_load_u32le(p));
    case 0x8a: { /* LONG1: n bytes, two's complement little-endian */
        MQ_TRY(need(u, 1, &p, "LONG1"));
        size_t n = p[0];
        if (n > 8) return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-int", "integer of %zu bytes does not fit 64 bits", n);
        MQ_TRY(need(u, n, &p, "LONG1"));
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++) x |= (uint64_t)p[i] << (8 * i);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) x |= ~0ull << (8 * n); /* sign-extend */
        return push_int(u, (int64_t)x);
    }
    case 'G': { /* BINFLOAT: big-endian double */
        MQ_TRY(need(u, 8, &p, "BINFLOAT"));
        uint64_t x = 0;
        for (int i = 0; i < 8; i++) x = x << 8 | p[i];
        if ((a = new_pv(u, PV_FLOAT))) memcpy(&a->f, &x, sizeof a->f);
        return push(u, a);
    }
    case 'X': MQ_TRY(need(u, 4, &p, "BINUNICODE")); return read_string(u, mq_load_u32le(p), PV_STR, "BINUNICODE");
    case 0x8c: MQ_TRY(need(u, 1, &p, "SHORT_BINUNICODE")); return read_string(u, p[0], PV_STR, "SHORT_BINUNICODE");
    case 0x8d: MQ_TRY(need(u, 8, &p, "BINUNICODE8")); return read_string(u, mq_load_u64le(p), PV_STR, "BINUNICODE8");
    case 'B': MQ_TRY(need(u, 4, &p, "BINBYTES")); return read_string(u, mq_load_u32le(p), PV_BYTES, "BINBYTES");
    case 'C': MQ_TRY(need(u, 1, &p, "SHORT_BINBYTES")); return read_string(u, p[0], PV_BYTES, "SHORT_BINBYTES");
    case 0x8e: MQ_TRY(need(u, 8, &p, "BINBYTES8")); return read_string(u, mq_load_u64le(p), PV_BYTES, "BINBYTES8");
    case 'q': MQ_TRY(need(u, 1, &p, "BINPUT")); return memo_put(u, p[0]);
    case 'r': MQ_TRY(need(u, 4, &p, "LONG_BINPUT")); return memo_put(u, mq_load_u32le(p));
    case 0x94: return memo_put(u, u->n_memo);
    case 'h': MQ_TRY(need(u, 1, &p, "BINGET")); return memo_get(u, p[0]);
    case 'j': MQ_TRY(need(u, 4, &p, "LONG_BINGET")); return memo_get(u, mq_load_u32le(p));
    case '0': return pop(u, &a);
    case '1': return pop_mark(u, &base) == MQ_OK ? (u->sp = base, MQ_OK) : u->err->code;
    case '2':
        if (u->sp <= frame_base(u)) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "DUP of an empty stack");
        return push(u, u->stack[u->sp - 1]);
    case 'a':
        MQ_TRY(pop(u, &b));
        MQ_TRY(pop(u, &a));
        if (a->kind != PV_LIST) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "APPEND to a %s", kind_names[a->kind]);
        MQ_TRY(add_item(u, a, b));
        return push(u, a);
    case 'e':
        MQ_TRY(pop_mark(u, &base));
        if (base == frame_base(u) || base == 0) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "APPENDS without a list");
        a = u->stack[base - 1];
        if (a->kind != PV_LIST) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "APPENDS to a %s", kind_names[a->kind]);
        for (size_t i = base; i < u->sp; i++) MQ_TRY(add_item(u, a, u->stack[i]));
        u->sp = base;
        return MQ_OK;
    case 's':
        MQ_TRY(pop(u, &c));
        MQ_TRY(pop(u, &b));
        MQ_TRY(pop(u, &a));
        if (a->kind != PV_DICT) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "SETITEM on a %s", kind_names[a->kind]);
        MQ_TRY(add_item(u, a, b));
        MQ_TRY(add_item(u, a, c));
        return push(u, a);
    case 'u':
        MQ_TRY(pop_mark(u, &base));
        if (base == frame_base(u) || base == 0) return PFAIL(u, MQ_E_CORRUPT, "pickle-stack", "%s", "SETITEMS without a dict");
        a = u->stack[base - 1];
        if (a->kind != PV_DICT) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "SETITEMS on a %s", kind_names[a->kind]);
        if ((u->sp - base) % 2) return PFAIL(u, MQ_E_CORRUPT, "pickle-args", "%s", "SETITEMS with a key and no value");
        for (size_t i = base; i < u->sp; i++) MQ_TRY(add_item(u, a, u->stack[i]));
        u->sp = base;
        return MQ_OK;
    case 'c': {
        char module[256], name[256];
        MQ_TRY(read_line(u, module, sizeof module));
        MQ_TRY(read_line(u, name, sizeof name));
        return push_global(u, module, name);
    }
    case 0x93:
        MQ_TRY(pop(u, &b));
        MQ_TRY(pop(u, &a));
        if (a->kind != PV_STR || b->kind != PV_STR)
            return PFAIL(u, MQ_E_CORRUPT, "pickle-global", "STACK_GLOBAL of a %s and a %s (expects two strings)",
                         kind_names[a->kind], kind_names[b->kind]);
        return push_global(u, a->s, b->s);
    case 'Q':
        MQ_TRY(pop(u, &a));
        return persid(u, a);
    case 'R':
        MQ_TRY(pop(u, &b));
        MQ_TRY(pop(u, &a));
        return reduce(u, a, b);
    case 'b':
        MQ_TRY(pop(u, &b));
        MQ_TRY(pop(u, &a));
        return build(u, a, b);
    default:
        return PFAIL(u, MQ_E_UNSUPPORTED, "pickle-opcode", "opcode %s (0x%02x) is not allowed in a state dict", op_name(op),
                     op);
    }
}

/* Well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF), no NUL. */
static bool utf8_ok(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (c == 0 || k == 9 || n - i - 1 < k) return false;
        uint32_t cp = k == 0 ? c : k == 1 ? c & 0x1F : k == 2 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

enum mq_status mq_pickle_state_dict(const uint8_t *p, size_t n, const char *where, struct mq_state_dict *sd,
                                    struct mq_error *err)
{
    memset(sd, 0, sizeof *sd);
    struct up u = {.in = {p, n, 0}, .where = where, .err = err};
    u.stack = malloc(1024 * sizeof *u.stack);
    size_t cap_stack = 1024;
    if (!u.stack) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", where);
    enum mq_status s = MQ_OK;
    bool done = false;
    while (!done && s == MQ_OK) {
        if (u.sp + 1 >= cap_stack && cap_stack < MAX_STACK) { /* room for one push per step */
            struct pv **st = realloc(u.stack, cap_stack * 2 * sizeof *st);
            if (!st) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", where);
            else u.stack = st, cap_stack *= 2;
        }
        if (s == MQ_OK) s = step(&u, &done);
    }
    u.op_at = u.in.off;
    if (s == MQ_OK && mq_span_left(&u.in) != 0)
        s = PFAIL(&u, MQ_E_CORRUPT, "pickle-truncated", "%zu bytes after STOP", mq_span_left(&u.in));
    if (s == MQ_OK && (u.sp != 1 || u.n_marks != 0))
        s = PFAIL(&u, MQ_E_CORRUPT, "pickle-stack", "STOP with %zu values and %zu marks on the stack (expects one value)",
                  u.sp, u.n_marks);
    struct pv *root = s == MQ_OK ? u.stack[0] : NULL;
    if (s == MQ_OK && root->kind != PV_DICT)
        s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "pickle-not-state-dict",
                    "%s: pickle-not-state-dict: the pickle holds a %s, not a state dict of tensors", where, kind_names[root->kind]);
    if (s == MQ_OK) {
        sd->n = root->n / 2;
        sd->t = arena_alloc(&u, (sd->n ? sd->n : 1) * sizeof *sd->t);
        if (!sd->t) s = err->code;
    }
    for (size_t i = 0; s == MQ_OK && i < sd->n; i++) {
        const struct pv *k = root->items[2 * i], *v = root->items[2 * i + 1];
        char b[120];
        if (k->kind != PV_STR || !utf8_ok(k->s, k->slen))
            s = MQ_FAIL(err, MQ_E_CORRUPT, "pickle-not-state-dict", "%s: pickle-not-state-dict: key %zu is %s", where, i,
                        k->kind == PV_STR ? "not valid UTF-8 text" : kind_names[k->kind]);
        else if (v->kind != PV_TENSOR)
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "pickle-not-state-dict",
                        "%s: pickle-not-state-dict: '%s' is a %s, not a tensor", where, printable(k->s, b, sizeof b),
                        kind_names[v->kind]);
        else {
            sd->t[i] = *v->t;
            sd->t[i].name = k->s;
        }
    }
    free(u.stack);
    free(u.memo);
    sd->arena = u.arena;
    if (s != MQ_OK) sd->n = 0;
    return s;
}

void mq_state_dict_free(struct mq_state_dict *sd)
{
    for (struct mq_pickle_arena *a = sd->arena, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    memset(sd, 0, sizeof *sd);
}
