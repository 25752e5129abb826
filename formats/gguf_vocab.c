/*
** gguf_vocab.c - Hugging Face tokenizer.json (+ configs) -> tokenizer.* GGUF metadata.
**
** See gguf_vocab.h for what is written and why the scores of byte-fallback models are what they
** are. Every file is scanned strictly (json_strict.h) before cJSON builds the tree; every value
** used is type- and range-checked, and every error names the file and the field.
**
** Where the llama.cpp rules come from (src/llama-vocab.cpp, llama_vocab::impl::load and the
** tokenizers): tokenizer.ggml.tokens must be unique ("duplicate token in vocabulary"); scores
** FLOAT32 (or INT32) and token_type INT32 arrays at least as long as tokens; merges an array of
** "left right" strings, split at the first space after the first byte; the pre-tokenizer regex
** is chosen by tokenizer.ggml.pre alone (llama-bpe, qwen2, gpt-2, starcoder ...), llama-bpe also
** forcing ignore_merges; an SPM ("llama") vocabulary needs the <0xNN> byte tokens for byte
** fallback and "▁" for spaces; add_bos_token = true without a bos id is refused.
*/
#include "gguf_vocab.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "json_strict.h"
#include "model_build.h"
#include "spm_model.h"

#define TOKENIZER_JSON_MAX (512u * 1024 * 1024) /* the largest real tokenizer.json is ~35 MB */
#define SIDE_FILE_MAX (64u * 1024 * 1024)       /* tokenizer_config.json, generation_config.json, ... */
/*
** JSON values per file, which bound the memory of the parsed trees (cJSON: a 64-byte node per
** value plus its key and string copies, at most ~150 bytes a value besides the text): a
** text of "" values costs ~40x its size as a tree, so the byte limits alone do not bound it.
** Real tokenizer.json files: Llama 3 ~410 000 values (128 256 tokens, 280 147 merges as
** strings), Qwen2 ~300 000, Gemma 3 about 2 million (262 144 tokens, merges as pairs: three
** values each); 2^22 leaves twice that and keeps the tree under ~600 MB. tokenizer_config.json
** holds at most a few thousand added tokens of ~7 values each.
*/
#define TOKENIZER_JSON_NODES (1u << 22)
#define SIDE_FILE_NODES (1u << 20)
#define VOCAB_MAX (1u << 24)                    /* tokens and merges: ranks stay exact in FLOAT32 */
#define JSON_DEPTH 128
#define SPIECE "\xe2\x96\x81"                   /* U+2581, SentencePiece's space */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* The llama.cpp pre-tokenizers recognised from tokenizer.json, by their configuration. */
#define LLAMA3_REGEX                                                                                           \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[" \
    "\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_REGEX                                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[" \
    "\\r\\n]+|\\s+(?!\\S)|\\s+"

static const struct pre_rule {
    const char *name;   /* tokenizer.ggml.pre */
    const char *regex;  /* Split(Regex, Isolated) before ByteLevel, or NULL */
    bool digits;        /* Digits(individual_digits=true) before ByteLevel */
    bool bytelevel_re;  /* ByteLevel use_regex (GPT-2's own pattern) */
    bool ignore_merges; /* what llama.cpp applies for this name */
} pre_rules[] = {
    /* GPT-2: ByteLevel alone, its built-in regex */
    {"gpt-2", NULL, false, true, false},
    /* Llama 3: Split(Llama-3 regex) + ByteLevel(use_regex=false); llama.cpp ignores merges */
    {"llama-bpe", LLAMA3_REGEX, false, false, true},
    /* Qwen2: the same with single digits */
    {"qwen2", QWEN2_REGEX, false, false, false},
    /* StarCoder: every digit apart, then GPT-2's regex */
    {"starcoder", NULL, true, true, false},
};

const char *mq_gguf_vocab_pre_names(void) { return "gpt-2, llama-bpe, qwen2, starcoder"; }

struct vtok {
    const char *text; /* NUL-terminated; points into a cJSON tree or into `owned` */
    size_t len;
    bool used, in_vocab, added, special;
    int32_t type;
    int64_t first_rank; /* rank of the first merge producing this token, or -1 */
    float score;        /* tokenizer.model vocabularies: the score written (else synthesised) */
};

struct vb {
    char p_tok[4096], p_tcfg[4096], p_cfg[4096], p_gen[4096], p_jinja[4096], p_model[4096], p_added[4096];
    cJSON *tok, *tcfg, *gen, *added; /* added: added_tokens.json (tokenizer.model vocabularies) */
    bool spm;                        /* the vocabulary is tokenizer.model's (else tokenizer.json's) */
    struct mq_spm_model sm;
    const cJSON *cfg; /* config.json: the caller's tree (NULL: none) */
    const cJSON *model;
    struct vtok *t;
    uint32_t n;
    uint32_t *slot; /* hash table: id + 1, 0 = empty */
    size_t mask;
    char **owned;
    size_t n_owned, cap_owned;
    const char **merge_s;
    uint64_t *merge_len;
    size_t n_merges;
    bool llama; /* byte-fallback family */
    const char *pre;
    bool add_space_prefix, add_bos, add_eos;
    int64_t bos, eos, unk, pad;
    char *jinja;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static enum mq_status nomem(struct mq_error *err, const char *path)
{
    return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
}

/* A printable excerpt of a token or value for one-line messages (control bytes escaped, at most
** ~40 bytes, cut on a UTF-8 boundary). */
static const char *show(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; s[i] && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o >= 40 && (c & 0xC0) != 0x80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            if (c == '"') buf[o++] = '\\';
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static enum mq_status own(struct vb *b, char *p, const char *path, struct mq_error *err)
{
    if (!p) return nomem(err, path);
    if (b->n_owned == b->cap_owned) {
        size_t cap = b->cap_owned ? b->cap_owned * 2 : 64;
        char **q = realloc(b->owned, cap * sizeof *q);
        if (!q) {
            free(p);
            return nomem(err, path);
        }
        b->owned = q;
        b->cap_owned = cap;
    }
    b->owned[b->n_owned++] = p;
    return MQ_OK;
}

static const cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static bool jabsent(const cJSON *v) { return !v || cJSON_IsNull(v); }
static bool jtype(const cJSON *o, const char *type)
{
    const cJSON *t = jget(o, "type");
    return cJSON_IsObject(o) && cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
}
static bool jstr_eq(const cJSON *v, const char *s) { return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0; }

/* Optional boolean field: absent/null gives `dflt`; anything but a boolean is an error. */
static enum mq_status jbool(const cJSON *o, const char *key, bool dflt, bool *out, const char *path,
                            const char *where, struct mq_error *err)
{
    *out = dflt; /* on every path, the error ones too: no caller can read an unset flag */
    const cJSON *v = jget(o, key);
    if (jabsent(v)) return MQ_OK;
    if (!cJSON_IsBool(v))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-field", "%s: %s%s must be true or false", path, where, key);
    *out = cJSON_IsTrue(v);
    return MQ_OK;
}

/* A token id: a non-negative integer below VOCAB_MAX. */
static enum mq_status jid(const cJSON *v, uint32_t *out, const char *path, const char *field, struct mq_error *err)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    if (!cJSON_IsNumber(v) || !(d >= 0) || d != floor(d))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-id", "%s: %s must be a non-negative integer token id", path,
                       field);
    if (d >= (double)VOCAB_MAX)
        return MQ_FAIL(err, MQ_E_LIMIT, "vocab-size", "%s: %s is %.0f, over the limit of %u tokens", path, field, d,
                       VOCAB_MAX);
    *out = (uint32_t)d;
    return MQ_OK;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int64_t lookup(const struct vb *b, const char *s, size_t n)
{
    for (size_t i = (size_t)fnv1a(s, n) & b->mask;; i = (i + 1) & b->mask) {
        uint32_t v = b->slot[i];
        if (!v) return -1;
        const struct vtok *t = &b->t[v - 1];
        if (t->len == n && memcmp(t->text, s, n) == 0) return v - 1;
    }
}

/* ---- files ------------------------------------------------------------------------------- */

static enum mq_status make_path(char *dst, size_t cap, const char *dir, const char *name, struct mq_error *err)
{
    if ((size_t)snprintf(dst, cap, "%s/%s", dir, name) >= cap)
        return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", dir);
    return MQ_OK;
}

static bool file_absent(const char *path)
{
    struct stat st;
    return stat(path, &st) != 0 && errno == ENOENT;
}

/* Reads, strictly scans and parses one JSON object file (at most `max` bytes and `max_nodes`
** values, no key twice in an object); an absent optional file gives NULL. */
static enum mq_status load_json(const char *path, size_t max, size_t max_nodes, bool required, cJSON **out,
                                struct mq_error *err)
{
    *out = NULL;
    if (!required && file_absent(path)) return MQ_OK;
    char *text;
    size_t len;
    MQ_TRY(mq_read_small_file(path, max, "tokenizer-size", &text, &len, err));
    struct json_strict_result jr;
    const struct json_strict_rules rules = {.unique_keys = true, .max_depth = JSON_DEPTH, .max_nodes = max_nodes};
    if (!json_strict_check(text, len, &rules, &jr)) {
        free(text);
        if (strcmp(jr.check, "json-nodes") == 0)
            return MQ_FAIL(err, MQ_E_LIMIT, "tokenizer-nodes-limit",
                           "%s: more than %zu JSON values (the limit bounds the memory of the parsed file)", path,
                           max_nodes);
        if (strcmp(jr.check, "json-alloc") == 0) return nomem(err, path);
        if (strcmp(jr.check, "json-duplicate-key") == 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-json",
                           "%s: key \"%s\" appears twice in one object%s%s%s (Python's json keeps the last, cJSON the "
                           "first)", path, jr.key, jr.top_key[0] ? " (in \"" : "", jr.top_key, jr.top_key[0] ? "\")" : "");
        if (jr.top_key[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-json", "%s: not valid JSON: %s at byte %zu (in \"%s\")", path,
                           jr.detail, jr.where, jr.top_key);
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-json", "%s: not valid JSON: %s at byte %zu", path, jr.detail,
                       jr.where);
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return nomem(err, path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-json", "%s: not a JSON object", path);
    }
    *out = root;
    return MQ_OK;
}

/* ---- tokens ------------------------------------------------------------------------------ */

static enum mq_status build_index(struct vb *b, const char *path, struct mq_error *err);

/* id i as the converter's fill for ids no tokenizer file gives: "[PAD<i>]", unused, score -10000
** (convert_hf_to_gguf.py _create_vocab_sentencepiece; tokenizer.json vocabularies write no scores). */
static enum mq_status set_pad(struct vb *b, uint32_t i, const char *path, struct mq_error *err)
{
    char *pad = malloc(24);
    MQ_TRY(own(b, pad, path, err));
    snprintf(pad, 24, "[PAD%u]", i);
    b->t[i] = (struct vtok){.text = pad, .len = strlen(pad), .type = TT_UNUSED, .first_rank = -1, .score = -10000.0f};
    return MQ_OK;
}

/* b->t: n zeroed tokens (n within VOCAB_MAX). */
static enum mq_status alloc_tokens(struct vb *b, uint64_t n, const char *path, struct mq_error *err)
{
    if (n > VOCAB_MAX)
        return MQ_FAIL(err, MQ_E_LIMIT, "vocab-size", "%s: a vocabulary of %" PRIu64 " tokens is over the limit of %u",
                       path, n, VOCAB_MAX);
    b->n = (uint32_t)n;
    b->t = calloc(b->n, sizeof *b->t);
    return b->t ? MQ_OK : nomem(err, path);
}

static enum mq_status read_tokens(struct vb *b, uint64_t config_vocab_size, struct mq_error *err)
{
    const char *path = b->p_tok;
    char sh[64], sh2[64];
    b->model = jget(b->tok, "model");
    if (!cJSON_IsObject(b->model))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-model", "%s: \"model\" is missing or not an object", path);
    const cJSON *type = jget(b->model, "type");
    if (!cJSON_IsString(type))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-model", "%s: model.type is missing or not a string", path);
    if (strcmp(type->valuestring, "BPE") != 0)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-model",
                       "%s: model.type is \"%s\"; only BPE tokenizers (byte-level, or with byte_fallback) are converted",
                       path, show(type->valuestring, sh, sizeof sh));
    const cJSON *vocab = jget(b->model, "vocab");
    if (!cJSON_IsObject(vocab) || !vocab->child)
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-vocab", "%s: model.vocab is missing, empty or not an object", path);
    const cJSON *added = jget(b->tok, "added_tokens");
    if (!jabsent(added) && !cJSON_IsArray(added))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens is not an array", path);

    /* pass 1: ids and the largest one */
    char field[160];
    uint64_t max_id = 0;
    for (const cJSON *c = vocab->child; c; c = c->next) {
        uint32_t id;
        snprintf(field, sizeof field, "model.vocab[\"%s\"]", show(c->string, sh, sizeof sh));
        MQ_TRY(jid(c, &id, path, field, err));
        if (id > max_id) max_id = id;
    }
    size_t ai = 0;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, ai++) {
        uint32_t id;
        if (!cJSON_IsObject(a))
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens[%zu] is not an object", path, ai);
        snprintf(field, sizeof field, "added_tokens[%zu].id", ai);
        MQ_TRY(jid(jget(a, "id"), &id, path, field, err));
        const cJSON *content = jget(a, "content");
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens[%zu].content must be a non-empty string",
                           path, ai);
        snprintf(field, sizeof field, "added_tokens[%zu].", ai);
        bool special;
        MQ_TRY(jbool(a, "special", false, &special, path, field, err));
        if (id > max_id) max_id = id;
    }
    if (config_vocab_size && max_id >= config_vocab_size)
        return MQ_FAIL(err, MQ_E_CORRUPT, "vocab-size",
                       "%s: token id %" PRIu64 " is outside the model's vocab_size %" PRIu64
                       " (config.json vocab_size must cover every token)",
                       path, max_id, config_vocab_size);
    uint64_t n = config_vocab_size ? config_vocab_size : max_id + 1;
    MQ_TRY(alloc_tokens(b, n, path, err));

    /* pass 2: fill in (added tokens override the model vocabulary, as in the HF vocabulary) */
    for (const cJSON *c = vocab->child; c; c = c->next) {
        uint32_t id = (uint32_t)c->valuedouble;
        if (!c->string[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-vocab", "%s: model.vocab has an empty token (id %u)", path, id);
        if (b->t[id].used)
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-vocab", "%s: model.vocab gives id %u to both \"%s\" and \"%s\"",
                           path, id, show(b->t[id].text, sh, sizeof sh), show(c->string, sh2, sizeof sh2));
        b->t[id] = (struct vtok){.text = c->string, .len = strlen(c->string), .used = true, .in_vocab = true,
                                 .first_rank = -1};
    }
    ai = 0;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, ai++) {
        uint32_t id = (uint32_t)jget(a, "id")->valuedouble;
        if (b->t[id].added)
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens[%zu]: id %u is used twice", path, ai,
                           id);
        const char *content = jget(a, "content")->valuestring;
        b->t[id].text = content;
        b->t[id].len = strlen(content);
        b->t[id].used = b->t[id].added = true;
        b->t[id].special = cJSON_IsTrue(jget(a, "special"));
        b->t[id].first_rank = -1;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->t[i].used) continue;
        MQ_TRY(set_pad(b, i, path, err));
    }
    return build_index(b, path, err);
}

/* The text -> id table; llama.cpp refuses a vocabulary with a token twice. */
static enum mq_status build_index(struct vb *b, const char *path, struct mq_error *err)
{
    char sh[64];
    size_t cap = 16;
    while (cap < 2 * (size_t)b->n) cap *= 2;
    b->slot = calloc(cap, sizeof *b->slot);
    if (!b->slot) return nomem(err, path);
    b->mask = cap - 1;
    for (uint32_t id = 0; id < b->n; id++) {
        const struct vtok *t = &b->t[id];
        size_t i = (size_t)fnv1a(t->text, t->len) & b->mask;
        for (; b->slot[i]; i = (i + 1) & b->mask) {
            const struct vtok *o = &b->t[b->slot[i] - 1];
            if (o->len == t->len && memcmp(o->text, t->text, t->len) == 0)
                return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-duplicate",
                               "%s: token \"%s\" has two ids, %u and %u (llama.cpp refuses duplicate tokens)", path,
                               show(t->text, sh, sizeof sh), b->slot[i] - 1, id);
        }
        b->slot[i] = id + 1;
    }
    return MQ_OK;
}

/* ---- tokenizer.model vocabularies ---------------------------------------------------------- */

/*
** What llama.cpp's SPM tokenizer reproduces of a SentencePiece model (src/llama-vocab.cpp,
** llm_tokenizer_spm): it prepends " " when add_space_prefix, writes every space as "▁", then
** merges the adjacent pair whose concatenation is a token of highest score (leftmost on ties) -
** SentencePiece's BPE exactly. A Unigram model's best segmentation is something else (a
** Unigram tokenizer.model trained by sentencepiece 0.1.97 gave other ids than llama.cpp on 19 of
** 25 texts, a BPE one on none), so it is refused although llama.cpp's converter writes it. The
** tokenizer applies no normalization map, never collapses spaces, never puts "▁" after a word,
** and falls back to the <0xNN> byte tokens (or the byte itself as a token) for text no token
** covers; a model that needs any other behaviour is refused rather than converted into
** different token ids.
*/
static enum mq_status check_spm_supported(const struct vb *b, struct mq_error *err)
{
    const struct mq_spm_model *m = &b->sm;
    const char *path = b->p_model;
    static const char *const type_names[] = {"unknown", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (m->model_type != MQ_SPM_BPE)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-model",
                       "%s: trainer_spec.model_type is %s (%d); llama.cpp's SPM tokenizer merges pieces by score, "
                       "which gives a BPE model's token ids only", path,
                       type_names[m->model_type >= 1 && m->model_type <= 4 ? m->model_type : 0], (int)m->model_type);
    if (!m->escape_whitespaces)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                       "%s: normalizer_spec.escape_whitespaces is false; llama.cpp's SPM tokenizer always writes spaces "
                       "as \"" SPIECE "\"", path);
    if (m->treat_whitespace_as_suffix)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                       "%s: trainer_spec.treat_whitespace_as_suffix is true; llama.cpp's SPM tokenizer puts \"" SPIECE
                       "\" before words only", path);
    if (m->remove_extra_whitespaces)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                       "%s: normalizer_spec.remove_extra_whitespaces is true (SentencePiece collapses runs of spaces); "
                       "llama.cpp's SPM tokenizer keeps every space", path);
    if (m->charsmap_len)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                       "%s: normalizer_spec \"%s\" has a %zu-byte normalization map; llama.cpp's SPM tokenizer does not "
                       "normalize text", path, m->normalizer_name, m->charsmap_len);
    return MQ_OK;
}

/* convert_hf_to_gguf.py does_token_look_special: added tokens some models do not mark special
** (command-r, deepseek-coder, gemma) but that must be control tokens. */
static bool looks_special(const char *t)
{
    static const char *const names[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    static const struct {
        const char *pre, *suf;
    } frames[] = {{"<|", "|>"}, {"<\xef\xbd\x9c", "\xef\xbd\x9c>"} /* fullwidth ｜ */, {"<unused", ">"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i]) == 0) return true;
    size_t n = strlen(t);
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        size_t lp = strlen(frames[i].pre), ls = strlen(frames[i].suf);
        if (n >= lp && n >= ls && memcmp(t, frames[i].pre, lp) == 0 && memcmp(t + n - ls, frames[i].suf, ls) == 0)
            return true;
    }
    return false;
}

/* id <- an added token (score -1000, as the converter writes); ids beyond the vocabulary are
** skipped, as the converter skips them (the embedding has no row for them). */
static void set_added(struct vb *b, uint32_t id, const char *text, int32_t type)
{
    if (id >= b->n) return;
    b->t[id] = (struct vtok){.text = text, .len = strlen(text), .used = true, .added = true,
                             .special = type == TT_CONTROL, .type = type, .first_rank = -1, .score = -1000.0f};
}

/* added_tokens.json: {"text": id, ...}, each a user-defined token. */
static enum mq_status read_added_tokens_json(struct vb *b, struct mq_error *err)
{
    if (!b->added) return MQ_OK;
    char field[160], sh[64];
    for (const cJSON *c = b->added->child; c; c = c->next) {
        uint32_t id;
        snprintf(field, sizeof field, "\"%s\"", show(c->string, sh, sizeof sh));
        MQ_TRY(jid(c, &id, b->p_added, field, err));
        if (!c->string[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: an empty token (id %u)", b->p_added, id);
        set_added(b, id, c->string, TT_USER_DEFINED);
    }
    return MQ_OK;
}

/* tokenizer_config.json added_tokens_decoder: {"<id>": {"content": ..., "special": ...}}; special
** (or looks_special) -> control, else user-defined with "▁" written as " " (llama.cpp matches
** user-defined tokens in the text before spaces become "▁"). */
static enum mq_status read_added_tokens_decoder(struct vb *b, struct mq_error *err)
{
    const cJSON *dec = b->tcfg ? jget(b->tcfg, "added_tokens_decoder") : NULL;
    if (jabsent(dec)) return MQ_OK;
    const char *path = b->p_tcfg;
    char sh[64], field[160];
    if (!cJSON_IsObject(dec))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens_decoder is not an object", path);
    for (const cJSON *c = dec->child; c; c = c->next) {
        const char *k = c->string;
        size_t kl = strlen(k);
        if (kl == 0 || kl > 8 || strspn(k, "0123456789") != kl || (kl > 1 && k[0] == '0'))
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added", "%s: added_tokens_decoder key \"%s\" is not a token id",
                           path, show(k, sh, sizeof sh));
        uint32_t id = (uint32_t)strtoul(k, NULL, 10);
        const cJSON *content = jget(c, "content");
        if (!cJSON_IsObject(c) || !cJSON_IsString(content) || !content->valuestring[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-added",
                           "%s: added_tokens_decoder[\"%s\"].content must be a non-empty string", path, k);
        bool special;
        snprintf(field, sizeof field, "added_tokens_decoder[\"%s\"].", k);
        MQ_TRY(jbool(c, "special", false, &special, path, field, err));
        const char *text = content->valuestring;
        if (special || looks_special(text)) {
            set_added(b, id, text, TT_CONTROL);
            continue;
        }
        size_t n = 0;
        for (const char *q = text; *q; n++) q += strncmp(q, SPIECE, 3) == 0 ? 3 : 1;
        char *u = malloc(n + 1), *o = u;
        MQ_TRY(own(b, u, path, err));
        for (const char *q = text; *q;) {
            if (strncmp(q, SPIECE, 3) == 0) {
                *o++ = ' ';
                q += 3;
            } else {
                *o++ = *q++;
            }
        }
        *o = '\0';
        set_added(b, id, u, TT_USER_DEFINED);
    }
    return MQ_OK;
}

/*
** The vocabulary of tokenizer.model as convert_hf_to_gguf.py _create_vocab_sentencepiece builds
** it: every piece with its score and type (UNKNOWN, CONTROL, UNUSED, BYTE; NORMAL for the rest,
** USER_DEFINED pieces too), "[PAD<id>]" up to config vocab_size, then added_tokens.json and
** tokenizer_config.json added_tokens_decoder over them. A piece beyond vocab_size is refused
** (the converter drops the pieces from there on: a silently shorter vocabulary).
*/
static enum mq_status read_spm_tokens(struct vb *b, uint64_t config_vocab_size, struct mq_error *err)
{
    const struct mq_spm_model *m = &b->sm;
    const char *path = b->p_model;
    MQ_TRY(check_spm_supported(b, err));
    if (config_vocab_size && m->n_pieces > config_vocab_size)
        return MQ_FAIL(err, MQ_E_CORRUPT, "vocab-size",
                       "%s: %u pieces, more than the model's vocab_size %" PRIu64
                       " (config.json vocab_size must cover every token)", path, m->n_pieces, config_vocab_size);
    uint64_t n = config_vocab_size ? config_vocab_size : m->n_pieces;
    MQ_TRY(alloc_tokens(b, n, path, err));
    static const int32_t type_of[] = {
        [MQ_SPM_NORMAL] = TT_NORMAL,   [MQ_SPM_UNKNOWN] = TT_UNKNOWN, [MQ_SPM_CONTROL] = TT_CONTROL,
        [MQ_SPM_USER_DEFINED] = TT_NORMAL, [MQ_SPM_UNUSED] = TT_UNUSED, [MQ_SPM_BYTE] = TT_BYTE,
    };
    for (uint32_t i = 0; i < m->n_pieces; i++) {
        const struct mq_spm_piece *pc = &m->pieces[i];
        b->t[i] = (struct vtok){.text = pc->text, .len = pc->len, .used = true, .in_vocab = true,
                                .type = type_of[pc->type], .first_rank = -1, .score = pc->score};
    }
    for (uint32_t i = m->n_pieces; i < b->n; i++) MQ_TRY(set_pad(b, i, path, err));
    MQ_TRY(read_added_tokens_json(b, err));
    MQ_TRY(read_added_tokens_decoder(b, err));
    return build_index(b, path, err);
}

/*
** llama.cpp's byte fallback (llama_vocab byte_to_token) takes the <0xNN> token, else the byte
** itself as a one-byte token (Gemma's tokenizer.json has "\t" for <0x09>); with neither,
** tokenizing a text that needs the byte throws. So every byte needs one of the two.
*/
static enum mq_status check_byte_tokens(const struct vb *b, const char *path, const char *why, struct mq_error *err)
{
    for (unsigned c = 0; c < 256; c++) {
        char bt[8], raw[2] = {(char)c, 0};
        snprintf(bt, sizeof bt, "<0x%02X>", c);
        if (lookup(b, bt, 6) < 0 && (c == 0 || lookup(b, raw, 1) < 0))
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-vocab",
                           "%s: %s but the vocabulary has no %s token (llama.cpp's byte fallback needs all 256)", path,
                           why, bt);
    }
    return MQ_OK;
}

/* ---- merges ------------------------------------------------------------------------------ */

static enum mq_status read_merges(struct vb *b, struct mq_error *err)
{
    const char *path = b->p_tok;
    char sh[64], sh2[64];
    const cJSON *merges = jget(b->model, "merges");
    if (jabsent(merges)) return MQ_OK;
    if (!cJSON_IsArray(merges))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-merges", "%s: model.merges is not an array", path);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    if (n > VOCAB_MAX)
        return MQ_FAIL(err, MQ_E_LIMIT, "tokenizer-merges", "%s: %zu merges is over the limit of %u", path, n, VOCAB_MAX);
    b->merge_s = calloc(n ? n : 1, sizeof *b->merge_s);
    b->merge_len = calloc(n ? n : 1, sizeof *b->merge_len);
    if (!b->merge_s || !b->merge_len) return nomem(err, path);
    char *cat = NULL;
    size_t cat_cap = 0;
    enum mq_status s = MQ_OK;
    size_t i = 0;
    for (const cJSON *m = merges->child; m && s == MQ_OK; m = m->next, i++) {
        const char *l, *r;
        size_t ll, rl;
        if (cJSON_IsString(m)) {
            /* "left right": exactly one space, both sides non-empty (tokenizers' own rule) */
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' ')) {
                s = MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-merges", "%s: model.merges[%zu] \"%s\" is not \"left right\"",
                            path, i, show(m->valuestring, sh, sizeof sh));
                break;
            }
            l = m->valuestring;
            ll = (size_t)(sp - l);
            r = sp + 1;
            rl = strlen(r);
            b->merge_s[i] = m->valuestring;
            b->merge_len[i] = ll + 1 + rl;
        } else {
            const cJSON *a0 = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 0) : NULL;
            const cJSON *a1 = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 1) : NULL;
            if (cJSON_GetArraySize(m) != 2 || !cJSON_IsString(a0) || !cJSON_IsString(a1) || !a0->valuestring[0] ||
                !a1->valuestring[0]) {
                s = MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-merges",
                            "%s: model.merges[%zu] is neither \"left right\" nor [\"left\", \"right\"]", path, i);
                break;
            }
            l = a0->valuestring;
            r = a1->valuestring;
            ll = strlen(l);
            rl = strlen(r);
            if (strchr(l, ' ') || strchr(r, ' ')) {
                /* GGUF keeps merges as "left right" strings, split at the first space */
                s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-merges",
                            "%s: model.merges[%zu] has a token with a space, which GGUF's \"left right\" merges cannot hold",
                            path, i);
                break;
            }
            char *joined = malloc(ll + rl + 2);
            if ((s = own(b, joined, path, err)) != MQ_OK) break;
            memcpy(joined, l, ll);
            joined[ll] = ' ';
            memcpy(joined + ll + 1, r, rl + 1);
            b->merge_s[i] = joined;
            b->merge_len[i] = ll + 1 + rl;
        }
        if (ll + rl + 1 > cat_cap) {
            cat_cap = (ll + rl + 1) * 2;
            char *p = realloc(cat, cat_cap);
            if (!p) {
                s = nomem(err, path);
                break;
            }
            cat = p;
        }
        memcpy(cat, l, ll);
        memcpy(cat + ll, r, rl);
        int64_t il = lookup(b, l, ll), ir = lookup(b, r, rl), res = lookup(b, cat, ll + rl);
        if (il < 0 || ir < 0 || res < 0) {
            /* name the missing piece: left, right or their concatenation */
            size_t from = ir < 0 && il >= 0 ? ll : 0, len = il < 0 ? ll : ir < 0 ? rl : ll + rl;
            char piece[64];
            snprintf(piece, sizeof piece, "%.*s", (int)(len < 63 ? len : 63), cat + from);
            s = MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-merges",
                        "%s: model.merges[%zu] \"%s\": the %s token \"%s\" is not in the vocabulary", path, i,
                        show(b->merge_s[i], sh, sizeof sh), il < 0 ? "left" : ir < 0 ? "right" : "merged",
                        show(piece, sh2, sizeof sh2));
            break;
        }
        if (b->t[res].first_rank < 0) b->t[res].first_rank = (int64_t)i;
    }
    free(cat);
    b->n_merges = i;
    return s;
}

/* ---- configuration of the two families ---------------------------------------------------- */

/* One-line description of a normalizer / pre-tokenizer (for messages). */
static void describe(const cJSON *o, char *buf, size_t cap)
{
    size_t pos = 0;
#define PUT(...)                                                                      \
    do {                                                                              \
        if (pos < cap) {                                                              \
            int k_ = snprintf(buf + pos, cap - pos, __VA_ARGS__);                     \
            if (k_ > 0) pos += (size_t)k_ < cap - pos ? (size_t)k_ : cap - pos - 1;   \
        }                                                                             \
    } while (0)
    buf[0] = '\0';
    if (jabsent(o)) {
        PUT("null");
        return;
    }
    const cJSON *type = jget(o, "type");
    if (!cJSON_IsObject(o) || !cJSON_IsString(type)) {
        PUT("(not an object with a \"type\")");
        return;
    }
    const cJSON *list = jtype(o, "Sequence") ? jget(o, "pretokenizers") : NULL;
    if (!list && jtype(o, "Sequence")) list = jget(o, "normalizers");
    int n = 1;
    const cJSON *step = o;
    if (cJSON_IsArray(list)) {
        PUT("Sequence[");
        step = list->child;
        n = cJSON_GetArraySize(list);
    }
    for (int k = 0; k < n && step; k++, step = step->next) {
        char sh[64], tv[16], tv2[16];
        const cJSON *st = jget(step, "type");
        if (k) PUT(", ");
        PUT("%s", cJSON_IsString(st) ? show(st->valuestring, sh, sizeof sh) : "?");
#define BOOLV(key, out) \
        (snprintf(out, sizeof out, "%s", jabsent(jget(step, key)) ? "absent" : cJSON_IsTrue(jget(step, key)) ? "true" : cJSON_IsFalse(jget(step, key)) ? "false" : "?"), out)
        if (jtype(step, "ByteLevel"))
            PUT("(add_prefix_space=%s, use_regex=%s)", BOOLV("add_prefix_space", tv), BOOLV("use_regex", tv2));
        else if (jtype(step, "Digits"))
            PUT("(individual_digits=%s)", BOOLV("individual_digits", tv));
        else if (jtype(step, "Metaspace")) {
            const cJSON *ps = jget(step, "prepend_scheme");
            PUT("(prepend_scheme=%s, split=%s)", cJSON_IsString(ps) ? show(ps->valuestring, sh, sizeof sh) : "absent",
                BOOLV("split", tv));
        } else if (jtype(step, "Split")) {
            const cJSON *pat = jget(step, "pattern"), *beh = jget(step, "behavior");
            const cJSON *re = jget(pat, "Regex"), *str = jget(pat, "String");
            char sh2[64];
            PUT("(%s \"%s\", %s)", cJSON_IsString(re) ? "Regex" : "String",
                cJSON_IsString(re) ? show(re->valuestring, sh, sizeof sh) : cJSON_IsString(str) ? show(str->valuestring, sh, sizeof sh) : "?",
                cJSON_IsString(beh) ? show(beh->valuestring, sh2, sizeof sh2) : "?");
        }
#undef BOOLV
    }
    if (cJSON_IsArray(list)) PUT("]");
#undef PUT
}

/* Byte-level family: which llama.cpp pre-tokenizer is this configuration? NULL when none. */
static const struct pre_rule *match_pre(const cJSON *pre)
{
    const cJSON *steps[2];
    int n = 0;
    if (jtype(pre, "Sequence")) {
        const cJSON *list = jget(pre, "pretokenizers");
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1 || cJSON_GetArraySize(list) > 2) return NULL;
        for (const cJSON *c = list->child; c; c = c->next) steps[n++] = c;
    } else if (cJSON_IsObject(pre)) {
        steps[n++] = pre;
    } else {
        return NULL;
    }
    /* the last step is ByteLevel without a prefix space */
    const cJSON *bl = steps[n - 1];
    if (!jtype(bl, "ByteLevel") || !cJSON_IsFalse(jget(bl, "add_prefix_space"))) return NULL;
    const cJSON *ur = jget(bl, "use_regex");
    if (!jabsent(ur) && !cJSON_IsBool(ur)) return NULL;
    bool use_regex = jabsent(ur) || cJSON_IsTrue(ur); /* tokenizers' default is true */
    const char *regex = NULL;
    bool digits = false;
    if (n == 2) {
        const cJSON *st = steps[0];
        if (jtype(st, "Split")) {
            const cJSON *re = jget(jget(st, "pattern"), "Regex");
            if (!cJSON_IsString(re) || !jstr_eq(jget(st, "behavior"), "Isolated") || !cJSON_IsFalse(jget(st, "invert")))
                return NULL;
            regex = re->valuestring;
        } else if (jtype(st, "Digits")) {
            if (!cJSON_IsTrue(jget(st, "individual_digits"))) return NULL;
            digits = true;
        } else {
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof pre_rules / sizeof pre_rules[0]; i++) {
        const struct pre_rule *r = &pre_rules[i];
        if (r->digits == digits && r->bytelevel_re == use_regex &&
            (r->regex ? regex && strcmp(r->regex, regex) == 0 : !regex))
            return r;
    }
    return NULL;
}

static bool is_replace_space(const cJSON *o)
{
    return jtype(o, "Replace") && jstr_eq(jget(jget(o, "pattern"), "String"), " ") && jstr_eq(jget(o, "content"), SPIECE);
}

static bool is_prepend_spiece(const cJSON *o) { return jtype(o, "Prepend") && jstr_eq(jget(o, "prepend"), SPIECE); }

/* The normalizer steps of `norm` (one, or a Sequence's list) into st[0..*n); false if over `cap`. */
static bool norm_steps(const cJSON *norm, const cJSON **st, int cap, int *n)
{
    *n = 0;
    if (jabsent(norm)) return true;
    const cJSON *list = jtype(norm, "Sequence") ? jget(norm, "normalizers") : NULL;
    if (!list) {
        st[(*n)++] = norm;
        return true;
    }
    if (!cJSON_IsArray(list)) return false;
    for (const cJSON *c = list->child; c; c = c->next) {
        if (*n == cap) return false;
        st[(*n)++] = c;
    }
    return true;
}

/* normalizer tests */
static bool norm_prepend_replace(const cJSON *n)
{
    const cJSON *st[3];
    int k;
    return norm_steps(n, st, 3, &k) && k == 2 && is_prepend_spiece(st[0]) && is_replace_space(st[1]);
}
static bool norm_replace(const cJSON *n)
{
    const cJSON *st[3];
    int k;
    return norm_steps(n, st, 3, &k) && k == 1 && is_replace_space(st[0]);
}
static bool norm_none(const cJSON *n) { return jabsent(n); }

/* pre-tokenizer tests */
static bool pre_none(const cJSON *p) { return jabsent(p); }
/* Split on the String " ", not inverted, any behaviour: after Replace(" " -> "▁") the text holds
** no " ", so the split finds nothing and passes the text on whole (Gemma's tokenizer.json). */
static bool pre_split_space(const cJSON *p)
{
    return jtype(p, "Split") && jstr_eq(jget(jget(p, "pattern"), "String"), " ") && cJSON_IsFalse(jget(p, "invert"));
}
static bool pre_metaspace(const cJSON *p)
{
    return jtype(p, "Metaspace") && jstr_eq(jget(p, "replacement"), SPIECE) && cJSON_IsFalse(jget(p, "split"));
}

/* Metaspace's prefix: prepend_scheme always/first -> 1, never -> 0, the older add_prefix_space
** boolean; -1 for anything else. */
static int metaspace_prefix(const cJSON *pre)
{
    const cJSON *ps = jget(pre, "prepend_scheme"), *apf = jget(pre, "add_prefix_space");
    if (jstr_eq(ps, "always") || jstr_eq(ps, "first")) return 1;
    if (jstr_eq(ps, "never")) return 0;
    if (jabsent(ps) && cJSON_IsBool(apf)) return cJSON_IsTrue(apf);
    return -1;
}

/*
** Byte-fallback family: llama.cpp's SPM tokenizer adds " " in front of the text (and after every
** special token) when add_space_prefix, then writes every space as "▁". The tokenizer.json forms
** that do exactly that, one row each (prefix: add_space_prefix; -1 = Metaspace's prepend_scheme):
** With Metaspace the prefix is not added when the text already starts with a space; llama.cpp
** adds it anyway, so texts with leading spaces differ there (a known llama.cpp difference).
*/
static const struct spm_form {
    const char *name;
    bool (*normalizer)(const cJSON *);
    bool (*pre)(const cJSON *);
    int prefix;
} spm_forms[] = {
    {"Llama 2: normalizer Sequence[Prepend(\"▁\"), Replace(\" \" -> \"▁\")]", norm_prepend_replace, pre_none, 1},
    {"normalizer Replace(\" \" -> \"▁\") (alone or in a Sequence)", norm_replace, pre_none, 0},
    {"Gemma: normalizer Replace(\" \" -> \"▁\"), pre_tokenizer Split(\" \")", norm_replace, pre_split_space, 0},
    {"Mistral: pre_tokenizer Metaspace(\"▁\", split=false)", norm_none, pre_metaspace, -1},
};

static enum mq_status spm_whitespace(struct vb *b, struct mq_error *err)
{
    const cJSON *norm = jget(b->tok, "normalizer"), *pre = jget(b->tok, "pre_tokenizer");
    for (size_t i = 0; i < sizeof spm_forms / sizeof spm_forms[0]; i++) {
        const struct spm_form *f = &spm_forms[i];
        if (!f->normalizer(norm) || !f->pre(pre)) continue;
        int prefix = f->prefix >= 0 ? f->prefix : metaspace_prefix(pre);
        if (prefix < 0) break;
        b->add_space_prefix = prefix == 1;
        return MQ_OK;
    }
    char dn[256], dp[256];
    describe(norm, dn, sizeof dn);
    describe(pre, dp, sizeof dp);
    return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                   "%s: byte_fallback BPE with normalizer %s and pre_tokenizer %s: llama.cpp's SPM tokenizer only adds a "
                   "\"" SPIECE "\" prefix and writes spaces as \"" SPIECE "\" (Prepend+Replace or Replace normalizers, "
                   "optionally a Split(\" \") after Replace, or a Metaspace pre_tokenizer with split=false)",
                   b->p_tok, dn, dp);
}

static enum mq_status classify(struct vb *b, struct mq_error *err)
{
    const char *path = b->p_tok;
    char sh[64];
    bool byte_fallback, ignore_merges;
    MQ_TRY(jbool(b->model, "byte_fallback", false, &byte_fallback, path, "model.", err));
    MQ_TRY(jbool(b->model, "ignore_merges", false, &ignore_merges, path, "model.", err));
    const cJSON *dropout = jget(b->model, "dropout");
    if (!jabsent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-model",
                       "%s: model.dropout is set; BPE dropout makes tokenization random and llama.cpp has none", path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = jget(b->model, affixes[i]);
        if (!jabsent(v) && !jstr_eq(v, ""))
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-model", "%s: model.%s is set; llama.cpp's BPE has no %s",
                           path, affixes[i], i ? "word suffixes" : "subword prefixes");
    }

    if (byte_fallback) {
        b->llama = true;
        b->pre = "default";
        if (ignore_merges)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-model",
                           "%s: model.ignore_merges with byte_fallback: llama.cpp's SPM tokenizer cannot skip merges", path);
        MQ_TRY(spm_whitespace(b, err));
        MQ_TRY(check_byte_tokens(b, path, "model.byte_fallback is true", err));
        const cJSON *unk = jget(b->model, "unk_token");
        if (cJSON_IsString(unk)) {
            int64_t id = lookup(b, unk->valuestring, strlen(unk->valuestring));
            if (id < 0)
                return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special", "%s: model.unk_token \"%s\" is not a token", path,
                               show(unk->valuestring, sh, sizeof sh));
            b->unk = id;
        } else if (!jabsent(unk)) {
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-field", "%s: model.unk_token must be a string or null", path);
        }
    } else {
        const cJSON *norm = jget(b->tok, "normalizer"), *pre = jget(b->tok, "pre_tokenizer");
        char d[320];
        /* NFC (Qwen2) is accepted: llama.cpp does not normalize, which only matters for text that
        ** is not already NFC. */
        if (!jabsent(norm) && !jtype(norm, "NFC")) {
            describe(norm, d, sizeof d);
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-normalizer",
                           "%s: normalizer %s: llama.cpp applies no normalizer to byte-level BPE", path, d);
        }
        const struct pre_rule *r = match_pre(pre);
        if (!r) {
            describe(pre, d, sizeof d);
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-pre",
                           "%s: pre_tokenizer %s is not a configuration llama.cpp knows (recognised: %s)", path, d,
                           mq_gguf_vocab_pre_names());
        }
        if (r->ignore_merges != ignore_merges)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-pre",
                           "%s: model.ignore_merges is %s but llama.cpp's \"%s\" pre-tokenizer %s merges", path,
                           ignore_merges ? "true" : "false", r->name, r->ignore_merges ? "ignores" : "applies");
        b->pre = r->name;
    }

    for (uint32_t i = 0; i < b->n; i++) {
        struct vtok *t = &b->t[i];
        if (!t->used) continue; /* [PAD] already unused */
        const char *x = t->text;
        bool byte = b->llama && t->in_vocab && t->len == 6 && memcmp(x, "<0x", 3) == 0 && x[5] == '>' &&
                    strchr("0123456789ABCDEF", x[3]) && strchr("0123456789ABCDEF", x[4]);
        t->type = byte ? TT_BYTE : t->added ? (t->special ? TT_CONTROL : TT_USER_DEFINED) : TT_NORMAL;
    }
    return MQ_OK;
}

/* ---- special tokens, flags, templates ---------------------------------------------------- */

static enum mq_status check_id(const struct vb *b, uint32_t id, const char *path, const char *field, struct mq_error *err)
{
    if (id >= b->n)
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special", "%s: %s is %u, outside the vocabulary of %u tokens", path,
                       field, id, b->n);
    return MQ_OK;
}

static enum mq_status read_specials(struct vb *b, struct mq_error *err)
{
    static const char *const names[4] = {"bos", "eos", "unk", "pad"};
    int64_t *slots[4] = {&b->bos, &b->eos, &b->unk, &b->pad};
    char key[32], sh[64];
    int64_t from_tcfg[4] = {-1, -1, -1, -1};
    for (int k = 0; k < 4 && b->tcfg; k++) {
        snprintf(key, sizeof key, "%s_token", names[k]);
        const cJSON *v = jget(b->tcfg, key);
        if (jabsent(v)) continue;
        const cJSON *content = cJSON_IsObject(v) ? jget(v, "content") : v;
        if (!cJSON_IsString(content))
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special",
                           "%s: %s must be a string or an object with a \"content\" string", b->p_tcfg, key);
        int64_t id = lookup(b, content->valuestring, strlen(content->valuestring));
        if (id < 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special", "%s: %s \"%s\" is not a token of %s", b->p_tcfg, key,
                           show(content->valuestring, sh, sizeof sh), b->p_tok);
        from_tcfg[k] = id;
    }
    for (int k = 0; k < 4; k++)
        if (from_tcfg[k] >= 0) *slots[k] = from_tcfg[k]; /* over model.unk_token too */
    const cJSON *files[2] = {b->cfg, b->gen};
    const char *paths[2] = {b->p_cfg, b->p_gen};
    for (int f = 0; f < 2; f++) {
        if (!files[f]) continue;
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "%s_token_id", names[k]);
            const cJSON *v = jget(files[f], key);
            if (cJSON_IsArray(v)) v = v->child; /* e.g. eos_token_id: [128001, 128009] */
            if (jabsent(v)) continue;
            uint32_t id;
            MQ_TRY(jid(v, &id, paths[f], key, err));
            MQ_TRY(check_id(b, id, paths[f], key, err));
            if (*slots[k] < 0) *slots[k] = id;
        }
    }
    /* last, a tokenizer.model's own ids (llama.cpp's SPM defaults are the same: unk 0, bos 1, eos 2) */
    const int32_t spm_ids[4] = {b->sm.bos_id, b->sm.eos_id, b->sm.unk_id, b->sm.pad_id};
    for (int k = 0; b->spm && k < 4; k++)
        if (*slots[k] < 0 && spm_ids[k] >= 0) *slots[k] = spm_ids[k];
    return MQ_OK;
}

/* The TemplateProcessing of tokenizer.json's post_processor (directly or in a Sequence), or NULL. */
static const cJSON *template_processing(const cJSON *pp)
{
    if (jtype(pp, "TemplateProcessing")) return pp;
    if (!jtype(pp, "Sequence")) return NULL;
    const cJSON *list = jget(pp, "processors");
    for (const cJSON *c = cJSON_IsArray(list) ? list->child : NULL; c; c = c->next)
        if (jtype(c, "TemplateProcessing")) return c;
    return NULL;
}

/* The single token id of a template SpecialToken element, or -1 when `el` is not one. */
static enum mq_status template_special(const struct vb *b, const cJSON *tp, const cJSON *el, int64_t *out,
                                       struct mq_error *err)
{
    *out = -1;
    const cJSON *name = jget(jget(el, "SpecialToken"), "id");
    if (!cJSON_IsString(name)) return MQ_OK;
    const cJSON *ids = jget(jget(jget(tp, "special_tokens"), name->valuestring), "ids");
    char sh[64];
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-template",
                       "%s: post_processor special token \"%s\" must map to exactly one id", b->p_tok,
                       show(name->valuestring, sh, sizeof sh));
    uint32_t id;
    MQ_TRY(jid(ids->child, &id, b->p_tok, "post_processor.special_tokens[].ids[0]", err));
    MQ_TRY(check_id(b, id, b->p_tok, "post_processor.special_tokens[].ids[0]", err));
    *out = id;
    return MQ_OK;
}

static enum mq_status read_flags(struct vb *b, struct mq_error *err)
{
    bool have_bos = false, have_eos = false;
    if (b->tcfg) {
        const cJSON *vb_ = jget(b->tcfg, "add_bos_token"), *ve = jget(b->tcfg, "add_eos_token");
        MQ_TRY(jbool(b->tcfg, "add_bos_token", false, &b->add_bos, b->p_tcfg, "", err));
        MQ_TRY(jbool(b->tcfg, "add_eos_token", false, &b->add_eos, b->p_tcfg, "", err));
        have_bos = !jabsent(vb_);
        have_eos = !jabsent(ve);
    }
    /* tokenizer.model without add_bos_token: llama.cpp's SPM default (and transformers' Llama and
    ** Gemma tokenizers'): a BOS when there is one */
    if (b->spm && !have_bos) b->add_bos = b->bos >= 0;
    const cJSON *tp = template_processing(jget(b->tok, "post_processor"));
    const cJSON *single = tp ? jget(tp, "single") : NULL;
    if (cJSON_IsArray(single) && single->child) {
        int64_t first, last = -1;
        MQ_TRY(template_special(b, tp, single->child, &first, err));
        const cJSON *tail = single->child;
        while (tail->next) tail = tail->next;
        if (tail != single->child) MQ_TRY(template_special(b, tp, tail, &last, err));
        const struct {
            int64_t id;
            bool have;
            bool *flag;
            int64_t *slot;
            const char *what;
        } ends[2] = {{first, have_bos, &b->add_bos, &b->bos, "bos"}, {last, have_eos, &b->add_eos, &b->eos, "eos"}};
        for (int k = 0; k < 2; k++) {
            if (ends[k].id < 0) continue;
            if (*ends[k].slot < 0) *ends[k].slot = ends[k].id;
            if (!ends[k].have) *ends[k].flag = true;
            if (*ends[k].flag && *ends[k].slot != ends[k].id)
                return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special",
                               "%s: post_processor adds token %" PRId64 " where the %s token is %" PRId64, b->p_tok,
                               ends[k].id, ends[k].what, *ends[k].slot);
        }
    }
    if (b->add_bos && b->bos < 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special",
                       "%s: add_bos_token is true but no bos token is named (tokenizer_config.json, config.json, "
                       "generation_config.json)",
                       have_bos ? b->p_tcfg : b->p_tok);
    if (b->add_eos && b->eos < 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-special",
                       "%s: add_eos_token is true but no eos token is named (tokenizer_config.json, config.json, "
                       "generation_config.json)",
                       have_eos ? b->p_tcfg : b->p_tok);
    return MQ_OK;
}

static enum mq_status read_jinja(struct vb *b, struct mq_error *err)
{
    if (file_absent(b->p_jinja)) return MQ_OK;
    size_t len;
    MQ_TRY(mq_read_small_file(b->p_jinja, SIDE_FILE_MAX, "tokenizer-size", &b->jinja, &len, err));
    size_t bad;
    if (!utf8_valid((const unsigned char *)b->jinja, len, &bad) || memchr(b->jinja, 0, len))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-template", "%s: not UTF-8 text (byte %zu)", b->p_jinja,
                       memchr(b->jinja, 0, len) ? (size_t)((char *)memchr(b->jinja, 0, len) - b->jinja) : bad);
    return MQ_OK;
}

/* ---- output ------------------------------------------------------------------------------ */

static enum mq_status emit_templates(const struct vb *b, struct mq_meta *m, struct mq_error *err)
{
    const cJSON *ct = b->tcfg ? jget(b->tcfg, "chat_template") : NULL;
    if (cJSON_IsString(ct)) return mq_meta_set_str(m, "tokenizer.chat_template", ct->valuestring, SIZE_MAX, err);
    if (cJSON_IsArray(ct)) {
        size_t i = 0;
        for (const cJSON *e = ct->child; e; e = e->next, i++) {
            const cJSON *name = jget(e, "name"), *tpl = jget(e, "template");
            if (!cJSON_IsString(name) || !name->valuestring[0] || !cJSON_IsString(tpl))
                return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-template",
                               "%s: chat_template[%zu] must be {\"name\": string, \"template\": string}", b->p_tcfg, i);
            for (const char *c = name->valuestring; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                      *c == '-'))
                    return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-template",
                                   "%s: chat_template[%zu].name must be letters, digits, '_' or '-' (it becomes a key)",
                                   b->p_tcfg, i);
            char key[160];
            if (strcmp(name->valuestring, "default") == 0) snprintf(key, sizeof key, "tokenizer.chat_template");
            else if ((size_t)snprintf(key, sizeof key, "tokenizer.chat_template.%s", name->valuestring) >= sizeof key)
                return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-template", "%s: chat_template[%zu].name is too long",
                               b->p_tcfg, i);
            MQ_TRY(mq_meta_set_str(m, key, tpl->valuestring, SIZE_MAX, err));
        }
        return MQ_OK;
    }
    if (!jabsent(ct))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tokenizer-template", "%s: chat_template must be a string or a list", b->p_tcfg);
    if (b->jinja) return mq_meta_set_str(m, "tokenizer.chat_template", b->jinja, SIZE_MAX, err);
    return MQ_OK;
}

static enum mq_status emit(const struct vb *b, struct mq_meta *m, struct mq_error *err)
{
    const char *path = b->p_tok;
    MQ_TRY(mq_meta_set_str(m, "tokenizer.ggml.model", b->llama ? "llama" : "gpt2", SIZE_MAX, err));
    MQ_TRY(mq_meta_set_str(m, "tokenizer.ggml.pre", b->pre, SIZE_MAX, err));
    const char **strs = malloc((size_t)b->n * sizeof *strs);
    uint64_t *lens = malloc((size_t)b->n * sizeof *lens);
    float *scores = malloc((size_t)b->n * sizeof *scores);
    int32_t *types = malloc((size_t)b->n * sizeof *types);
    enum mq_status s = MQ_OK;
    if (!strs || !lens || !scores || !types) s = nomem(err, path);
    for (uint32_t i = 0; s == MQ_OK && i < b->n; i++) {
        strs[i] = b->t[i].text;
        lens[i] = b->t[i].len;
        types[i] = b->t[i].type;
        int64_t r = b->t[i].first_rank >= 0 ? b->t[i].first_rank : (int64_t)b->n_merges;
        scores[i] = b->spm ? b->t[i].score : (float)-r; /* exact: r < 2^24 */
    }
    if (b->llama && !b->spm && b->unk >= 0 && s == MQ_OK) types[b->unk] = TT_UNKNOWN;
    if (s == MQ_OK) s = mq_meta_set_str_array(m, "tokenizer.ggml.tokens", strs, lens, b->n, err);
    if (s == MQ_OK && b->llama) s = mq_meta_set_array(m, "tokenizer.ggml.scores", MQ_META_F32, scores, b->n, err);
    if (s == MQ_OK) s = mq_meta_set_array(m, "tokenizer.ggml.token_type", MQ_META_I32, types, b->n, err);
    if (s == MQ_OK && !b->spm) /* the converter writes no merges for a tokenizer.model */
        s = mq_meta_set_str_array(m, "tokenizer.ggml.merges", (const char *const *)b->merge_s, b->merge_len,
                                  b->n_merges, err);
    free(strs);
    free(lens);
    free(scores);
    free(types);
    MQ_TRY(s);
    const struct {
        const char *key;
        int64_t id;
    } ids[4] = {{"tokenizer.ggml.bos_token_id", b->bos},
                {"tokenizer.ggml.eos_token_id", b->eos},
                {"tokenizer.ggml.unknown_token_id", b->unk},
                {"tokenizer.ggml.padding_token_id", b->pad}};
    for (int k = 0; k < 4; k++)
        if (ids[k].id >= 0) MQ_TRY(mq_meta_set_u32(m, ids[k].key, (uint32_t)ids[k].id, err));
    MQ_TRY(mq_meta_set_bool(m, "tokenizer.ggml.add_bos_token", b->add_bos, err));
    MQ_TRY(mq_meta_set_bool(m, "tokenizer.ggml.add_eos_token", b->add_eos, err));
    if (b->llama) MQ_TRY(mq_meta_set_bool(m, "tokenizer.ggml.add_space_prefix", b->add_space_prefix, err));
    return emit_templates(b, m, err);
}

/* out := out without its tokenizer.* keys, followed by the keys of `add` (moved). */
static enum mq_status replace_tokenizer_keys(struct mq_meta *out, struct mq_meta *add, struct mq_error *err)
{
    struct mq_meta merged;
    mq_meta_init(&merged);
    enum mq_status s = mq_meta_copy(&merged, out, err);
    for (size_t i = 0; s == MQ_OK && i < merged.n;) {
        if (strncmp(merged.items[i].key, "tokenizer.", 10) == 0) mq_meta_remove(&merged, merged.items[i].key);
        else i++;
    }
    for (size_t i = 0; s == MQ_OK && i < add->n; i++) s = mq_meta_set_value(&merged, add->items[i].key, &add->items[i].v, err);
    if (s != MQ_OK) {
        mq_meta_free(&merged);
        return s;
    }
    mq_meta_free(out);
    *out = merged;
    return MQ_OK;
}

/*
** One conversion: tokenizer.json (spm false) or tokenizer.model (spm true) plus the side files.
** no_prefix: a tokenizer.model's add_space_prefix is false whatever add_dummy_prefix says (the
** Gemma rule: Gemma2Model/Gemma3Model write add_space_prefix false after the sentencepiece vocab).
*/
static enum mq_status vocab_run(const char *model_dir, const cJSON *config, uint64_t config_vocab_size, bool spm,
                                bool no_prefix, struct mq_meta *out, struct mq_error *err)
{
    struct vb *b = calloc(1, sizeof *b);
    if (!b) return nomem(err, model_dir);
    b->bos = b->eos = b->unk = b->pad = -1;
    b->spm = spm;
    struct mq_meta tmp;
    mq_meta_init(&tmp);
    enum mq_status s = make_path(b->p_tok, sizeof b->p_tok, model_dir, "tokenizer.json", err);
    if (s == MQ_OK) s = make_path(b->p_tcfg, sizeof b->p_tcfg, model_dir, "tokenizer_config.json", err);
    if (s == MQ_OK) s = make_path(b->p_cfg, sizeof b->p_cfg, model_dir, "config.json", err);
    if (s == MQ_OK) s = make_path(b->p_gen, sizeof b->p_gen, model_dir, "generation_config.json", err);
    if (s == MQ_OK) s = make_path(b->p_jinja, sizeof b->p_jinja, model_dir, "chat_template.jinja", err);
    if (s == MQ_OK) s = make_path(b->p_model, sizeof b->p_model, model_dir, "tokenizer.model", err);
    if (s == MQ_OK) s = make_path(b->p_added, sizeof b->p_added, model_dir, "added_tokens.json", err);
    if (s == MQ_OK && !spm) s = load_json(b->p_tok, TOKENIZER_JSON_MAX, TOKENIZER_JSON_NODES, true, &b->tok, err);
    if (s == MQ_OK && spm) s = mq_spm_read(b->p_model, &b->sm, err);
    if (s == MQ_OK && spm) s = load_json(b->p_added, SIDE_FILE_MAX, SIDE_FILE_NODES, false, &b->added, err);
    if (s == MQ_OK) s = load_json(b->p_tcfg, SIDE_FILE_MAX, SIDE_FILE_NODES, false, &b->tcfg, err);
    b->cfg = config;
    if (s == MQ_OK) s = load_json(b->p_gen, SIDE_FILE_MAX, SIDE_FILE_NODES, false, &b->gen, err);
    if (spm) {
        b->llama = true;
        b->pre = "default";
        b->add_space_prefix = b->sm.add_dummy_prefix && !no_prefix;
        if (s == MQ_OK) s = read_spm_tokens(b, config_vocab_size, err);
        if (s == MQ_OK) s = check_byte_tokens(b, b->p_model, "llama.cpp's SPM tokenizer falls back to bytes", err);
    } else {
        if (s == MQ_OK) s = read_tokens(b, config_vocab_size, err);
        if (s == MQ_OK) s = read_merges(b, err);
        if (s == MQ_OK) s = classify(b, err); /* a tokenizer.json states its own prefix */
    }
    if (s == MQ_OK) s = read_specials(b, err);
    if (s == MQ_OK) s = read_flags(b, err);
    if (s == MQ_OK) s = read_jinja(b, err);
    if (s == MQ_OK) s = emit(b, &tmp, err);
    if (s == MQ_OK) s = replace_tokenizer_keys(out, &tmp, err);
    mq_meta_free(&tmp);
    for (size_t i = 0; i < b->n_owned; i++) free(b->owned[i]);
    free(b->owned);
    free(b->merge_s);
    free(b->merge_len);
    free(b->slot);
    free(b->t);
    free(b->jinja);
    mq_spm_free(&b->sm);
    cJSON_Delete(b->tok);
    cJSON_Delete(b->tcfg);
    cJSON_Delete(b->gen);
    cJSON_Delete(b->added);
    free(b);
    return s;
}

enum mq_status mq_gguf_vocab_from_hf_config(const char *model_dir, const cJSON *config, uint64_t config_vocab_size,
                                            struct mq_meta *out, struct mq_error *err)
{
    return vocab_run(model_dir, config, config_vocab_size, false, false, out, err);
}

enum mq_status mq_gguf_vocab_from_spm_config(const char *model_dir, const cJSON *config, uint64_t config_vocab_size,
                                             struct mq_meta *out, struct mq_error *err)
{
    return vocab_run(model_dir, config, config_vocab_size, true, false, out, err);
}

enum mq_status mq_gguf_vocab_from_folder(const char *model_dir, const cJSON *config, uint64_t config_vocab_size,
                                         enum mq_vocab_rule rule, struct mq_meta *out, struct mq_error *err)
{
    char p_model[4200], p_json[4200];
    MQ_TRY(make_path(p_model, sizeof p_model, model_dir, "tokenizer.model", err));
    MQ_TRY(make_path(p_json, sizeof p_json, model_dir, "tokenizer.json", err));
    bool have_model = !file_absent(p_model), have_json = !file_absent(p_json);
    bool no_prefix = rule == MQ_VOCAB_GEMMA;
    if (have_model && rule != MQ_VOCAB_JSON_ONLY)
        return vocab_run(model_dir, config, config_vocab_size, true, no_prefix, out, err);
    if (have_json) return vocab_run(model_dir, config, config_vocab_size, false, false, out, err);
    if (have_model)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-missing",
                       "%s: no tokenizer.json, and llama.cpp's converter reads this architecture's vocabulary from "
                       "tokenizer.json only (not tokenizer.model); --no-vocab writes a GGUF without a tokenizer",
                       model_dir);
    return MQ_FAIL(err, MQ_E_UNSUPPORTED, "tokenizer-missing",
                   "%s: no tokenizer.json or tokenizer.model, so the GGUF could not tokenize text; --no-vocab writes "
                   "one with token ids only (tokenizer.ggml.model \"none\")", model_dir);
}

enum mq_status mq_gguf_vocab_from_hf(const char *model_dir, uint64_t config_vocab_size, struct mq_meta *out,
                                     struct mq_error *err)
{
    char path[4200];
    MQ_TRY(make_path(path, sizeof path, model_dir, "config.json", err));
    cJSON *config = NULL;
    if (!file_absent(path)) MQ_TRY(mq_config_read_json(path, &config, NULL, err));
    enum mq_status s = mq_gguf_vocab_from_hf_config(model_dir, config, config_vocab_size, out, err);
    cJSON_Delete(config);
    return s;
}
