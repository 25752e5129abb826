/* tensor_role.c - tensor roles from names, Hugging Face and GGUF spellings. */
#include "tensor_role.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static bool has(const char *s, const char *part) { return strstr(s, part) != NULL; }

enum mq_role mq_tensor_role(const char *n)
{
    if (strcmp(n, "lm_head.weight") == 0 || strcmp(n, "output.weight") == 0 || ends_with(n, ".lm_head.weight"))
        return MQ_ROLE_OUTPUT;
    if (has(n, "embed_tokens.") || strcmp(n, "token_embd.weight") == 0 || has(n, "wte.") ||
        has(n, "word_embeddings.") || strcmp(n, "per_layer_token_embd.weight") == 0)
        return MQ_ROLE_TOKEN_EMBD;
    if (has(n, "position_embd") || has(n, "wpe.") || has(n, "embed_positions") || has(n, "position_embeddings") ||
        has(n, "token_type"))
        return MQ_ROLE_POS_EMBD;
    if (has(n, "norm") || has(n, ".ln_") || has(n, "ln_f."))
        return MQ_ROLE_NORM;
    if (has(n, "ffn_gate_inp") || ends_with(n, "mlp.gate.weight") || has(n, "block_sparse_moe.gate.") ||
        has(n, ".router."))
        return MQ_ROLE_ROUTER;
    if (has(n, "attn_qkv.") || has(n, "qkv_proj.")) return MQ_ROLE_ATTN_QKV;
    if (has(n, "q_proj.") || has(n, "attn_q.")) return MQ_ROLE_ATTN_Q;
    if (has(n, "k_proj.") || has(n, "attn_k.")) return MQ_ROLE_ATTN_K;
    if (has(n, "v_proj.") || has(n, "attn_v.")) return MQ_ROLE_ATTN_V;
    if (has(n, "o_proj.") || has(n, "attn_output.")) return MQ_ROLE_ATTN_OUT;
    if (has(n, "gate_proj.") || has(n, "ffn_gate.") || has(n, "ffn_gate_exps.")) return MQ_ROLE_FFN_GATE;
    if (has(n, "up_proj.") || has(n, "ffn_up.") || has(n, "ffn_up_exps.")) return MQ_ROLE_FFN_UP;
    if (has(n, "down_proj.") || has(n, "ffn_down.") || has(n, "ffn_down_exps.")) return MQ_ROLE_FFN_DOWN;
    return MQ_ROLE_OTHER;
}

/*
** The exclusions of llama-quantize's tensor_allows_quantization, in its order: `part` found
** anywhere in the name, or (exact) the whole name. LLM_TN(arch)(POS_EMBD / TOKEN_TYPES, "weight")
** are "position_embd.weight" and "token_types.weight" for every architecture.
*/
static const struct {
    const char *part;
    bool exact;
    const char *why;
} gguf_exclusions[] = {
    {"_norm.weight", false, "norm"},
    {"ffn_gate_inp.weight", false, "expert router"},
    {"altup", false, "small (altup)"},
    {"laurel", false, "small (laurel)"},
    {"per_layer_model_proj", false, "per-layer projection"},
    {"position_embd.weight", true, "position embeddings"},
    {"token_types.weight", true, "token types"},
    {"ssm_conv1d", false, "small conv1d"},
    {"shortconv.conv.weight", false, "small conv1d"},
    {"time_mix_first.weight", false, "RWKV time mix"},
    {"time_mix_w0.weight", false, "RWKV time mix"},
    {"time_mix_w1.weight", false, "RWKV time mix"},
    {"time_mix_w2.weight", false, "RWKV time mix"},
    {"time_mix_v0.weight", false, "RWKV time mix"},
    {"time_mix_v1.weight", false, "RWKV time mix"},
    {"time_mix_v2.weight", false, "RWKV time mix"},
    {"time_mix_a0.weight", false, "RWKV time mix"},
    {"time_mix_a1.weight", false, "RWKV time mix"},
    {"time_mix_a2.weight", false, "RWKV time mix"},
    {"time_mix_g1.weight", false, "RWKV time mix"},
    {"time_mix_g2.weight", false, "RWKV time mix"},
    {"time_mix_decay_w1.weight", false, "RWKV time mix"},
    {"time_mix_decay_w2.weight", false, "RWKV time mix"},
    {"time_mix_lerp_fused.weight", false, "RWKV time mix"},
    {"attn_rel_b.weight", false, "relative position bias"},
    {".position_embd", false, "position embeddings"},
    {"sam.pos_embd", false, "position embeddings"},
    {"sam.neck.", false, "vision neck"},
    {"sam.net_", false, "vision"},
    {".rel_pos", false, "relative positions"},
    {".patch_embd", false, "patch embeddings"},
    {".patch_merger", false, "patch merger"},
};

/* A LoRA adapter's "W.lora_a" / "W.lora_b" follow W's rules (convert_hf_to_gguf treats the three
** suffixes alike): the name without the suffix, in buf; other names unchanged. */
static const char *lora_base(const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    if (n < 7 || n - 7 >= cap || (strcmp(name + n - 7, ".lora_a") != 0 && strcmp(name + n - 7, ".lora_b") != 0))
        return name;
    memcpy(buf, name, n - 7);
    buf[n - 7] = '\0';
    return buf;
}

const char *mq_tensor_gguf_unquantized(const char *full)
{
    char buf[512];
    const char *name = lora_base(full, buf, sizeof buf);
    if (!ends_with(name, "weight")) return "not a weight";
    for (size_t i = 0; i < sizeof gguf_exclusions / sizeof gguf_exclusions[0]; i++) {
        bool hit = gguf_exclusions[i].exact ? strcmp(name, gguf_exclusions[i].part) == 0
                                            : has(name, gguf_exclusions[i].part);
        if (hit) return gguf_exclusions[i].why;
    }
    return NULL;
}

/* The MODEL_TENSOR kinds prepare_tensors lists, as far as the families modelq writes have them. */
static const char *const gguf_float_f32_parts[] = {"ffn_gate_inp.weight", "position_embd.weight", "token_types.weight"};

bool mq_tensor_gguf_float_keeps_f32(const char *full)
{
    char buf[512];
    const char *name = lora_base(full, buf, sizeof buf);
    if (!ends_with(name, ".weight")) return true;
    for (size_t i = 0; i < sizeof gguf_float_f32_parts / sizeof gguf_float_f32_parts[0]; i++)
        if (has(name, gguf_float_f32_parts[i])) return true;
    return false;
}

long mq_tensor_layer(const char *name)
{
    static const char *const keys[] = {"layers.", "blk.", "h.", "layer."};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *p = name;
        size_t kl = strlen(keys[k]);
        while ((p = strstr(p, keys[k])) != NULL) {
            bool at_start = (p == name || p[-1] == '.');
            const char *d = p + kl;
            if (at_start && *d >= '0' && *d <= '9') {
                char *end;
                long v = strtol(d, &end, 10);
                if (*end == '.') return v;
            }
            p += kl;
        }
    }
    return -1;
}
