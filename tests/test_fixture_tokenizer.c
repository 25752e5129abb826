/*
** test_fixture_tokenizer.c - testdata/tiny-llama's tokenizer is a real Hugging Face tokenizer:
** the structure the tokenizers library expects, a vocabulary that matches config.json, special
** tokens that agree across config.json / generation_config.json / tokenizer_config.json, and -
** through tools/interop-tokenizer (the pinned JavaScript @huggingface/tokenizers, installed by
** `npm ci` there) - the real library loads it and encodes text exactly as our C encoder does.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_cmd.h"
#include "test_fixture_tok.h"

#define FIXTURE "testdata/tiny-llama"

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "\"%s\" is not a string", key);
    return v->valuestring;
}

static int jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", key);
    return v->valueint;
}

/* ASCII texts: contractions, digit runs, space runs, newlines, punctuation, unseen words. */
static const char *const texts[] = {
    "The harbor town woke up before the sun.",
    "In the spring the town was busy again, and the children played in the streets.",
    "It's 2024: the keeper's book had 365 pages -- weather, wind & waves!!",
    "Unseen words: zebra, quartz, xylophone; JSON {\"a\": [1, 2]}.",
    "two  spaces,   three spaces\tand a tab\n\nnew paragraph\r\nwindows line\n",
    "  leading spaces and trailing ones   ",
    "CAPITALS SHOUT, they'LL and WE'RE and I'M and you'VE",
};

Test(fixture_tokenizer, structure_vocab_and_special_tokens)
{
    struct fx_tokenizer tk;
    char why[512];
    cr_assert_eq(fx_tokenizer_load(FIXTURE "/tokenizer.json", &tk, why, sizeof why), 0, "%s", why);
    cJSON *tj = load_json(FIXTURE "/tokenizer.json");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    cr_assert_str_eq(jstr(cJSON_GetObjectItemCaseSensitive(tj, "decoder"), "type"), "ByteLevel");
    cr_assert_str_eq(jstr(cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer"), "type"), "Sequence");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")));
    cr_assert_str_eq(jstr(tj, "version"), "1.0");

    /* a few hundred tokens: 256 bytes plus learned merges, every merge used to build a token */
    cr_assert_geq(tk.n_vocab, 256 + 100);
    cr_assert_geq(tk.n_merges, (size_t)(tk.n_vocab - 256), "%zu merges cannot build %d tokens", tk.n_merges,
                  (int)(tk.n_vocab - 256));
    for (int32_t t = 256; t < tk.n_vocab; t++) {
        size_t m;
        for (m = 0; m < tk.n_merges && tk.merges[m].result != t; m++) {}
        cr_assert_lt(m, tk.n_merges, "token %d is produced by no merge", (int)t);
    }

    cJSON *cfg = load_json(FIXTURE "/config.json");
    cJSON *gen = load_json(FIXTURE "/generation_config.json");
    cJSON *tcfg = load_json(FIXTURE "/tokenizer_config.json");
    cr_assert_eq(tk.total, jint(cfg, "vocab_size"), "tokenizer has %d tokens, config.json vocab_size %d", (int)tk.total,
                 jint(cfg, "vocab_size"));
    int32_t bos = fx_added_id(&tk, "<|begin_of_text|>"), eos = fx_added_id(&tk, "<|end_of_text|>");
    cr_assert(bos >= tk.n_vocab && eos >= tk.n_vocab, "special tokens must be added tokens outside model.vocab");
    cr_assert_eq(jint(cfg, "bos_token_id"), bos);
    cr_assert_eq(jint(cfg, "eos_token_id"), eos);
    cr_assert_eq(jint(gen, "bos_token_id"), bos);
    cr_assert_eq(jint(gen, "eos_token_id"), eos);
    cr_assert_str_eq(jstr(tcfg, "bos_token"), "<|begin_of_text|>");
    cr_assert_str_eq(jstr(tcfg, "eos_token"), "<|end_of_text|>");
    for (size_t i = 0; i < tk.n_added; i++) cr_assert(tk.added[i].special, "added token %s not special", tk.added[i].content);
    cJSON_Delete(cfg);
    cJSON_Delete(gen);
    cJSON_Delete(tcfg);
    cJSON_Delete(tj);
    fx_tokenizer_free(&tk);
}

Test(fixture_tokenizer, sharded_copy_has_the_same_json_files)
{
    static const char *const names[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, FIXTURE "/%s", names[i]);
        snprintf(b, sizeof b, FIXTURE "/sharded/%s", names[i]);
        size_t la = 0, lb = 0;
        char *ta = (char *)read_file_all(a, &la), *tb = (char *)read_file_all(b, &lb);
        cr_assert(ta && tb, "cannot read %s or %s", a, b);
        cr_assert(la == lb && memcmp(ta, tb, la) == 0, "%s and %s differ", a, b);
        free(ta);
        free(tb);
    }
}

Test(fixture_tokenizer, c_encoder_round_trips_and_uses_merges)
{
    struct fx_tokenizer tk;
    char why[512];
    cr_assert_eq(fx_tokenizer_load(FIXTURE "/tokenizer.json", &tk, why, sizeof why), 0, "%s", why);
    size_t total_bytes = 0, total_ids = 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n;
        int32_t *ids = fx_encode(&tk, texts[i], &n);
        cr_assert_not_null(ids);
        char back[1024];
        size_t o = 0;
        for (size_t k = 0; k < n; k++) {
            cr_assert(ids[k] >= 0 && ids[k] < tk.n_vocab);
            cr_assert_lt(o + tk.vocab[ids[k]].len, sizeof back);
            memcpy(back + o, tk.vocab[ids[k]].bytes, tk.vocab[ids[k]].len);
            o += tk.vocab[ids[k]].len;
        }
        back[o] = '\0';
        cr_assert_str_eq(back, texts[i], "decode(encode(text)) differs");
        total_bytes += strlen(texts[i]);
        total_ids += n;
        free(ids);
    }
    /* the learned merges compress English: clearly fewer tokens than bytes */
    cr_assert_lt(total_ids * 10, total_bytes * 7, "%zu tokens for %zu bytes", total_ids, total_bytes);
    fx_tokenizer_free(&tk);
}

/* Runs the JavaScript tokenizer on `texts` and returns its parsed JSON output. */
static cJSON *run_js(void)
{
    cr_assert_eq(access("tools/interop-tokenizer/node_modules/@huggingface/tokenizers/package.json", R_OK), 0,
                 "tools/interop-tokenizer/node_modules is missing: run tools/setup.sh (npm ci there)");
    char dir[] = "/tmp/modelq-tok-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in[256], out[256], cmd[1024];
    snprintf(in, sizeof in, "%s/texts.json", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(texts[i]));
    char *json = cJSON_PrintUnformatted(arr);
    FILE *f = fopen(in, "wb");
    cr_assert(f && json);
    fputs(json, f);
    fclose(f);
    free(json);
    cJSON_Delete(arr);
    snprintf(cmd, sizeof cmd, "node tools/interop-tokenizer/encode.mjs " FIXTURE " '%s' > '%s' 2>&1", in, out);
    int rc = system(cmd);
    char *result = (char *)read_file_all(out, NULL);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "the JavaScript tokenizer failed:\n%s",
              result ? result : "");
    cJSON *j = cJSON_Parse(result);
    cr_assert_not_null(j, "unparsable output:\n%s", result);
    free(result);
    unlink(in);
    unlink(out);
    rmdir(dir);
    return j;
}

Test(fixture_tokenizer, javascript_tokenizers_loads_it_and_agrees)
{
    struct fx_tokenizer tk;
    char why[512];
    cr_assert_eq(fx_tokenizer_load(FIXTURE "/tokenizer.json", &tk, why, sizeof why), 0, "%s", why);
    int32_t bos = fx_added_id(&tk, "<|begin_of_text|>");
    cJSON *j = run_js();
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(j, "results");
    cr_assert_eq(cJSON_GetArraySize(results), (int)(sizeof texts / sizeof texts[0]));
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const cJSON *r = cJSON_GetArrayItem(results, (int)i);
        const cJSON *js_ids = cJSON_GetObjectItemCaseSensitive(r, "ids");
        const cJSON *js_special = cJSON_GetObjectItemCaseSensitive(r, "with_special");
        size_t n;
        int32_t *ids = fx_encode(&tk, texts[i], &n);
        cr_assert_not_null(ids);
        char mine[2048] = "", theirs[2048] = "";
        for (size_t k = 0; k < n; k++) snprintf(mine + strlen(mine), sizeof mine - strlen(mine), " %d", (int)ids[k]);
        const cJSON *e;
        cJSON_ArrayForEach(e, js_ids) snprintf(theirs + strlen(theirs), sizeof theirs - strlen(theirs), " %d", e->valueint);
        cr_assert_str_eq(theirs, mine, "text %zu \"%s\": JavaScript ids [%s ] vs C ids [%s ]", i, texts[i], theirs, mine);
        /* the post-processor prepends BOS, as Llama 3's template does */
        cr_assert_eq(cJSON_GetArraySize(js_special), (int)n + 1);
        cr_assert_eq(cJSON_GetArrayItem(js_special, 0)->valueint, bos);
        cr_assert_str_eq(jstr(r, "decoded"), texts[i], "JavaScript decode differs for text %zu", i);
        free(ids);
    }
    cJSON_Delete(j);
    fx_tokenizer_free(&tk);
}
