/*
** vocab_compare.c - llama.cpp's tokenizer (reading a GGUF modelq wrote) against the Hugging Face
** tokenizers library (reading the tokenizer.json it came from); see vocab_compare.h.
*/
#include "vocab_compare.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf_write.h"
#include "run_cmd.h"

#define JS_PKG "tools/interop-tokenizer/node_modules/@huggingface/tokenizers/package.json"

/* Texts every tokenizer is checked on (each fixture adds its own special-token texts). */
const char *const vc_common_texts[] = {
    "Hello world",
    "The baker walks down to the harbor and the children eat bread.",
    " leading space",
    "trailing space ",
    "  two  spaces,   three spaces and four    at the end    ",
    "   ",
    "x",
    "digits 0 1 22 333 4444 and 2024-05-17",
    "long number 12345678901234567890 and 3.14159265358979",
    "punctuation: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ... -- !!",
    "line one\nline two\n\nparagraph after a blank line\n",
    "tabs\tand\ttabs, carriage\r\nreturns\r\n",
    "\n",
    "accented Latin: caf\xc3\xa9 na\xc3\xafve fa\xc3\xa7" "ade M\xc3\xbcller Stra\xc3\x9f" "e se\xc3\xb1or cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e",
    ("CJK: \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xe4\xb8\xad\xe6\x96\x87 "
     "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"),
    "emoji: \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x87\xab\xf0\x9f\x87\xb7 \xe2\x9d\xa4\xef\xb8\x8f!",
    "Greek and Cyrillic: \xce\xb1\xce\xbb\xcf\x86\xce\xb1 \xce\xb2\xce\xae\xcf\x84\xce\xb1, \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
    "It's they're we'll I'm you've she'd DON'T",
    "code: for (int i = 0; i < n; i++) { sum += a[i] * 2; }",
    "https://example.com/path?q=1&r=two#frag user@example.org",
    "combining e\xcc\x81 and precomposed \xc3\xa9, no-break\xc2\xa0space",
    "MiXeD CaSe WORDS and words",
    "",
};
const size_t VC_N_COMMON = sizeof vc_common_texts / sizeof vc_common_texts[0];


/* ---- dependencies -------------------------------------------------------------------------- */

struct mq_llama vc_llama;
static bool llama_tried, llama_ok;
static char llama_why[1200];

void vc_need_interop(void)
{
    if (!llama_tried) {
        llama_tried = true;
        llama_ok = mq_llama_open(&vc_llama, llama_why, sizeof llama_why);
    }
    const char *why = NULL;
    if (!llama_ok) why = llama_why;
    else if (access(JS_PKG, R_OK) != 0) why = JS_PKG " is missing; run tools/setup.sh (npm ci in tools/interop-tokenizer)";
    if (!why) return;
    const char *ci = getenv("CI");
    if (ci && *ci) cr_assert_fail("llama.cpp and tokenizers.js are required when CI is set: %s", why);
    fprintf(stderr, "SKIP llama.cpp vocabulary comparison: %s (set CI to make this a failure)\n", why);
    cr_skip_test("llama.cpp vocabulary comparison skipped: %s", why);
}

/* ---- a metadata-only GGUF ------------------------------------------------------------------ */

void vc_write_gguf(const char *path, const struct mq_meta *m)
{
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_gguf_write_meta_only(path, m, &err), MQ_OK, "mq_gguf_write_meta_only(%s): %s", path, err.msg);
}

/*
** The llama hyper-parameters a converter writes. llama.cpp v0.5.0 runs load_hparams before the
** vocabulary even with vocab_only, but of these only general.architecture (a known architecture)
** is required there (see vocab_only_load_needs_only_the_architecture); the rest are written so the
** file looks like a real conversion.
*/
void vc_add_vocab_only_hparams(struct mq_meta *m)
{
    struct mq_error err;
    cr_assert_eq(mq_meta_set_str(m, "general.architecture", "llama", SIZE_MAX, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "llama.block_count", 1, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "llama.context_length", 2048, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "llama.embedding_length", 64, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "llama.feed_forward_length", 128, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_u32(m, "llama.attention.head_count", 4, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_f32(m, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err), MQ_OK);
}

/* ---- comparing ids --------------------------------------------------------------------------- */

struct vc_texts vc_texts_for(const char *const *special, size_t n_special)
{
    struct vc_texts t = {.n = 0};
    cr_assert_leq(VC_N_COMMON + n_special, sizeof t.v / sizeof t.v[0]);
    for (size_t i = 0; i < VC_N_COMMON; i++) t.v[t.n++] = vc_common_texts[i];
    for (size_t i = 0; i < n_special; i++) t.v[t.n++] = special[i];
    return t;
}

/* Runs encode.mjs on `dir` and returns its "results" array (caller deletes the root). */
static cJSON *run_js(const char *dir, const struct vc_texts *t, cJSON **root)
{
    char *tmp = make_temp_dir("vocab");
    char in[4096], out[4096], cmd[12288];
    snprintf(in, sizeof in, "%s/texts.json", tmp);
    snprintf(out, sizeof out, "%s/out.json", tmp);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < t->n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(t->v[i]));
    char *json = cJSON_PrintUnformatted(arr);
    cr_assert_not_null(json);
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f, "cannot write %s", in);
    cr_assert_eq(fwrite(json, 1, strlen(json), f), strlen(json));
    cr_assert_eq(fclose(f), 0);
    free(json);
    cJSON_Delete(arr);
    snprintf(cmd, sizeof cmd, "node tools/interop-tokenizer/encode.mjs '%s' '%s' > '%s' 2>&1", dir, in, out);
    int rc = system(cmd);
    char *result = (char *)read_file_all(out, NULL);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "tokenizers.js failed on %s:\n%s", dir,
              result ? result : "");
    *root = cJSON_Parse(result);
    cr_assert_not_null(*root, "unparsable tokenizers.js output:\n%s", result);
    free(result);
    remove_tree(tmp);
    free(tmp);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(*root, "results");
    cr_assert_eq(cJSON_GetArraySize(res), (int)t->n);
    return (cJSON *)res;
}

static void ids_to_text(const int32_t *ids, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < n && o + 16 < cap; k++) o += (size_t)snprintf(buf + o, cap - o, " %d", (int)ids[k]);
}

static void js_ids(const cJSON *arr, int32_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        cr_assert_lt(*n, cap, "tokenizers.js returned more than %zu ids", cap);
        ids[(*n)++] = (int32_t)e->valueint;
    }
}

/*
** llama.cpp (loading `gguf`) against tokenizers.js (reading `dir`) on every text, without and
** with special tokens. Returns the number of texts on which the ids differ when `expect_equal`
** is false (used by the flat-score control), else asserts equality.
*/
size_t vc_compare(const char *gguf, const char *dir, const struct vc_texts *t, bool expect_equal, size_t *n_ids)
{
    char why[6000];
    void *model = mq_llama_load_vocab(&vc_llama, gguf, why, sizeof why);
    cr_assert_not_null(model, "%s", why);
    cJSON *root;
    const cJSON *res = run_js(dir, t, &root);
    size_t differ = 0, total = 0;
    static int32_t ours[8192], theirs[8192];
    for (size_t i = 0; i < t->n; i++) {
        const cJSON *r = cJSON_GetArrayItem(res, (int)i);
        for (int special = 0; special < 2; special++) {
            size_t nt;
            js_ids(cJSON_GetObjectItemCaseSensitive(r, special ? "with_special" : "ids"), theirs, 8192, &nt);
            int32_t n = mq_llama_tokenize(&vc_llama, model, t->v[i], strlen(t->v[i]), special, ours, 8192);
            cr_assert_geq(n, 0, "llama_tokenize failed on text %zu", i);
            total += (size_t)n;
            bool same = (size_t)n == nt && memcmp(ours, theirs, nt * sizeof ours[0]) == 0;
            if (!same) differ++;
            if (expect_equal && !same) {
                char a[4096], b[4096];
                ids_to_text(ours, (size_t)n, a, sizeof a);
                ids_to_text(theirs, nt, b, sizeof b);
                char *toks = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "tokens"));
                cr_assert_fail("%s, text %zu \"%s\" (%s special tokens):\n  llama.cpp      [%s ]\n  tokenizers.js  [%s ]\n"
                               "  tokenizers.js tokens %s",
                               dir, i, t->v[i], special ? "with" : "without", a, b, toks ? toks : "?");
            }
        }
    }
    cJSON_Delete(root);
    mq_llama_free_model(&vc_llama, model);
    if (n_ids) *n_ids = total;
    return differ;
}

