/*
** input.c - mq_model_open(): from a user's path to a validated model.
**
** Accepted inputs, in the order they are tried for a folder (Hugging Face layout):
**   FOLDER/model.safetensors              one file
**   FOLDER/model.safetensors.index.json   sharded
**   FOLDER/adapter_model.safetensors|.bin a PEFT LoRA adapter (with adapter_config.json)
**   FOLDER/<one>.safetensors.index.json   sharded, other prefix (e.g. diffusion_pytorch_model)
**   FOLDER/<one>.safetensors              a single file of another name
**   FOLDER/pytorch_model.bin              PyTorch (torch.save zip), when there is no safetensors
**   FOLDER/pytorch_model.bin.index.json   sharded PyTorch
**   FOLDER/<one>.bin.index.json, FOLDER/<one>.bin|.pt|.pth   the only PyTorch checkpoint
**   FOLDER/<one>.gguf                     when there is no safetensors or PyTorch checkpoint
** A path to a .json file is an index; any other file is given to the reader that bids for it
** (safetensors, GGUF or PyTorch, formats/registry.c). config.json beside a safetensors checkpoint is read
** when present (in an adapter's folder adapter_config.json is read instead: lora_config.c); a GGUF carries its own configuration (gguf_config.c), so config.json beside a
** .gguf is not read. bitsandbytes groups of a safetensors checkpoint then become logical tensors
** (bnb_read.c), and FP8 weights with their block scales become logical F32 tensors (fp8_read.c).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "format.h"
#include "gguf.h"
#include "hf_cache.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool exists_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

struct dir_scan {
    char index[NAME_MAX + 1];   /* one *.safetensors.index.json */
    char single[NAME_MAX + 1];  /* one *.safetensors */
    int n_index, n_single, n_pickle, n_gguf;
    char gguf[NAME_MAX + 1];
    char pickle[NAME_MAX + 1];     /* one *.bin / *.pt / *.pth */
    char bin_index[NAME_MAX + 1];  /* one *.bin.index.json */
    int n_bin_index;
};

static enum mq_status scan_dir(const char *dir, struct dir_scan *ds, struct mq_error *err)
{
    memset(ds, 0, sizeof *ds);
    DIR *d = opendir(dir);
    if (!d) return mq_io_error(err, "cannot open folder", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (ends_with(n, ".safetensors.index.json")) {
            if (ds->n_index++ == 0) snprintf(ds->index, sizeof ds->index, "%s", n);
        } else if (ends_with(n, ".safetensors")) {
            if (ds->n_single++ == 0) snprintf(ds->single, sizeof ds->single, "%s", n);
        } else if (ends_with(n, ".bin.index.json")) {
            if (ds->n_bin_index++ == 0) snprintf(ds->bin_index, sizeof ds->bin_index, "%s", n);
        } else if (ends_with(n, ".bin") || ends_with(n, ".pt") || ends_with(n, ".pth") || ends_with(n, ".ckpt")) {
            if (ds->n_pickle++ == 0) snprintf(ds->pickle, sizeof ds->pickle, "%s", n);
        } else if (ends_with(n, ".gguf")) {
            if (ds->n_gguf++ == 0) snprintf(ds->gguf, sizeof ds->gguf, "%s", n);
        }
    }
    closedir(d);
    return MQ_OK;
}

/* dir + "/" + name into out; false when it does not fit. */
static bool path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

/* Picks the checkpoint file inside a folder; writes its path to `out`. */
static enum mq_status resolve_folder(const char *dir, char *out, size_t cap, struct mq_error *err)
{
    static const char *const preferred[] = {"model.safetensors", "model.safetensors.index.json",
                                            "adapter_model.safetensors", "adapter_model.bin"};
    for (size_t i = 0; i < sizeof preferred / sizeof preferred[0]; i++) {
        if (path_join(out, cap, dir, preferred[i]) && exists_file(out)) return MQ_OK;
    }
    struct dir_scan ds;
    MQ_TRY(scan_dir(dir, &ds, err));
    if (ds.n_index == 1) {
        if (!path_join(out, cap, dir, ds.index)) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", dir);
        return MQ_OK;
    }
    if (ds.n_index == 0 && ds.n_single == 1) {
        if (!path_join(out, cap, dir, ds.single)) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", dir);
        return MQ_OK;
    }
    if (ds.n_index > 1 || ds.n_single > 1)
        return MQ_FAIL(err, MQ_E_USAGE, "ambiguous-folder",
                       "%s: several checkpoints in this folder; name the .safetensors file or the index", dir);
    /* PyTorch (torch.save zip): by its usual names, else the only index or the only file */
    static const char *const pytorch[] = {"pytorch_model.bin", "pytorch_model.bin.index.json"};
    for (size_t i = 0; i < 2; i++) {
        if (path_join(out, cap, dir, pytorch[i]) && exists_file(out)) return MQ_OK;
    }
    if (ds.n_bin_index == 1 || (ds.n_bin_index == 0 && ds.n_pickle == 1)) {
        if (!path_join(out, cap, dir, ds.n_bin_index ? ds.bin_index : ds.pickle))
            return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", dir);
        return MQ_OK;
    }
    if (ds.n_bin_index > 1 || ds.n_pickle > 1)
        return MQ_FAIL(err, MQ_E_USAGE, "ambiguous-folder",
                       "%s: several PyTorch files in this folder and no pytorch_model.bin; name the checkpoint", dir);
    if (ds.n_gguf == 1) {
        if (!path_join(out, cap, dir, ds.gguf)) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", dir);
        return MQ_OK;
    }
    if (ds.n_gguf > 1)
        return MQ_FAIL(err, MQ_E_USAGE, "ambiguous-folder", "%s: several .gguf files in this folder; name one", dir);
    return MQ_FAIL(err, MQ_E_USAGE, "no-checkpoint",
                   "%s: no model.safetensors, index, .safetensors, pytorch_model.bin or .gguf file in this folder", dir);
}

static enum mq_status open_checkpoint_file(struct mq_model *m, const char *path, struct mq_error *err)
{
    if (ends_with(path, ".json")) {
        bool pt = ends_with(path, ".bin.index.json");
        m->format = pt ? "pytorch" : "safetensors";
        return mq_safetensors_read_index(m, path, pt ? &mq_pytorch_reader : &mq_safetensors_reader, err);
    }
    int fd;
    MQ_TRY(mq_open_read(path, &fd, err));
    uint8_t head[MQ_PROBE_BYTES];
    ssize_t got = pread(fd, head, sizeof head, 0);
    close(fd);
    if (got < 0) return MQ_FAIL(err, MQ_E_IO, "io", "%s: cannot read", path);
    const struct mq_reader_ops *r = mq_reader_for(head, (size_t)got, path);
    if (!r) return MQ_FAIL(err, MQ_E_UNSUPPORTED, "format", "%s: not a safetensors, GGUF or PyTorch file (unknown format)", path);
    m->format = r->name;
    return r->read_file(m, path, err);
}

enum mq_status mq_model_open(const char *path, struct mq_model **out, struct mq_error *err)
{
    *out = NULL;
    struct stat st;
    char snapshot[PATH_MAX];
    if (stat(path, &st) != 0) {
        /* not a path: an "org/name[@revision]" in the local Hugging Face cache (hf_cache.c) */
        if (errno != ENOENT || !mq_hf_cache_is_repo_id(path)) return mq_io_error(err, "cannot open", path);
        MQ_TRY(mq_hf_cache_resolve(path, snapshot, sizeof snapshot, err));
        path = snapshot;
        if (stat(path, &st) != 0) return mq_io_error(err, "cannot open", path);
    }
    char file[PATH_MAX];
    char dir[PATH_MAX];
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/') n--;
        if (n >= sizeof dir) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
        MQ_TRY(resolve_folder(dir, file, sizeof file, err));
    } else {
        if (strlen(path) >= sizeof file) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: path too long", path);
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        else snprintf(dir, sizeof dir, ".");
        if (slash == path) snprintf(dir, sizeof dir, "/");
    }
    struct mq_model *m = mq_model_new(path);
    if (!m) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = open_checkpoint_file(m, file, err);
    if (s == MQ_OK && strcmp(m->format, "gguf") != 0) { /* safetensors, pytorch */
        char cfg[PATH_MAX];
        struct stat cs; /* present but not a regular file (a FIFO ...): the loaders refuse it by name */
        /* a PEFT adapter: its config is adapter_config.json; the base model's config.json comes
         * from elsewhere (mq_model_load_base_config), never from the adapter's folder */
        if (path_join(cfg, sizeof cfg, dir, "adapter_config.json") && stat(cfg, &cs) == 0)
            s = mq_lora_config_load(m, cfg, err);
        else if (path_join(cfg, sizeof cfg, dir, "config.json") && stat(cfg, &cs) == 0)
            s = mq_config_load(m, cfg, err);
    }
    if (s == MQ_OK && strcmp(m->format, "safetensors") == 0) s = mq_bnb_read(m, err); /* bitsandbytes groups */
    if (s == MQ_OK && strcmp(m->format, "safetensors") == 0) s = mq_fp8_read(m, err);  /* FP8 + block scales */
    if (s != MQ_OK) {
        mq_model_free(m);
        return s;
    }
    *out = m;
    return MQ_OK;
}

enum mq_status mq_model_open_gguf_part(const char *path, struct mq_model **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_model *m = mq_model_new(path);
    if (!m) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    m->format = "gguf";
    enum mq_status s = mq_gguf_read_part(m, path, NULL, err);
    if (s != MQ_OK) {
        mq_model_free(m);
        return s;
    }
    *out = m;
    return MQ_OK;
}
