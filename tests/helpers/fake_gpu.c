/*
** fake_gpu.c - fake GPU devices for the pinned llama.cpp (see fake_gpu.h).
**
** The structs below mirror ggml/src/ggml-backend-impl.h as the pinned libggml-base.so lays them
** out. The offsets come from the library's accessors (x86-64, 8-byte pointers):
**   struct ggml_backend_device: iface of 15 callbacks (get_name 0x00, get_description 0x08,
**     get_memory 0x10, get_type 0x18, get_props 0x20, init_backend 0x28, get_buffer_type 0x30,
**     get_host_buffer_type 0x38, buffer_from_host_ptr 0x40, supports_op 0x48, supports_buft 0x50,
**     offload_op 0x58, event_new 0x60, event_free 0x68, event_synchronize 0x70), reg 0x78,
**     context 0x80 (ggml_backend_dev_backend_reg reads 0x78).
**   struct ggml_backend_dev_props: 0x38 bytes (ggml_backend_dev_get_props zeroes 0x38 before the
**     callback): name, description, memory_free, memory_total, type, device_id, caps (4 bools).
**   struct ggml_backend_buffer_type: iface of 6 callbacks (get_name, alloc_buffer, get_alignment,
**     get_max_size, get_alloc_size, is_host at 0x28), device 0x30, context 0x38.
**   struct ggml_backend_buffer: iface of 11 callbacks (free_buffer first), buft 0x58, context 0x60,
**     size 0x68, usage 0x70.
**   struct ggml_backend: guid pointer, iface of 15 callbacks, device 0x88, context 0x90.
**   struct ggml_backend_reg: int api_version, iface {get_name 0x08, get_device_count 0x10,
**     get_device 0x18, get_proc_address 0x20}, context 0x28.
** mq_fake_gpu_register() checks these through the accessors before registering anything.
*/
#include "fake_gpu.h"
#include "why.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama_cpp.h"

typedef void *ptr;

struct fg_dev_props {
    const char *name, *description;
    size_t memory_free, memory_total;
    int type;
    const char *device_id;
    struct {
        bool async, host_buffer, buffer_from_host_ptr, events;
    } caps;
};
_Static_assert(sizeof(struct fg_dev_props) == 0x38, "ggml_backend_dev_props is 0x38 bytes");

struct fg_device {
    struct {
        const char *(*get_name)(struct fg_device *);
        const char *(*get_description)(struct fg_device *);
        void (*get_memory)(struct fg_device *, size_t *free, size_t *total);
        int (*get_type)(struct fg_device *);
        void (*get_props)(struct fg_device *, struct fg_dev_props *);
        ptr (*init_backend)(struct fg_device *, const char *params);
        ptr (*get_buffer_type)(struct fg_device *);
        ptr (*get_host_buffer_type)(struct fg_device *);
        ptr (*buffer_from_host_ptr)(struct fg_device *, void *, size_t, size_t);
        bool (*supports_op)(struct fg_device *, const void *op);
        bool (*supports_buft)(struct fg_device *, ptr buft);
        bool (*offload_op)(struct fg_device *, const void *op);
        ptr event_new, event_free, event_synchronize;
    } iface;
    ptr reg;
    ptr context;
};
_Static_assert(offsetof(struct fg_device, reg) == 0x78, "ggml_backend_device.reg");

struct fg_buft {
    struct {
        const char *(*get_name)(struct fg_buft *);
        ptr (*alloc_buffer)(struct fg_buft *, size_t size);
        size_t (*get_alignment)(struct fg_buft *);
        size_t (*get_max_size)(struct fg_buft *);
        size_t (*get_alloc_size)(struct fg_buft *, const void *tensor);
        bool (*is_host)(struct fg_buft *);
    } iface;
    ptr device;
    ptr context;
};
_Static_assert(offsetof(struct fg_buft, device) == 0x30, "ggml_backend_buffer_type.device");

struct fg_buffer_head { /* the start of struct ggml_backend_buffer: iface.free_buffer */
    void (*free_buffer)(void *buffer);
};
#define FG_BUFFER_BUFT 0x58
#define FG_BACKEND_DEVICE 0x88

struct fg_reg {
    int api_version;
    struct {
        const char *(*get_name)(struct fg_reg *);
        size_t (*get_device_count)(struct fg_reg *);
        ptr (*get_device)(struct fg_reg *, size_t);
        void *(*get_proc_address)(struct fg_reg *, const char *);
    } iface;
    ptr context;
};
_Static_assert(offsetof(struct fg_reg, context) == 0x28, "ggml_backend_reg.context");

/* ---- state -------------------------------------------------------------------------------- */

#define FG_MAX_BUFFERS 4096

struct fg_live {
    void *buffer;
    int dev;
    void (*orig_free)(void *);
};

static struct {
    int n;
    struct fg_device dev[MQ_FAKE_GPU_MAX];
    struct fg_buft buft[MQ_FAKE_GPU_MAX];
    char name[MQ_FAKE_GPU_MAX][24];
    uint64_t mem[MQ_FAKE_GPU_MAX];
    struct fg_reg reg;
    struct fg_live live[FG_MAX_BUFFERS];
    int n_live;
    /* libggml-base / libggml */
    ptr cpu_dev;
    struct fg_buft *cpu_buft;
    ptr (*dev_init)(ptr dev, const char *params);
    bool (*dev_supports_op)(ptr dev, const void *op);
    size_t (*buffer_get_size)(void *);
    int (*buffer_get_usage)(void *);
} fg;

static int dev_index(const struct fg_device *d) { return (int)(d - fg.dev); }

static const char *dev_name(struct fg_device *d) { return fg.name[dev_index(d)]; }
static const char *dev_description(struct fg_device *d) { (void)d; return "modelq test fake GPU (host memory)"; }
static void dev_memory(struct fg_device *d, size_t *free, size_t *total) { *free = *total = fg.mem[dev_index(d)]; }
static int dev_type(struct fg_device *d) { (void)d; return 1; /* GGML_BACKEND_DEVICE_TYPE_GPU */ }
static void dev_props(struct fg_device *d, struct fg_dev_props *p)
{
    p->name = dev_name(d);
    p->description = dev_description(d);
    dev_memory(d, &p->memory_free, &p->memory_total);
    p->type = 1;
    p->device_id = NULL;
    /* no async, no host buffer, no events: llama.cpp then uses no pipeline parallelism */
}
static ptr dev_init_backend(struct fg_device *d, const char *params)
{
    (void)params;
    char *b = fg.dev_init(fg.cpu_dev, NULL);
    if (b) memcpy(b + FG_BACKEND_DEVICE, &d, sizeof d); /* the scheduler asks this device */
    return b;
}
static ptr dev_buffer_type(struct fg_device *d) { return &fg.buft[dev_index(d)]; }
static ptr dev_no_host_buffer_type(struct fg_device *d) { (void)d; return NULL; }
static ptr dev_no_buffer_from_host_ptr(struct fg_device *d, void *p, size_t s, size_t m)
{
    (void)d, (void)p, (void)s, (void)m;
    return NULL;
}
static bool dev_supports_op(struct fg_device *d, const void *op) { (void)d; return fg.dev_supports_op(fg.cpu_dev, op); }
static bool dev_supports_buft(struct fg_device *d, ptr buft) { return buft == dev_buffer_type(d); }
static bool dev_offload_op(struct fg_device *d, const void *op) { (void)d, (void)op; return false; }

static void buffer_free(void *buffer)
{
    for (int i = 0; i < fg.n_live; i++)
        if (fg.live[i].buffer == buffer) {
            void (*orig)(void *) = fg.live[i].orig_free;
            fg.live[i] = fg.live[--fg.n_live];
            if (orig) orig(buffer);
            return;
        }
    abort(); /* a fake buffer we did not see allocated */
}

static const char *buft_name(struct fg_buft *b) { return fg.name[b - fg.buft]; }
static ptr buft_alloc(struct fg_buft *b, size_t size)
{
    if (fg.n_live == FG_MAX_BUFFERS) return NULL;
    /* the CPU buffer type's allocator, given this buffer type: the buffer records it as its type */
    void *buf = fg.cpu_buft->iface.alloc_buffer(b, size);
    if (!buf) return NULL;
    struct fg_buffer_head *h = buf;
    fg.live[fg.n_live++] = (struct fg_live){buf, (int)(b - fg.buft), h->free_buffer};
    h->free_buffer = buffer_free;
    return buf;
}
static size_t buft_alignment(struct fg_buft *b)
{
    (void)b;
    return fg.cpu_buft->iface.get_alignment(fg.cpu_buft); /* 32, as the CPU's */
}
static bool buft_is_host(struct fg_buft *b) { (void)b; return false; }

static const char *reg_name(struct fg_reg *r) { (void)r; return "FAKEGPU"; }
static size_t reg_count(struct fg_reg *r) { (void)r; return (size_t)fg.n; }
static ptr reg_device(struct fg_reg *r, size_t i) { (void)r; return i < (size_t)fg.n ? &fg.dev[i] : NULL; }
static void *reg_proc(struct fg_reg *r, const char *name) { (void)r, (void)name; return NULL; }

int mq_fake_gpu_register(struct mq_llama_cpp *lc, int n, const uint64_t *mem_bytes, char *why, size_t why_len)
{
    (void)lc; /* the libraries are loaded (by soname, RTLD_NOLOAD) once mq_llama_cpp_open succeeded */
    if (fg.n) {
        if (fg.n == n) {
            for (int i = 0; i < n; i++) fg.mem[i] = mem_bytes[i];
            return 0;
        }
        mq_test_why(why, why_len, "%d fake GPUs are registered already (ggml cannot unregister a device)", fg.n);
        return -1;
    }
    if (n < 1 || n > MQ_FAKE_GPU_MAX) {
        mq_test_why(why, why_len, "1 to %d fake GPUs", MQ_FAKE_GPU_MAX);
        return -1;
    }
    void *base = dlopen("libggml-base.so", RTLD_NOW | RTLD_NOLOAD), *ggml = NULL;
    if (base) ggml = dlopen("libggml.v0.5.0.so", RTLD_NOW | RTLD_NOLOAD);
    if (!base || !ggml) {
        mq_test_why(why, why_len, "libggml-base.so / libggml.v0.5.0.so are not loaded (%s)", dlerror());
        return -1;
    }
    struct {
        void *lib;
        const char *name;
        void *p;
    } s[] = {
        {base, "ggml_backend_cpu_buffer_type", NULL}, {base, "ggml_backend_dev_init", NULL},
        {base, "ggml_backend_dev_supports_op", NULL}, {base, "ggml_backend_buffer_get_size", NULL},
        {base, "ggml_backend_buffer_get_usage", NULL}, {base, "ggml_backend_dev_backend_reg", NULL},
        {base, "ggml_backend_buft_get_device", NULL}, {base, "ggml_backend_buft_is_host", NULL},
        {base, "ggml_backend_reg_dev_count", NULL}, {ggml, "ggml_backend_dev_by_type", NULL},
        {ggml, "ggml_backend_register", NULL}, {base, "ggml_backend_dev_get_props", NULL},
        {base, "ggml_backend_buffer_get_type", NULL}, {base, "ggml_backend_buffer_free", NULL},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (!(s[i].p = dlsym(s[i].lib, s[i].name))) {
            mq_test_why(why, why_len, "missing symbol %s", s[i].name);
            return -1;
        }
    ptr (*cpu_buft)(void) = (ptr(*)(void))s[0].p;
    fg.dev_init = (ptr(*)(ptr, const char *))s[1].p;
    fg.dev_supports_op = (bool (*)(ptr, const void *))s[2].p;
    fg.buffer_get_size = (size_t(*)(void *))s[3].p;
    fg.buffer_get_usage = (int (*)(void *))s[4].p;
    ptr (*dev_reg)(ptr) = (ptr(*)(ptr))s[5].p;
    ptr (*buft_device)(ptr) = (ptr(*)(ptr))s[6].p;
    bool (*buft_host)(ptr) = (bool (*)(ptr))s[7].p;
    size_t (*reg_dev_count)(ptr) = (size_t(*)(ptr))s[8].p;
    ptr (*by_type)(int) = (ptr(*)(int))s[9].p;
    void (*reg_register)(ptr) = (void (*)(ptr))s[10].p;
    void (*get_props)(ptr, struct fg_dev_props *) = (void (*)(ptr, struct fg_dev_props *))s[11].p;
    ptr (*buffer_type)(void *) = (ptr(*)(void *))s[12].p;
    void (*buffer_free_fn)(void *) = (void (*)(void *))s[13].p;

    fg.cpu_dev = by_type(0);
    fg.cpu_buft = cpu_buft();
    if (!fg.cpu_dev || !fg.cpu_buft) {
        mq_test_why(why, why_len, "no CPU device registered");
        return -1;
    }
    /* the mirrored offsets, checked through the library's own accessors on the CPU's objects */
    struct fg_device *cd = fg.cpu_dev;
    if (dev_reg(cd) != cd->reg || buft_device(fg.cpu_buft) != fg.cpu_buft->device || !buft_host(fg.cpu_buft) ||
        !fg.cpu_buft->iface.is_host || !fg.cpu_buft->iface.is_host(fg.cpu_buft) ||
        reg_dev_count(cd->reg) != ((struct fg_reg *)cd->reg)->iface.get_device_count(cd->reg) ||
        cd->iface.get_type(cd) != 0) {
        mq_test_why(why, why_len, "ggml's backend structs are not laid out as mirrored in fake_gpu.c");
        return -1;
    }
    struct fg_dev_props p;
    memset(&p, 0x5a, sizeof p);
    get_props(cd, &p);
    if (p.type != 0 || !p.name || strcmp(p.name, cd->iface.get_name(cd)) != 0) {
        mq_test_why(why, why_len, "ggml_backend_dev_props is not laid out as mirrored in fake_gpu.c");
        return -1;
    }
    void *probe = fg.cpu_buft->iface.alloc_buffer(fg.cpu_buft, 64);
    if (!probe || buffer_type(probe) != (ptr)fg.cpu_buft || fg.buffer_get_size(probe) != 64 ||
        *(void **)((char *)probe + FG_BUFFER_BUFT) != (void *)fg.cpu_buft) {
        mq_test_why(why, why_len, "ggml_backend_buffer is not laid out as mirrored in fake_gpu.c");
        if (probe) buffer_free_fn(probe);
        return -1;
    }
    buffer_free_fn(probe);

    fg.n = n;
    fg.reg = (struct fg_reg){.api_version = 2, .context = NULL};
    fg.reg.iface.get_name = reg_name;
    fg.reg.iface.get_device_count = reg_count;
    fg.reg.iface.get_device = reg_device;
    fg.reg.iface.get_proc_address = reg_proc;
    for (int i = 0; i < n; i++) {
        snprintf(fg.name[i], sizeof fg.name[i], "FAKEGPU%d", i);
        fg.mem[i] = mem_bytes[i];
        struct fg_device *d = &fg.dev[i];
        memset(d, 0, sizeof *d);
        d->iface.get_name = dev_name;
        d->iface.get_description = dev_description;
        d->iface.get_memory = dev_memory;
        d->iface.get_type = dev_type;
        d->iface.get_props = dev_props;
        d->iface.init_backend = dev_init_backend;
        d->iface.get_buffer_type = dev_buffer_type;
        d->iface.get_host_buffer_type = dev_no_host_buffer_type;
        d->iface.buffer_from_host_ptr = dev_no_buffer_from_host_ptr;
        d->iface.supports_op = dev_supports_op;
        d->iface.supports_buft = dev_supports_buft;
        d->iface.offload_op = dev_offload_op;
        d->reg = &fg.reg;
        struct fg_buft *b = &fg.buft[i];
        *b = *fg.cpu_buft; /* get_max_size, get_alloc_size as the CPU's */
        b->iface.get_name = buft_name;
        b->iface.alloc_buffer = buft_alloc;
        b->iface.get_alignment = buft_alignment;
        b->iface.is_host = buft_is_host;
        b->device = d;
        b->context = NULL;
    }
    reg_register(&fg.reg);
    return 0;
}

void mq_fake_gpu_usage(int i, struct mq_fake_gpu_usage *out)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < fg.n_live; k++) {
        if (fg.live[k].dev != i) continue;
        uint64_t size = fg.buffer_get_size(fg.live[k].buffer);
        switch (fg.buffer_get_usage(fg.live[k].buffer)) {
        case 1: out->weights += size; break;
        case 2: out->compute += size; break;
        default: out->kv += size; break;
        }
        out->buffers++;
    }
}
