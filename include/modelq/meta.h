/*
** modelq/meta.h - typed key/value metadata (the value model of GGUF).
**
** A GGUF file carries an ordered list of unique keys, each with a typed value: a scalar, a string
** or a one-level array of scalars or strings. modelq keeps the same model in memory so that
** GGUF->GGUF conversion preserves every key, its order and its exact type, and so that the
** architecture modules can say "UINT32 llama.block_count" and be sure that is what is written.
**
** Type ids are GGUF's (gguf.h enum gguf_type) so a reader/writer can store them as they are.
** Strings are byte strings with an explicit length (GGUF does not forbid NUL or invalid UTF-8);
** the library keeps a NUL after each one for convenience.
**
** Ownership: a struct mq_meta owns every key, string and array it holds. Setting an existing key
** replaces its value in place (the order is kept); mq_meta_remove() closes the gap. Keys are found
** through a hash index, so building or copying n keys is O(n); removing one is O(n). Change a
** meta only through these calls (values may be edited in place; keys and items[] may not).
*/
#ifndef MODELQ_META_H
#define MODELQ_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"
#include "modelq/export.h"

enum mq_meta_type {
    MQ_META_U8 = 0,
    MQ_META_I8 = 1,
    MQ_META_U16 = 2,
    MQ_META_I16 = 3,
    MQ_META_U32 = 4,
    MQ_META_I32 = 5,
    MQ_META_F32 = 6,
    MQ_META_BOOL = 7,
    MQ_META_STRING = 8,
    MQ_META_ARRAY = 9,
    MQ_META_U64 = 10,
    MQ_META_I64 = 11,
    MQ_META_F64 = 12,
    MQ_META_TYPE_COUNT
};

struct mq_meta_str {
    char *p;       /* len bytes followed by a NUL the file does not have */
    uint64_t len;
};

struct mq_meta_value {
    enum mq_meta_type type;
    enum mq_meta_type elem_type; /* arrays: element type (never ARRAY) */
    uint64_t count;              /* arrays: number of elements */
    union {
        uint64_t u;              /* U8..U64 and BOOL (0/1), zero-extended */
        int64_t i;               /* I8..I64, sign-extended */
        double f;                /* F32 (exactly representable) and F64 */
    } num;
    struct mq_meta_str str;      /* STRING */
    void *arr;                   /* numeric arrays: count elements of elem_type, host order, packed */
    struct mq_meta_str *strs;    /* string arrays: count strings */
};

struct mq_meta_entry {
    char *key;
    struct mq_meta_value v;
};

struct mq_meta {
    struct mq_meta_entry *items;
    size_t n, cap;
    /* internal: hash index of the keys (slot = item index + 1, 0 = empty; ix_cap a power of two
    ** at least 2n), kept by every call below so lookups are O(1); NULL = search linearly */
    size_t *ix;
    size_t ix_cap;
};

/* Name ("UINT32", "STRING", ...) or "?" and byte size of one scalar element (0 for STRING/ARRAY). */
MQ_API const char *mq_meta_type_name(enum mq_meta_type t);
MQ_API size_t mq_meta_type_size(enum mq_meta_type t);

MQ_API void mq_meta_init(struct mq_meta *m);
MQ_API void mq_meta_free(struct mq_meta *m);
/* Deep copy of src into an empty dst. */
MQ_API enum mq_status mq_meta_copy(struct mq_meta *dst, const struct mq_meta *src, struct mq_error *err);

/* Index of `key` or -1; the entry or NULL. */
MQ_API long mq_meta_find(const struct mq_meta *m, const char *key);
MQ_API const struct mq_meta_value *mq_meta_get(const struct mq_meta *m, const char *key);
/* Removes `key` if present (the following entries move up). Returns whether it was there. */
MQ_API bool mq_meta_remove(struct mq_meta *m, const char *key);

/* Scalars. Integer setters take the value of the named type; `type` must be a scalar type. */
MQ_API enum mq_status mq_meta_set_uint(struct mq_meta *m, const char *key, enum mq_meta_type type, uint64_t v,
                                struct mq_error *err);
MQ_API enum mq_status mq_meta_set_int(struct mq_meta *m, const char *key, enum mq_meta_type type, int64_t v,
                               struct mq_error *err);
MQ_API enum mq_status mq_meta_set_f32(struct mq_meta *m, const char *key, float v, struct mq_error *err);
MQ_API enum mq_status mq_meta_set_f64(struct mq_meta *m, const char *key, double v, struct mq_error *err);
MQ_API enum mq_status mq_meta_set_bool(struct mq_meta *m, const char *key, bool v, struct mq_error *err);
MQ_API enum mq_status mq_meta_set_u32(struct mq_meta *m, const char *key, uint32_t v, struct mq_error *err);
/* len bytes of s (need not be NUL-terminated; len SIZE_MAX = strlen(s)). */
MQ_API enum mq_status mq_meta_set_str(struct mq_meta *m, const char *key, const char *s, size_t len,
                               struct mq_error *err);
/* Numeric array: count packed host-order elements of elem_type copied from data (may be NULL
** when count is 0). */
MQ_API enum mq_status mq_meta_set_array(struct mq_meta *m, const char *key, enum mq_meta_type elem_type,
                                 const void *data, uint64_t count, struct mq_error *err);
/* String array: count strings; lens may be NULL (then each is NUL-terminated). */
MQ_API enum mq_status mq_meta_set_str_array(struct mq_meta *m, const char *key, const char *const *strs,
                                     const uint64_t *lens, uint64_t count, struct mq_error *err);
/* Takes ownership of a built value (used by readers); key is copied. Frees v's parts on failure. */
MQ_API enum mq_status mq_meta_set_value(struct mq_meta *m, const char *key, struct mq_meta_value *v,
                                 struct mq_error *err);
/* Appends without looking for the key (O(1)): for readers that have already refused duplicates. */
MQ_API enum mq_status mq_meta_append_value(struct mq_meta *m, const char *key, struct mq_meta_value *v,
                                    struct mq_error *err);
/* Frees the parts of one value (not the value struct itself). */
MQ_API void mq_meta_value_clear(struct mq_meta_value *v);

/* Convenience readers: false when the key is absent or not an integer / string type. */
MQ_API bool mq_meta_get_uint(const struct mq_meta *m, const char *key, uint64_t *out);
MQ_API const char *mq_meta_get_str(const struct mq_meta *m, const char *key);

/* One-line rendering for `inspect`: scalars in full, strings quoted (cut at max bytes),
** arrays as "[TYPE x count] first, elements, ...". Always NUL-terminates. */
MQ_API void mq_meta_value_format(const struct mq_meta_value *v, char *buf, size_t cap, size_t max);

#endif /* MODELQ_META_H */
