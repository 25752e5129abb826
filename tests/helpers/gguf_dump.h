/*
** gguf_dump.h - a GGUF file as two independent parsers see it, for interop tests.
**
** A struct gguf_view is everything a reader learns from a GGUF file's header: version,
** alignment, data offset, every KV pair (key, value type, element type and count for arrays,
** values) and every tensor (name, dims, ggml type, offset, size). Two ways to fill one:
**
**   gguf_view_from_ggml()  ggml's own gguf_init_from_file from the pinned libggml-base.so
**                          (ggml_ref.h). With no_alloc = false ggml also reads every tensor's
**                          data and refuses a file whose data section is short, and the view
**                          gets an xxh64 of each tensor's bytes (data_hash).
**   gguf_view_from_js()    the npm package @huggingface/gguf (pinned in tools/interop/
**                          package.json), run as `node tools/interop/gguf-dump.mjs FILE`
**                          through popen; its JSON is parsed with cJSON. It reads the header
**                          only: no data_hash, and nbytes comes from the script's block table.
**                          It does not notice a short file (it reads zeros past the end), so
**                          always pair it with gguf_view_check_layout or a ggml view.
**
** Both need tools/setup.sh (npm ci in tools/interop). They run from the repository root, as the
** tests do; $MODELQ_GGML_LIB, $MODELQ_NODE (default "node") and $MODELQ_GGUF_DUMP_JS override the
** library, the node binary and the script. Under CI a failure to load either is a test failure:
** use gguf_view_need_tools() in tests.
**
** A test of `modelq convert` reads:
**
**     struct mq_ggml g;                              // mq_ggml_open(&g, why, sizeof why)
**     struct gguf_view a, b;
**     char why[512];
**     // run $MODELQ_BIN convert testdata/tiny-llama -o T/out.gguf --type q8_0 (exit 0)
**     cr_assert(gguf_view_from_ggml(&a, &g, "T/out.gguf", false, why, sizeof why), "%s", why);
**     cr_assert(gguf_view_from_js(&b, "T/out.gguf", why, sizeof why), "%s", why);
**     cr_assert(gguf_view_compare(&a, &b, why, sizeof why), "%s", why);   // parsers agree
**     cr_assert(gguf_view_check_layout(&a, why, sizeof why), "%s", why);  // offsets, padding
**     cr_assert(gguf_view_expect_str(&a, "general.architecture", "llama", why, sizeof why), "%s", why);
**     cr_assert(gguf_view_expect_uint(&a, "llama.block_count", GGREF_GGUF_UINT32, 2, why, sizeof why), "%s", why);
**     cr_assert(gguf_view_expect_tensor(&a, "blk.0.attn_q.weight", GGREF_GGML_Q8_0, 2,
**                                       (int64_t[4]){256, 256, 1, 1}, why, sizeof why), "%s", why);
**     gguf_view_free(&a); gguf_view_free(&b);
**
** Values: an integer KV keeps its exact value in `u` (UINT8/16/32/64, BOOL as 0/1) or `i`
** (INT8/16/32/64); FLOAT32/FLOAT64 in `f` (a float widens exactly); STRING in `s`, a NUL-terminated
** copy (a string with an embedded NUL is cut there, in both views alike). Arrays have `n`
** elements in `arr`, each filled the same way by `elem_type`. Floats compare by bit pattern, so
** -0.0 differs from 0.0 and a NaN equals the same NaN.
**
** n_dims: the ggml view reports ggml_n_dims (trailing 1-sized dims dropped, at least 1), the JS
** view the count stored in the file (gguf-py writes untrimmed counts). gguf_view_compare
** therefore compares ne[0..3] (missing dims are 1) and not n_dims; a test that cares what the
** file stores asserts the JS view's n_dims.
*/
#ifndef MODELQ_TEST_GGUF_DUMP_H
#define MODELQ_TEST_GGUF_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ggml_ref.h"

struct gguf_view_value {
    uint64_t u;   /* UINT8, UINT16, UINT32, UINT64, BOOL (0/1) */
    int64_t i;    /* INT8, INT16, INT32, INT64 */
    double f;     /* FLOAT32 (widened exactly), FLOAT64 */
    char *s;      /* STRING: owned, NUL-terminated */
};

struct gguf_view_kv {
    char *key;                  /* owned */
    int type;                   /* gguf_type id, GGREF_GGUF_* */
    int elem_type;              /* ARRAY: element type; else -1 */
    uint64_t n;                 /* ARRAY: element count; else 0 */
    struct gguf_view_value val; /* scalar value (not ARRAY) */
    struct gguf_view_value *arr; /* ARRAY: n values, owned */
};

struct gguf_view_tensor {
    char *name;        /* owned */
    uint32_t n_dims;   /* see the header comment: trimmed (ggml) or as stored (JS) */
    int64_t ne[4];     /* ggml order: ne[0] = row length; unused dims 1 */
    int type;          /* ggml_type id, GGREF_GGML_* */
    uint64_t offset;   /* relative to data_offset */
    uint64_t nbytes;   /* UINT64_MAX when the parser cannot tell (JS, unknown type) */
    bool has_hash;     /* ggml view with no_alloc = false */
    uint64_t data_hash; /* xxh64 (seed 0) of the tensor's nbytes bytes */
};

struct gguf_view {
    const char *source;   /* "ggml" or "@huggingface/gguf" */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset; /* absolute file offset of the data section */
    uint64_t file_size;
    uint64_t n_kv;        /* count in the header */
    size_t kv_len;        /* entries in kv (== n_kv unless the parser lost some) */
    struct gguf_view_kv *kv;
    uint64_t n_tensors;   /* count in the header */
    size_t tensors_len;   /* entries in tensors */
    struct gguf_view_tensor *tensors;
};

/* Fills *v from ggml's reader. false (why filled, *v empty) when ggml refuses the file; its own
** reason is printed on stderr by ggml. `g` must be open (mq_ggml_open). */
bool gguf_view_from_ggml(struct gguf_view *v, const struct mq_ggml *g, const char *path, bool no_alloc,
                         char *why, size_t why_len);

/* Fills *v from @huggingface/gguf via tools/interop/gguf-dump.mjs. false (why filled) when node
** or the package is missing, or the package refuses the file. */
bool gguf_view_from_js(struct gguf_view *v, const char *path, char *why, size_t why_len);

/* Frees what a view owns and zeroes it; accepts a zeroed view. */
void gguf_view_free(struct gguf_view *v);

/* true when a and b describe the same file: version, alignment, data_offset, file_size, counts,
** every KV (key, type, elem_type, n, values) in order, every tensor (name, ne, type, offset) in
** order, nbytes when both know it, data_hash when both have it. Else false with the first
** difference in why. */
bool gguf_view_compare(const struct gguf_view *a, const struct gguf_view *b, char *why, size_t why_len);

/* Checks the layout rules of a written file on one view: version 3, alignment a power of two,
** data_offset aligned, tensor offsets contiguous (tensor i at the sum of PAD(nbytes) before it),
** and the file ends exactly after the last tensor's padding (ggml's writer pads it too). */
bool gguf_view_check_layout(const struct gguf_view *v, char *why, size_t why_len);

const struct gguf_view_kv *gguf_view_find_kv(const struct gguf_view *v, const char *key);
const struct gguf_view_tensor *gguf_view_find_tensor(const struct gguf_view *v, const char *name);

/* Expectations; each returns false with a reason naming the key and the view's source. */
bool gguf_view_expect_uint(const struct gguf_view *v, const char *key, int type, uint64_t value, char *why,
                           size_t why_len); /* UINT8..UINT64 or BOOL */
bool gguf_view_expect_int(const struct gguf_view *v, const char *key, int type, int64_t value, char *why,
                          size_t why_len);  /* INT8..INT64 */
bool gguf_view_expect_float(const struct gguf_view *v, const char *key, int type, double value, char *why,
                            size_t why_len); /* FLOAT32 (value rounded to float first) or FLOAT64 */
bool gguf_view_expect_str(const struct gguf_view *v, const char *key, const char *value, char *why,
                          size_t why_len);
/* An array of `n` elements of elem_type (values not checked: use gguf_view_find_kv). */
bool gguf_view_expect_array(const struct gguf_view *v, const char *key, int elem_type, uint64_t n, char *why,
                            size_t why_len);
/* A tensor with this ggml type and ne (unused dims 1). n_dims 0 = do not check n_dims. */
bool gguf_view_expect_tensor(const struct gguf_view *v, const char *name, int type, uint32_t n_dims,
                             const int64_t ne[4], char *why, size_t why_len);

/* Human-readable dump (for failure messages and debugging). */
void gguf_view_print(FILE *f, const struct gguf_view *v);

/* Name of a gguf_type id ("UINT32", ...), "?" when out of range. */
const char *gguf_view_type_name(int type);

/* In a Criterion test: when `ok` is false, fail under $CI and skip otherwise, printing why. */
#define gguf_view_need_tools(ok, why)                                                                   \
    do {                                                                                                \
        if (!(ok)) {                                                                                    \
            if (getenv("CI")) cr_assert_fail("interop tools required when CI is set: %s", (why));       \
            fprintf(stderr, "SKIP: %s (set CI to make this a failure)\n", (why));                       \
            cr_skip_test("interop tools missing: %s", (why));                                           \
        }                                                                                               \
    } while (0)

#endif /* MODELQ_TEST_GGUF_DUMP_H */
