/*
** mkspm.c - writes a small SentencePiece BPE tokenizer as a real tokenizer.model (protobuf bytes)
** and, independently, the tokenizer.json transformers' converter would make of it, for
** tests/test_spm_vocab.c: llama.cpp reading modelq's GGUF of the .model must tokenize as the
** Hugging Face tokenizers library does with the .json.
**
** Usage: mkspm [--gemma] OUTDIR
**   writes OUTDIR/tokenizer.model, tokenizer.json, tokenizer_config.json (and added_tokens.json
**   in the Llama style), plus OUTDIR/pieces.txt: one line per piece, "<type> <score as %a> <hex
**   of the text>", the vocabulary as this tool wrote it (the test's independent expectation).
**
** Llama style (transformers LlamaConverter, legacy, as Llama 2 and Mistral ship it):
**   pieces 0 <unk> UNKNOWN, 1 <s> CONTROL, 2 </s> CONTROL, 3..258 <0x00>..<0xFF> BYTE, learned
**   pieces, then the alphabet; normalizer add_dummy_prefix = true; tokenizer.json: normalizer
**   Sequence[Prepend("▁"), Replace(" " -> "▁")], merges as "left right" strings; added tokens
**   "<|sep|>" (tokenizer_config added_tokens_decoder, special false but "<|...|>", so a control
**   token for llama.cpp's converter) and "<sep>" (also in added_tokens.json: user-defined).
** Gemma style (transformers GemmaConverter): pieces 0 <pad>, 1 <eos>, 2 <bos> CONTROL, 3 <unk>
**   UNKNOWN, 4 <start_of_turn>, 5 <end_of_turn> CONTROL, then bytes, learned pieces, alphabet;
**   add_dummy_prefix = false; tokenizer.json: normalizer Replace(" " -> "▁"), pre_tokenizer
**   Split(" ", merged_with_previous), "\t" in place of <0x09> (as Gemma's converter writes it),
**   merges as ["left", "right"] pairs.
** Both: trainer_spec model_type BPE, byte_fallback, remove_extra_whitespaces false, identity
** normalizer with no charsmap - what Llama 2, Mistral, Gemma and Phi-3 models declare.
**
** Learning (SentencePiece BPE): the corpus is cut into words at spaces, a space becoming "▁" at
** the front of the next word (and at the front of every line in the Llama style); starting from
** characters, the adjacent pair with the highest count (ties: the smaller left then right symbol
** number) is merged N_MERGES times; learned piece i gets score -i, then the alphabet by frequency
** (ties: code point) continues the scores downwards - every multi-character score distinct.
**
** tokenizer.json merges (transformers SentencePieceExtractor): for every piece, in id order,
** every split into two pieces of the vocabulary, ordered by (left id, right id); then all of them
** stably sorted by the piece's score, highest first.
**
** Deterministic: the output depends on nothing but this file.
*/
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"

#define SPIECE "\xe2\x96\x81"
enum { N_MERGES = 220, MAX_SYM = 1024, MAX_WORDS = 1024, MAX_WLEN = 64, MAX_PIECES = 2048 };
enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

/* Text the pieces are learned from: prose, code and numbers; accented Latin letters are part
** of the alphabet, other scripts, tabs and emoji reach the model as bytes. */
static const char corpus[] =
    "the lighthouse keeper climbs the stairs every evening and lights the lamp for the ships\n"
    "the ships pass the rocks at night and the keeper writes their names in the book\n"
    "in the morning the keeper sleeps and the gulls walk on the warm stones of the harbor\n"
    "Her daughter Zo\xc3\xab paints the boats; the caf\xc3\xa9 by the pier serves cr\xc3\xaapes and th\xc3\xa9.\n"
    "for (int i = 0; i < count; i++) { total += values[i] * 2; }\n"
    "if (total > limit) { return error; } else { return total; }\n"
    "def keeper(ships): return [ship.name for ship in ships if ship.passed]\n"
    "In 1987 the lamp was replaced, and in 2024 the old lens went to the museum.\n"
    "The museum opens at 10:30 and closes at 17:45; tickets cost 12.50 euros.\n"
    "\"Why do you stay?\" asked a visitor. \"Because the ships still pass,\" said the keeper.\n"
    "Numbers: 100 200 300 400 500 and 3.14159 and 2.71828 and 1,000,000.\n"
    "MIXED case WORDS and Mixed Case Words and mixed case words.\n";

struct sym {
    char s[MAX_WLEN * 4];
    size_t len;
    uint32_t count, cp; /* alphabet: occurrences, code point */
    int learned;        /* order learned, -1 for characters */
};

static struct sym syms[MAX_SYM];
static int n_syms;
static int words[MAX_WORDS][MAX_WLEN], wlen[MAX_WORDS], wcount[MAX_WORDS], n_words;
static int learned[N_MERGES], n_learned;

static int find_sym(const char *s, size_t len)
{
    for (int i = 0; i < n_syms; i++)
        if (syms[i].len == len && memcmp(syms[i].s, s, len) == 0) return i;
    return -1;
}

static int add_sym(const char *s, size_t len)
{
    int i = find_sym(s, len);
    if (i >= 0) return i;
    if (n_syms == MAX_SYM || len >= sizeof syms[0].s) dev_die("too many symbols");
    memcpy(syms[n_syms].s, s, len);
    syms[n_syms].len = len;
    syms[n_syms].learned = -1;
    return n_syms++;
}

/* One word (its characters as symbols), counted once more when already seen. */
static void add_word(const char *w, size_t len)
{
    int ids[MAX_WLEN], n = 0;
    for (size_t i = 0; i < len;) {
        size_t k = dev_utf8_len((unsigned char)w[i]);
        if (n == MAX_WLEN) dev_die("word too long");
        ids[n] = add_sym(w + i, k);
        syms[ids[n]].count++;
        syms[ids[n]].cp = dev_utf8_cp(w + i);
        n++;
        i += k;
    }
    for (int j = 0; j < n_words; j++)
        if (wlen[j] == n && memcmp(words[j], ids, (size_t)n * sizeof ids[0]) == 0) {
            wcount[j]++;
            return;
        }
    if (n_words == MAX_WORDS) dev_die("too many words");
    memcpy(words[n_words], ids, (size_t)n * sizeof ids[0]);
    wlen[n_words] = n;
    wcount[n_words++] = 1;
}

static void cut_words(bool dummy_prefix)
{
    const char *line = corpus;
    while (*line) {
        const char *end = strchr(line, '\n');
        char w[MAX_WLEN * 4];
        size_t wl = 0;
        if (dummy_prefix) {
            memcpy(w, SPIECE, 3);
            wl = 3;
        }
        for (const char *c = line; c < end; c++) {
            if (*c == ' ') {
                if (wl) add_word(w, wl);
                memcpy(w, SPIECE, 3);
                wl = 3;
            } else {
                if (wl + 1 >= sizeof w) dev_die("word too long");
                w[wl++] = *c;
            }
        }
        if (wl) add_word(w, wl);
        line = end + 1;
    }
}

static void learn(void)
{
    static uint32_t pair[MAX_SYM][MAX_SYM];
    for (n_learned = 0; n_learned < N_MERGES; n_learned++) {
        memset(pair, 0, sizeof pair);
        for (int w = 0; w < n_words; w++)
            for (int k = 0; k + 1 < wlen[w]; k++) pair[words[w][k]][words[w][k + 1]] += (uint32_t)wcount[w];
        int bl = -1, br = -1;
        uint32_t best = 1;
        for (int l = 0; l < n_syms; l++)
            for (int r = 0; r < n_syms; r++)
                if (pair[l][r] > best && syms[l].len + syms[r].len <= 24) {
                    best = pair[l][r];
                    bl = l;
                    br = r;
                }
        if (bl < 0) break;
        char cat[MAX_WLEN * 4];
        memcpy(cat, syms[bl].s, syms[bl].len);
        memcpy(cat + syms[bl].len, syms[br].s, syms[br].len);
        int before = n_syms, id = add_sym(cat, syms[bl].len + syms[br].len);
        if (id == before) {
            syms[id].learned = n_learned;
            learned[n_learned] = id;
        } else {
            n_learned--; /* the same text as an earlier piece: a merge, no new piece */
        }
        for (int w = 0; w < n_words; w++) {
            int o = 0;
            for (int k = 0; k < wlen[w]; k++) {
                if (k + 1 < wlen[w] && words[w][k] == bl && words[w][k + 1] == br) {
                    words[w][o++] = id;
                    k++;
                } else {
                    words[w][o++] = words[w][k];
                }
            }
            wlen[w] = o;
        }
    }
}

/* ---- the vocabulary ---------------------------------------------------------------------- */

struct piece {
    char s[MAX_WLEN * 4];
    size_t len;
    float score;
    int type;
};
static struct piece P[MAX_PIECES];
static int n_pieces;

static void put_piece(const char *s, size_t len, float score, int type)
{
    if (n_pieces == MAX_PIECES) dev_die("too many pieces");
    memcpy(P[n_pieces].s, s, len);
    P[n_pieces].len = len;
    P[n_pieces].score = score;
    P[n_pieces].type = type;
    n_pieces++;
}

static int cmp_alpha(const void *a, const void *b)
{
    const struct sym *x = &syms[*(const int *)a], *y = &syms[*(const int *)b];
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->cp < y->cp ? -1 : x->cp > y->cp;
}

static void build_vocab(bool gemma)
{
    static const char *const llama_sp[] = {"<unk>", "<s>", "</s>"};
    static const char *const gemma_sp[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"};
    const char *const *sp = gemma ? gemma_sp : llama_sp;
    int n_sp = gemma ? 6 : 3, unk = gemma ? 3 : 0;
    for (int i = 0; i < n_sp; i++) put_piece(sp[i], strlen(sp[i]), 0.0f, i == unk ? T_UNKNOWN : T_CONTROL);
    for (int b = 0; b < 256; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        put_piece(t, 6, 0.0f, T_BYTE);
    }
    for (int i = 0; i < n_learned; i++) put_piece(syms[learned[i]].s, syms[learned[i]].len, -(float)i, T_NORMAL);
    int alpha[MAX_SYM], n_alpha = 0;
    for (int i = 0; i < n_syms; i++)
        if (syms[i].learned < 0) alpha[n_alpha++] = i;
    qsort(alpha, (size_t)n_alpha, sizeof alpha[0], cmp_alpha);
    for (int k = 0; k < n_alpha; k++)
        put_piece(syms[alpha[k]].s, syms[alpha[k]].len, -(float)(n_learned + k), T_NORMAL);
}

/* ---- tokenizer.model --------------------------------------------------------------------- */

static void pb_varint(struct dev_buf *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        dev_buf_put(b, &c, 1);
    } while (v);
}
static void pb_key(struct dev_buf *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }
static void pb_bytes(struct dev_buf *b, unsigned field, const void *p, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    dev_buf_put(b, p, n);
}
static void pb_int(struct dev_buf *b, unsigned field, int64_t v) /* int32/enum/bool: sign-extended */
{
    pb_key(b, field, 0);
    pb_varint(b, (uint64_t)v);
}
static void pb_float(struct dev_buf *b, unsigned field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, 5);
    dev_buf_put(b, le, 4);
}

static void write_model(const char *dir, bool gemma)
{
    struct dev_buf m = {0}, sub = {0};
    for (int i = 0; i < n_pieces; i++) {
        sub.len = 0;
        pb_bytes(&sub, 1, P[i].s, P[i].len);
        pb_float(&sub, 2, P[i].score);
        if (P[i].type != T_NORMAL) pb_int(&sub, 3, P[i].type);
        pb_bytes(&m, 1, sub.p, sub.len);
    }
    sub.len = 0; /* TrainerSpec */
    pb_bytes(&sub, 2, "spm", 3);      /* model_prefix: skipped by readers */
    pb_int(&sub, 3, 2);               /* model_type BPE */
    pb_int(&sub, 4, n_pieces);        /* vocab_size */
    pb_float(&sub, 10, 1.0f);         /* character_coverage: a fixed32 to skip */
    pb_int(&sub, 35, 1);              /* byte_fallback */
    pb_int(&sub, 40, gemma ? 3 : 0);  /* unk_id */
    pb_int(&sub, 41, gemma ? 2 : 1);  /* bos_id */
    pb_int(&sub, 42, gemma ? 1 : 2);  /* eos_id */
    pb_int(&sub, 43, gemma ? 0 : -1); /* pad_id: -1 is ten varint bytes */
    pb_bytes(&m, 2, sub.p, sub.len);
    sub.len = 0; /* NormalizerSpec */
    pb_bytes(&sub, 1, "identity", 8);
    pb_int(&sub, 3, gemma ? 0 : 1); /* add_dummy_prefix */
    pb_int(&sub, 4, 0);             /* remove_extra_whitespaces */
    pb_int(&sub, 5, 1);             /* escape_whitespaces */
    pb_bytes(&m, 3, sub.p, sub.len);
    dev_write_file(dir, "tokenizer.model", m.p, m.len);
    free(m.p);
    free(sub.p);
}

static void write_dump(const char *dir)
{
    struct dev_buf d = {0};
    for (int i = 0; i < n_pieces; i++) {
        dev_buf_printf(&d, "%d %a ", P[i].type, (double)P[i].score);
        for (size_t k = 0; k < P[i].len; k++) dev_buf_printf(&d, "%02x", (unsigned char)P[i].s[k]);
        dev_buf_puts(&d, "\n");
    }
    dev_write_file(dir, "pieces.txt", d.p, d.len);
    free(d.p);
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static void json_str(struct dev_buf *b, const char *s, size_t n)
{
    dev_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') dev_buf_printf(b, "\\%c", c);
        else if (c == '\n') dev_buf_puts(b, "\\n");
        else if (c == '\t') dev_buf_puts(b, "\\t");
        else if (c < 0x20) dev_buf_printf(b, "\\u%04x", c);
        else dev_buf_put(b, &s[i], 1);
    }
    dev_buf_puts(b, "\"");
}

/* The text of piece i in the Hugging Face vocabulary (Gemma: "\t" for <0x09>). */
static const char *hf_text(int i, bool gemma, size_t *len)
{
    if (gemma && P[i].len == 6 && memcmp(P[i].s, "<0x09>", 6) == 0) {
        *len = 1;
        return "\t";
    }
    *len = P[i].len;
    return P[i].s;
}

static int hf_find(const char *s, size_t len, bool gemma)
{
    for (int i = 0; i < n_pieces; i++) {
        size_t l;
        const char *t = hf_text(i, gemma, &l);
        if (l == len && memcmp(t, s, len) == 0) return i;
    }
    return -1;
}

struct merge {
    int l, r, piece;
};
static struct merge M[MAX_PIECES * 8];
static int n_merges;

static int cmp_local(const void *a, const void *b)
{
    const struct merge *x = a, *y = b;
    return x->l != y->l ? (x->l < y->l ? -1 : 1) : (x->r > y->r) - (x->r < y->r);
}

static void extract_merges(bool gemma)
{
    for (int i = 0; i < n_pieces; i++) {
        size_t len;
        const char *t = hf_text(i, gemma, &len);
        int first = n_merges;
        for (size_t k = dev_utf8_len((unsigned char)t[0]); k < len; k += dev_utf8_len((unsigned char)t[k])) {
            int l = hf_find(t, k, gemma), r = hf_find(t + k, len - k, gemma);
            if (l >= 0 && r >= 0) M[n_merges++] = (struct merge){l, r, i};
        }
        qsort(M + first, (size_t)(n_merges - first), sizeof M[0], cmp_local);
    }
    /* stable sort by score, highest first (insertion sort: n is small) */
    for (int i = 1; i < n_merges; i++) {
        struct merge x = M[i];
        int j = i - 1;
        while (j >= 0 && P[M[j].piece].score < P[x.piece].score) {
            M[j + 1] = M[j];
            j--;
        }
        M[j + 1] = x;
    }
}

static void added_json(struct dev_buf *b, int id, const char *text, bool special, bool first)
{
    dev_buf_printf(b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", id);
    json_str(b, text, strlen(text));
    dev_buf_printf(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                      "\"special\": %s}", special ? "true" : "false");
}

static void write_tokenizer_json(const char *dir, bool gemma)
{
    struct dev_buf b = {0};
    const char *bos = gemma ? "<bos>" : "<s>";
    int bos_id = gemma ? 2 : 1;
    dev_buf_puts(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    bool first = true;
    for (int i = 0; i < n_pieces; i++)
        if (P[i].type == T_CONTROL || P[i].type == T_UNKNOWN) {
            added_json(&b, i, P[i].s, true, first);
            first = false;
        }
    if (!gemma) {
        added_json(&b, n_pieces, "<|sep|>", false, false);
        added_json(&b, n_pieces + 1, "<sep>", false, false);
    }
    dev_buf_puts(&b, "\n  ],\n");
    if (gemma)
        dev_buf_puts(&b, "  \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SPIECE
                         "\"},\n  \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, \"behavior\": "
                         "\"MergedWithPrevious\", \"invert\": false},\n");
    else
        dev_buf_puts(&b, "  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \""
                         SPIECE "\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SPIECE
                         "\"}]},\n  \"pre_tokenizer\": null,\n");
    dev_buf_printf(&b, "  \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
                       "\"%s\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": "
                       "[{\"SpecialToken\": {\"id\": \"%s\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": "
                       "0}}, {\"SpecialToken\": {\"id\": \"%s\", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", "
                       "\"type_id\": 1}}], \"special_tokens\": {\"%s\": {\"id\": \"%s\", \"ids\": [%d], \"tokens\": "
                       "[\"%s\"]}}},\n",
                   bos, bos, bos, bos, bos, bos_id, bos);
    dev_buf_puts(&b, "  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
                     "{\"String\": \"" SPIECE "\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}");
    if (!gemma) dev_buf_puts(&b, ", {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}");
    dev_buf_printf(&b, "]},\n  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", "
                       "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": true, "
                       "\"byte_fallback\": true, \"ignore_merges\": false, \"vocab\": {");
    for (int i = 0; i < n_pieces; i++) {
        size_t len;
        const char *t = hf_text(i, gemma, &len);
        dev_buf_puts(&b, i ? ", " : "");
        json_str(&b, t, len);
        dev_buf_printf(&b, ": %d", i);
    }
    dev_buf_puts(&b, "},\n    \"merges\": [");
    for (int i = 0; i < n_merges; i++) {
        size_t ll, rl;
        const char *l = hf_text(M[i].l, gemma, &ll), *r = hf_text(M[i].r, gemma, &rl);
        dev_buf_puts(&b, i ? ",\n      " : "\n      ");
        if (gemma) {
            dev_buf_puts(&b, "[");
            json_str(&b, l, ll);
            dev_buf_puts(&b, ", ");
            json_str(&b, r, rl);
            dev_buf_puts(&b, "]");
        } else {
            char both[MAX_WLEN * 8 + 2];
            memcpy(both, l, ll);
            both[ll] = ' ';
            memcpy(both + ll + 1, r, rl);
            json_str(&b, both, ll + 1 + rl);
        }
    }
    dev_buf_puts(&b, "\n    ]\n  }\n}\n");
    dev_write_file(dir, "tokenizer.json", b.p, b.len);
    free(b.p);
}

static void decoder_entry(struct dev_buf *b, int id, const char *text, bool special, bool first)
{
    dev_buf_printf(b, "%s\n    \"%d\": {\"content\": ", first ? "" : ",", id);
    json_str(b, text, strlen(text));
    dev_buf_printf(b, ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, "
                      "\"special\": %s}", special ? "true" : "false");
}

static void write_config(const char *dir, bool gemma)
{
    struct dev_buf b = {0};
    dev_buf_puts(&b, "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"added_tokens_decoder\": {");
    bool first = true;
    for (int i = 0; i < n_pieces; i++)
        if (P[i].type == T_CONTROL || P[i].type == T_UNKNOWN) {
            decoder_entry(&b, i, P[i].s, true, first);
            first = false;
        }
    if (!gemma) {
        decoder_entry(&b, n_pieces, "<|sep|>", false, false);
        decoder_entry(&b, n_pieces + 1, "<sep>", false, false);
    }
    dev_buf_printf(&b, "\n  },\n  \"bos_token\": \"%s\",\n  \"eos_token\": \"%s\",\n  \"unk_token\": \"<unk>\",\n"
                       "  \"pad_token\": %s,\n  \"clean_up_tokenization_spaces\": false,\n  \"legacy\": true,\n"
                       "  \"tokenizer_class\": \"%s\"\n}\n",
                   gemma ? "<bos>" : "<s>", gemma ? "<eos>" : "</s>", gemma ? "\"<pad>\"" : "null",
                   gemma ? "GemmaTokenizer" : "LlamaTokenizer");
    dev_write_file(dir, "tokenizer_config.json", b.p, b.len);
    free(b.p);
    if (!gemma) {
        char a[64];
        snprintf(a, sizeof a, "{\"<sep>\": %d}\n", n_pieces + 1);
        dev_write_file(dir, "added_tokens.json", a, strlen(a));
    }
}

int main(int argc, char **argv)
{
    dev_set_prog("mkspm");
    bool gemma = argc == 3 && strcmp(argv[1], "--gemma") == 0;
    if (argc != 2 + gemma) {
        fprintf(stderr, "usage: mkspm [--gemma] OUTDIR\n");
        return 2;
    }
    const char *dir = argv[argc - 1];
    dev_mkdirs(dir);
    cut_words(!gemma);
    learn();
    build_vocab(gemma);
    extract_merges(gemma);
    write_model(dir, gemma);
    write_dump(dir);
    write_tokenizer_json(dir, gemma);
    write_config(dir, gemma);
    printf("mkspm: %s: %d pieces (%d learned), %d merges, %s style\n", dir, n_pieces, n_learned, n_merges,
           gemma ? "Gemma" : "Llama");
    return 0;
}
