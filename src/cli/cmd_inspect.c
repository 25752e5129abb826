/* cmd_inspect.c - `modelq inspect PATH [--json]`: metadata, one row per tensor, totals by dtype. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modelq/model.h"

#define INSPECT_SCHEMA_VERSION 1

static const char *const inspect_help =
    "usage: modelq inspect PATH [--json]\n"
    "\n"
    "PATH: a .safetensors file, a model.safetensors.index.json, or a Hugging Face model folder.\n"
    "Prints the metadata, then one row per tensor (name, dtype, shape, parameters, bytes, shard),\n"
    "then totals by dtype. Reads headers only.\n"
    "  --json   the same as one JSON document (field \"schema_version\" = 1)\n";

struct dtype_total {
    uint64_t tensors, params, bytes;
};

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void totals(const struct mq_model *m, struct dtype_total *by, struct dtype_total *all)
{
    memset(by, 0, sizeof(struct dtype_total) * MQ_DTYPE_COUNT);
    memset(all, 0, sizeof *all);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        by[t->dtype].tensors++;
        by[t->dtype].params += t->numel;
        by[t->dtype].bytes += t->nbytes;
        all->tensors++;
        all->params += t->numel;
        all->bytes += t->nbytes;
    }
}

static void print_text(const struct mq_model *m)
{
    char a[64], b[64], sh[256];
    printf("input:    %s\n", m->input_path);
    printf("format:   %s, %zu file%s\n", m->format, m->n_files, m->n_files == 1 ? "" : "s");
    for (size_t i = 0; i < m->n_files; i++)
        printf("  file %zu: %s (%s bytes, header %s bytes)\n", i, m->files[i].path, cli_group(m->files[i].size, a, sizeof a),
               cli_group(m->files[i].data_start, b, sizeof b));
    const struct mq_config *c = &m->config;
    if (c->present) {
        printf("config:   %s (%s %s), layers %" PRIu64 ", hidden %" PRIu64 ", heads %" PRIu64 " (kv %" PRIu64
               "), head_dim %" PRIu64 ", ffn %" PRIu64 ", vocab %" PRIu64 ", dtype %s\n",
               c->path, c->model_type[0] ? c->model_type : "?", c->architecture[0] ? c->architecture : "?", c->num_layers,
               c->hidden_size, c->num_heads, c->num_kv_heads, c->head_dim, c->intermediate_size, c->vocab_size,
               c->torch_dtype[0] ? c->torch_dtype : "?");
    } else {
        printf("config:   none (no config.json beside the checkpoint)\n");
    }
    printf("metadata: %zu entr%s\n", m->n_metadata, m->n_metadata == 1 ? "y" : "ies");
    for (size_t i = 0; i < m->n_metadata; i++) printf("  %s = %s\n", m->metadata[i].key, m->metadata[i].value);

    size_t w = 4;
    for (size_t i = 0; i < m->n_tensors; i++) {
        size_t l = strlen(m->tensors[i].name);
        if (l > w) w = l;
    }
    if (w > 72) w = 72;
    printf("\n%-*s  %-11s %-22s %15s %15s  %s\n", (int)w, "name", "dtype", "shape", "parameters", "bytes", "shard");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        printf("%-*s  %-11s %-22s %15s %15s  %s\n", (int)w, t->name, mq_dtype_name(t->dtype),
               cli_shape(t->shape, t->ndim, sh, sizeof sh), cli_group(t->numel, a, sizeof a),
               cli_group(t->nbytes, b, sizeof b), base_name(m->files[t->file].path));
    }
    struct dtype_total by[MQ_DTYPE_COUNT], all;
    totals(m, by, &all);
    printf("\ntotals by dtype:\n");
    for (int d = 0; d < MQ_DTYPE_COUNT; d++) {
        if (!by[d].tensors) continue;
        printf("  %-11s %6" PRIu64 " tensors %18s parameters %18s bytes\n", mq_dtype_name((enum mq_dtype)d),
               by[d].tensors, cli_group(by[d].params, a, sizeof a), cli_group(by[d].bytes, b, sizeof b));
    }
    printf("  %-11s %6" PRIu64 " tensors %18s parameters %18s bytes (%.4f GB, %.4f GiB)\n", "all", all.tensors,
           cli_group(all.params, a, sizeof a), cli_group(all.bytes, b, sizeof b), (double)all.bytes / 1e9,
           (double)all.bytes / 1073741824.0);
}

static int print_json(const struct mq_model *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "schema_version", INSPECT_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "input", m->input_path);
    cJSON_AddStringToObject(root, "format", m->format);
    cJSON *files = cJSON_AddArrayToObject(root, "files");
    for (size_t i = 0; i < m->n_files; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", m->files[i].path);
        cJSON_AddNumberToObject(f, "bytes", (double)m->files[i].size);
        cJSON_AddNumberToObject(f, "header_bytes", (double)m->files[i].data_start);
        cJSON_AddItemToArray(files, f);
    }
    const struct mq_config *c = &m->config;
    if (c->present) {
        cJSON *cj = cJSON_AddObjectToObject(root, "config");
        cJSON_AddStringToObject(cj, "path", c->path);
        cJSON_AddStringToObject(cj, "model_type", c->model_type);
        cJSON_AddStringToObject(cj, "architecture", c->architecture);
        cJSON_AddStringToObject(cj, "torch_dtype", c->torch_dtype);
        cJSON_AddNumberToObject(cj, "num_layers", (double)c->num_layers);
        cJSON_AddNumberToObject(cj, "hidden_size", (double)c->hidden_size);
        cJSON_AddNumberToObject(cj, "intermediate_size", (double)c->intermediate_size);
        cJSON_AddNumberToObject(cj, "num_heads", (double)c->num_heads);
        cJSON_AddNumberToObject(cj, "num_kv_heads", (double)c->num_kv_heads);
        cJSON_AddNumberToObject(cj, "head_dim", (double)c->head_dim);
        cJSON_AddNumberToObject(cj, "vocab_size", (double)c->vocab_size);
    } else {
        cJSON_AddNullToObject(root, "config");
    }
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    for (size_t i = 0; i < m->n_metadata; i++) cJSON_AddStringToObject(md, m->metadata[i].key, m->metadata[i].value);
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "dtype", mq_dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(o, "parameters", (double)t->numel);
        cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
        cJSON_AddNumberToObject(o, "offset", (double)t->offset);
        cJSON_AddStringToObject(o, "shard", base_name(m->files[t->file].path));
        cJSON_AddItemToArray(ts, o);
    }
    struct dtype_total by[MQ_DTYPE_COUNT], all;
    totals(m, by, &all);
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    cJSON *byd = cJSON_AddObjectToObject(tot, "by_dtype");
    for (int d = 0; d < MQ_DTYPE_COUNT; d++) {
        if (!by[d].tensors) continue;
        cJSON *o = cJSON_AddObjectToObject(byd, mq_dtype_name((enum mq_dtype)d));
        cJSON_AddNumberToObject(o, "tensors", (double)by[d].tensors);
        cJSON_AddNumberToObject(o, "parameters", (double)by[d].params);
        cJSON_AddNumberToObject(o, "bytes", (double)by[d].bytes);
    }
    cJSON_AddNumberToObject(tot, "tensors", (double)all.tensors);
    cJSON_AddNumberToObject(tot, "parameters", (double)all.params);
    cJSON_AddNumberToObject(tot, "bytes", (double)all.bytes);
    cJSON *warn = cJSON_AddArrayToObject(root, "warnings");
    for (size_t i = 0; i < m->n_warnings; i++) cJSON_AddItemToArray(warn, cJSON_CreateString(m->warnings[i]));
    return cli_print_json(root);
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(inspect_help, stdout);
            return EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        else if (path) return cli_usage_error("inspect", "one PATH only");
        else path = argv[i];
    }
    if (!path) return cli_usage_error("inspect", "missing PATH");
    struct mq_error err;
    mq_error_clear(&err);
    struct mq_model *m;
    if (mq_model_open(path, &m, &err) != MQ_OK) return cli_fail(&err);
    int rc = EXIT_OK;
    if (json) rc = print_json(m);
    else print_text(m);
    if (!json)
        for (size_t i = 0; i < m->n_warnings; i++) fprintf(stderr, "modelq: warning: %s\n", m->warnings[i]);
    mq_model_free(m);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "modelq: error: cannot write to standard output\n");
        return EXIT_IO;
    }
    return rc;
}
