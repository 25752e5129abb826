/*
** pytorch_read.c - PyTorch checkpoints (torch.save since 1.6: a zip), read without Python.
**
** Layout (torch/serialization.py _save, caffe2/serialize/inline_container.h), all entries under
** one folder named after the archive ("archive/" since torch 1.13... older versions use the file
** stem):
**   <a>/data.pkl        the pickled object: for a checkpoint, a state dict {name: tensor}
**   <a>/data/<key>      one storage per key: numel elements of its dtype, raw little-endian,
**                       written STORED (uncompressed) and, since torch 2.x, 64-byte aligned
**   <a>/version, <a>/byteorder ("little"; absent before torch 2.1), <a>/.data/...  (not read)
** Each tensor is (storage key, storage_offset, size, stride) in elements (pickle_read.h).
**
** Checks (the `check` of each error), after the zip's own (zip_read.c) and the unpickler's
** (pickle_read.c): pytorch-legacy (the pre-1.6 format: a bare pickle), pytorch-layout (no or
** several <a>/data.pkl), pytorch-byteorder, pytorch-storage (key not in the zip, or one key used
** with two dtypes or sizes), pytorch-compressed (a deflated storage: tensor data is read in place
** by pread), pytorch-storage-size (numel x element size > entry size), pytorch-view (negative
** size or stride, a view reaching past its storage), size-overflow, duplicate-name.
** Nothing reads tensor data here; mq_model_read gathers views and checks each storage's CRC-32
** on first use (src/tensor_view.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckd.h"
#include "fileio.h"
#include "format.h"
#include "pickle_read.h"
#include "tensor_view.h"
#include "zip_read.h"

/* data.pkl is read whole: ~150 bytes per tensor, so 128 MiB is ~900 000 tensors. */
#define PKL_MAX_BYTES (128u << 20)

static const uint8_t zip_magic[4] = {'P', 'K', 3, 4};

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool pytorch_name(const char *path)
{
    return has_suffix(path, ".bin") || has_suffix(path, ".pt") || has_suffix(path, ".pth") || has_suffix(path, ".ckpt");
}

static int pt_probe(const uint8_t *head, size_t len, const char *path)
{
    bool zip = len >= 4 && memcmp(head, zip_magic, 4) == 0;
    if (zip) return pytorch_name(path) ? 90 : 30;
    /* anything else named like a PyTorch file comes here for a precise refusal (legacy, damaged) */
    return pytorch_name(path) ? 20 : 0;
}

struct storage_slot {
    const char *key;
    struct mq_storage *st;
    enum mq_dtype dtype;
    uint64_t numel;
    size_t first; /* a tensor that uses it (for messages) */
};

static int cmp_slot(const void *a, const void *b)
{
    return strcmp(((const struct storage_slot *)a)->key, ((const struct storage_slot *)b)->key);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The folder of <a>/data.pkl: exactly one entry "<a>/data.pkl" with no other '/'. */
static enum mq_status find_pickle(const struct mq_zip *z, const char *path, const struct mq_zip_entry **pkl,
                                  struct mq_error *err)
{
    *pkl = NULL;
    for (size_t i = 0; i < z->n; i++) {
        const char *nm = z->e[i].name, *slash = strchr(nm, '/');
        if (!slash || slash == nm || strcmp(slash, "/data.pkl") != 0) continue;
        if (*pkl)
            return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-layout", "%s: pytorch-layout: two pickles ('%s' and '%s')", path,
                           (*pkl)->name, nm);
        *pkl = &z->e[i];
    }
    if (!*pkl)
        return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-layout",
                       "%s: pytorch-layout: a zip without <archive>/data.pkl is not a torch.save checkpoint", path);
    return MQ_OK;
}

static enum mq_status check_byteorder(const struct mq_zip *z, const char *path, const char *prefix, struct mq_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const struct mq_zip_entry *e = mq_zip_find(z, name);
    if (!e) return MQ_OK; /* written since torch 2.1; older files are little-endian */
    uint8_t *b;
    size_t n;
    MQ_TRY(mq_zip_read_entry(z, e, 16, &b, &n, err));
    bool little = n == 6 && memcmp(b, "little", 6) == 0;
    free(b);
    if (!little)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "pytorch-byteorder",
                       "%s: pytorch-byteorder: '%s' is not \"little\" (big-endian checkpoints are not read)", path, name);
    return MQ_OK;
}

/* The storage of entry <prefix>data/<key>: present, stored, large enough for what the pickle declares. */
static enum mq_status make_storage(uint32_t file, const struct mq_zip *z, const char *path, const char *prefix,
                                   const struct mq_pickle_tensor *t, struct storage_slot *slot, struct mq_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%sdata/%s", prefix, t->key); /* prefix < 256, key <= 64 bytes */
    const struct mq_zip_entry *e = mq_zip_find(z, name);
    if (!e)
        return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-storage",
                       "%s: tensor '%s': pytorch-storage: storage '%s' (entry '%s') is not in the zip", path, t->name,
                       t->key, name);
    if (e->method != MQ_ZIP_STORED)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "pytorch-compressed",
                       "%s: tensor '%s': pytorch-compressed: storage entry '%s' is deflated; tensor data is read in place and "
                       "must be stored uncompressed, as torch.save writes it",
                       path, t->name, name);
    uint64_t bytes;
    unsigned esz = mq_dtype_bits(t->dtype) / 8;
    if (mq_ckd_mul_u64(&bytes, t->storage_numel, esz) || bytes > e->usize)
        return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-storage-size",
                       "%s: tensor '%s': pytorch-storage-size: storage '%s' declares %llu elements of %s but its entry holds "
                       "%llu bytes",
                       path, t->name, t->key, (unsigned long long)t->storage_numel, mq_dtype_name(t->dtype),
                       (unsigned long long)e->usize);
    slot->st = mq_storage_new(file, name, e->data_offset, e->usize, e->crc32);
    if (!slot->st) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    return MQ_OK;
}

/* One slot per distinct storage key (sorted), each used with one dtype and size throughout. */
static enum mq_status make_storages(uint32_t file, const struct mq_zip *z, const char *path, const char *prefix,
                                    const struct mq_state_dict *sd, struct storage_slot *slots, size_t *n_slots,
                                    struct mq_error *err)
{
    for (size_t i = 0; i < sd->n; i++)
        slots[i] = (struct storage_slot){sd->t[i].key, NULL, sd->t[i].dtype, sd->t[i].storage_numel, i};
    qsort(slots, sd->n, sizeof *slots, cmp_slot);
    size_t n = 0;
    for (size_t i = 0; i < sd->n; i++) {
        if (n > 0 && strcmp(slots[n - 1].key, slots[i].key) == 0) {
            const struct mq_pickle_tensor *t = &sd->t[slots[i].first];
            if (slots[n - 1].dtype != slots[i].dtype || slots[n - 1].numel != slots[i].numel)
                return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-storage",
                               "%s: tensor '%s': pytorch-storage: storage '%s' is declared as %llu %s and as %llu %s", path,
                               t->name, t->key, (unsigned long long)slots[n - 1].numel, mq_dtype_name(slots[n - 1].dtype),
                               (unsigned long long)slots[i].numel, mq_dtype_name(slots[i].dtype));
            continue;
        }
        slots[n++] = slots[i];
    }
    *n_slots = n;
    for (size_t i = 0; i < n; i++) MQ_TRY(make_storage(file, z, path, prefix, &sd->t[slots[i].first], &slots[i], err));
    return MQ_OK;
}

/* One state dict entry as a model tensor with a view of its storage. */
static enum mq_status add_tensor(struct mq_model *m, uint32_t file, const char *path, const struct mq_pickle_tensor *pt,
                                 struct storage_slot *slot, struct mq_error *err)
{
    struct mq_tensor t = {0};
    uint64_t stride[MQ_MAX_DIMS];
    t.ndim = pt->ndim;
    t.numel = 1;
    for (uint32_t d = 0; d < pt->ndim; d++) {
        if (pt->shape[d] < 0 || pt->stride[d] < 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-view", "%s: tensor '%s': pytorch-view: dimension %u has size %lld, stride %lld (negative)",
                           path, pt->name, d, (long long)pt->shape[d], (long long)pt->stride[d]);
        t.shape[d] = (uint64_t)pt->shape[d];
        stride[d] = (uint64_t)pt->stride[d];
        if (mq_ckd_mul_u64(&t.numel, t.numel, t.shape[d]))
            return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: tensor '%s': size-overflow: element count overflows 64 bits",
                           path, pt->name);
    }
    unsigned esz = mq_dtype_bits(pt->dtype) / 8;
    uint64_t extent;
    if (mq_ckd_mul_u64(&t.nbytes, t.numel, esz) ||
        mq_view_extent(pt->offset, pt->ndim, t.shape, stride, &extent))
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: tensor '%s': size-overflow: the view's extent overflows 64 bits",
                       path, pt->name);
    if (extent > slot->numel)
        return MQ_FAIL(err, MQ_E_CORRUPT, "pytorch-view",
                       "%s: tensor '%s': pytorch-view: offset %llu, shape and strides reach element %llu of storage '%s', "
                       "which has %llu",
                       path, pt->name, (unsigned long long)pt->offset, (unsigned long long)(extent - 1), slot->key,
                       (unsigned long long)slot->numel);
    struct mq_view *v = calloc(1, sizeof *v);
    t.name = strdup(pt->name);
    if (!v || !t.name) {
        free(v);
        free(t.name);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    v->storage = slot->st;
    slot->st->refs++;
    v->esz = esz;
    v->elem_offset = t.numel ? pt->offset : 0;
    v->ndim = pt->ndim;
    memcpy(v->shape, t.shape, sizeof v->shape);
    memcpy(v->stride, stride, sizeof stride);
    v->contiguous = mq_view_is_contiguous(pt->ndim, t.shape, stride);
    t.dtype = pt->dtype;
    t.file = file;
    t.offset = slot->st->offset + v->elem_offset * esz; /* the data, when contiguous */
    t.view = v;
    enum mq_status s = mq_model_add_tensor(m, &t, err);
    if (s != MQ_OK) {
        free(t.name);
        mq_view_free(v);
    }
    return s;
}

static enum mq_status load_state_dict(struct mq_model *m, uint32_t file, const struct mq_zip *z, const char *path,
                                      const char *prefix, const struct mq_state_dict *sd, struct mq_error *err)
{
    /* names: each once */
    const char **names = malloc((sd->n ? sd->n : 1) * sizeof *names);
    struct storage_slot *slots = calloc(sd->n ? sd->n : 1, sizeof *slots);
    enum mq_status s = MQ_OK;
    if (!names || !slots) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    for (size_t i = 0; s == MQ_OK && i < sd->n; i++) names[i] = sd->t[i].name;
    if (s == MQ_OK) qsort(names, sd->n, sizeof *names, cmp_str);
    for (size_t i = 1; s == MQ_OK && i < sd->n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            s = MQ_FAIL(err, MQ_E_CORRUPT, "duplicate-name", "%s: tensor '%s': duplicate-name: the state dict names it twice",
                        path, names[i]);
    size_t n_slots = 0;
    if (s == MQ_OK) s = make_storages(file, z, path, prefix, sd, slots, &n_slots, err);
    for (size_t i = 0; s == MQ_OK && i < sd->n; i++) {
        struct storage_slot key = {.key = sd->t[i].key};
        struct storage_slot *slot = bsearch(&key, slots, n_slots, sizeof *slots, cmp_slot);
        s = add_tensor(m, file, path, &sd->t[i], slot, err);
    }
    for (size_t i = 0; slots && i < n_slots; i++) mq_storage_unref(slots[i].st); /* the views hold theirs */
    free(slots);
    free(names);
    return s;
}

static enum mq_status pt_read_file(struct mq_model *m, const char *path, struct mq_error *err)
{
    int fd;
    uint64_t size;
    uint32_t file;
    enum mq_status s = MQ_OK;
    MQ_TRY(mq_model_open_file(m, path, &fd, &size, &file, err));
    uint8_t head[4] = {0};
    if (size >= 4) MQ_TRY(mq_pread_full(fd, path, head, 4, 0, err));
    if (size < 4 || memcmp(head, zip_magic, 4) != 0) {
        if (size >= 2 && head[0] == 0x80 && head[1] <= 5)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "pytorch-legacy",
                           "%s: pytorch-legacy: a PyTorch checkpoint in the legacy format of torch < 1.6 (a bare pickle, "
                           "not a zip) is not read; re-save it with a newer torch.save, or convert it to safetensors",
                           path);
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "format",
                       "%s: not a PyTorch zip checkpoint, safetensors or GGUF file (unknown format)", path);
    }
    struct mq_zip z;
    s = mq_zip_open(&z, fd, path, size, err);
    const struct mq_zip_entry *pkl = NULL;
    if (s == MQ_OK) s = find_pickle(&z, path, &pkl, err);
    char prefix[256] = "";
    if (s == MQ_OK) {
        size_t pl = strlen(pkl->name) - strlen("data.pkl");
        if (pl >= sizeof prefix)
            s = MQ_FAIL(err, MQ_E_LIMIT, "pytorch-layout", "%s: pytorch-layout: archive folder name over 255 bytes", path);
        else snprintf(prefix, sizeof prefix, "%.*s", (int)pl, pkl->name);
    }
    if (s == MQ_OK) s = check_byteorder(&z, path, prefix, err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (s == MQ_OK) s = mq_zip_read_entry(&z, pkl, PKL_MAX_BYTES, &buf, &len, err);
    struct mq_state_dict sd = {0};
    if (s == MQ_OK) {
        char where[4400];
        snprintf(where, sizeof where, "%s: %s", path, pkl->name);
        s = mq_pickle_state_dict(buf, len, where, &sd, err);
    }
    if (s == MQ_OK) s = load_state_dict(m, file, &z, path, prefix, &sd, err);
    m->header_bytes_read += z.bytes_read + len;
    mq_state_dict_free(&sd);
    free(buf);
    mq_zip_free(&z);
    return s;
}

const struct mq_reader_ops mq_pytorch_reader = {
    .name = "pytorch",
    .probe = pt_probe,
    .read_file = pt_read_file,
};
