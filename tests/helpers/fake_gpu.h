/*
** fake_gpu.h - fake GPU devices registered into the pinned llama.cpp's ggml (see llama_cpp.h), so
** that llama.cpp places layers, KV cache and compute buffers on "GPUs" that a CPU-only build has
** not got, and the test can read what it put on each one.
**
** What a fake device is: a ggml backend device of type GGML_BACKEND_DEVICE_TYPE_GPU (1) named
** "FAKEGPU<i>", registered through ggml_backend_register() with its own backend registry entry
** (whose get_proc_address answers NULL: no split buffer type, no extra buffer types). Its
** buffer type allocates ordinary host memory through the CPU buffer type's allocator, but reports
** itself as not host memory (is_host false), so ggml treats it as a discrete GPU's memory: the
** CPU backend does not read it, the scheduler copies across. Its backend is a CPU backend whose
** device pointer is the fake device (so the scheduler asks the fake device what it supports and
** which buffer it allocates); supports_op delegates to the CPU device, supports_buft accepts only
** the device's own buffer type (as CUDA does), offload_op is false (no host-weight offloading of
** large batches), no events, no async, no host buffer type. get_memory reports the size given.
**
** Every buffer allocated from a fake device's buffer type is tracked while it lives; after a
** model load (weights) or while a context exists (KV cache, compute), mq_fake_gpu_usage() sums the
** live buffers of one device by their ggml usage: WEIGHTS (1, set by llama.cpp's loader),
** COMPUTE (2, set by ggml-alloc for the scheduler's buffers), ANY (0: the KV cache).
**
** ABI: ggml-backend-impl.h's structs are mirrored in fake_gpu.c for the pinned build (ggml
** backend API with 15 device callbacks, 6 buffer-type callbacks, 11 buffer callbacks); every
** offset was read from the library's own accessor functions (ggml_backend_dev_*,
** ggml_backend_buft_*, ggml_backend_buffer_get_*, ggml_backend_get_device,
** ggml_backend_reg_*), and mq_fake_gpu_register() checks them again at run time through those
** accessors, so another build fails with a reason instead of corrupting memory.
*/
#ifndef MODELQ_TEST_FAKE_GPU_H
#define MODELQ_TEST_FAKE_GPU_H

#include <stddef.h>
#include <stdint.h>

#define MQ_FAKE_GPU_MAX 4

struct mq_llama_cpp;

/*
** Registers n (1..MQ_FAKE_GPU_MAX) fake GPUs with the given memory sizes, once per process (a
** second call with the same n returns 0; with another n, -1: ggml cannot unregister a device).
** Returns 0, or -1 with a reason.
*/
int mq_fake_gpu_register(struct mq_llama_cpp *lc, int n, const uint64_t *mem_bytes, char *why, size_t why_len);

struct mq_fake_gpu_usage {
    uint64_t weights, kv, compute; /* live buffer bytes by usage (see above) */
    int buffers;
};
/* Live buffers of fake device i (0-based). */
void mq_fake_gpu_usage(int i, struct mq_fake_gpu_usage *out);

#endif /* MODELQ_TEST_FAKE_GPU_H */
