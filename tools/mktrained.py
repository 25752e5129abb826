#!/usr/bin/python3
"""mktrained.py OUT_DIR - trains the tiny Llama of testdata/tiny-trained/ on text, with torch.

Needs torch (Debian: apt-get install python3-torch libopenblas0-pthread; without OpenBLAS Debian's
torch uses the reference BLAS, 15x slower; run with /usr/bin/python3; ~5 min on 2 cores). Nothing in the
build or the test suite needs it: the outputs are committed. Why it exists: issue 12's KL table
(quantization with and without an importance matrix) needs a model whose weights were *trained*,
so that their distribution and the activations an importance matrix records look like a real
model's, not like the designed weights of testdata/tiny-llama.

The model has tiny-llama's shape and tokenizer (hidden 256, 2 layers, 4 query heads and 2 KV
heads of 64, SwiGLU 512, vocab 384: 256 byte tokens, 126 merges, 2 specials), written as
Hugging Face would (LlamaForCausalLM, BF16 safetensors, config.json, tokenizer files copied).
The forward pass below is transformers' Llama written out (RMSNorm with eps 1e-5, RoPE by
rotate_half with theta 10000, grouped-query causal attention, SwiGLU, untied lm_head), so the
float64 reference of the tests (tests/helpers/llama_ref.c) computes the same function.

Text: the project's README.md, ASCII only, split by paragraph: paragraphs 7 and 9 of every ten
are held out as calibration.txt (for llama-imatrix) and eval.txt (for the KL measurement); the
model trains on the rest. Token ids come from the tokenizer's byte-level BPE, implemented here
for ASCII text (the pre-tokenizer's \\p{L}/\\p{N} classes reduce to [A-Za-z]/[0-9]).

  OUT_DIR/config.json, model.safetensors, tokenizer.json, tokenizer_config.json
  OUT_DIR/calibration.txt, eval.txt   held-out text
  OUT_DIR/TRAINING.txt                steps, loss and held-out loss
"""
import json
import math
import os
import re
import shutil
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "testdata", "tiny-llama")

E, F, L, H, KV, D, V = 256, 512, 2, 4, 2, 64, 384
EPS, THETA = 1e-5, 10000.0
SEQ, BATCH, STEPS, LR = 128, 16, 250, 3e-3


# ---- tokenizer: byte-level BPE of tiny-llama's tokenizer.json, for ASCII text ----------------

def byte_to_unicode():
    """GPT-2's printable stand-in for every byte (ByteLevel)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


SPLIT = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|"
                   r"\s*[\r\n]+|\s+(?!\S)|\s+")


class Bpe:
    def __init__(self, path):
        t = json.load(open(path))
        self.vocab = t["model"]["vocab"]
        self.rank = {tuple(m.split(" ")): i for i, m in enumerate(t["model"]["merges"])}
        self.b2u = byte_to_unicode()

    def word(self, w):
        sym = [self.b2u[b] for b in w.encode("ascii")]
        while len(sym) > 1:
            best = min(range(len(sym) - 1), key=lambda i: self.rank.get((sym[i], sym[i + 1]), 1 << 30))
            if (sym[best], sym[best + 1]) not in self.rank:
                break
            sym[best:best + 2] = [sym[best] + sym[best + 1]]
        return [self.vocab[s] for s in sym]

    def encode(self, text):
        ids = []
        for w in SPLIT.findall(text):
            ids += self.word(w)
        return ids


# ---- the model: transformers' Llama ---------------------------------------------------------

def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def init_params(g):
    p = {"model.embed_tokens.weight": torch.randn(V, E, generator=g) * 0.02}
    for i in range(L):
        pre = "model.layers.%d." % i
        p[pre + "input_layernorm.weight"] = torch.ones(E)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(E)
        for name, shape in (("self_attn.q_proj", (H * D, E)), ("self_attn.k_proj", (KV * D, E)),
                            ("self_attn.v_proj", (KV * D, E)), ("self_attn.o_proj", (E, H * D)),
                            ("mlp.gate_proj", (F, E)), ("mlp.up_proj", (F, E)), ("mlp.down_proj", (E, F))):
            std = 0.02 / math.sqrt(2 * L) if name in ("self_attn.o_proj", "mlp.down_proj") else 0.02
            p[pre + name + ".weight"] = torch.randn(*shape, generator=g) * std
    p["model.norm.weight"] = torch.ones(E)
    p["lm_head.weight"] = torch.randn(V, E, generator=g) * 0.02
    for t in p.values():
        t.requires_grad_(True)
    return p


def forward(p, ids):
    B, T = ids.shape
    x = p["model.embed_tokens.weight"][ids]
    inv = 1.0 / (THETA ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), dim=-1)
    cos, sin = ang.cos(), ang.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        pre = "model.layers.%d." % i
        h = rms(x, p[pre + "input_layernorm.weight"])
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, dim=-1) @ v
        x = x + a.transpose(1, 2).reshape(B, T, H * D) @ p[pre + "self_attn.o_proj.weight"].T
        h = rms(x, p[pre + "post_attention_layernorm.weight"])
        g = h @ p[pre + "mlp.gate_proj.weight"].T
        u = h @ p[pre + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ p[pre + "mlp.down_proj.weight"].T
    return rms(x, p["model.norm.weight"]) @ p["lm_head.weight"].T


def loss_of(p, ids):
    logits = forward(p, ids[:, :-1])
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))


# ---- safetensors, BF16 --------------------------------------------------------------------

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        raw = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mktrained.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    g = torch.Generator().manual_seed(1234)
    torch.set_num_threads(1)

    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    text = text.encode("ascii", "ignore").decode("ascii")
    paras = [q.strip() for q in re.split(r"\n\s*\n", text) if len(q.strip()) > 40]
    train = "\n\n".join(q for i, q in enumerate(paras) if i % 10 not in (7, 9))
    calib = "\n\n".join(q for i, q in enumerate(paras) if i % 10 == 7)
    evalt = "\n\n".join(q for i, q in enumerate(paras) if i % 10 == 9)
    bpe = Bpe(os.path.join(SRC, "tokenizer.json"))
    tr = torch.tensor(bpe.encode(train), dtype=torch.long)
    ev = torch.tensor(bpe.encode(evalt), dtype=torch.long)

    p = init_params(g)
    opt = torch.optim.AdamW(list(p.values()), lr=LR, weight_decay=0.01, betas=(0.9, 0.95))
    log = []
    for step in range(STEPS):
        lr = LR * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / STEPS)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(tr) - SEQ - 1, (BATCH,), generator=g)
        ids = torch.stack([tr[s:s + SEQ + 1] for s in starts])
        loss = loss_of(p, ids)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        if step % 50 == 0 or step == STEPS - 1:
            with torch.no_grad():
                n = (len(ev) - 1) // SEQ
                held = loss_of(p, torch.stack([ev[i * SEQ:i * SEQ + SEQ + 1] for i in range(min(n, 16))])).item()
            log.append("step %d loss %.4f held-out %.4f" % (step, loss.item(), held))
            print(log[-1], flush=True)

    names = ["model.embed_tokens.weight"]
    for i in range(L):
        pre = "model.layers.%d." % i
        names += [pre + s + ".weight" for s in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                                "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
                                                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    names += ["model.norm.weight", "lm_head.weight"]
    write_safetensors(os.path.join(out, "model.safetensors"), [(n, p[n]) for n in names])
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(SRC, f), os.path.join(out, f))
    with open(os.path.join(out, "calibration.txt"), "w") as f:
        f.write(calib + "\n")
    with open(os.path.join(out, "eval.txt"), "w") as f:
        f.write(evalt + "\n")
    with open(os.path.join(out, "TRAINING.txt"), "w") as f:
        f.write("tools/mktrained.py: %d steps of %d x %d tokens, AdamW lr %g (cosine), %d training tokens, "
                "%d held-out eval tokens\n" % (STEPS, BATCH, SEQ, LR, len(tr), len(ev)))
        f.write("\n".join(log) + "\n")


if __name__ == "__main__":
    main()
