/*
** lora_config.c - a PEFT adapter's adapter_config.json, and the base model's config.json it needs.
**
** PEFT (peft/tuners/lora/config.py, LoraConfig) writes one JSON object per adapter. The keys that
** change what the tensors mean are checked here, once, when the folder is opened:
**   peft_type          "LORA" (other PEFT methods store other tensors: refused by name)
**   r, lora_alpha      the rank and alpha; the update is (alpha / r) * B x A
**   use_rslora         rank-stabilised LoRA: alpha / sqrt(r) instead
**   use_dora           DoRA adds a magnitude vector per module: no loader modelq writes for has it
**   fan_in_fan_out     the base weight is stored (in, out) (GPT-2's Conv1D)
**   rank_pattern / alpha_pattern  per-module exceptions (regex -> value)
** Sizes of the file follow config.json's reader (one limit, strict scan, duplicate keys refused).
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_cache.h"
#include "model_build.h"

/* A boolean key: absent = false; anything but true/false/null is an error naming the key. */
static enum mq_status get_bool(const cJSON *root, const char *path, const char *key, bool *out, struct mq_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return MQ_OK;
    if (!cJSON_IsBool(v)) {
        char d[64];
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"%s\" is %s; it should be true or false", path, key,
                       mq_json_describe(v, d, sizeof d));
    }
    *out = cJSON_IsTrue(v);
    return MQ_OK;
}

/* A pattern object ({"regex": value}): non-empty or not; anything but an object or null is an error. */
static enum mq_status get_pattern(const cJSON *root, const char *path, const char *key, bool *out,
                                  struct mq_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return MQ_OK;
    if (!cJSON_IsObject(v)) {
        char d[64];
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"%s\" is %s; it should be an object", path, key,
                       mq_json_describe(v, d, sizeof d));
    }
    *out = v->child != NULL;
    return MQ_OK;
}

/* target_modules: a list of module names (joined by ", ") or one regex string; absent/null = "". */
static enum mq_status get_targets(const cJSON *root, const char *path, char *out, size_t cap, struct mq_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    out[0] = '\0';
    if (!v || cJSON_IsNull(v)) return MQ_OK;
    if (cJSON_IsString(v)) {
        snprintf(out, cap, "%s", v->valuestring);
        return MQ_OK;
    }
    if (!cJSON_IsArray(v))
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"target_modules\" should be a list of names or a "
                       "string", path);
    size_t o = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"target_modules\" holds something that is not "
                           "a string", path);
        if (o < cap) o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "", e->valuestring);
    }
    return MQ_OK;
}

static enum mq_status parse(struct mq_lora_config *lc, const cJSON *root, const char *path, struct mq_error *err)
{
    char d[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && strcmp(v->valuestring, "LORA") == 0))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-type", "%s: \"peft_type\" is %s%s%s: modelq reads LoRA "
                       "adapters only", path, cJSON_IsString(v) ? "\"" : "",
                       cJSON_IsString(v) ? v->valuestring : mq_json_describe(v, d, sizeof d), cJSON_IsString(v) ? "\"" : "");
    v = cJSON_GetObjectItemCaseSensitive(root, "r");
    if (!v) return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: no \"r\" (the LoRA rank)", path);
    /* ranks are small; 2^20 bounds any arithmetic with them */
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1048576 || v->valuedouble != floor(v->valuedouble))
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"r\" is %s; it should be a whole number from 1 "
                       "to 1048576", path, mq_json_describe(v, d, sizeof d));
    lc->r = (uint64_t)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    lc->alpha = 8.0; /* LoraConfig's default */
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0 || v->valuedouble > 3.0e38)
            return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-config", "%s: \"lora_alpha\" is %s; it should be a positive "
                           "number", path, mq_json_describe(v, d, sizeof d));
        lc->alpha = v->valuedouble;
    }
    bool dora;
    MQ_TRY(get_bool(root, path, "use_dora", &dora, err));
    if (dora)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-dora", "%s: \"use_dora\" is true: DoRA adapters (a magnitude "
                       "vector per module) are not supported; llama.cpp's adapters hold LoRA pairs only", path);
    MQ_TRY(get_bool(root, path, "use_rslora", &lc->use_rslora, err));
    MQ_TRY(get_bool(root, path, "fan_in_fan_out", &lc->fan_in_fan_out, err));
    MQ_TRY(get_pattern(root, path, "rank_pattern", &lc->rank_pattern, err));
    MQ_TRY(get_pattern(root, path, "alpha_pattern", &lc->alpha_pattern, err));
    MQ_TRY(get_targets(root, path, lc->targets, sizeof lc->targets, err));
    v = cJSON_GetObjectItemCaseSensitive(root, "base_model_name_or_path");
    if (cJSON_IsString(v)) snprintf(lc->base_model, sizeof lc->base_model, "%s", v->valuestring);
    return MQ_OK;
}

enum mq_status mq_lora_config_load(struct mq_model *m, const char *path, struct mq_error *err)
{
    cJSON *root;
    MQ_TRY(mq_config_read_json(path, &root, NULL, err)); /* same limits and strictness as config.json */
    struct mq_lora_config *lc = calloc(1, sizeof *lc);
    enum mq_status s = lc ? MQ_OK : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK && !(lc->path = strdup(path))) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK) s = parse(lc, root, path, err);
    cJSON_Delete(root);
    if (s != MQ_OK) {
        if (lc) free(lc->path);
        free(lc);
        return s;
    }
    m->lora = lc;
    return MQ_OK;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

enum mq_status mq_model_load_base_config(struct mq_model *m, const char *base, struct mq_error *err)
{
    if (!m->lora)
        return MQ_FAIL(err, MQ_E_USAGE, "base", "%s: not a LoRA adapter folder (no adapter_config.json): a base model "
                       "is only needed for adapters", m->input_path);
    char dir[4096], cfg[4200];
    const char *from = base ? base : m->lora->base_model;
    if (!base && !from[0])
        return MQ_FAIL(err, MQ_E_USAGE, "base", "%s: no \"base_model_name_or_path\": name the base model with --base "
                       "BASE_DIR (its config.json is enough)", m->lora->path);
    struct stat st;
    if (stat(from, &st) == 0) {
        snprintf(dir, sizeof dir, "%s", from);
    } else if (mq_hf_cache_is_repo_id(from)) {
        enum mq_status s = mq_hf_cache_resolve(from, dir, sizeof dir, err);
        if (s != MQ_OK && !base) {
            /* say where the name came from and how to do without the cache */
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return MQ_FAIL(err, s, "base", "%s: base model \"%s\": %s; name it with --base BASE_DIR", m->lora->path,
                           from, why);
        }
        MQ_TRY(s);
    } else {
        return MQ_FAIL(err, base ? MQ_E_IO : MQ_E_USAGE, "base", "%s: base model \"%s\" is no folder here%s", base ?
                       base : m->lora->path, from, base ? "" : " and not a Hugging Face id; name it with --base BASE_DIR");
    }
    if (is_dir(dir)) snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    else snprintf(cfg, sizeof cfg, "%s", dir); /* a config.json named directly */
    if (stat(cfg, &st) != 0)
        return MQ_FAIL(err, MQ_E_IO, "base", "%s: no config.json (the base model's configuration)", dir);
    return mq_config_load(m, cfg, err);
}
