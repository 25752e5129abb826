/*
** mkfixture.c - writes the bundled test model, a tiny deterministic Llama-shaped Hugging Face
** checkpoint (the committed copy is testdata/tiny-llama/; tests/test_fixture_files.c regenerates
** it and compares every byte).
**
** Usage: mkfixture OUTDIR
**
** OUTDIR/                          OUTDIR/sharded/
**   config.json                      config.json, generation_config.json,
**   generation_config.json           tokenizer.json, tokenizer_config.json (copies)
**   tokenizer.json                   model-0000{1,2,3}-of-00003.safetensors
**   tokenizer_config.json            model.safetensors.index.json
**   model.safetensors
**
** Model: LlamaForCausalLM, hidden 256, intermediate 512, 2 layers, 4 query heads x head_dim 64,
** 2 KV heads (grouped-query attention), vocabulary 384 = 256 byte tokens + 126 learned merges +
** 2 special tokens, untied lm_head, BF16 weights.
**
** Determinism: every written byte comes from integer arithmetic. Weights are small integers m
** drawn from splitmix64 (seeded per tensor from its name) times a power of two 2^e; with |m| < 256
** the product is exactly a BF16 number, and its bit pattern is assembled from m and e with
** integer operations (bf16_exact). Floating point is used only by the self-check (the reference
** forward pass), whose result decides whether the tool succeeds, never what it writes.
**
** The weights are designed, not just random:
**   - lm_head row j is the (clamped) sum of the embedding rows of every token t whose most
**     frequent successor in the embedded corpus is j, plus small noise. Because the residual
**     stream keeps a large component along the current token's embedding, the model strongly
**     prefers the corpus bigram successor: top next-token probabilities are high.
**   - q/k scales are chosen so that the pre-softmax attention scores q.k/sqrt(64) have a
**     standard deviation around 2.5 (each q and k element has std ~ 16 * sigma_w on normed input,
**     so std(score) ~ 256 * sigma_q * sigma_k), and o_proj/down_proj scales make attention and
**     MLP each add a sizeable fraction of the embedding's norm. A converter that mis-lays Q/K
**     (e.g. omits the GGUF RoPE permutation) or swaps tensors changes the logits visibly.
** Before writing anything the tool runs tests/helpers/llama_ref.c on a few typical sentences and
** fails unless the smallest per-layer attention-score std is >= 1, every sentence's mean and
** median top next-token probability are >= 0.3, and leaving out the Q/K permutation moves some
** logit of every sentence by >= 5 (measured: 14 to 21).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"
#include "mkfixture_bpe.h"

/* The reference forward pass is compiled into this tool from its single source: tools are built
** one .c file each (CMakeLists.txt), and the check must use exactly the math the tests use. */
#include "../tests/helpers/llama_ref.c"

/* ---- model dimensions -------------------------------------------------------------------- */

enum {
    N_EMBD = 256,
    N_FF = 512,
    N_LAYER = 2,
    N_HEAD = 4,
    N_KV_HEAD = 2,
    HEAD_DIM = 64,
    N_BASE = 256,                 /* byte tokens */
    N_LEARNED = 126,              /* tokens added by merges */
    N_REGULAR = N_BASE + N_LEARNED, /* model.vocab entries */
    TOK_BOS = N_REGULAR,          /* <|begin_of_text|> */
    TOK_EOS = N_REGULAR + 1,      /* <|end_of_text|> */
    N_VOCAB = N_REGULAR + 2,
    MAX_POS = 2048,
    MAX_MERGES = 1024
};
#define RMS_EPS_JSON "1e-05"
#define RMS_EPS 1e-5
#define ROPE_THETA_JSON "10000.0"
#define ROPE_THETA 10000.0
#define SEED 0x6d6f64656c712d31ull /* "modelq-1" */

/* ---- corpus the merges and the successor table are learned from (original text) --------- */

static const char corpus[] =
    "The harbor town woke up before the sun. Fishermen walked down to the boats, and the baker "
    "opened the shop on the corner of the market square. The smell of fresh bread drifted over "
    "the water, and the gulls began to circle above the boats.\n"
    "Every morning the old lighthouse keeper climbed the stairs of the tower to look at the sea. "
    "He wrote the weather in a small book: the wind, the waves, the color of the sky. When the "
    "wind was strong, he told the fishermen to stay in the harbor. When the sea was calm, they "
    "went out early and came back in the evening with their nets full of fish.\n"
    "The children of the town went to the school near the church. They learned to read and to "
    "write, to count the boats in the harbor and to name the stars over the sea. In the afternoon "
    "they ran down to the beach, where they looked for shells and watched the ships on the "
    "horizon.\n"
    "In the winter the storms came from the north. The waves were high and the rain was cold, and "
    "the boats stayed in the harbor for many days. The people of the town sat by the fire, told "
    "old stories and waited for the spring. The lighthouse keeper kept the light burning every "
    "night, so that the ships at sea could find their way home.\n"
    "In the spring the town was busy again. The fishermen painted their boats, the baker made "
    "sweet bread for the market, and the children played in the streets until the evening. The "
    "lighthouse keeper opened the windows of the tower and wrote in his book that the sea was "
    "calm, the wind was soft, and the sky was clear and blue.\n"
    "One day a ship from a far country came into the harbor. The sailors walked through the "
    "market and bought bread, fish and fruit. They told the people of the town about the cities "
    "they had seen and the storms they had met at sea. The children listened to every word, and "
    "that night many of them dreamed of ships and of the wide, blue sea.\n"
    "Years later some of those children became sailors themselves. They went out on the ships "
    "and saw the cities and the storms, but they always came back to the harbor town, to the "
    "bread of the baker, to the light of the old tower, and to the calm water of the morning.\n";

/* Typical inputs for the self-check: sentences in the corpus's style, ASCII only. */
static const char *const check_texts[] = {
    "The fishermen walked down to the harbor and the baker opened the shop.",
    "In the winter the storms came from the north, and the boats stayed in the harbor.",
    "The lighthouse keeper wrote in his book that the sea was calm and the sky was blue.",
    "The children of the town ran down to the beach to look for shells.",
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* Appends s as a JSON string literal. Only '"', '\\' and control characters need escaping;
** everything else (including the UTF-8 of byte-level tokens) is written raw, as serde_json and
** Python's json.dumps(ensure_ascii=False) do. */
static void buf_json_str(struct dev_buf *b, const char *s, size_t n)
{
    dev_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            dev_buf_put(b, e, 2);
        } else if (c < 0x20) {
            dev_buf_printf(b, "\\u%04x", c);
        } else {
            dev_buf_put(b, &s[i], 1);
        }
    }
    dev_buf_put(b, "\"", 1);
}

/* Uniform integer in [-r, r] (modulo bias is irrelevant here; only determinism matters). */
static int32_t rand_sym(uint64_t *state, int32_t r)
{
    return (int32_t)(dev_splitmix64(state) % (uint64_t)(2 * r + 1)) - r;
}

/*
** BF16 bit pattern of m * 2^e, computed without floating point. BF16 = sign(1) exponent(8,
** bias 127) mantissa(7): a nonzero |m| < 256 has at most 8 significant bits (the leading one is
** implicit), so the value is exact. Fails loudly rather than round.
*/
static uint16_t bf16_exact(int32_t m, int e)
{
    if (m == 0) return 0;
    uint16_t sign = m < 0 ? 0x8000 : 0;
    uint32_t a = (uint32_t)(m < 0 ? -m : m);
    if (a >= 256) dev_die("internal: %d does not fit a BF16 significand", m);
    int p = 0; /* a in [2^p, 2^(p+1)) */
    while ((a >> (p + 1)) != 0) p++;
    int biased = p + e + 127;
    if (biased < 1 || biased > 254) dev_die("internal: 2^%d outside the normal BF16 range", p + e);
    uint32_t mant = (a << (7 - p)) & 0x7F;
    return (uint16_t)(sign | ((uint32_t)biased << 7) | mant);
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16; /* BF16 is the top half of an IEEE binary32 */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- tokenizer: byte-level BPE learned from the corpus ---------------------------------- */

struct vocab {
    uint8_t *bytes[N_VOCAB]; /* raw bytes of each regular token */
    size_t len[N_VOCAB];
    int32_t n;               /* regular tokens so far */
    struct mkf_merge merges[MAX_MERGES];
    size_t n_merges;
};

struct word {
    int32_t *ids;
    size_t n;
    uint32_t count;
};

static int32_t vocab_find(const struct vocab *v, const uint8_t *s, size_t n)
{
    for (int32_t t = 0; t < v->n; t++)
        if (v->len[t] == n && memcmp(v->bytes[t], s, n) == 0) return t;
    return -1;
}

/*
** Standard BPE training over the corpus's pre-tokenizer pieces: count adjacent pairs (weighted
** by piece frequency), merge the most frequent (ties: smaller left id, then smaller right id),
** repeat until the vocabulary has N_REGULAR entries. A merge whose result text already exists
** reuses that token (as the tokenizers trainer does), so merges can outnumber new tokens.
*/
static void learn_bpe(struct vocab *v)
{
    for (unsigned b = 0; b < 256; b++) {
        int32_t id = mkf_byte_token((uint8_t)b);
        v->bytes[id] = dev_xcalloc(1, 1);
        v->bytes[id][0] = (uint8_t)b;
        v->len[id] = 1;
    }
    v->n = N_BASE;

    const uint8_t *text = (const uint8_t *)corpus;
    size_t len = sizeof corpus - 1;
    struct word *words = dev_xcalloc(len, sizeof *words);
    size_t n_words = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = mkf_pretok_next(text, len, pos);
        size_t i;
        for (i = 0; i < n_words; i++) {
            if (words[i].n != end - pos) continue;
            size_t k = 0;
            while (k < words[i].n && words[i].ids[k] == mkf_byte_token(text[pos + k])) k++;
            if (k == words[i].n) break;
        }
        if (i == n_words) {
            words[i].ids = dev_xcalloc(end - pos, sizeof(int32_t));
            words[i].n = end - pos;
            for (size_t k = 0; k < end - pos; k++) words[i].ids[k] = mkf_byte_token(text[pos + k]);
            n_words++;
        }
        words[i].count++;
        pos = end;
    }

    uint32_t *pair = dev_xcalloc((size_t)N_REGULAR * N_REGULAR, sizeof *pair);
    while (v->n < N_REGULAR) {
        if (v->n_merges == MAX_MERGES) dev_die("internal: too many merges");
        memset(pair, 0, (size_t)N_REGULAR * N_REGULAR * sizeof *pair);
        for (size_t i = 0; i < n_words; i++)
            for (size_t k = 0; k + 1 < words[i].n; k++)
                pair[(size_t)words[i].ids[k] * N_REGULAR + (size_t)words[i].ids[k + 1]] += words[i].count;
        uint32_t best = 0;
        size_t best_idx = 0;
        for (size_t p = 0; p < (size_t)N_REGULAR * N_REGULAR; p++)
            if (pair[p] > best) {
                best = pair[p];
                best_idx = p;
            }
        if (best < 2) dev_die("corpus too small: only %d tokens learned, %d wanted", (int)v->n, N_REGULAR);
        int32_t left = (int32_t)(best_idx / N_REGULAR), right = (int32_t)(best_idx % N_REGULAR);
        size_t n = v->len[left] + v->len[right];
        uint8_t *s = dev_xcalloc(n, 1);
        memcpy(s, v->bytes[left], v->len[left]);
        memcpy(s + v->len[left], v->bytes[right], v->len[right]);
        int32_t result = vocab_find(v, s, n);
        if (result < 0) {
            result = v->n++;
            v->bytes[result] = s;
            v->len[result] = n;
        } else {
            free(s);
        }
        v->merges[v->n_merges++] = (struct mkf_merge){left, right, result};
        for (size_t i = 0; i < n_words; i++) {
            size_t o = 0;
            for (size_t k = 0; k < words[i].n; k++) {
                if (k + 1 < words[i].n && words[i].ids[k] == left && words[i].ids[k + 1] == right) {
                    words[i].ids[o++] = result;
                    k++;
                } else {
                    words[i].ids[o++] = words[i].ids[k];
                }
            }
            words[i].n = o;
        }
    }
    free(pair);
    for (size_t i = 0; i < n_words; i++) free(words[i].ids);
    free(words);
}

/* Encodes ASCII text with the learned tokenizer (no special tokens). ids needs `len` entries. */
static size_t encode(const struct vocab *v, const char *text, int32_t *ids)
{
    struct mkf_token toks[N_REGULAR];
    for (int32_t t = 0; t < v->n; t++) toks[t] = (struct mkf_token){v->bytes[t], v->len[t]};
    return mkf_bpe_encode(toks, v->n, v->merges, v->n_merges, (const uint8_t *)text, strlen(text), ids);
}

/* Byte-level text of token t (UTF-8), into out (3*len+1 bytes). */
static size_t token_text(const struct vocab *v, int32_t t, char *out) { return mkf_bytes_to_bytelevel(v->bytes[t], v->len[t], out); }

/* ---- JSON files -------------------------------------------------------------------------- */

/* config.json as transformers writes it: json.dumps(indent=2, sort_keys=True) + "\n". */
static void json_config(struct dev_buf *b)
{
    dev_buf_printf(b, "{\n"
                  "  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n"
                  "  \"attention_bias\": false,\n"
                  "  \"attention_dropout\": 0.0,\n"
                  "  \"bos_token_id\": %d,\n"
                  "  \"eos_token_id\": %d,\n"
                  "  \"head_dim\": %d,\n"
                  "  \"hidden_act\": \"silu\",\n"
                  "  \"hidden_size\": %d,\n"
                  "  \"initializer_range\": 0.02,\n"
                  "  \"intermediate_size\": %d,\n",
               TOK_BOS, TOK_EOS, HEAD_DIM, N_EMBD, N_FF);
    dev_buf_printf(b, "  \"max_position_embeddings\": %d,\n"
                  "  \"mlp_bias\": false,\n"
                  "  \"model_type\": \"llama\",\n"
                  "  \"num_attention_heads\": %d,\n"
                  "  \"num_hidden_layers\": %d,\n"
                  "  \"num_key_value_heads\": %d,\n"
                  "  \"pretraining_tp\": 1,\n"
                  "  \"rms_norm_eps\": " RMS_EPS_JSON ",\n"
                  "  \"rope_scaling\": null,\n"
                  "  \"rope_theta\": " ROPE_THETA_JSON ",\n"
                  "  \"tie_word_embeddings\": false,\n"
                  "  \"torch_dtype\": \"bfloat16\",\n"
                  "  \"transformers_version\": \"4.46.0\",\n"
                  "  \"use_cache\": true,\n"
                  "  \"vocab_size\": %d\n"
                  "}\n",
               MAX_POS, N_HEAD, N_LAYER, N_KV_HEAD, N_VOCAB);
}

static void json_generation_config(struct dev_buf *b)
{
    dev_buf_printf(b, "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
                  "  \"transformers_version\": \"4.46.0\"\n}\n",
               TOK_BOS, TOK_EOS);
}

static const char *const special_names[2] = {"<|begin_of_text|>", "<|end_of_text|>"};

static void json_tokenizer_config(struct dev_buf *b)
{
    dev_buf_printf(b, "{\n  \"added_tokens_decoder\": {\n");
    for (int i = 0; i < 2; i++)
        dev_buf_printf(b, "    \"%d\": {\n      \"content\": \"%s\",\n      \"lstrip\": false,\n"
                      "      \"normalized\": false,\n      \"rstrip\": false,\n      \"single_word\": false,\n"
                      "      \"special\": true\n    }%s\n",
                   TOK_BOS + i, special_names[i], i == 0 ? "," : "");
    dev_buf_printf(b, "  },\n  \"bos_token\": \"%s\",\n  \"clean_up_tokenization_spaces\": true,\n"
                  "  \"eos_token\": \"%s\",\n  \"model_input_names\": [\n    \"input_ids\",\n"
                  "    \"attention_mask\"\n  ],\n  \"model_max_length\": %d,\n"
                  "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n",
               special_names[0], special_names[1], MAX_POS);
}

/* The Llama 3 pre-tokenizer pattern (see mkfixture_bpe.h), as JSON string content. */
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/*
** tokenizer.json in the Hugging Face tokenizers schema, laid out like a Llama 3 file: added
** special tokens, a Split(regex)+ByteLevel pre-tokenizer, ByteLevel + BOS template
** post-processor, ByteLevel decoder, and a BPE model with the vocab (by id) and "a b" merges.
*/
static void json_tokenizer(struct dev_buf *b, const struct vocab *v)
{
    char t1[1024], t2[1024];
    dev_buf_printf(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
                  "  \"added_tokens\": [\n");
    for (int i = 0; i < 2; i++)
        dev_buf_printf(b, "    {\n      \"id\": %d,\n      \"content\": \"%s\",\n      \"single_word\": false,\n"
                      "      \"lstrip\": false,\n      \"rstrip\": false,\n      \"normalized\": false,\n"
                      "      \"special\": true\n    }%s\n",
                   TOK_BOS + i, special_names[i], i == 0 ? "," : "");
    dev_buf_printf(b, "  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\n    \"type\": \"Sequence\",\n"
                  "    \"pretokenizers\": [\n      {\n        \"type\": \"Split\",\n"
                  "        \"pattern\": {\n          \"Regex\": ");
    buf_json_str(b, llama3_regex, sizeof llama3_regex - 1);
    dev_buf_printf(b, "\n        },\n        \"behavior\": \"Isolated\",\n        \"invert\": false\n      },\n"
                  "      {\n        \"type\": \"ByteLevel\",\n        \"add_prefix_space\": false,\n"
                  "        \"trim_offsets\": true,\n        \"use_regex\": false\n      }\n    ]\n  },\n");
    dev_buf_printf(b, "  \"post_processor\": {\n    \"type\": \"Sequence\",\n    \"processors\": [\n"
                  "      {\n        \"type\": \"ByteLevel\",\n        \"add_prefix_space\": true,\n"
                  "        \"trim_offsets\": false,\n        \"use_regex\": true\n      },\n"
                  "      {\n        \"type\": \"TemplateProcessing\",\n        \"single\": [\n"
                  "          {\n            \"SpecialToken\": {\n              \"id\": \"%s\",\n"
                  "              \"type_id\": 0\n            }\n          },\n"
                  "          {\n            \"Sequence\": {\n              \"id\": \"A\",\n"
                  "              \"type_id\": 0\n            }\n          }\n        ],\n",
               special_names[0]);
    dev_buf_printf(b, "        \"pair\": [\n"
                  "          {\n            \"SpecialToken\": {\n              \"id\": \"%s\",\n"
                  "              \"type_id\": 0\n            }\n          },\n"
                  "          {\n            \"Sequence\": {\n              \"id\": \"A\",\n"
                  "              \"type_id\": 0\n            }\n          },\n"
                  "          {\n            \"SpecialToken\": {\n              \"id\": \"%s\",\n"
                  "              \"type_id\": 1\n            }\n          },\n"
                  "          {\n            \"Sequence\": {\n              \"id\": \"B\",\n"
                  "              \"type_id\": 1\n            }\n          }\n        ],\n",
               special_names[0], special_names[0]);
    dev_buf_printf(b, "        \"special_tokens\": {\n          \"%s\": {\n            \"id\": \"%s\",\n"
                  "            \"ids\": [\n              %d\n            ],\n"
                  "            \"tokens\": [\n              \"%s\"\n            ]\n          }\n"
                  "        }\n      }\n    ]\n  },\n",
               special_names[0], special_names[0], TOK_BOS, special_names[0]);
    dev_buf_printf(b, "  \"decoder\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": true,\n"
                  "    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n");
    dev_buf_printf(b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
                  "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
                  "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": true,\n"
                  "    \"vocab\": {\n");
    for (int32_t t = 0; t < v->n; t++) {
        size_t n = token_text(v, t, t1);
        dev_buf_put(b, "      ", 6);
        buf_json_str(b, t1, n);
        dev_buf_printf(b, ": %d%s\n", (int)t, t + 1 < v->n ? "," : "");
    }
    dev_buf_printf(b, "    },\n    \"merges\": [\n");
    for (size_t m = 0; m < v->n_merges; m++) {
        /* "left right": byte-level text never contains a space (a space byte is "Ġ") */
        size_t n1 = token_text(v, v->merges[m].left, t1);
        size_t n2 = token_text(v, v->merges[m].right, t2);
        if (n1 + n2 + 2 > sizeof t1) dev_die("internal: merge text too long");
        t1[n1] = ' ';
        memcpy(t1 + n1 + 1, t2, n2 + 1);
        dev_buf_put(b, "      ", 6);
        buf_json_str(b, t1, n1 + 1 + n2);
        dev_buf_printf(b, "%s\n", m + 1 < v->n_merges ? "," : "");
    }
    dev_buf_printf(b, "    ]\n  }\n}\n");
}

/* ---- tensors ----------------------------------------------------------------------------- */

struct tensor {
    char name[96];
    uint32_t rows, cols; /* cols == 0: a 1-D tensor of `rows` elements */
    uint16_t *bf16;      /* row-major BF16 bits */
    float *f32;          /* the same values as float, for the self-check */
    int shard;           /* 0, 1, 2 in the sharded copy */
};

static size_t tensor_numel(const struct tensor *t) { return (size_t)t->rows * (t->cols ? t->cols : 1); }

/* Random matrix: integers in [-r, r] times 2^e, from the generator seeded by the tensor name. */
static void fill_random(struct tensor *t, int32_t r, int e)
{
    uint64_t st = SEED ^ dev_fnv1a64(t->name);
    for (size_t i = 0; i < tensor_numel(t); i++) t->bf16[i] = bf16_exact(rand_sym(&st, r), e);
}

/* RMSNorm weight: (64 + [-8, 8]) / 64, i.e. 0.875 .. 1.125, so a converter that drops or
** misplaces norm weights is visible in the outputs. */
static void fill_norm(struct tensor *t)
{
    uint64_t st = SEED ^ dev_fnv1a64(t->name);
    for (size_t i = 0; i < tensor_numel(t); i++) t->bf16[i] = bf16_exact(64 + rand_sym(&st, 8), -6);
}

/* Scales (integer range, power of two) of each kind of weight; see the header comment. */
enum { EMB_R = 31, EMB_E = -5, Q_R = 31, Q_E = -7, K_R = 31, K_E = -8, V_R = 31, V_E = -7,
       O_R = 31, O_E = -10, GU_R = 31, GU_E = -7, D_R = 31, D_E = -11, HEAD_CLAMP = 127,
       HEAD_NOISE = 7, HEAD_E = -7 };

/* Most frequent successor of every token in the encoded corpus (BOS starts every line; ties: the
** smaller id). Tokens never followed by anything get a pseudo-random regular token. */
static void successor_table(const struct vocab *v, int32_t *succ)
{
    size_t len = sizeof corpus - 1;
    int32_t *ids = dev_xcalloc(len + 1, sizeof *ids);
    uint32_t *cnt = dev_xcalloc((size_t)N_VOCAB * N_VOCAB, sizeof *cnt);
    /* encode line by line so that each line can start with BOS, as a document would */
    char *line = dev_xcalloc(len + 1, 1);
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && corpus[end] != '\n') end++;
        if (end < len) end++; /* keep the newline */
        memcpy(line, corpus + pos, end - pos);
        line[end - pos] = '\0';
        ids[0] = TOK_BOS;
        size_t n = 1 + encode(v, line, ids + 1);
        for (size_t i = 0; i + 1 < n; i++) cnt[(size_t)ids[i] * N_VOCAB + (size_t)ids[i + 1]]++;
        pos = end;
    }
    uint64_t st = SEED ^ dev_fnv1a64("successor");
    for (int32_t t = 0; t < N_VOCAB; t++) {
        uint32_t best = 0;
        int32_t arg = -1;
        for (int32_t j = 0; j < N_VOCAB; j++)
            if (cnt[(size_t)t * N_VOCAB + j] > best) {
                best = cnt[(size_t)t * N_VOCAB + j];
                arg = j;
            }
        succ[t] = arg >= 0 ? arg : (int32_t)(dev_splitmix64(&st) % N_REGULAR);
    }
    free(line);
    free(cnt);
    free(ids);
}

static struct tensor *add_tensor(struct tensor *ts, size_t *n, const char *name, uint32_t rows, uint32_t cols, int shard)
{
    struct tensor *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->shard = shard;
    t->bf16 = dev_xcalloc(tensor_numel(t), sizeof *t->bf16);
    t->f32 = dev_xcalloc(tensor_numel(t), sizeof *t->f32);
    return t;
}

/*
** Builds every tensor in transformers' state_dict order. The shard split follows that order, as
** save_pretrained's greedy split does: shard 1 = embeddings + layer 0, shard 2 = layer 1,
** shard 3 = final norm + lm_head.
*/
static size_t build_tensors(const struct vocab *v, struct tensor *ts)
{
    size_t n = 0;
    char name[96];
    struct tensor *emb = add_tensor(ts, &n, "model.embed_tokens.weight", N_VOCAB, N_EMBD, 0);
    fill_random(emb, EMB_R, EMB_E);
    for (int l = 0; l < N_LAYER; l++) {
        static const struct { const char *stem; uint32_t rows, cols; int32_t r; int e; } lin[] = {
            {"self_attn.q_proj", N_HEAD * HEAD_DIM, N_EMBD, Q_R, Q_E},
            {"self_attn.k_proj", N_KV_HEAD * HEAD_DIM, N_EMBD, K_R, K_E},
            {"self_attn.v_proj", N_KV_HEAD * HEAD_DIM, N_EMBD, V_R, V_E},
            {"self_attn.o_proj", N_EMBD, N_HEAD * HEAD_DIM, O_R, O_E},
            {"mlp.gate_proj", N_FF, N_EMBD, GU_R, GU_E},
            {"mlp.up_proj", N_FF, N_EMBD, GU_R, GU_E},
            {"mlp.down_proj", N_EMBD, N_FF, D_R, D_E},
        };
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, lin[i].stem);
            fill_random(add_tensor(ts, &n, name, lin[i].rows, lin[i].cols, l), lin[i].r, lin[i].e);
        }
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        fill_norm(add_tensor(ts, &n, name, N_EMBD, 0, l));
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        fill_norm(add_tensor(ts, &n, name, N_EMBD, 0, l));
    }
    fill_norm(add_tensor(ts, &n, "model.norm.weight", N_EMBD, 0, 2));

    /* lm_head: regenerate the embedding integers (same seed) and sum them per successor. */
    int32_t *succ = dev_xcalloc(N_VOCAB, sizeof *succ);
    successor_table(v, succ);
    int32_t *acc = dev_xcalloc((size_t)N_VOCAB * N_EMBD, sizeof *acc);
    uint64_t st = SEED ^ dev_fnv1a64(emb->name);
    for (int32_t t = 0; t < N_VOCAB; t++)
        for (int i = 0; i < N_EMBD; i++) acc[(size_t)succ[t] * N_EMBD + i] += rand_sym(&st, EMB_R);
    struct tensor *head = add_tensor(ts, &n, "lm_head.weight", N_VOCAB, N_EMBD, 2);
    st = SEED ^ dev_fnv1a64(head->name);
    for (size_t i = 0; i < (size_t)N_VOCAB * N_EMBD; i++) {
        int32_t m = acc[i] > HEAD_CLAMP ? HEAD_CLAMP : acc[i] < -HEAD_CLAMP ? -HEAD_CLAMP : acc[i];
        head->bf16[i] = bf16_exact(m + rand_sym(&st, HEAD_NOISE), HEAD_E);
    }
    free(acc);
    free(succ);

    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < tensor_numel(&ts[i]); k++) ts[i].f32[k] = bf16_to_float(ts[i].bf16[k]);
    return n;
}

static const struct tensor *find_tensor(const struct tensor *ts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ts[i].name, name) == 0) return &ts[i];
    dev_die("internal: no tensor %s", name);
}

/* ---- safetensors ------------------------------------------------------------------------- */

static int cmp_tensor_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct tensor *const *)a)->name, (*(const struct tensor *const *)b)->name);
}

/*
** One .safetensors file exactly as the reference (Rust) writer lays it out:
**   u64 LE N | N bytes of compact JSON, `__metadata__` {"format":"pt"} first, then the tensors
**   sorted by dtype (descending; all BF16 here) then name, padded with spaces so 8+N is a
**   multiple of 8 | tensor data back to back in that order (little-endian BF16).
** Returns the tensor data bytes written (for the index's total_size).
*/
static uint64_t write_safetensors(const char *dir, const char *name, const struct tensor *ts, size_t n, int shard)
{
    const struct tensor *sel[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (shard < 0 || ts[i].shard == shard) sel[k++] = &ts[i];
    qsort(sel, k, sizeof sel[0], cmp_tensor_ptr);

    struct dev_buf hdr = {0}, file = {0};
    dev_buf_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < k; i++) {
        uint64_t bytes = (uint64_t)tensor_numel(sel[i]) * 2;
        dev_buf_printf(&hdr, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%u", sel[i]->name, sel[i]->rows);
        if (sel[i]->cols) dev_buf_printf(&hdr, ",%u", sel[i]->cols);
        dev_buf_printf(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    dev_buf_put(&hdr, "}", 1);
    while (hdr.len % 8 != 0) dev_buf_put(&hdr, " ", 1);

    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    dev_buf_put(&file, le, 8);
    dev_buf_put(&file, hdr.p, hdr.len);
    for (size_t i = 0; i < k; i++)
        for (size_t e = 0; e < tensor_numel(sel[i]); e++) {
            uint8_t h[2] = {(uint8_t)(sel[i]->bf16[e] & 0xFF), (uint8_t)(sel[i]->bf16[e] >> 8)};
            dev_buf_put(&file, h, 2);
        }
    dev_write_file(dir, name, file.p, file.len);
    free(hdr.p);
    free(file.p);
    return off;
}

static const char *const shard_names[3] = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"};

/* model.safetensors.index.json as transformers writes it (indent 2, sorted keys, newline). */
static void json_index(struct dev_buf *b, const struct tensor *ts, size_t n, uint64_t total)
{
    const struct tensor *sel[64];
    for (size_t i = 0; i < n; i++) sel[i] = &ts[i];
    qsort(sel, n, sizeof sel[0], cmp_tensor_ptr);
    dev_buf_printf(b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n", (unsigned long long)total);
    for (size_t i = 0; i < n; i++)
        dev_buf_printf(b, "    \"%s\": \"%s\"%s\n", sel[i]->name, shard_names[sel[i]->shard], i + 1 < n ? "," : "");
    dev_buf_printf(b, "  }\n}\n");
}

/* ---- self-check -------------------------------------------------------------------------- */

/* Thresholds of issue 2 (attention scores, top probability) plus one of our own: feeding the
** un-permuted q/k rows to the rotate-half math (what llama.cpp computes when a converter forgets
** the Q/K permutation) must move some logit of every check sentence by at least MIN_LAYOUT_DELTA. */
#define MIN_ATTN_STD 1.0
#define MIN_TOP_PROB 0.3
#define MIN_LAYOUT_DELTA 5.0

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int self_check(const struct vocab *v, const struct tensor *ts, size_t n)
{
    struct llama_ref_config cfg = {N_VOCAB, N_EMBD, N_FF, N_LAYER, N_HEAD, N_KV_HEAD, HEAD_DIM, RMS_EPS, ROPE_THETA};
    struct llama_ref_layer layers[N_LAYER], bad[N_LAYER];
    float *unperm[N_LAYER][2];
    char name[96];
#define W(fmt) (snprintf(name, sizeof name, fmt, l), find_tensor(ts, n, name)->f32)
    for (int l = 0; l < N_LAYER; l++) {
        layers[l] = (struct llama_ref_layer){
            W("model.layers.%d.input_layernorm.weight"), W("model.layers.%d.self_attn.q_proj.weight"),
            W("model.layers.%d.self_attn.k_proj.weight"), W("model.layers.%d.self_attn.v_proj.weight"),
            W("model.layers.%d.self_attn.o_proj.weight"), W("model.layers.%d.post_attention_layernorm.weight"),
            W("model.layers.%d.mlp.gate_proj.weight"), W("model.layers.%d.mlp.up_proj.weight"),
            W("model.layers.%d.mlp.down_proj.weight")};
        bad[l] = layers[l];
        unperm[l][0] = dev_xcalloc((size_t)N_HEAD * HEAD_DIM * N_EMBD, sizeof(float));
        unperm[l][1] = dev_xcalloc((size_t)N_KV_HEAD * HEAD_DIM * N_EMBD, sizeof(float));
        if (llama_ref_permute_rows(layers[l].wq, N_HEAD * HEAD_DIM, N_EMBD, N_HEAD, 0, unperm[l][0]) != 0 ||
            llama_ref_permute_rows(layers[l].wk, N_KV_HEAD * HEAD_DIM, N_EMBD, N_KV_HEAD, 0, unperm[l][1]) != 0)
            dev_die("internal: permutation failed");
        bad[l].wq = unperm[l][0];
        bad[l].wk = unperm[l][1];
    }
#undef W
    struct llama_ref_weights w = {find_tensor(ts, n, "model.embed_tokens.weight")->f32, layers,
                                  find_tensor(ts, n, "model.norm.weight")->f32, find_tensor(ts, n, "lm_head.weight")->f32};
    struct llama_ref_weights wbad = w;
    wbad.layers = bad;
    struct llama_ref_stats stats;
    llama_ref_stats_init(&stats);
    int ok = 1;
    for (size_t s = 0; s < sizeof check_texts / sizeof check_texts[0]; s++) {
        size_t len = strlen(check_texts[s]);
        int32_t *ids = dev_xcalloc(len + 1, sizeof *ids);
        ids[0] = TOK_BOS;
        size_t T = 1 + encode(v, check_texts[s], ids + 1);
        float *logits = dev_xcalloc(T * N_VOCAB, sizeof *logits), *lbad = dev_xcalloc(T * N_VOCAB, sizeof *lbad);
        double *top = dev_xcalloc(T, sizeof *top);
        if (llama_ref_forward(&cfg, &w, ids, T, logits, &stats) != 0 ||
            llama_ref_forward(&cfg, &wbad, ids, T, lbad, NULL) != 0)
            dev_die("reference forward pass failed");
        double sum = 0.0, delta = 0.0;
        int hits = 0, moved = 0;
        for (size_t t = 0; t < T; t++) {
            int arg, arg_bad;
            top[t] = llama_ref_top_prob(logits + t * N_VOCAB, N_VOCAB, &arg);
            llama_ref_top_prob(lbad + t * N_VOCAB, N_VOCAB, &arg_bad);
            sum += top[t];
            if (t + 1 < T && arg == ids[t + 1]) hits++;
            moved += arg != arg_bad;
            for (int k = 0; k < N_VOCAB; k++) {
                double d = fabs((double)logits[t * N_VOCAB + k] - (double)lbad[t * N_VOCAB + k]);
                if (d > delta) delta = d;
            }
        }
        double mean = sum / (double)T;
        qsort(top, T, sizeof *top, cmp_double);
        double median = top[T / 2];
        printf("check %zu: %zu tokens; top probability mean %.3f median %.3f min %.3f; argmax is the actual next "
               "token at %d/%zu; without the Q/K permutation: argmax moves at %d/%zu, max |logit change| %.2f\n",
               s, T, mean, median, top[0], hits, T - 1, moved, T, delta);
        if (mean < MIN_TOP_PROB || median < MIN_TOP_PROB) {
            fprintf(stderr, "mkfixture: FAILED: check %zu: top probability mean %.3f / median %.3f < %.1f\n", s, mean,
                    median, MIN_TOP_PROB);
            ok = 0;
        }
        if (delta < MIN_LAYOUT_DELTA) {
            fprintf(stderr, "mkfixture: FAILED: check %zu: a missing Q/K permutation moves logits by only %.3f\n", s, delta);
            ok = 0;
        }
        free(top);
        free(lbad);
        free(logits);
        free(ids);
    }
    double sd = llama_ref_stats_std(&stats), sd_min = llama_ref_stats_min_layer_std(&stats);
    printf("attention-logit std %.3f (smallest per layer %.3f) over %llu scores\n", sd, sd_min,
           (unsigned long long)stats.count);
    if (sd_min < MIN_ATTN_STD) {
        fprintf(stderr, "mkfixture: FAILED: attention-logit std %.3f < %.1f in some layer\n", sd_min, MIN_ATTN_STD);
        ok = 0;
    }
    for (int l = 0; l < N_LAYER; l++) {
        free(unperm[l][0]);
        free(unperm[l][1]);
    }
    return ok;
}

int main(int argc, char **argv)
{
    dev_set_prog("mkfixture");
    if (argc != 2) {
        fprintf(stderr, "usage: mkfixture OUTDIR\n");
        return 2;
    }
    const char *out = argv[1];

    struct vocab *v = dev_xcalloc(1, sizeof *v);
    learn_bpe(v);
    printf("tokenizer: %d regular tokens (%d merged), %zu merges, vocab_size %d\n", (int)v->n, N_LEARNED,
           v->n_merges, N_VOCAB);

    struct tensor ts[64];
    size_t n = build_tensors(v, ts);
    if (!self_check(v, ts, n)) return 1;

    char sharded[4096];
    if ((size_t)snprintf(sharded, sizeof sharded, "%s/sharded", out) >= sizeof sharded) dev_die("path too long");
    dev_make_dir(out);
    dev_make_dir(sharded);

    struct dev_buf jb[4] = {{0}};
    json_config(&jb[0]);
    json_generation_config(&jb[1]);
    json_tokenizer(&jb[2], v);
    json_tokenizer_config(&jb[3]);
    static const char *const jnames[4] = {"config.json", "generation_config.json", "tokenizer.json",
                                          "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        dev_write_file(out, jnames[i], jb[i].p, jb[i].len);
        dev_write_file(sharded, jnames[i], jb[i].p, jb[i].len);
        free(jb[i].p);
    }

    uint64_t total = write_safetensors(out, "model.safetensors", ts, n, -1);
    uint64_t shard_total = 0;
    for (int s = 0; s < 3; s++) shard_total += write_safetensors(sharded, shard_names[s], ts, n, s);
    if (shard_total != total) dev_die("internal: shards hold %llu bytes, single file %llu", (unsigned long long)shard_total,
                                  (unsigned long long)total);
    struct dev_buf ib = {0};
    json_index(&ib, ts, n, total);
    dev_write_file(sharded, "model.safetensors.index.json", ib.p, ib.len);
    free(ib.p);
    printf("wrote %s: %zu tensors, %llu bytes of tensor data\n", out, n, (unsigned long long)total);

    for (size_t i = 0; i < n; i++) {
        free(ts[i].bf16);
        free(ts[i].f32);
    }
    for (int32_t t = 0; t < v->n; t++) free(v->bytes[t]);
    free(v);
    return 0;
}
