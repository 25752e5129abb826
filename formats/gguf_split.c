/*
** gguf_split.c - reading a split GGUF model: every part, checked as one set (keys: gguf.h).
**
** Given any part's name PREFIX-0000K-of-0000N.gguf, the N names are derived (as llama.cpp's
** llama_split_path does) and read in order, part 1 first, so files 0..N-1 of the model are parts
** 1..N and the model's metadata is part 1's. Checks, each a one-line error naming the file:
**   missing-part     a part's file does not exist (or is not a regular file);
**   split-foreign    a file named as a part has no split.no / split.count, or they disagree
**                    with its name (split.no = K-1, split.count = N);
**   split-key-type   split.no / split.count not UINT16, split.tensors.count not INT32 (the types
**                    llama.cpp reads);
**   split-other-set  split.tensors.count differs from part 1's, modelq.split.set_xxh3 differs
**                    from part 1's (or only one of them has it), or a key other than split.* and
**                    modelq.* is in a later part with another value than part 1's (gguf-split
**                    writes none there; an identical copy is accepted);
**   split-duplicate  a tensor name in two parts (naming both files);
**   split-count      the parts hold another number of tensors than split.tensors.count.
** A file not named like a part whose split.count is above 1 is refused (split-name): its other
** parts cannot be found, and reading it alone would be a fraction of the model. split.count = 1
** (gguf-py's single-shard output carries no keys, gguf-split's one-part output does) reads as a
** plain file. A truncated part fails in the plain reader (tensor-within-file, naming the part).
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format.h"
#include "gguf.h"
#include "nameset.h"

#define SPLIT_SUFFIX_LEN 20 /* "-00001-of-00003.gguf" */

bool mq_gguf_split_path(char *out, size_t cap, const char *prefix, unsigned no, unsigned count)
{
    size_t pl = strlen(prefix);
    if (no < 1 || no > count || count > MQ_GGUF_SPLIT_MAX || pl + SPLIT_SUFFIX_LEN >= cap) return false;
    memcpy(out, prefix, pl);
    char suffix[SPLIT_SUFFIX_LEN + 1];
    int n = snprintf(suffix, sizeof suffix, "-%05u-of-%05u.gguf", (unsigned)(uint16_t)no, (unsigned)(uint16_t)count);
    if (n != SPLIT_SUFFIX_LEN) return false;
    memcpy(out + pl, suffix, SPLIT_SUFFIX_LEN + 1);
    return true;
}

/* Exactly five ASCII digits (what %05d gives for every count a UINT16 split.count allows). */
static bool five_digits(const char *p, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < 5; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        x = x * 10 + (unsigned)(p[i] - '0');
    }
    *v = x;
    return true;
}

bool mq_gguf_split_name(const char *path, char *prefix, size_t cap, unsigned *no, unsigned *count)
{
    size_t n = strlen(path);
    if (n <= SPLIT_SUFFIX_LEN) return false;
    const char *s = path + n - SPLIT_SUFFIX_LEN;
    if (s[0] != '-' || memcmp(s + 6, "-of-", 4) != 0 || strcmp(s + 15, ".gguf") != 0) return false;
    if (!five_digits(s + 1, no) || !five_digits(s + 10, count)) return false;
    if (*no < 1 || *no > *count || *count > MQ_GGUF_SPLIT_MAX) return false;
    if (s[-1] == '/') return false; /* a name must remain before the suffix */
    size_t pl = (size_t)(s - path);
    if (pl >= cap) return false;
    memcpy(prefix, path, pl);
    prefix[pl] = '\0';
    return true;
}

void mq_gguf_split_strip(struct mq_meta *meta)
{
    mq_meta_remove(meta, MQ_GGUF_SPLIT_NO);
    mq_meta_remove(meta, MQ_GGUF_SPLIT_COUNT);
    mq_meta_remove(meta, MQ_GGUF_SPLIT_TENSORS);
    mq_meta_remove(meta, MQ_GGUF_SPLIT_SET_KEY);
}

static bool value_equal(const struct mq_meta_value *a, const struct mq_meta_value *b)
{
    if (a->type != b->type) return false;
    if (a->type == MQ_META_STRING) return a->str.len == b->str.len && memcmp(a->str.p, b->str.p, a->str.len) == 0;
    if (a->type != MQ_META_ARRAY) return memcmp(&a->num, &b->num, sizeof a->num) == 0;
    if (a->elem_type != b->elem_type || a->count != b->count) return false;
    if (a->elem_type != MQ_META_STRING)
        return a->count == 0 || memcmp(a->arr, b->arr, (size_t)a->count * mq_meta_type_size(a->elem_type)) == 0;
    for (uint64_t i = 0; i < a->count; i++)
        if (a->strs[i].len != b->strs[i].len || memcmp(a->strs[i].p, b->strs[i].p, a->strs[i].len) != 0) return false;
    return true;
}

/* A split key of the expected type: 1 = present (*v set), 0 = absent, -1 = wrong type (err set). */
static int split_key(const struct mq_meta *meta, const char *key, enum mq_meta_type type, const char *path,
                     int64_t *v, struct mq_error *err)
{
    const struct mq_meta_value *x = mq_meta_get(meta, key);
    if (!x) return 0;
    if (x->type != type) {
        MQ_FAIL(err, MQ_E_CORRUPT, "split-key-type", "%s: %s is %s; llama.cpp reads it as %s", path, key,
                mq_meta_type_name(x->type), mq_meta_type_name(type));
        return -1;
    }
    *v = type == MQ_META_I32 ? x->num.i : (int64_t)x->num.u;
    return 1;
}

/* The split keys of one file: their presence, types and agreement with its name (part no of count). */
static enum mq_status check_part_keys(const struct mq_meta *meta, const char *path, unsigned no, unsigned count,
                                      int64_t *tensors, struct mq_error *err)
{
    int64_t sno = 0, scount = 0;
    int a = split_key(meta, MQ_GGUF_SPLIT_NO, MQ_META_U16, path, &sno, err);
    int b = a < 0 ? -1 : split_key(meta, MQ_GGUF_SPLIT_COUNT, MQ_META_U16, path, &scount, err);
    int c = b < 0 ? -1 : split_key(meta, MQ_GGUF_SPLIT_TENSORS, MQ_META_I32, path, tensors, err);
    if (a < 0 || b < 0 || c < 0) return err->code;
    if (a == 0 || b == 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-foreign",
                       "%s: named as part %u of %u of a split model but has no %s key: not a part of this set", path, no,
                       count, a == 0 ? MQ_GGUF_SPLIT_NO : MQ_GGUF_SPLIT_COUNT);
    if (sno != (int64_t)no - 1 || scount != (int64_t)count)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-foreign",
                       "%s: split.no = %lld and split.count = %lld, but the name says part %u of %u (split.no %u): "
                       "not a part of this set",
                       path, (long long)sno, (long long)scount, no, count, no - 1);
    if (c == 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-foreign", "%s: part %u of %u has no %s key", path, no, count,
                       MQ_GGUF_SPLIT_TENSORS);
    if (*tensors < 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-count", "%s: split.tensors.count = %lld is negative", path,
                       (long long)*tensors);
    return MQ_OK;
}

/* A later part's keys against part 1's (see the top of the file). */
static enum mq_status check_same_set(const struct mq_meta *first, const char *first_path, const struct mq_meta *part,
                                     const char *path, int64_t first_tensors, int64_t tensors, struct mq_error *err)
{
    if (tensors != first_tensors)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-other-set",
                       "%s: split.tensors.count = %lld but %s says %lld: a part of another model", path,
                       (long long)tensors, first_path, (long long)first_tensors);
    const struct mq_meta_value *a = mq_meta_get(first, MQ_GGUF_SPLIT_SET_KEY), *b = mq_meta_get(part, MQ_GGUF_SPLIT_SET_KEY);
    if ((a || b) && (!a || !b || !value_equal(a, b)))
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-other-set", "%s: %s %s %s's: a part of another set", path,
                       MQ_GGUF_SPLIT_SET_KEY, !b ? "is missing, unlike" : !a ? "is present, unlike" : "differs from",
                       first_path);
    for (size_t i = 0; i < part->n; i++) {
        const char *key = part->items[i].key;
        if (strncmp(key, "split.", 6) == 0 || strncmp(key, "modelq.", 7) == 0) continue;
        const struct mq_meta_value *v = mq_meta_get(first, key);
        if (!v || !value_equal(v, &part->items[i].v))
            return MQ_FAIL(err, MQ_E_CORRUPT, "split-other-set",
                           "%s: key '%s' %s in %s: a part of another model", path, key,
                           v ? "differs from its value" : "is not", first_path);
    }
    return MQ_OK;
}

/* Tensors [from, m->n_tensors) into the set's name set; a name seen before names both files. */
static enum mq_status add_names(struct mq_model *m, size_t from, struct mq_nameset *names, struct mq_error *err)
{
    for (size_t i = from; i < m->n_tensors; i++) {
        int dup = mq_nameset_add(names, m->tensors[i].name);
        if (dup < 0) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        if (dup == 0) continue;
        size_t j = 0;
        while (j < from && strcmp(m->tensors[j].name, m->tensors[i].name) != 0) j++;
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-duplicate", "%s: tensor '%s' is also in %s",
                       m->files[m->tensors[i].file].path, m->tensors[i].name,
                       j < from ? m->files[m->tensors[j].file].path : "an earlier part");
    }
    return MQ_OK;
}

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parts 1..count of PREFIX (the user named part `named`). */
static enum mq_status read_parts(struct mq_model *m, const char *prefix, unsigned named, unsigned count,
                                 struct mq_error *err)
{
    char path[PATH_MAX];
    int64_t first_tensors = 0;
    struct mq_nameset names = {0};
    enum mq_status s = MQ_OK;
    /* every name first, so a missing part is reported before any part is read */
    for (unsigned k = 1; k <= count && s == MQ_OK; k++) {
        if (!mq_gguf_split_path(path, sizeof path, prefix, k, count))
            s = MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", prefix);
        else if (!is_regular(path))
            s = MQ_FAIL(err, MQ_E_CORRUPT, "missing-part", "%s: part %u of %u of this split model is missing (%s)",
                        path, k, count, k == named ? "not a regular file" : "no such file");
    }
    for (unsigned k = 1; k <= count && s == MQ_OK; k++) {
        mq_gguf_split_path(path, sizeof path, prefix, k, count);
        size_t from = m->n_tensors;
        struct mq_meta part;
        mq_meta_init(&part);
        s = mq_gguf_read_part(m, path, k == 1 ? NULL : &part, err);
        int64_t tensors = 0;
        if (s == MQ_OK) s = check_part_keys(k == 1 ? &m->meta : &part, path, k, count, &tensors, err);
        if (s == MQ_OK && k == 1) first_tensors = tensors;
        if (s == MQ_OK && k > 1)
            s = check_same_set(&m->meta, m->files[0].path, &part, path, first_tensors, tensors, err);
        if (s == MQ_OK) s = add_names(m, from, &names, err);
        mq_meta_free(&part);
    }
    mq_nameset_free(&names);
    MQ_TRY(s);
    if ((uint64_t)first_tensors != m->n_tensors)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-count",
                       "%s: split.tensors.count = %lld, but the %u parts hold %zu tensors", m->files[0].path,
                       (long long)first_tensors, count, m->n_tensors);
    m->split_parts = count;
    return MQ_OK;
}

enum mq_status mq_gguf_read_set(struct mq_model *m, const char *path, struct mq_error *err)
{
    char prefix[PATH_MAX];
    unsigned no, count;
    if (mq_gguf_split_name(path, prefix, sizeof prefix, &no, &count)) return read_parts(m, prefix, no, count, err);
    MQ_TRY(mq_gguf_read_part(m, path, NULL, err));
    const struct mq_meta_value *c = mq_meta_get(&m->meta, MQ_GGUF_SPLIT_COUNT);
    uint64_t n = 0;
    if (c && mq_meta_get_uint(&m->meta, MQ_GGUF_SPLIT_COUNT, &n) && n > 1)
        return MQ_FAIL(err, MQ_E_CORRUPT, "split-name",
                       "%s: split.count = %llu: this is one part of a split model, but its name is not "
                       "PREFIX-0000K-of-%05llu.gguf, so the other parts cannot be found (name the parts as gguf-split does)",
                       path, (unsigned long long)n, (unsigned long long)n);
    return MQ_OK;
}
