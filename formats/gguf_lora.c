/*
** gguf_lora.c - a PEFT LoRA adapter as the GGUF adapter llama.cpp's --lora loads.
**
** What llama.cpp reads (src/llama-adapter.cpp, llama_adapter_lora_init): general.type "adapter",
** general.architecture equal to the base model's, adapter.type "lora", adapter.lora.alpha
** (FLOAT32), and for each adapted weight W (by its GGUF name) two tensors "W.lora_a" and
** "W.lora_b", ggml shapes lora_a [in, r] and lora_b [r, out], i.e. PEFT's lora_A [r, in] and
** lora_B [out, r] as stored (row-major, outermost first). At run time it adds
** (alpha / r) * scale * B (A x) where r is lora_b's rank; with alpha 0 the factor is scale alone.
**
** Names and transforms are the family's (gguf_families.c), as convert_lora_to_gguf.py gets them
** by running the model class's modify_tensors on the pair: Q/K row permutation (a permutation of
** W's rows is one of B's rows; A is unchanged), and nothing else applies to Linear weights.
**
** Scaling: the file has one alpha, llama.cpp divides by each tensor's own rank. So per-module
** ranks (rank_pattern) come out right, and rsLoRA (alpha / sqrt(r)) is written as alpha x sqrt(r)
** (llama.cpp's converter writes lora_alpha unchanged, so its rsLoRA files run with alpha / r).
** What one alpha cannot say is refused: alpha_pattern, and rsLoRA with per-module ranks.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_arch.h"
#include "gguf_family.h"
#include "model_impl.h"
#include "modelq/plugin.h" /* the plan: names, transforms, metadata */

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* One adapted weight: its rule and layer, and the input tensors holding A and B. */
struct pair {
    const struct mq_tensor_rule *rule;
    long layer;          /* -1: not a layer tensor */
    long a, b;           /* plan indices, -1 until seen */
};

/* The family rule (and layer) of a base weight name "model.layers.N.<hf>.weight" / "<hf>.weight". */
static const struct mq_tensor_rule *find_rule(const struct mq_family *f, const char *base, long *layer)
{
    static const char lp[] = "model.layers.";
    const char *rest = base;
    *layer = -1;
    if (strncmp(base, lp, sizeof lp - 1) == 0) {
        char *end;
        const char *d = base + sizeof lp - 1;
        if (*d < '0' || *d > '9') return NULL;
        long l = strtol(d, &end, 10);
        if (*end != '.' || l < 0 || l > 1000000) return NULL;
        *layer = l;
        rest = end + 1;
    }
    size_t n = strlen(rest);
    if (n < 7 || strcmp(rest + n - 7, ".weight") != 0) return NULL;
    for (const struct mq_tensor_rule *const *g = f->groups; *g; g++)
        for (const struct mq_tensor_rule *r = *g; r->hf; r++)
            if (((r->flags & TR_LAYER) != 0) == (*layer >= 0) && strlen(r->hf) == n - 7 && strncmp(r->hf, rest, n - 7) == 0)
                return r;
    return NULL;
}

static uint64_t rule_dim(const struct mq_hvals *h, const struct mq_tensor_rule *r, unsigned d)
{
    return h->u[r->dim[d][0]] * (r->dim[d][1] ? h->u[r->dim[d][1]] : 1);
}

/* Input name -> (base name, A or B). PEFT saves "base_model.model." + module + ".lora_A.weight". */
static enum mq_status split_name(const struct mq_model *m, const char *name, char *base, size_t cap, bool *is_a,
                                 struct mq_error *err)
{
    static const char pre[] = "base_model.model.";
    const char *p = strncmp(name, pre, sizeof pre - 1) == 0 ? name + sizeof pre - 1 : name;
    static const char *const suf[2] = {".lora_A.weight", ".lora_B.weight"};
    for (int k = 0; k < 2; k++) {
        if (!ends_with(p, suf[k])) continue;
        size_t stem = strlen(p) - strlen(suf[k]);
        if (stem + sizeof ".weight" > cap) break;
        snprintf(base, cap, "%.*s.weight", (int)stem, p);
        *is_a = k == 0;
        return MQ_OK;
    }
    if (strstr(name, "lora_embedding_A") || strstr(name, "lora_embedding_B"))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-tensor", "%s: tensor %s: LoRA on the token embeddings is not "
                       "supported", m->input_path, name);
    if (strstr(name, "lora_magnitude_vector"))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-dora", "%s: tensor %s: a DoRA magnitude vector (llama.cpp's "
                       "adapters hold LoRA pairs only)", m->input_path, name);
    return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-tensor", "%s: tensor %s is a full tensor, not a LoRA pair "
                   "(modules_to_save or trained biases): llama.cpp's adapters hold lora_a/lora_b pairs only",
                   m->input_path, name);
}

/* Checks one A or B against the base weight's dims and the adapter's rank. */
static enum mq_status check_pair_shapes(const struct mq_plan *p, const struct mq_hvals *h, const struct pair *q,
                                        const char *cfg_path, struct mq_error *err)
{
    struct mq_plan_tensor_info ta, tb;
    mq_plan_tensor_info(p, (size_t)q->a, &ta);
    mq_plan_tensor_info(p, (size_t)q->b, &tb);
    const struct mq_plan_tensor_info *a = &ta, *b = &tb;
    const struct mq_lora_config *lc = mq_model_lora(mq_plan_model(p));
    const uint64_t out = rule_dim(h, q->rule, 0), in = rule_dim(h, q->rule, 1);
    if (a->ndim != 2 || b->ndim != 2)
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-shape", "tensor %s: LoRA matrices have 2 dimensions, this one %u",
                       a->ndim != 2 ? a->name : b->name, a->ndim != 2 ? a->ndim : b->ndim);
    const uint64_t r = a->shape[0];
    if (b->shape[1] != r)
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-shape", "tensors %s [%llu, %llu] and %s [%llu, %llu]: the ranks "
                       "differ", a->name, (unsigned long long)a->shape[0], (unsigned long long)a->shape[1], b->name,
                       (unsigned long long)b->shape[0], (unsigned long long)b->shape[1]);
    if (a->shape[1] != in || b->shape[0] != out)
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-shape", "tensors %s [%llu, %llu] and %s [%llu, %llu] do not fit "
                       "the base weight [%llu, %llu] of %s (a different base model?)", a->name,
                       (unsigned long long)a->shape[0], (unsigned long long)a->shape[1], b->name,
                       (unsigned long long)b->shape[0], (unsigned long long)b->shape[1], (unsigned long long)out,
                       (unsigned long long)in, cfg_path);
    if (r != lc->r && !lc->rank_pattern)
        return MQ_FAIL(err, MQ_E_CORRUPT, "adapter-shape", "tensor %s has rank %llu but %s says \"r\": %llu (and has no "
                       "rank_pattern)", a->name, (unsigned long long)r, lc->path, (unsigned long long)lc->r);
    if (r != lc->r && lc->use_rslora)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-scale", "tensor %s has rank %llu, not %llu: with use_rslora the "
                       "scale alpha / sqrt(r) differs per rank, and a GGUF adapter has one alpha", a->name,
                       (unsigned long long)r, (unsigned long long)lc->r);
    return MQ_OK;
}

enum mq_status mq_gguf_lora_plan(struct mq_plan *p, const struct mq_family *f, const struct mq_hvals *h,
                                 const char *cfg_path, struct mq_error *err)
{
    const struct mq_model *m = mq_plan_model(p);
    const struct mq_lora_config *lc = m->lora;
    const enum mq_target target = mq_plan_target(p);
    switch (target) {
    case MQ_TARGET_AUTO: case MQ_TARGET_F32: case MQ_TARGET_GGUF_F16: case MQ_TARGET_GGUF_BF16: case MQ_TARGET_Q8_0:
        break;
    default:
        return MQ_FAIL(err, MQ_E_USAGE, "adapter-type", "%s: a LoRA adapter is written as f32, f16, bf16 or q8_0 (as "
                       "llama.cpp's convert_lora_to_gguf.py), not %s", m->input_path, mq_target_info(target)->name);
    }
    if (lc->alpha_pattern)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-scale", "%s: \"alpha_pattern\" gives modules their own alpha; a "
                       "GGUF adapter has one alpha for all", lc->path);
    if (lc->fan_in_fan_out)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-layout", "%s: \"fan_in_fan_out\" is true (weights stored as "
                       "GPT-2's Conv1D), but %s uses Linear layers", lc->path, f->hf);
    const size_t n = mq_plan_n_tensors(p);
    struct pair *pairs = calloc(n ? n : 1, sizeof *pairs);
    long *owner = malloc((n ? n : 1) * sizeof *owner); /* input -> its pair */
    size_t np = 0;
    enum mq_status s = pairs && owner ? MQ_OK : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    const bool tied = m->config.tie_word_embeddings == 1;
    for (size_t i = 0; i < n && s == MQ_OK; i++) {
        char base[512];
        bool is_a = false;
        const char *name = mq_plan_tensor_name(p, i);
        s = split_name(m, name, base, sizeof base, &is_a, err);
        if (s != MQ_OK) break;
        long layer;
        const struct mq_tensor_rule *r = find_rule(f, base, &layer);
        if (!r) {
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-tensor", "%s: tensor %s adapts %s, which %s has no GGUF name for",
                        m->input_path, name, base, f->hf);
            break;
        }
        if (r->ndim != 2 || (r->flags & (TR_EXPERT | TR_NORM))) {
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-tensor", "%s: tensor %s: LoRA on %s is not supported (only on "
                        "2-D weights that are not experts)", m->input_path, name, base);
            break;
        }
        if (tied && strcmp(r->gguf, "output") == 0) {
            /* as convert_lora_to_gguf.py: the base has no output.weight (it reuses token_embd) */
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "adapter-tensor", "%s: tensor %s adapts lm_head, but %s ties it to the "
                        "embeddings (llama.cpp has no output.weight to adapt)", m->input_path, name, cfg_path);
            break;
        }
        size_t k = 0;
        while (k < np && !(pairs[k].rule == r && pairs[k].layer == layer)) k++;
        if (k == np) pairs[np++] = (struct pair){r, layer, -1, -1};
        long *slot = is_a ? &pairs[k].a : &pairs[k].b;
        if (*slot >= 0) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "adapter-tensor", "%s: tensors %s and %s are both the %s matrix of %s",
                        m->input_path, mq_plan_tensor_name(p, (size_t)*slot), name, is_a ? "A" : "B", base);
            break;
        }
        *slot = (long)i;
        owner[i] = (long)k;
    }
    for (size_t k = 0; k < np && s == MQ_OK; k++) {
        if (pairs[k].a < 0 || pairs[k].b < 0) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "adapter-tensor", "%s: tensor %s has no %s matrix beside it", m->input_path,
                        mq_plan_tensor_name(p, (size_t)(pairs[k].a >= 0 ? pairs[k].a : pairs[k].b)),
                        pairs[k].a >= 0 ? "B" : "A");
            break;
        }
        if (pairs[k].layer >= 0 && (uint64_t)pairs[k].layer >= h->u[HP_LAYERS]) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "adapter-tensor", "%s: tensor %s is for layer %ld, but %s has %llu layers",
                        m->input_path, mq_plan_tensor_name(p, (size_t)pairs[k].a), pairs[k].layer, cfg_path,
                        (unsigned long long)h->u[HP_LAYERS]);
            break;
        }
        s = check_pair_shapes(p, h, &pairs[k], cfg_path, err);
    }
    if (s == MQ_OK && np == 0)
        s = MQ_FAIL(err, MQ_E_CORRUPT, "adapter-tensor", "%s: no LoRA tensors (lora_A / lora_B)", m->input_path);
    /* names and transforms, in input order (each tensor stays where it was) */
    for (size_t i = 0; i < n && s == MQ_OK; i++) {
        const struct pair *q = &pairs[owner[i]];
        const bool is_a = q->a == (long)i;
        char name[320];
        if (q->layer >= 0) snprintf(name, sizeof name, "blk.%ld.%s.weight.lora_%c", q->layer, q->rule->gguf, is_a ? 'a' : 'b');
        else snprintf(name, sizeof name, "%s.weight.lora_%c", q->rule->gguf, is_a ? 'a' : 'b');
        s = mq_plan_tensor_set_name(p, i, name, err);
        if (s != MQ_OK) break;
        const bool qr = q->rule->flags & TR_Q, kr = q->rule->flags & TR_K;
        if (!is_a && f->permute_qk && (qr || kr) && mq_plan_options(p)->debug_qk_permute != 1)
            s = mq_plan_tensor_permute_heads(p, i, qr ? h->u[HP_HEADS] : h->u[HP_KV], err);
    }
    free(pairs);
    free(owner);
    if (s != MQ_OK) return s;
    /* rsLoRA: llama.cpp multiplies by alpha / r; alpha x sqrt(r) / r = alpha / sqrt(r) */
    const double alpha = lc->use_rslora ? lc->alpha * sqrt((double)lc->r) : lc->alpha;
    char gname[256];
    mq_gguf_model_name(m->input_path, gname, sizeof gname);
    MQ_TRY(mq_meta_set_str(mq_plan_meta(p), "general.architecture", f->gguf, SIZE_MAX, err));
    MQ_TRY(mq_meta_set_str(mq_plan_meta(p), "general.type", "adapter", SIZE_MAX, err));
    MQ_TRY(mq_meta_set_str(mq_plan_meta(p), "general.name", gname, SIZE_MAX, err));
    MQ_TRY(mq_meta_set_str(mq_plan_meta(p), "adapter.type", "lora", SIZE_MAX, err));
    return mq_meta_set_f32(mq_plan_meta(p), "adapter.lora.alpha", (float)alpha, err);
}

/*
** A GGUF base (convert BASE.gguf --lora ADAPTER): the GGUF tensor a Hugging Face module weight is,
** by the family rows of the file's general.architecture (several rows share "llama": the first
** with a rule for the name wins; their rules agree), and the head count of its Q/K permutation.
*/
enum mq_status mq_gguf_input_name_of_hf(const struct mq_model *m, const char *hf, char *out, size_t cap,
                                        uint64_t *permute_heads, struct mq_error *err)
{
    const struct mq_meta_value *a = mq_meta_get(&m->meta, "general.architecture");
    const char *arch = a && a->type == MQ_META_STRING ? a->str.p : "";
    *permute_heads = 0;
    bool known = false;
    for (size_t i = 0;; i++) {
        const struct mq_family *f = mq_family_at(i);
        if (!f) break;
        if (strcmp(f->gguf, arch) != 0) continue;
        known = true;
        long layer;
        const struct mq_tensor_rule *r = find_rule(f, hf, &layer);
        if (!r) continue;
        if (r->flags & TR_EXPERT)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora-tensor", "%s: %s is one expert of a stacked tensor: merging "
                           "into experts is not supported", m->input_path, hf);
        int n = layer >= 0 ? snprintf(out, cap, "blk.%ld.%s.weight", layer, r->gguf) : snprintf(out, cap, "%s.weight",
                                                                                              r->gguf);
        if (n < 0 || (size_t)n >= cap) return MQ_FAIL(err, MQ_E_INTERNAL, "lora-tensor", "name too long: %s", hf);
        if (f->permute_qk && (r->flags & (TR_Q | TR_K)))
            *permute_heads = (r->flags & TR_Q) ? m->config.num_heads : m->config.num_kv_heads;
        return MQ_OK;
    }
    if (!known)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora-base", "%s: general.architecture \"%s\" is none of the families "
                       "modelq maps Hugging Face names for", m->input_path, arch);
    return MQ_FAIL(err, MQ_E_CORRUPT, "lora-base", "%s: the adapter adapts %s, which a GGUF of architecture %s does "
                   "not have", m->input_path, hf, arch);
}
