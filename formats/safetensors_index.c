/*
** safetensors_index.c - sharded checkpoints: model.safetensors.index.json, and
** pytorch_model.bin.index.json (the same JSON, PyTorch shards: formats/pytorch_read.c).
**
**   {"metadata": {"total_size": BYTES, "total_parameters": N?},
**    "weight_map": {"TENSOR": "model-00001-of-00003.safetensors", ...}}
**
** Rules (../shared/docs/safetensors-and-vram.md A3):
**   index-json         valid strict JSON object
**   index-weight-map   weight_map is an object of string -> string
**   shard-name         every shard is a plain file name: no '/', '\', not "." or "..", not absolute
**   shard-escapes      after resolving links the shard lies inside the index's folder (or, in a
**                      Hugging Face cache snapshot, in the repository's blobs/ folder, where the
**                      hub keeps the files that snapshot links point to)
**   index-missing-tensor  every tensor in weight_map exists in the shard it names
**   duplicate-name     no tensor lives in two shards
** Warnings (the checkpoint still loads): tensors in a shard but not in weight_map,
** metadata.total_size different from the sum of tensor bytes, "-of-NNNNN" disagreeing with the
** number of shard files. Every shard is fully validated by the safetensors reader.
*/
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "format.h"
#include "json_strict.h"

#define INDEX_MAX_BYTES (100u * 1000 * 1000)
/* JSON values: one per weight_map entry (+ metadata); the header readers' cap (safetensors_read.c) */
#define INDEX_MAX_NODES (1u << 21)

struct wm_entry {
    const char *tensor;
    const char *shard;
};

static int cmp_wm(const void *a, const void *b)
{
    return strcmp(((const struct wm_entry *)a)->tensor, ((const struct wm_entry *)b)->tensor);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool shard_name_ok(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    return strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
}

/* dir of `path` (without trailing slash), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static bool has_prefix_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* Does the resolved shard path stay inside the folder (or the HF cache's blobs/)? */
static bool shard_contained(const char *real_shard, const char *real_dir)
{
    if (has_prefix_dir(real_shard, real_dir)) return true;
    /* <repo>/snapshots/<revision>/ -> <repo>/blobs/<hash> */
    char *rev_parent = dir_of(real_dir);
    bool ok = false;
    if (rev_parent) {
        const char *base = strrchr(rev_parent, '/');
        if (base && strcmp(base + 1, "snapshots") == 0) {
            char *repo = dir_of(rev_parent);
            char blobs[PATH_MAX];
            if (repo && snprintf(blobs, sizeof blobs, "%s/blobs", repo) < (int)sizeof blobs)
                ok = has_prefix_dir(real_shard, blobs) && strchr(real_shard + strlen(blobs) + 1, '/') == NULL;
            free(repo);
        }
    }
    free(rev_parent);
    return ok;
}

static enum mq_status load_shards(struct mq_model *m, const char *index_path, const char *dir,
                                  const struct mq_reader_ops *reader,
                                  struct wm_entry *wm, size_t n_wm, uint64_t total_size, bool has_total,
                                  struct mq_error *err)
{
    /* distinct shard names, sorted (the order convert_hf_to_gguf.py reads them in) */
    const char **shards = malloc((n_wm ? n_wm : 1) * sizeof *shards);
    if (!shards) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", index_path);
    for (size_t i = 0; i < n_wm; i++) shards[i] = wm[i].shard;
    qsort(shards, n_wm, sizeof *shards, cmp_str);
    size_t n_sh = 0;
    for (size_t i = 0; i < n_wm; i++)
        if (n_sh == 0 || strcmp(shards[n_sh - 1], shards[i]) != 0) shards[n_sh++] = shards[i];

    enum mq_status s = MQ_OK;
    char *real_dir = realpath(dir, NULL);
    if (!real_dir) s = MQ_FAIL(err, MQ_E_IO, "io", "%s: cannot resolve folder %s", index_path, dir);
    uint64_t sum = 0;
    for (size_t k = 0; k < n_sh && s == MQ_OK; k++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, shards[k]) >= (int)sizeof path) {
            s = MQ_FAIL(err, MQ_E_LIMIT, "shard-name", "%s: shard-name: path too long", index_path);
            break;
        }
        char *real = realpath(path, NULL);
        if (!real) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "shard-missing", "%s: shard-missing: shard '%s' named by the index does not exist",
                        index_path, shards[k]);
            break;
        }
        bool inside = shard_contained(real, real_dir);
        free(real);
        if (!inside) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "shard-escapes",
                        "%s: shard-escapes: shard '%s' is a link that leaves the model folder", index_path, shards[k]);
            break;
        }
        size_t first = m->n_tensors;
        s = reader->read_file(m, path, err);
        if (s != MQ_OK) break;
        /* every tensor of this shard: named by the index, for this shard? */
        for (size_t i = first; i < m->n_tensors && s == MQ_OK; i++) {
            struct wm_entry key = {m->tensors[i].name, NULL};
            struct wm_entry *hit = bsearch(&key, wm, n_wm, sizeof *wm, cmp_wm);
            sum += m->tensors[i].nbytes;
            if (!hit || strcmp(hit->shard, shards[k]) != 0)
                s = mq_model_warn(m, err, "%s: tensor '%s' is not listed for this shard in %s", path,
                                  m->tensors[i].name, index_path);
        }
    }
    free(real_dir);
    /* every tensor of the index exists, exactly once across shards */
    if (s == MQ_OK) {
        char **names = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *names);
        if (!names) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", index_path);
        for (size_t i = 0; names && i < m->n_tensors; i++) names[i] = m->tensors[i].name;
        if (names) qsort(names, m->n_tensors, sizeof *names, cmp_str);
        for (size_t i = 1; names && i < m->n_tensors && s == MQ_OK; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                s = MQ_FAIL(err, MQ_E_CORRUPT, "duplicate-name", "%s: tensor '%s': duplicate-name: stored in two shards",
                            index_path, names[i]);
        for (size_t i = 0; names && i < n_wm && s == MQ_OK; i++) {
            const char *key = wm[i].tensor;
            if (!bsearch(&key, names, m->n_tensors, sizeof *names, cmp_str))
                s = MQ_FAIL(err, MQ_E_CORRUPT, "index-missing-tensor",
                            "%s: tensor '%s': index-missing-tensor: not found in shard '%s'", index_path, wm[i].tensor,
                            wm[i].shard);
        }
        free(names);
    }
    if (s == MQ_OK && has_total && total_size != sum)
        s = mq_model_warn(m, err, "%s: metadata.total_size is %llu but the shards hold %llu tensor bytes", index_path,
                          (unsigned long long)total_size, (unsigned long long)sum);
    if (s == MQ_OK) {
        unsigned of;
        const char *dash = strstr(shards[0], "-of-");
        if (dash && sscanf(dash, "-of-%u", &of) == 1 && of != n_sh)
            s = mq_model_warn(m, err, "%s: shard names say %u shards but the index uses %zu", index_path, of, n_sh);
    }
    free(shards);
    return s;
}

enum mq_status mq_safetensors_read_index(struct mq_model *m, const char *index_path,
                                         const struct mq_reader_ops *shard_reader, struct mq_error *err)
{
    char *text;
    size_t len;
    MQ_TRY(mq_read_small_file(index_path, INDEX_MAX_BYTES, "index-size", &text, &len, err));
    m->header_bytes_read += len;
    struct json_strict_result jr;
    const struct json_strict_rules rules = {.max_depth = 64, .max_nodes = INDEX_MAX_NODES};
    if (!json_strict_check(text, len, &rules, &jr)) {
        free(text);
        if (strcmp(jr.check, "json-nodes") == 0)
            return MQ_FAIL(err, MQ_E_LIMIT, "index-nodes-limit",
                           "%s: index-nodes-limit: more than %u JSON values (the limit bounds the memory of the "
                           "parsed index)", index_path, INDEX_MAX_NODES);
        if (strcmp(jr.check, "json-alloc") == 0) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", index_path);
        return MQ_FAIL(err, MQ_E_CORRUPT, "index-json", "%s: index-json: %s at byte %zu", index_path, jr.detail, jr.where);
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", index_path);
    enum mq_status s = MQ_OK;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    size_t n_wm = 0;
    struct wm_entry *wm = NULL;
    if (!cJSON_IsObject(map) || !map->child) {
        s = MQ_FAIL(err, MQ_E_CORRUPT, "index-weight-map", "%s: index-weight-map: \"weight_map\" is missing or empty",
                    index_path);
    } else {
        for (const cJSON *c = map->child; c; c = c->next) n_wm++;
        wm = calloc(n_wm, sizeof *wm);
        if (!wm) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", index_path);
        size_t i = 0;
        for (const cJSON *c = map->child; c && s == MQ_OK; c = c->next, i++) {
            if (!cJSON_IsString(c))
                s = MQ_FAIL(err, MQ_E_CORRUPT, "index-weight-map", "%s: tensor '%s': index-weight-map: shard is not a string",
                            index_path, c->string);
            else if (!shard_name_ok(c->valuestring))
                s = MQ_FAIL(err, MQ_E_CORRUPT, "shard-name",
                            "%s: tensor '%s': shard-name: '%s' is not a plain file name in the model folder", index_path,
                            c->string, c->valuestring);
            else
                wm[i] = (struct wm_entry){c->string, c->valuestring};
        }
        if (s == MQ_OK) {
            qsort(wm, n_wm, sizeof *wm, cmp_wm);
            for (size_t k = 1; k < n_wm && s == MQ_OK; k++)
                if (strcmp(wm[k - 1].tensor, wm[k].tensor) == 0)
                    s = MQ_FAIL(err, MQ_E_CORRUPT, "duplicate-name", "%s: tensor '%s': duplicate-name: listed twice in weight_map",
                                index_path, wm[k].tensor);
        }
    }
    uint64_t total = 0;
    bool has_total = false;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *ts = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "total_size") : NULL;
    /* below 2^64 (as a double) so the cast is defined */
    if (cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble < 18446744073709551616.0) {
        total = (uint64_t)ts->valuedouble;
        has_total = true;
    }
    if (s == MQ_OK) {
        char *dir = dir_of(index_path);
        if (!dir) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        else s = load_shards(m, index_path, dir, shard_reader, wm, n_wm, total, has_total, err);
        free(dir);
    }
    free(wm);
    cJSON_Delete(root);
    return s;
}
