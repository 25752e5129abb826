/* quantize_compare.c - modelq's GGUF against llama-quantize's, tensor for tensor (quantize_compare.h). */
#include "quantize_compare.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gguf_dump.h"

int quantize_compare_files(const struct mq_ggml *G, const char *label, const char *ours, const char *ref, bool quiet,
                           int *experts)
{
    static char why[4096];
    struct gguf_view a = {0}, b = {0};
    cr_assert(gguf_view_from_ggml(&a, G, ours, false, why, sizeof why), "%s", why);
    cr_assert(gguf_view_from_ggml(&b, G, ref, false, why, sizeof why), "%s", why);
    int bad = 0;
    if (!quiet)
        cr_expect_eq(a.tensors_len, b.tensors_len, "%s: %zu tensors, llama-quantize %zu", label, a.tensors_len,
                     b.tensors_len);
    int seen[64] = {0};
    for (size_t i = 0; i < b.tensors_len; i++) {
        const struct gguf_view_tensor *r = &b.tensors[i];
        const struct gguf_view_tensor *m = gguf_view_find_tensor(&a, r->name);
        if (r->type >= 0 && r->type < 64) seen[r->type]++;
        if (r->ne[2] > 1 && experts) (*experts)++;
        if (!m) {
            if (!quiet) cr_log_error("%s: no tensor %s in modelq's file", label, r->name);
            bad++;
            continue;
        }
        if (m->type != r->type || memcmp(m->ne, r->ne, sizeof m->ne) != 0 || m->nbytes != r->nbytes ||
            m->data_hash != r->data_hash) {
            if (!quiet)
                cr_log_error("%s: %s: modelq type %d [%" PRId64 " %" PRId64 " %" PRId64 "], llama-quantize type %d%s",
                             label, r->name, m->type, m->ne[0], m->ne[1], m->ne[2], r->type,
                             m->type == r->type ? ": bytes differ" : "");
            bad++;
        }
    }
    const struct gguf_view_kv *fa = gguf_view_find_kv(&a, "general.file_type");
    const struct gguf_view_kv *fb = gguf_view_find_kv(&b, "general.file_type");
    if (!quiet) cr_expect(fa && fb && fa->val.u == fb->val.u, "%s: general.file_type differs", label);
    char mix[256] = "";
    size_t k = 0;
    for (int t = 0; t < 64; t++)
        if (seen[t]) k += (size_t)snprintf(mix + k, sizeof mix - k, " %d:%d", t, seen[t]);
    fprintf(stderr, "%-34s %zu tensors, ggml types (type:count)%s, %d differ\n", label, b.tensors_len, mix, bad);
    gguf_view_free(&a);
    gguf_view_free(&b);
    return bad;
}
