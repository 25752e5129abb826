#!/usr/bin/python3
"""mkpytorch.py OUT_DIR - writes the PyTorch fixtures of testdata/pytorch/ with real torch.save.

Needs torch (Debian: apt-get install python3-torch; run with /usr/bin/python3). Nothing in the
build or the test suite needs it: the outputs are committed, and tests/test_pytorch.c only
regenerates them (and compares) when torch is importable. Every .bin has a .safetensors twin
holding the same tensors, same names, same order and same bytes (written here by hand: the
safetensors package is not needed), so modelq's reading and converting of the two can be
compared byte for byte.

  tiny/          a 1-layer Llama (hidden 64) as pytorch_model.bin + config.json, with
                 tied embeddings (lm_head.weight IS model.embed_tokens.weight: one storage),
                 q/k/v as slices of one fused storage (three tensors at offsets in one storage),
                 o_proj as a transpose (non-contiguous, strides (1, 64)),
                 gate_proj as a column slice of a wider storage (rows with gaps);
                 BF16 weights, F32 norms
  tiny-st/       the same weights as model.safetensors + the same config.json
  sharded/       the same model in two shards + pytorch_model.bin.index.json
  dtypes.bin     one tensor per storage class: F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL, a
                 scalar, an empty tensor, a 3-D permuted view and a strided 1-D view
  dtypes.safetensors   its twin
"""
import json
import os
import struct
import sys

import torch

ST_DTYPE = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def raw_bytes(t):
    """The tensor's elements, row-major, little-endian (what safetensors stores)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_safetensors(path, sd):
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        b = raw_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def llama_state_dict():
    g = torch.Generator().manual_seed(14)
    H, I, V, HEADS, KV = 64, 128, 64, 4, 2
    hd = H // HEADS

    def w(*shape):
        return (torch.randn(*shape, generator=g) * 0.05).to(torch.bfloat16)

    sd = {}
    embed = w(V, H)
    sd["model.embed_tokens.weight"] = embed
    qkv = w(H + 2 * KV * hd, H)  # one storage, three tensors at element offsets
    p = "model.layers.0."
    sd[p + "self_attn.q_proj.weight"] = qkv[:H]
    sd[p + "self_attn.k_proj.weight"] = qkv[H:H + KV * hd]
    sd[p + "self_attn.v_proj.weight"] = qkv[H + KV * hd:]
    sd[p + "self_attn.o_proj.weight"] = w(H, H).t()  # non-contiguous: strides (1, 64)
    sd[p + "mlp.gate_proj.weight"] = w(I, H + 32)[:, 16:16 + H]  # rows with gaps
    sd[p + "mlp.up_proj.weight"] = w(I, H)
    sd[p + "mlp.down_proj.weight"] = w(H, I)
    sd[p + "input_layernorm.weight"] = 1 + torch.randn(H, generator=g) * 0.1
    sd[p + "post_attention_layernorm.weight"] = 1 + torch.randn(H, generator=g) * 0.1
    sd["model.norm.weight"] = 1 + torch.randn(H, generator=g) * 0.1
    sd["lm_head.weight"] = embed  # tied: the same tensor, one storage
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
        "num_hidden_layers": 1, "num_attention_heads": HEADS, "num_key_value_heads": KV, "head_dim": hd,
        "vocab_size": V, "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "bos_token_id": 1, "eos_token_id": 2,
    }
    return sd, config


def dtypes_state_dict():
    g = torch.Generator().manual_seed(6)
    sd = {}
    base = torch.randn(6, 5, generator=g)
    sd["f32"] = base
    sd["f64"] = base.double()
    sd["f16"] = base.half()
    sd["bf16"] = base.bfloat16()
    sd["i64"] = torch.arange(-10, 20, dtype=torch.int64).reshape(5, 6)
    sd["i32"] = torch.arange(-7, 5, dtype=torch.int32)
    sd["i16"] = torch.arange(-300, 300, 50, dtype=torch.int16)
    sd["i8"] = torch.arange(-128, 128, 16, dtype=torch.int8)
    sd["u8"] = torch.arange(0, 256, 8, dtype=torch.uint8).reshape(4, 8)
    sd["bool"] = torch.tensor([True, False, True, True, False])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["permuted"] = torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)  # [4, 2, 3], strides (1, 12, 4)
    sd["strided"] = torch.arange(20, dtype=torch.float32)[1::3]  # 1-D, stride 3, offset 1
    return sd


def main():
    out = sys.argv[1]
    for d in ("tiny", "tiny-st", "sharded"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    sd, config = llama_state_dict()
    cfg = json.dumps(config, indent=2, sort_keys=True) + "\n"
    for d in ("tiny", "tiny-st", "sharded"):
        with open(os.path.join(out, d, "config.json"), "w") as f:
            f.write(cfg)
    torch.save(sd, os.path.join(out, "tiny", "pytorch_model.bin"))
    save_safetensors(os.path.join(out, "tiny-st", "model.safetensors"), sd)
    # two shards, split as transformers' shard_checkpoint would (in order); the tied pair stays whole
    names = list(sd)
    cut = names.index("model.layers.0.mlp.up_proj.weight")
    shards = [("pytorch_model-00001-of-00002.bin", names[:cut]), ("pytorch_model-00002-of-00002.bin", names[cut:])]
    weight_map, total = {}, 0
    for fname, keys in shards:
        part = {k: sd[k] for k in keys}
        torch.save(part, os.path.join(out, "sharded", fname))
        for k in keys:
            weight_map[k] = fname
            total += sd[k].numel() * sd[k].element_size()
    with open(os.path.join(out, "sharded", "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    dsd = dtypes_state_dict()
    torch.save(dsd, os.path.join(out, "dtypes.bin"))
    save_safetensors(os.path.join(out, "dtypes.safetensors"), dsd)


if __name__ == "__main__":
    main()
