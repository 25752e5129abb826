/*
** test_spm_vocab.c - SentencePiece tokenizer.model vocabularies (formats/spm_model.c,
** gguf_vocab.c) and the tokenizer rules of `modelq convert` for GGUF.
**
** Fixtures come from the built tool $MODELQ_BUILD_DIR/mkspm (tools/mkspm.c): a SentencePiece BPE
** model learned from a small corpus, written as real protobuf bytes (tokenizer.model) and,
** independently, as the tokenizer.json transformers' LlamaConverter / GemmaConverter makes of it
** (merges derived from the piece scores), plus pieces.txt (type, score, text of every piece as
** the tool wrote them). So two encodings of one vocabulary:
**
**   llama.cpp (libllama, reading the GGUF modelq writes from tokenizer.model)
**   == the Hugging Face tokenizers library (tools/interop-tokenizer/encode.mjs, tokenizer.json)
**
** on the shared texts (tests/helpers/vocab_compare.h) plus each style's special-token texts,
** with and without special tokens, for the Llama style (add_dummy_prefix, added_tokens.json,
** added_tokens_decoder) through `modelq convert` end to end, and the Gemma style; also both
** styles' tokenizer.json alone (byte-fallback BPE; Gemma's Replace + Split form). The GGUF's
** tokens/scores/types are read back with @huggingface/gguf (tests/helpers/gguf_dump.h) and
** compared with pieces.txt and the converter's rules written out here. Negative controls: a
** wrong add_space_prefix and flat scores give other ids. Hostile tokenizer.model files (every
** truncation, a bit flip in every byte, crafted fields) never crash and are either refused with
** one line naming the file or read exactly as a second, minimal protobuf decoder in this file
** reads them. A folder without a tokenizer is refused (exit 3, nothing written); --no-vocab.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_dump.h"
#include "gguf_vocab.h"
#include "modelq/meta.h"
#include "run_cmd.h"
#include "spm_model.h"
#include "stwrite.h"
#include "vocab_compare.h"

#define SPIECE "\xe2\x96\x81"

static const char *const llama_special[] = {
    "<s>Hello world</s>",
    "text before </s> and after",
    "<s><s>twice",
    "user-defined<sep>token <sep> with spaces",
    "a control-looking<|sep|>added token <|sep|>",
    "<unk> is a control text too",
};
static const char *const gemma_special[] = {
    "<bos>Hello world<eos>",
    "<start_of_turn>user\nWhy do you stay?<end_of_turn>\n<start_of_turn>model\n",
    "text before <eos> and after",
    "<pad><unk> controls",
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixtures ------------------------------------------------------------------------------ */

struct piece {
    int type;
    float score;
    char text[256];
};

struct fixture {
    char *dir;
    struct piece p[2048];
    uint32_t n;
};

/* mkspm [--gemma] into a fresh folder; pieces.txt parsed into f->p. */
static void make_fixture(struct fixture *f, bool gemma)
{
    const char *b = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(b, "MODELQ_BUILD_DIR is not set (run through ctest)");
    f->dir = make_temp_dir(gemma ? "spm-gemma" : "spm-llama");
    run_shell("'%s/mkspm' %s'%s' >/dev/null", b, gemma ? "--gemma " : "", f->dir);
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/pieces.txt", f->dir);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "%s", path);
    f->n = 0;
    while (fgets(line, sizeof line, in)) {
        cr_assert_lt(f->n, N_OF(f->p));
        struct piece *p = &f->p[f->n++];
        char *end;
        p->type = (int)strtol(line, &end, 10);
        p->score = (float)strtod(end, &end);
        const char *hex = end + 1;
        size_t k = 0;
        for (; hex[2 * k] && hex[2 * k] != '\n'; k++) {
            unsigned v;
            cr_assert_eq(sscanf(hex + 2 * k, "%2x", &v), 1, "bad pieces.txt line %s", line);
            p->text[k] = (char)v;
        }
        p->text[k] = '\0';
    }
    fclose(in);
    cr_assert_gt(f->n, 300u, "mkspm wrote only %u pieces", f->n);
}

static void drop_fixture(struct fixture *f)
{
    remove_tree(f->dir);
    free(f->dir);
}

static uint8_t *read_model(const char *dir, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    uint8_t *buf = read_file_all(path, len);
    cr_assert_not_null(buf, "%s", path);
    return buf;
}

static void write_bytes(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* tokenizer.model with `extra` protobuf bytes appended: an embedded message given again is
** merged into the first, so this sets single fields of trainer_spec / normalizer_spec. */
static void append_to_model(const char *dir, const uint8_t *extra, size_t n)
{
    size_t len;
    uint8_t *buf = read_model(dir, &len);
    uint8_t *all = malloc(len + n);
    cr_assert_not_null(all);
    memcpy(all, buf, len);
    memcpy(all + len, extra, n);
    write_bytes(dir, "tokenizer.model", all, len + n);
    free(all);
    free(buf);
}

/* The vocabulary of folder `dir` by `rule` as a vocab-only GGUF (llama hyper-parameters added). */
static void vocab_gguf(const char *dir, uint64_t vocab_size, enum mq_vocab_rule rule, const char *gguf,
                       struct mq_meta *m)
{
    struct mq_error err;
    mq_error_clear(&err);
    mq_meta_init(m);
    enum mq_status s = mq_gguf_vocab_from_folder(dir, NULL, vocab_size, rule, m, &err);
    cr_assert_eq(s, MQ_OK, "mq_gguf_vocab_from_folder(%s): %s", dir, err.msg);
    vc_add_vocab_only_hparams(m);
    vc_write_gguf(gguf, m);
}

static enum mq_status vocab_fails(const char *dir, uint64_t vocab_size, enum mq_vocab_rule rule, struct mq_error *err)
{
    struct mq_meta m;
    mq_meta_init(&m);
    mq_error_clear(err);
    enum mq_status s = mq_gguf_vocab_from_folder(dir, NULL, vocab_size, rule, &m, err);
    mq_meta_free(&m);
    cr_assert_neq(s, MQ_OK, "%s was converted, expected a refusal", dir);
    cr_assert_null(strchr(err->msg, '\n'), "not one line: %s", err->msg);
    return s;
}

/* ---- what the converter writes (convert_hf_to_gguf.py _create_vocab_sentencepiece) ---------- */

struct want {
    const char *text;
    float score;
    int type;
};

/*
** Pieces in order with their scores; SentencePiece types as GGUF types (USER_DEFINED written as
** NORMAL); then every added_tokens.json entry (user-defined, -1000) and added_tokens_decoder entry
** (control when special or "<|...|>"-like, else user-defined; -1000) over them; "[PAD<id>]"
** unused -10000 for ids nothing names. mkspm's tokenizer_config lists the UNKNOWN and CONTROL
** pieces (special) and, Llama style, "<|sep|>" and "<sep>" (special false) after the pieces.
*/
static void expected_vocab(const struct fixture *f, bool gemma, uint32_t vocab_size, struct want *w, char (*pad)[24])
{
    for (uint32_t i = 0; i < vocab_size; i++) {
        snprintf(pad[i], 24, "[PAD%u]", i);
        w[i] = (struct want){pad[i], -10000.0f, 5};
    }
    for (uint32_t i = 0; i < f->n; i++) {
        const struct piece *p = &f->p[i];
        bool listed = p->type == 2 || p->type == 3;
        w[i] = (struct want){p->text, listed ? -1000.0f : p->score, listed ? 3 : p->type == 4 ? 1 : p->type};
    }
    if (!gemma) {
        w[f->n] = (struct want){"<|sep|>", -1000.0f, 3};
        w[f->n + 1] = (struct want){"<sep>", -1000.0f, 4};
    }
}

/* The GGUF read by @huggingface/gguf: tokenizer keys as the converter writes them. */
static void check_gguf_vocab(const char *gguf, const struct fixture *f, bool gemma, uint32_t vocab_size,
                             bool space_prefix)
{
    struct gguf_view v;
    char why[2048];
    bool ok = gguf_view_from_js(&v, gguf, why, sizeof why);
    gguf_view_need_tools(ok, why);
    struct want *w = calloc(vocab_size, sizeof *w);
    char(*pad)[24] = calloc(vocab_size, sizeof *pad);
    cr_assert(w && pad);
    expected_vocab(f, gemma, vocab_size, w, pad);
    cr_assert(gguf_view_expect_str(&v, "tokenizer.ggml.model", "llama", why, sizeof why), "%s", why);
    cr_assert(gguf_view_expect_str(&v, "tokenizer.ggml.pre", "default", why, sizeof why), "%s", why);
    cr_assert(gguf_view_expect_array(&v, "tokenizer.ggml.tokens", GGREF_GGUF_STRING, vocab_size, why, sizeof why),
              "%s", why);
    cr_assert(gguf_view_expect_array(&v, "tokenizer.ggml.scores", GGREF_GGUF_FLOAT32, vocab_size, why, sizeof why),
              "%s", why);
    cr_assert(gguf_view_expect_array(&v, "tokenizer.ggml.token_type", GGREF_GGUF_INT32, vocab_size, why, sizeof why),
              "%s", why);
    cr_assert_null(gguf_view_find_kv(&v, "tokenizer.ggml.merges"), "a tokenizer.model vocabulary has no merges");
    const struct gguf_view_kv *tok = gguf_view_find_kv(&v, "tokenizer.ggml.tokens"),
                              *sc = gguf_view_find_kv(&v, "tokenizer.ggml.scores"),
                              *tt = gguf_view_find_kv(&v, "tokenizer.ggml.token_type");
    for (uint32_t i = 0; i < vocab_size; i++) {
        cr_assert_str_eq(tok->arr[i].s, w[i].text, "token %u", i);
        cr_assert_eq((float)sc->arr[i].f, w[i].score, "token %u \"%s\": score %g, want %g", i, w[i].text,
                     sc->arr[i].f, (double)w[i].score);
        cr_assert_eq(tt->arr[i].i, w[i].type, "token %u \"%s\": type %" PRId64 ", want %d", i, w[i].text,
                     tt->arr[i].i, w[i].type);
    }
    cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.add_space_prefix", GGREF_GGUF_BOOL, space_prefix, why,
                                    sizeof why), "%s", why);
    cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.bos_token_id", GGREF_GGUF_UINT32, gemma ? 2 : 1, why,
                                    sizeof why), "%s", why);
    cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.eos_token_id", GGREF_GGUF_UINT32, gemma ? 1 : 2, why,
                                    sizeof why), "%s", why);
    cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.unknown_token_id", GGREF_GGUF_UINT32, gemma ? 3 : 0, why,
                                    sizeof why), "%s", why);
    cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.add_bos_token", GGREF_GGUF_BOOL, 1, why, sizeof why), "%s",
              why);
    if (gemma)
        cr_assert(gguf_view_expect_uint(&v, "tokenizer.ggml.padding_token_id", GGREF_GGUF_UINT32, 0, why, sizeof why),
                  "%s", why);
    free(w);
    free(pad);
    gguf_view_free(&v);
}

/* ---- llama.cpp == tokenizers.js ------------------------------------------------------------ */

/* Llama style through `modelq convert` (LlamaForCausalLM: tokenizer.model before tokenizer.json). */
Test(spm_vocab, llama_style_tokenizer_model_through_convert, .timeout = 300)
{
    vc_need_interop();
    struct fixture f;
    make_fixture(&f, false);
    const uint32_t vocab = f.n + 2 + 3; /* <|sep|>, <sep>, three [PAD] */
    struct stw_llama spec = {1, 64, 128, vocab, 4, 4, "F16", 1, 0};
    cr_assert_eq(stw_write_llama_sparse(f.dir, &spec), 0);
    char *out = make_temp_dir("spm-out");
    struct cmd_result r = run_modelq("convert '%s' -o '%s/m.gguf' --type f16 --quiet", f.dir, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char gguf[4096];
    snprintf(gguf, sizeof gguf, "%s/m.gguf", out);
    check_gguf_vocab(gguf, &f, false, vocab, true);

    struct vc_texts t = vc_texts_for(llama_special, N_OF(llama_special));
    size_t n_ids;
    vc_compare(gguf, f.dir, &t, true, &n_ids);
    fprintf(stderr, "mkspm Llama style, tokenizer.model -> modelq convert: llama.cpp and tokenizers.js agree on %zu "
                    "texts x {without, with} special tokens (%zu ids)\n", t.n, n_ids);
    remove_tree(out);
    free(out);
    drop_fixture(&f);
}

Test(spm_vocab, gemma_style_tokenizer_model, .timeout = 300)
{
    vc_need_interop();
    struct fixture f;
    make_fixture(&f, true);
    char *tmp = make_temp_dir("spm-gguf");
    char gguf[4096];
    snprintf(gguf, sizeof gguf, "%s/v.gguf", tmp);
    struct mq_meta m;
    vocab_gguf(f.dir, f.n + 2, MQ_VOCAB_GEMMA, gguf, &m);
    mq_meta_free(&m);
    check_gguf_vocab(gguf, &f, true, f.n + 2, false);
    struct vc_texts t = vc_texts_for(gemma_special, N_OF(gemma_special));
    size_t n_ids;
    vc_compare(gguf, f.dir, &t, true, &n_ids);
    fprintf(stderr, "mkspm Gemma style, tokenizer.model: llama.cpp and tokenizers.js agree on %zu texts x {without, "
                    "with} special tokens (%zu ids)\n", t.n, n_ids);

    /* the Gemma rule writes add_space_prefix false even when the model says add_dummy_prefix */
    static const uint8_t dummy_prefix_on[] = {0x1a, 0x02, 0x18, 0x01}; /* normalizer_spec { add_dummy_prefix: 1 } */
    append_to_model(f.dir, dummy_prefix_on, sizeof dummy_prefix_on);
    uint64_t prefix;
    vocab_gguf(f.dir, f.n + 2, MQ_VOCAB_GEMMA, gguf, &m);
    cr_assert(mq_meta_get_uint(&m, "tokenizer.ggml.add_space_prefix", &prefix) && prefix == 0);
    mq_meta_free(&m);
    vc_compare(gguf, f.dir, &t, true, NULL);
    vocab_gguf(f.dir, f.n + 2, MQ_VOCAB_MODEL_FIRST, gguf, &m);
    cr_assert(mq_meta_get_uint(&m, "tokenizer.ggml.add_space_prefix", &prefix) && prefix == 1);
    mq_meta_free(&m);
    remove_tree(tmp);
    free(tmp);
    drop_fixture(&f);
}

/* The tokenizer.json files alone: byte-fallback BPE (Llama) and Gemma's Replace + Split form. */
Test(spm_vocab, tokenizer_json_alone_llama_and_gemma_forms, .timeout = 300)
{
    vc_need_interop();
    for (int gemma = 0; gemma < 2; gemma++) {
        struct fixture f;
        make_fixture(&f, gemma);
        char p[4096];
        snprintf(p, sizeof p, "%s/tokenizer.model", f.dir);
        cr_assert_eq(unlink(p), 0);
        snprintf(p, sizeof p, "%s/added_tokens.json", f.dir);
        unlink(p);
        char gguf[4096];
        snprintf(gguf, sizeof gguf, "%s/v.gguf", f.dir);
        struct mq_meta m;
        uint32_t vocab = f.n + (gemma ? 0 : 2);
        vocab_gguf(f.dir, vocab, MQ_VOCAB_MODEL_FIRST, gguf, &m);
        uint64_t prefix;
        cr_assert(mq_meta_get_uint(&m, "tokenizer.ggml.add_space_prefix", &prefix) && prefix == (uint64_t)!gemma);
        cr_assert_not_null(mq_meta_get(&m, "tokenizer.ggml.merges"), "a tokenizer.json vocabulary keeps its merges");
        mq_meta_free(&m);
        struct vc_texts t = gemma ? vc_texts_for(gemma_special, N_OF(gemma_special))
                                  : vc_texts_for(llama_special, N_OF(llama_special));
        size_t n_ids;
        vc_compare(gguf, f.dir, &t, true, &n_ids);
        fprintf(stderr, "mkspm %s tokenizer.json alone: llama.cpp and tokenizers.js agree on %zu texts x {without, "
                        "with} special tokens (%zu ids)\n", gemma ? "Gemma (Replace + Split)" : "Llama (byte fallback)",
                t.n, n_ids);
        drop_fixture(&f);
    }
}

/* ---- negative controls --------------------------------------------------------------------- */

static void set_bool(struct mq_meta *m, const char *key, bool v)
{
    struct mq_error err;
    cr_assert_eq(mq_meta_set_bool(m, key, v, &err), MQ_OK, "%s", err.msg);
}

Test(spm_vocab, wrong_prefix_or_flat_scores_give_other_ids, .timeout = 300)
{
    vc_need_interop();
    for (int gemma = 0; gemma < 2; gemma++) {
        struct fixture f;
        make_fixture(&f, gemma);
        char gguf[4096];
        snprintf(gguf, sizeof gguf, "%s/v.gguf", f.dir);
        struct mq_meta m;
        vocab_gguf(f.dir, f.n + 2, gemma ? MQ_VOCAB_GEMMA : MQ_VOCAB_MODEL_FIRST, gguf, &m);
        struct vc_texts t = gemma ? vc_texts_for(gemma_special, N_OF(gemma_special))
                                  : vc_texts_for(llama_special, N_OF(llama_special));
        set_bool(&m, "tokenizer.ggml.add_space_prefix", gemma);
        vc_write_gguf(gguf, &m);
        size_t d1 = vc_compare(gguf, f.dir, &t, false, NULL);
        set_bool(&m, "tokenizer.ggml.add_space_prefix", !gemma);
        struct mq_meta_value *sc = (struct mq_meta_value *)mq_meta_get(&m, "tokenizer.ggml.scores");
        cr_assert_not_null(sc);
        for (uint64_t i = 0; i < sc->count; i++) ((float *)sc->arr)[i] = 0.0f;
        vc_write_gguf(gguf, &m);
        size_t d2 = vc_compare(gguf, f.dir, &t, false, NULL);
        fprintf(stderr, "%s: add_space_prefix %s differs on %zu of %zu tokenizations, flat scores on %zu\n",
                gemma ? "Gemma" : "Llama", gemma ? "true" : "false", d1, 2 * t.n, d2);
        cr_assert_geq(d1, t.n, "a wrong add_space_prefix changed only %zu tokenizations", d1);
        cr_assert_geq(d2, 5, "flat scores changed only %zu tokenizations", d2);
        mq_meta_free(&m);
        drop_fixture(&f);
    }
}

/* ---- hostile tokenizer.model --------------------------------------------------------------- */

/*
** A second reader of the pieces, as plain as protobuf allows: returns the piece count, or -1 for
** bytes that are not a well-formed message of that shape. Texts and scores go to txt/score.
*/
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 70; s += 7) {
        if (*i >= n) return -1;
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

static int skip_field(const uint8_t *p, size_t n, size_t *i, int wire)
{
    uint64_t v;
    if (wire == 0) return varint(p, n, i, &v);
    if (wire == 1 || wire == 5) return (*i += wire == 1 ? 8 : 4) <= n ? 0 : -1;
    if (wire != 2 || varint(p, n, i, &v) || v > n - *i) return -1;
    *i += v;
    return 0;
}

static long plain_pieces(const uint8_t *p, size_t n, char (*txt)[64], float *score, long cap)
{
    long count = 0;
    for (size_t i = 0; i < n;) {
        uint64_t key, len;
        if (varint(p, n, &i, &key)) return -1;
        if (key >> 3 != 1 || (key & 7) != 2) {
            if (skip_field(p, n, &i, (int)(key & 7))) return -1;
            continue;
        }
        if (varint(p, n, &i, &len) || len > n - i) return -1;
        size_t end = i + len;
        if (count < cap) {
            txt[count][0] = 0;
            score[count] = 0.0f;
        }
        while (i < end) {
            uint64_t k, l;
            if (varint(p, end, &i, &k)) return -1;
            if (k == (1 << 3 | 2)) {
                if (varint(p, end, &i, &l) || l > end - i) return -1;
                if (count < cap) snprintf(txt[count], 64, "%.*s", (int)(l < 63 ? l : 63), (const char *)p + i);
                i += l;
            } else if (k == (2 << 3 | 5)) {
                if (end - i < 4) return -1;
                uint32_t u = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
                if (count < cap) memcpy(&score[count], &u, 4);
                i += 4;
            } else if (skip_field(p, end, &i, (int)(k & 7))) {
                return -1;
            }
        }
        count++;
    }
    return count;
}

/* mq_spm_parse on `buf`: refused with one line naming the file, or read as plain_pieces reads it. */
static bool parse_checked(const uint8_t *buf, size_t len, const char *what)
{
    struct mq_spm_model m;
    struct mq_error err;
    mq_error_clear(&err);
    enum mq_status s = mq_spm_parse(buf, len, "tok/tokenizer.model", &m, &err);
    if (s != MQ_OK) {
        cr_assert(s == MQ_E_CORRUPT || s == MQ_E_LIMIT, "%s: status %d: %s", what, (int)s, err.msg);
        cr_assert(strncmp(err.msg, "tok/tokenizer.model: ", 21) == 0 && !strchr(err.msg, '\n'), "%s: %s", what,
                  err.msg);
        return false;
    }
    static char txt[2048][64];
    static float score[2048];
    long n = plain_pieces(buf, len, txt, score, 2048);
    cr_assert_eq(n, (long)m.n_pieces, "%s: accepted with %u pieces, the plain reader sees %ld", what, m.n_pieces, n);
    for (uint32_t i = 0; i < m.n_pieces && i < 2048; i++) {
        cr_assert(strncmp(m.pieces[i].text, txt[i], 63) == 0, "%s: piece %u \"%s\" vs \"%s\"", what, i,
                  m.pieces[i].text, txt[i]);
        cr_assert(memcmp(&m.pieces[i].score, &score[i], 4) == 0, "%s: piece %u score", what, i);
    }
    mq_spm_free(&m);
    return true;
}

Test(spm_vocab, hostile_tokenizer_model_bytes, .timeout = 600)
{
    struct fixture f;
    make_fixture(&f, false);
    size_t len;
    uint8_t *buf = read_model(f.dir, &len);
    cr_assert(parse_checked(buf, len, "the fixture"));
    uint8_t *mut = malloc(len + 64);
    cr_assert_not_null(mut);
    size_t accepted = 0, refused = 0;
    char what[64];
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        memcpy(mut, buf, cut);
        snprintf(what, sizeof what, "cut at %zu", cut);
        parse_checked(mut, cut, what) ? accepted++ : refused++;
    }
    for (size_t i = 0; i < len; i++) { /* a bit flip in every byte */
        memcpy(mut, buf, len);
        mut[i] ^= (uint8_t)(1u << (i % 8));
        snprintf(what, sizeof what, "bit %zu of byte %zu", i % 8, i);
        parse_checked(mut, len, what) ? accepted++ : refused++;
    }
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t n;
    } crafted[] = {
        {"length beyond the end", {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
        {"an 11-byte varint", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12},
        {"a varint over 64 bits", {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 11},
        {"a group (wire type 3)", {0x0b}, 1},
        {"field number 0", {0x02, 0x00}, 2},
        {"a piece without text", {0x0a, 0x05, 0x15, 0x00, 0x00, 0x80, 0x3f}, 7},
        {"a piece type 7", {0x0a, 0x05, 0x0a, 0x01, 'q', 0x18, 0x07}, 7},
        {"a NaN score", {0x0a, 0x08, 0x0a, 0x01, 'q', 0x15, 0x00, 0x00, 0xc0, 0x7f}, 10},
        {"a score as a varint", {0x0a, 0x05, 0x0a, 0x01, 'q', 0x10, 0x01}, 7},
        {"a second UNKNOWN piece", {0x0a, 0x05, 0x0a, 0x01, 'q', 0x18, 0x02}, 7},
        {"unk_id beyond the pieces", {0x12, 0x04, 0xc0, 0x02, 0xff, 0x0f}, 6},
        {"invalid UTF-8 text", {0x0a, 0x03, 0x0a, 0x01, 0xff}, 5},
        {"a BYTE piece not named <0xHH>", {0x0a, 0x05, 0x0a, 0x01, 'q', 0x18, 0x06}, 7},
    };
    for (size_t k = 0; k < N_OF(crafted); k++) {
        memcpy(mut, buf, len);
        memcpy(mut + len, crafted[k].bytes, crafted[k].n);
        cr_assert(!parse_checked(mut, len + crafted[k].n, crafted[k].what), "%s was accepted", crafted[k].what);
        refused++;
    }
    fprintf(stderr, "hostile tokenizer.model: %zu mutants refused with one line, %zu accepted and read as the plain "
                    "reader reads them\n", refused, accepted);

    /* through the CLI: exit 3, one line naming the file, nothing written */
    struct stw_llama spec = {1, 64, 128, f.n + 2, 4, 4, "F16", 1, 0};
    cr_assert_eq(stw_write_llama_sparse(f.dir, &spec), 0);
    static const size_t cuts[] = {1, 100, 3000};
    for (size_t k = 0; k < N_OF(cuts); k++) {
        write_bytes(f.dir, "tokenizer.model", buf, cuts[k]);
        struct cmd_result r = run_modelq("convert '%s' -o '%s/o.gguf' --type f16 --quiet", f.dir, f.dir);
        cr_assert_eq(r.code, 3, "cut at %zu: exit %d: %s", cuts[k], r.code, r.err);
        cr_assert_not_null(strstr(r.err, "/tokenizer.model: "), "%s", r.err);
        cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "not one line: %s", r.err);
        char o[4096];
        snprintf(o, sizeof o, "%s/o.gguf", f.dir);
        cr_assert(!file_exists(o), "a GGUF was written");
        cmd_result_free(&r);
    }
    free(mut);
    free(buf);
    drop_fixture(&f);
}

/* What llama.cpp's SPM tokenizer cannot reproduce is refused, naming the field. */
Test(spm_vocab, unsupported_models_are_refused_with_the_reason)
{
    static const struct {
        uint8_t bytes[8];
        size_t n;
        const char *msg;
    } cases[] = {
        {{0x12, 0x02, 0x18, 0x01}, 4, "trainer_spec.model_type is UNIGRAM (1)"},
        {{0x12, 0x02, 0x18, 0x03}, 4, "trainer_spec.model_type is WORD (3)"},
        {{0x12, 0x02, 0x18, 0x04}, 4, "trainer_spec.model_type is CHAR (4)"},
        {{0x1a, 0x02, 0x20, 0x01}, 4, "normalizer_spec.remove_extra_whitespaces is true"},
        {{0x1a, 0x02, 0x28, 0x00}, 4, "normalizer_spec.escape_whitespaces is false"},
        {{0x12, 0x03, 0xc0, 0x01, 0x01}, 5, "trainer_spec.treat_whitespace_as_suffix is true"}, /* field 24 */
        {{0x1a, 0x03, 0x12, 0x01, 0x00}, 5, "1-byte normalization map"},
    };
    struct fixture f;
    struct mq_error err;
    for (size_t k = 0; k < N_OF(cases); k++) {
        make_fixture(&f, false);
        append_to_model(f.dir, cases[k].bytes, cases[k].n);
        cr_assert_eq(vocab_fails(f.dir, f.n + 2, MQ_VOCAB_MODEL_FIRST, &err), MQ_E_UNSUPPORTED, "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, cases[k].msg), "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, "/tokenizer.model: "), "%s", err.msg);
        drop_fixture(&f);
    }

    /* more pieces than the model's vocab_size */
    make_fixture(&f, false);
    cr_assert_eq(vocab_fails(f.dir, f.n - 1, MQ_VOCAB_MODEL_FIRST, &err), MQ_E_CORRUPT, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "more than the model's vocab_size"), "%s", err.msg);
    drop_fixture(&f);
}

/* ---- which file, and no tokenizer at all ---------------------------------------------------- */

Test(spm_vocab, precedence_and_missing_tokenizer)
{
    struct fixture f;
    make_fixture(&f, false);
    char p[4096];
    struct mq_meta m;
    struct mq_error err;
    /* both files: tokenizer.model first (no merges), tokenizer.json for a JSON-only family */
    mq_meta_init(&m);
    cr_assert_eq(mq_gguf_vocab_from_folder(f.dir, NULL, f.n + 2, MQ_VOCAB_MODEL_FIRST, &m, &err), MQ_OK, "%s", err.msg);
    cr_assert_null(mq_meta_get(&m, "tokenizer.ggml.merges"));
    mq_meta_free(&m);
    mq_meta_init(&m);
    cr_assert_eq(mq_gguf_vocab_from_folder(f.dir, NULL, f.n + 2, MQ_VOCAB_JSON_ONLY, &m, &err), MQ_OK, "%s", err.msg);
    cr_assert_not_null(mq_meta_get(&m, "tokenizer.ggml.merges"));
    mq_meta_free(&m);
    /* only tokenizer.model, for a family whose converter reads tokenizer.json only */
    snprintf(p, sizeof p, "%s/tokenizer.json", f.dir);
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(vocab_fails(f.dir, f.n + 2, MQ_VOCAB_JSON_ONLY, &err), MQ_E_UNSUPPORTED);
    cr_assert_not_null(strstr(err.msg, "reads this architecture's vocabulary from tokenizer.json only"), "%s", err.msg);
    /* neither */
    snprintf(p, sizeof p, "%s/tokenizer.model", f.dir);
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(vocab_fails(f.dir, f.n + 2, MQ_VOCAB_MODEL_FIRST, &err), MQ_E_UNSUPPORTED);
    cr_assert_not_null(strstr(err.msg, "no tokenizer.json or tokenizer.model"), "%s", err.msg);

    /* the CLI: refused (exit 3, nothing written) without --no-vocab; "none" with it */
    struct stw_llama spec = {1, 64, 128, f.n + 2, 4, 4, "F16", 1, 0};
    cr_assert_eq(stw_write_llama_sparse(f.dir, &spec), 0);
    char *out = make_temp_dir("spm-out");
    struct cmd_result r = run_modelq("convert '%s' -o '%s/o.gguf' --type q8_0", f.dir, out);
    cr_assert_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "no tokenizer.json or tokenizer.model, so the GGUF could not tokenize text; "
                                     "--no-vocab writes one with token ids only"), "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "not one line: %s", r.err);
    cr_assert_eq(count_entries_containing(out, "gguf"), 0, "something was written in %s", out);
    cmd_result_free(&r);
    r = run_modelq("convert '%s' -o '%s/o.gguf' --type q8_0 --no-vocab --quiet", f.dir, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    struct gguf_view v;
    char why[1024], o[4096];
    snprintf(o, sizeof o, "%s/o.gguf", out);
    bool ok = gguf_view_from_js(&v, o, why, sizeof why);
    gguf_view_need_tools(ok, why);
    cr_assert(gguf_view_expect_str(&v, "tokenizer.ggml.model", "none", why, sizeof why), "%s", why);
    cr_assert(gguf_view_expect_uint(&v, "llama.vocab_size", GGREF_GGUF_UINT32, f.n + 2, why, sizeof why), "%s", why);
    cr_assert_null(gguf_view_find_kv(&v, "tokenizer.ggml.tokens"));
    gguf_view_free(&v);
    r = run_modelq("convert --help");
    cr_assert_not_null(strstr(r.out, "--no-vocab"), "%s", r.out);
    cmd_result_free(&r);
    remove_tree(out);
    free(out);
    drop_fixture(&f);
}
