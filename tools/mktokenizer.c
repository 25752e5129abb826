/*
** mktokenizer.c - writes testdata/tokenizers/spm-bpe/, a small Llama-2-style Hugging Face
** tokenizer: BPE with byte fallback over "▁"-escaped text, as transformers converts a
** SentencePiece model into tokenizer.json (tests/test_gguf_vocab.c regenerates it and compares
** every byte, then checks that llama.cpp and the pinned @huggingface/tokenizers agree on it).
**
** Usage: mktokenizer OUTDIR        (writes OUTDIR/tokenizer.json and OUTDIR/tokenizer_config.json)
**
** Vocabulary (ids in the order a converted Llama-2 tokenizer uses):
**     0 <unk>, 1 <s>, 2 </s>             special tokens (also in model.vocab, as Llama 2 has them)
**     3 .. 258 <0x00> .. <0xFF>            byte-fallback tokens
**     259 .. 259+N_LEARNED-1               learned pieces, in the order they were learned
**     then every character of the corpus   most frequent first (ties: smaller code point)
**     one more added token "<|sep|>"       not special (a user-defined token), outside model.vocab
** Newline is deliberately not a character of the vocabulary: it reaches the model as <0x0A>, as
** in Llama 2.
**
** Learning: the corpus is cut into words the SentencePiece way (a space starts a new word and
** becomes "▁" at its front; every line starts with "▁"); starting from characters, the most
** frequent adjacent pair (weighted by word frequency; ties: smaller left id, then smaller right
** id in the working numbering) is merged, N_LEARNED times.
**
** Merges are then written the way transformers' SentencePiece converter writes them: for every
** multi-character piece, in vocabulary order, every split into two vocabulary pieces, sorted by
** (left id, right id). So a piece with several splits has several merges, all ranked together.
**
** Determinism: integer arithmetic only; the output depends on nothing but this file.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"

enum {
    N_SPECIAL = 3,
    N_BYTES = 256,
    FIRST_LEARNED = N_SPECIAL + N_BYTES, /* 259 */
    N_LEARNED = 160,
    MAX_CHARS = 128,                     /* distinct characters of the corpus (checked) */
    MAX_WORK = MAX_CHARS + N_LEARNED,    /* working ids: characters, then learned pieces */
    MAX_POS = 4096
};

#define SPIECE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */

/* Original text; accented Latin letters are part of the alphabet, other scripts are not. */
static const char corpus[] =
    "The bakery on the hill opens at six. Every morning the baker lights the oven, and the smell "
    "of warm bread walks down the street before the first customer does.\n"
    "Old Mr. M\xc3\xbcller buys two loaves and a small cake; he has done so since 1984. The "
    "children from the school stop by for sweet rolls, and their teachers ask for coffee.\n"
    "On Saturday the caf\xc3\xa9 next door serves cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e, and the baker "
    "sells three hundred rolls before noon. On Sunday the shop is closed, and the street is quiet.\n"
    "In winter the snow covers the hill, the baker walks to work, and the bread is still warm at six. "
    "In summer the doors stay open, the customers sit outside, and the children eat ice cream.\n"
    "A visitor once asked the baker for his recipe. \"Flour, water, salt, and time,\" he said. "
    "\"The time is the part nobody wants to pay for.\"\n"
    "Se\xc3\xb1or Garc\xc3\xad" "a from the market sells oranges, and the ni\xc3\xb1os help him on "
    "weekends. Madame Fran\xc3\xa7oise paints the fa\xc3\xa7" "ade of the bakery every spring.\n"
    "The bakery sold 12,500 loaves last year (about 34 a day), and the oven is 45 years old. "
    "Nobody knows how much longer it will work, but everyone hopes it will work for many more years.\n"
    "At night the baker writes the orders for the next morning: rolls, bread, cake, and coffee for "
    "the teachers. Then he sleeps, and the street sleeps with him.\n";

/* ---- output ------------------------------------------------------------------------------ */

/* JSON string literal; non-ASCII UTF-8 is written raw (serde_json, json.dumps(ensure_ascii=False)). */
static void buf_json_str(struct dev_buf *b, const char *s, size_t n)
{
    dev_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            dev_buf_put(b, e, 2);
        } else if (c == '\n') {
            dev_buf_puts(b, "\\n");
        } else if (c < 0x20) {
            dev_buf_printf(b, "\\u%04x", c);
        } else {
            dev_buf_put(b, &s[i], 1);
        }
    }
    dev_buf_put(b, "\"", 1);
}

/* ---- pieces ------------------------------------------------------------------------------ */

struct piece {
    char s[64]; /* UTF-8 text, "▁" for a space */
    size_t len;
    uint32_t count; /* characters: occurrences in the corpus (orders the alphabet) */
    uint32_t first; /* characters: code point */
};

struct learner {
    struct piece work[MAX_WORK]; /* working ids: characters first, then learned pieces */
    int n_chars, n_work;
    int left[N_LEARNED], right[N_LEARNED]; /* the learned merges, in working ids */
};

static int find_work(const struct learner *L, const char *s, size_t len)
{
    for (int i = 0; i < L->n_work; i++)
        if (L->work[i].len == len && memcmp(L->work[i].s, s, len) == 0) return i;
    return -1;
}

/* Character pieces: each corpus character with a space as "▁"; newline is left out. */
static int char_id(struct learner *L, const char *s, size_t len, int add)
{
    int id = find_work(L, s, len);
    if (id >= 0 || !add) return id;
    if (L->n_chars == MAX_CHARS) dev_die("corpus has more than %d distinct characters", MAX_CHARS);
    struct piece *p = &L->work[L->n_chars];
    memcpy(p->s, s, len);
    p->len = len;
    p->first = dev_utf8_cp(s);
    L->n_work = ++L->n_chars;
    return L->n_chars - 1;
}

struct word {
    int ids[64];
    int n;
    uint32_t count;
};

/* Orders characters by count (descending), then code point; renumbers the words to match. */
static int cmp_char(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static void learn(struct learner *L, struct word *words, int *n_words_out)
{
    int n_words = 0;
    const char *p = corpus, *end = corpus + sizeof corpus - 1;
    while (p < end) {
        /* one line: "▁" + line with spaces as "▁"; words start at each "▁" */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        struct word w = {.count = 1};
        int sp = char_id(L, SPIECE, 3, 1);
        w.ids[w.n++] = sp;
        L->work[sp].count++;
        for (const char *q = p; q < nl;) {
            size_t n = dev_utf8_len((unsigned char)*q);
            int id;
            if (*q == ' ') {
                /* close the word, start the next one with "▁" */
                int k;
                for (k = 0; k < n_words; k++)
                    if (words[k].n == w.n && memcmp(words[k].ids, w.ids, (size_t)w.n * sizeof w.ids[0]) == 0) break;
                if (k == n_words) words[n_words++] = w;
                else words[k].count++;
                w = (struct word){.count = 1};
                id = sp;
            } else {
                id = char_id(L, q, n, 1);
            }
            if (w.n == (int)(sizeof w.ids / sizeof w.ids[0])) dev_die("word too long in the corpus");
            w.ids[w.n++] = id;
            L->work[id].count++;
            q += n;
        }
        int k;
        for (k = 0; k < n_words; k++)
            if (words[k].n == w.n && memcmp(words[k].ids, w.ids, (size_t)w.n * sizeof w.ids[0]) == 0) break;
        if (k == n_words) words[n_words++] = w;
        else words[k].count++;
        p = nl + 1;
    }

    /* renumber characters by frequency so the working ids (and tie-breaks) are canonical */
    int old_of_new[MAX_CHARS], new_of_old[MAX_CHARS];
    struct piece sorted[MAX_CHARS];
    memcpy(sorted, L->work, (size_t)L->n_chars * sizeof sorted[0]);
    qsort(sorted, (size_t)L->n_chars, sizeof sorted[0], cmp_char);
    for (int i = 0; i < L->n_chars; i++) {
        old_of_new[i] = find_work(L, sorted[i].s, sorted[i].len);
        new_of_old[old_of_new[i]] = i;
    }
    memcpy(L->work, sorted, (size_t)L->n_chars * sizeof sorted[0]);
    for (int i = 0; i < n_words; i++)
        for (int k = 0; k < words[i].n; k++) words[i].ids[k] = new_of_old[words[i].ids[k]];

    uint32_t *pair = dev_xcalloc((size_t)MAX_WORK * MAX_WORK, sizeof *pair);
    for (int m = 0; m < N_LEARNED; m++) {
        memset(pair, 0, (size_t)MAX_WORK * MAX_WORK * sizeof *pair);
        for (int i = 0; i < n_words; i++)
            for (int k = 0; k + 1 < words[i].n; k++)
                pair[(size_t)words[i].ids[k] * MAX_WORK + (size_t)words[i].ids[k + 1]] += words[i].count;
        uint32_t best = 0;
        size_t arg = 0;
        for (size_t q = 0; q < (size_t)MAX_WORK * MAX_WORK; q++)
            if (pair[q] > best) {
                best = pair[q];
                arg = q;
            }
        if (best < 2) dev_die("corpus too small: only %d pieces learned, %d wanted", m, N_LEARNED);
        int l = (int)(arg / MAX_WORK), r = (int)(arg % MAX_WORK);
        struct piece np = {0};
        np.len = L->work[l].len + L->work[r].len;
        if (np.len >= sizeof np.s) dev_die("internal: piece too long");
        memcpy(np.s, L->work[l].s, L->work[l].len);
        memcpy(np.s + L->work[l].len, L->work[r].s, L->work[r].len);
        int id = find_work(L, np.s, np.len);
        if (id >= 0) dev_die("internal: learned piece \"%s\" twice", np.s); /* impossible: pieces only grow */
        id = L->n_work++;
        L->work[id] = np;
        L->left[m] = l;
        L->right[m] = r;
        for (int i = 0; i < n_words; i++) {
            int o = 0;
            for (int k = 0; k < words[i].n; k++) {
                if (k + 1 < words[i].n && words[i].ids[k] == l && words[i].ids[k + 1] == r) {
                    words[i].ids[o++] = id;
                    k++;
                } else {
                    words[i].ids[o++] = words[i].ids[k];
                }
            }
            words[i].n = o;
        }
    }
    free(pair);
    *n_words_out = n_words;
}

/* ---- final vocabulary -------------------------------------------------------------------- */

struct vocab {
    char text[1024][64];
    size_t len[1024];
    int n;      /* model.vocab entries */
    int sep_id; /* the added "<|sep|>" */
};

static int vocab_find(const struct vocab *v, const char *s, size_t len)
{
    for (int i = 0; i < v->n; i++)
        if (v->len[i] == len && memcmp(v->text[i], s, len) == 0) return i;
    return -1;
}

static void vocab_add(struct vocab *v, const char *s, size_t len)
{
    if (len >= sizeof v->text[0]) dev_die("internal: token too long");
    if (vocab_find(v, s, len) >= 0) dev_die("internal: duplicate token \"%.*s\"", (int)len, s);
    memcpy(v->text[v->n], s, len);
    v->text[v->n][len] = '\0';
    v->len[v->n++] = len;
}

static void build_vocab(const struct learner *L, struct vocab *v)
{
    static const char *const specials[N_SPECIAL] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < N_SPECIAL; i++) vocab_add(v, specials[i], strlen(specials[i]));
    for (int b = 0; b < N_BYTES; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        vocab_add(v, t, 6);
    }
    for (int i = L->n_chars; i < L->n_work; i++) vocab_add(v, L->work[i].s, L->work[i].len);
    for (int i = 0; i < L->n_chars; i++) vocab_add(v, L->work[i].s, L->work[i].len);
    v->sep_id = v->n;
}

struct merge {
    int l, r;
};

/* Every split of every multi-character piece into two vocabulary pieces (converter order). */
static int build_merges(const struct vocab *v, struct merge *out, int cap)
{
    int n = 0;
    for (int t = FIRST_LEARNED; t < v->n; t++) {
        int first = n;
        for (size_t at = dev_utf8_len((unsigned char)v->text[t][0]); at < v->len[t];
             at += dev_utf8_len((unsigned char)v->text[t][at])) {
            int l = vocab_find(v, v->text[t], at), r = vocab_find(v, v->text[t] + at, v->len[t] - at);
            if (l < 0 || r < 0) continue;
            if (n == cap) dev_die("internal: too many merges");
            out[n++] = (struct merge){l, r};
        }
        /* sort this piece's splits by (left id, right id): insertion sort, few elements */
        for (int i = first + 1; i < n; i++)
            for (int k = i; k > first && (out[k].l < out[k - 1].l || (out[k].l == out[k - 1].l && out[k].r < out[k - 1].r)); k--) {
                struct merge tmp = out[k];
                out[k] = out[k - 1];
                out[k - 1] = tmp;
            }
        if (t < FIRST_LEARNED + N_LEARNED && n == first) dev_die("internal: learned piece %d has no split", t);
    }
    return n;
}

/* ---- JSON files -------------------------------------------------------------------------- */

static void json_added_token(struct dev_buf *b, int id, const char *content, int special, int last)
{
    dev_buf_printf(b, "    {\n      \"id\": %d,\n      \"content\": ", id);
    buf_json_str(b, content, strlen(content));
    dev_buf_printf(b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n"
                  "      \"normalized\": false,\n      \"special\": %s\n    }%s\n",
               special ? "true" : "false", last ? "" : ",");
}

/* tokenizer.json as transformers writes a converted Llama-2 tokenizer ("legacy" normalizer). */
static void json_tokenizer(struct dev_buf *b, const struct vocab *v, const struct merge *m, int n_merges)
{
    dev_buf_puts(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n");
    json_added_token(b, 0, "<unk>", 1, 0);
    json_added_token(b, 1, "<s>", 1, 0);
    json_added_token(b, 2, "</s>", 1, 0);
    json_added_token(b, v->sep_id, "<|sep|>", 0, 1);
    dev_buf_puts(b, "  ],\n  \"normalizer\": {\n    \"type\": \"Sequence\",\n    \"normalizers\": [\n"
                "      {\n        \"type\": \"Prepend\",\n        \"prepend\": \"" SPIECE "\"\n      },\n"
                "      {\n        \"type\": \"Replace\",\n        \"pattern\": {\n          \"String\": \" \"\n"
                "        },\n        \"content\": \"" SPIECE "\"\n      }\n    ]\n  },\n"
                "  \"pre_tokenizer\": null,\n");
    dev_buf_puts(b, "  \"post_processor\": {\n    \"type\": \"TemplateProcessing\",\n    \"single\": [\n"
                "      {\n        \"SpecialToken\": {\n          \"id\": \"<s>\",\n          \"type_id\": 0\n        }\n      },\n"
                "      {\n        \"Sequence\": {\n          \"id\": \"A\",\n          \"type_id\": 0\n        }\n      }\n"
                "    ],\n    \"pair\": [\n"
                "      {\n        \"SpecialToken\": {\n          \"id\": \"<s>\",\n          \"type_id\": 0\n        }\n      },\n"
                "      {\n        \"Sequence\": {\n          \"id\": \"A\",\n          \"type_id\": 0\n        }\n      },\n"
                "      {\n        \"SpecialToken\": {\n          \"id\": \"<s>\",\n          \"type_id\": 1\n        }\n      },\n"
                "      {\n        \"Sequence\": {\n          \"id\": \"B\",\n          \"type_id\": 1\n        }\n      }\n"
                "    ],\n    \"special_tokens\": {\n      \"<s>\": {\n        \"id\": \"<s>\",\n        \"ids\": [\n"
                "          1\n        ],\n        \"tokens\": [\n          \"<s>\"\n        ]\n      }\n    }\n  },\n");
    dev_buf_puts(b, "  \"decoder\": {\n    \"type\": \"Sequence\",\n    \"decoders\": [\n"
                "      {\n        \"type\": \"Replace\",\n        \"pattern\": {\n          \"String\": \"" SPIECE "\"\n"
                "        },\n        \"content\": \" \"\n      },\n"
                "      {\n        \"type\": \"ByteFallback\"\n      },\n"
                "      {\n        \"type\": \"Fuse\"\n      },\n"
                "      {\n        \"type\": \"Strip\",\n        \"content\": \" \",\n        \"start\": 1,\n        \"stop\": 0\n      }\n"
                "    ]\n  },\n");
    dev_buf_puts(b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": \"<unk>\",\n"
                "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": true,\n"
                "    \"byte_fallback\": true,\n    \"ignore_merges\": false,\n    \"vocab\": {\n");
    for (int t = 0; t < v->n; t++) {
        dev_buf_puts(b, "      ");
        buf_json_str(b, v->text[t], v->len[t]);
        dev_buf_printf(b, ": %d%s\n", t, t + 1 < v->n ? "," : "");
    }
    dev_buf_puts(b, "    },\n    \"merges\": [\n");
    for (int i = 0; i < n_merges; i++) {
        char s[160];
        int n = snprintf(s, sizeof s, "%s %s", v->text[m[i].l], v->text[m[i].r]);
        if (n < 0 || (size_t)n >= sizeof s) dev_die("internal: merge too long");
        dev_buf_puts(b, "      ");
        buf_json_str(b, s, (size_t)n);
        dev_buf_puts(b, i + 1 < n_merges ? ",\n" : "\n");
    }
    dev_buf_puts(b, "    ]\n  }\n}\n");
}

/* A Llama-2-like chat template, original wording. */
static const char chat_template[] =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] "
    "+ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}";

/* tokenizer_config.json as transformers saves it: indent 2, sorted keys, trailing newline. */
static void json_tokenizer_config(struct dev_buf *b, const struct vocab *v)
{
    static const struct {
        int id;
        const char *content;
        int special;
    } added[4] = {{0, "<unk>", 1}, {1, "<s>", 1}, {2, "</s>", 1}, {0, "<|sep|>", 0}};
    dev_buf_puts(b, "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"added_tokens_decoder\": {\n");
    for (int i = 0; i < 4; i++) {
        int id = i == 3 ? v->sep_id : added[i].id;
        dev_buf_printf(b, "    \"%d\": {\n      \"content\": ", id);
        buf_json_str(b, added[i].content, strlen(added[i].content));
        dev_buf_printf(b, ",\n      \"lstrip\": false,\n      \"normalized\": false,\n      \"rstrip\": false,\n"
                      "      \"single_word\": false,\n      \"special\": %s\n    }%s\n",
                   added[i].special ? "true" : "false", i < 3 ? "," : "");
    }
    dev_buf_puts(b, "  },\n  \"bos_token\": \"<s>\",\n  \"chat_template\": ");
    buf_json_str(b, chat_template, sizeof chat_template - 1);
    dev_buf_printf(b, ",\n  \"clean_up_tokenization_spaces\": false,\n  \"eos_token\": \"</s>\",\n  \"legacy\": true,\n"
                  "  \"model_max_length\": %d,\n  \"pad_token\": null,\n  \"padding_side\": \"right\",\n"
                  "  \"sp_model_kwargs\": {},\n  \"tokenizer_class\": \"LlamaTokenizer\",\n  \"unk_token\": \"<unk>\",\n"
                  "  \"use_default_system_prompt\": false\n}\n",
               MAX_POS);
}

int main(int argc, char **argv)
{
    dev_set_prog("mktokenizer");
    if (argc != 2) {
        fprintf(stderr, "usage: mktokenizer OUTDIR\n");
        return 2;
    }
    struct learner *L = dev_xcalloc(1, sizeof *L);
    struct word *words = dev_xcalloc(4096, sizeof *words);
    int n_words = 0;
    learn(L, words, &n_words);
    struct vocab *v = dev_xcalloc(1, sizeof *v);
    build_vocab(L, v);
    struct merge *m = dev_xcalloc(8192, sizeof *m);
    int n_merges = build_merges(v, m, 8192);

    dev_make_dir(argv[1]);
    struct dev_buf tj = {0}, tc = {0};
    json_tokenizer(&tj, v, m, n_merges);
    json_tokenizer_config(&tc, v);
    dev_write_file(argv[1], "tokenizer.json", tj.p, tj.len);
    dev_write_file(argv[1], "tokenizer_config.json", tc.p, tc.len);
    printf("spm-bpe tokenizer: %d characters, %d learned pieces, %d model.vocab tokens + 1 added (<|sep|> = %d), "
           "%d merges, from %d distinct words\n",
           L->n_chars, N_LEARNED, v->n, v->sep_id, n_merges, n_words);
    free(tj.p);
    free(tc.p);
    free(m);
    free(v);
    free(words);
    free(L);
    return 0;
}
