/*
** test_fixture_tok.h - loads the bundled model's tokenizer.json into the tables of
** tools/mkfixture_bpe.h, for the fixture tests (included by tests/test_fixture_*.c only).
**
** Loading is also validation: the structure the Hugging Face tokenizers library expects is
** checked on the way (model.type "BPE", a string->integer vocab with dense unique ids, each
** vocab key a byte-level string, merges "a b" or ["a", "b"] whose pieces and concatenation are
** vocab entries, added tokens with ids after the vocab). A failure is reported as text in `why`.
*/
#ifndef MODELQ_TEST_FIXTURE_TOK_H
#define MODELQ_TEST_FIXTURE_TOK_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/mkfixture_bpe.h"
#include "run_cmd.h"

struct fx_added {
    int32_t id;
    char *content;
    int special;
};

struct fx_tokenizer {
    struct mkf_token *vocab; /* by id; bytes owned (raw bytes, not byte-level text) */
    int32_t n_vocab;         /* model.vocab entries */
    struct mkf_merge *merges;
    size_t n_merges;
    struct fx_added *added;
    size_t n_added;
    int32_t total; /* n_vocab + added tokens not in the vocab: the model's vocab_size */
};

static inline void fx_tokenizer_free(struct fx_tokenizer *tk)
{
    for (int32_t i = 0; i < tk->n_vocab; i++) free((void *)tk->vocab[i].bytes);
    for (size_t i = 0; i < tk->n_added; i++) free(tk->added[i].content);
    free(tk->vocab);
    free(tk->merges);
    free(tk->added);
    memset(tk, 0, sizeof *tk);
}

static inline int fx_fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int fx_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Byte-level text (UTF-8) -> raw bytes: each code point must be bytes_to_unicode of some byte.
** Returns the byte count, or -1. out needs strlen(text) bytes. */
static inline long fx_bytelevel_decode(const char *text, size_t len, uint8_t *out)
{
    long n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80) {
            cp = c;
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < len) {
            cp = ((uint32_t)(c & 0x1F) << 6) | ((unsigned char)text[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* byte-level code points are all below U+0800 */
        }
        int b;
        for (b = 0; b < 256 && mkf_byte_to_cp((uint8_t)b) != cp; b++) {}
        if (b == 256) return -1;
        out[n++] = (uint8_t)b;
    }
    return n;
}

static inline int32_t fx_find(const struct fx_tokenizer *tk, const uint8_t *bytes, size_t len)
{
    for (int32_t t = 0; t < tk->n_vocab; t++)
        if (tk->vocab[t].len == len && memcmp(tk->vocab[t].bytes, bytes, len) == 0) return t;
    return -1;
}

/* Loads path (a tokenizer.json). Returns 0, or -1 with the reason in why. */
static inline int fx_tokenizer_load(const char *path, struct fx_tokenizer *tk, char *why, size_t whylen)
{
    memset(tk, 0, sizeof *tk);
    char *text = (char *)read_file_all(path, NULL);
    if (!text) return fx_fail(why, whylen, "%s: cannot read", path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fx_fail(why, whylen, "%s: not a JSON object", path);
    }
    int rc = -1;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0) {
        fx_fail(why, whylen, "model.type is not \"BPE\"");
        goto out;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges) || !cJSON_IsArray(added)) {
        fx_fail(why, whylen, "model.vocab object, model.merges array or added_tokens array missing");
        goto out;
    }
    tk->n_vocab = cJSON_GetArraySize(vocab);
    tk->vocab = calloc((size_t)tk->n_vocab + 1, sizeof *tk->vocab);
    if (!tk->vocab) goto out;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab)
    {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        int32_t id = (int32_t)d;
        if (d != (double)id || id < 0 || id >= tk->n_vocab || tk->vocab[id].bytes) {
            fx_fail(why, whylen, "vocab entry \"%s\": id not a unique integer in [0, %d)", e->string, (int)tk->n_vocab);
            goto out;
        }
        size_t len = strlen(e->string);
        uint8_t *bytes = malloc(len + 1);
        long n = bytes ? fx_bytelevel_decode(e->string, len, bytes) : -1;
        if (n <= 0) {
            free(bytes);
            fx_fail(why, whylen, "vocab entry \"%s\" is not byte-level text", e->string);
            goto out;
        }
        tk->vocab[id] = (struct mkf_token){bytes, (size_t)n};
    }
    for (int b = 0; b < 256; b++) {
        int32_t id = mkf_byte_token((uint8_t)b);
        if (id >= tk->n_vocab || tk->vocab[id].len != 1 || tk->vocab[id].bytes[0] != b) {
            fx_fail(why, whylen, "byte %d is not base token %d", b, (int)id);
            goto out;
        }
    }
    tk->n_merges = (size_t)cJSON_GetArraySize(merges);
    tk->merges = calloc(tk->n_merges + 1, sizeof *tk->merges);
    if (!tk->merges) goto out;
    size_t m = 0;
    cJSON_ArrayForEach(e, merges)
    {
        char left[256], right[256];
        if (cJSON_IsString(e)) { /* "a b" (tokenizers < 0.20 and Llama 3 files) */
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ') || (size_t)(sp - e->valuestring) >= sizeof left || strlen(sp + 1) >= sizeof right) {
                fx_fail(why, whylen, "merge %zu \"%s\" is not \"a b\"", m, e->valuestring);
                goto out;
            }
            memcpy(left, e->valuestring, (size_t)(sp - e->valuestring));
            left[sp - e->valuestring] = '\0';
            strcpy(right, sp + 1);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1)) &&
                   strlen(cJSON_GetArrayItem(e, 0)->valuestring) < sizeof left &&
                   strlen(cJSON_GetArrayItem(e, 1)->valuestring) < sizeof right) { /* ["a", "b"] (newer) */
            strcpy(left, cJSON_GetArrayItem(e, 0)->valuestring);
            strcpy(right, cJSON_GetArrayItem(e, 1)->valuestring);
        } else {
            fx_fail(why, whylen, "merge %zu has neither form", m);
            goto out;
        }
        uint8_t a[256], b[256], ab[512];
        long na = fx_bytelevel_decode(left, strlen(left), a), nb = fx_bytelevel_decode(right, strlen(right), b);
        int32_t ia = na > 0 ? fx_find(tk, a, (size_t)na) : -1, ib = nb > 0 ? fx_find(tk, b, (size_t)nb) : -1;
        if (ia < 0 || ib < 0) {
            fx_fail(why, whylen, "merge %zu \"%s %s\": a piece is not in the vocab", m, left, right);
            goto out;
        }
        memcpy(ab, a, (size_t)na);
        memcpy(ab + na, b, (size_t)nb);
        int32_t iab = fx_find(tk, ab, (size_t)(na + nb));
        if (iab < 0) {
            fx_fail(why, whylen, "merge %zu \"%s %s\": the result is not in the vocab", m, left, right);
            goto out;
        }
        tk->merges[m++] = (struct mkf_merge){ia, ib, iab};
    }
    tk->n_added = (size_t)cJSON_GetArraySize(added);
    tk->added = calloc(tk->n_added + 1, sizeof *tk->added);
    if (!tk->added) goto out;
    tk->total = tk->n_vocab;
    size_t k = 0;
    cJSON_ArrayForEach(e, added)
    {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        cJSON *special = cJSON_GetObjectItemCaseSensitive(e, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || !cJSON_IsBool(special)) {
            fx_fail(why, whylen, "added_tokens[%zu] lacks id, content or special", k);
            goto out;
        }
        /* an added token is either a vocab entry already or the next id after everything so far */
        if (id->valueint != tk->total && id->valueint >= tk->n_vocab) {
            fx_fail(why, whylen, "added token \"%s\" has id %d, expected %d", content->valuestring, id->valueint,
                    (int)tk->total);
            goto out;
        }
        if (id->valueint == tk->total) tk->total++;
        tk->added[k].id = id->valueint;
        tk->added[k].special = cJSON_IsTrue(special);
        tk->added[k].content = strdup(content->valuestring);
        if (!tk->added[k++].content) goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0) fx_tokenizer_free(tk);
    return rc;
}

/* Id of the added token with this content, or -1. */
static inline int32_t fx_added_id(const struct fx_tokenizer *tk, const char *content)
{
    for (size_t i = 0; i < tk->n_added; i++)
        if (strcmp(tk->added[i].content, content) == 0) return tk->added[i].id;
    return -1;
}

/* Encodes text without special tokens; returns a malloc'd array of *n ids (NULL on no memory). */
static inline int32_t *fx_encode(const struct fx_tokenizer *tk, const char *text, size_t *n)
{
    size_t len = strlen(text);
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    if (!ids) return NULL;
    *n = mkf_bpe_encode(tk->vocab, tk->n_vocab, tk->merges, tk->n_merges, (const uint8_t *)text, len, ids);
    return ids;
}

#endif /* MODELQ_TEST_FIXTURE_TOK_H */
