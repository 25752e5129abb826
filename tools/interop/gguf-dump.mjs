#!/usr/bin/env node
// gguf-dump.mjs FILE - describe a GGUF file as @huggingface/gguf (pinned in package.json) sees it,
// as one JSON object on stdout. Read by tests/helpers/gguf_dump.c (gguf_view_from_js); exit 0 on
// success, 1 with a one-line message on stderr when the package refuses the file or is missing.
//
// Output (every 64-bit quantity is a decimal string, so nothing is rounded through a double):
//   { "version": 3, "alignment": "32", "data_offset": "448", "file_size": "1234",
//     "n_kv": "5", "n_tensors": "3",
//     "kv": [ { "key": "...", "type": 4, "elem_type": -1, "n": "0", "value": V }, ... ],
//     "tensors": [ { "name": "...", "n_dims": 2, "ne": ["64", "3"], "type": 8,
//                    "offset": "0", "nbytes": "204" }, ... ] }
// V by GGUF value type: integers (UINT8..INT64) as decimal strings; BOOL as true/false; FLOAT32 and
// FLOAT64 as "0x" + the 16 hex digits of the IEEE double the package returned (a FLOAT32 widens to
// a double exactly), so -0.0, NaN payloads and infinities survive; STRING as a JSON string; ARRAY
// as a JSON array of elements encoded the same way ("elem_type" is the array's element type and
// "n" its count; both are -1 / "0" for scalars).
//
// The package does not report alignment or tensor sizes: alignment is general.alignment when
// present, else 32 (the rule the package itself uses for tensorDataOffset); nbytes comes from the
// block table below (ggml type id -> [elements per block, bytes per block]; null for a type not in
// the table). "n_kv" is the header's count, and "kv" the entries the package returned: a file whose
// keys repeat, or use the package's pseudo keys version/tensor_count/kv_count, shows up as a
// mismatch between the two.
import { stat } from "node:fs/promises";
import { gguf } from "@huggingface/gguf";

const BLOCKS = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110],
  22: [256, 82], 23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8],
  29: [256, 56], 30: [1, 2], 34: [256, 54], 35: [256, 66], 39: [32, 17],
};

const T = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
            STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 };
const PSEUDO_KEYS = new Set(["version", "tensor_count", "kv_count"]);

function floatBits(x) {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return "0x" + b.getBigUint64(0, true).toString(16).padStart(16, "0");
}

function encode(type, v) {
  switch (type) {
    case T.BOOL: return Boolean(v);
    case T.STRING: return String(v);
    case T.FLOAT32: case T.FLOAT64: return floatBits(Number(v));
    default: return BigInt(v).toString();
  }
}

function nbytes(type, ne) {
  const blk = BLOCKS[type];
  if (!blk) return null;
  let n = 1n;
  for (const d of ne) n *= d;
  if (ne.length && ne[0] % BigInt(blk[0]) !== 0n) return null;
  return ((n / BigInt(blk[0])) * BigInt(blk[1])).toString();
}

async function main() {
  const file = process.argv[2];
  if (!file) throw new Error("usage: gguf-dump.mjs FILE");
  const size = (await stat(file)).size;
  const r = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const tm = r.typedMetadata;
  const kv = [];
  let alignment = 32n;
  for (const [key, e] of Object.entries(tm)) {
    if (PSEUDO_KEYS.has(key)) continue; // the package's own entries, not KV pairs of the file
    const isArr = e.type === T.ARRAY;
    const entry = {
      key,
      type: e.type,
      elem_type: isArr ? (e.subType ?? -1) : -1,
      n: isArr ? String(e.value.length) : "0",
      value: isArr ? e.value.map((x) => encode(e.subType, x)) : encode(e.type, e.value),
    };
    if (key === "general.alignment" && !isArr) alignment = BigInt(e.value);
    kv.push(entry);
  }
  const out = {
    version: Number(r.metadata.version),
    alignment: alignment.toString(),
    data_offset: r.tensorDataOffset.toString(),
    file_size: String(size),
    n_kv: BigInt(r.metadata.kv_count).toString(),
    n_tensors: BigInt(r.metadata.tensor_count).toString(),
    kv,
    tensors: r.tensorInfos.map((t) => ({
      name: t.name,
      n_dims: t.n_dims,
      ne: t.shape.map((d) => d.toString()),
      type: t.dtype,
      offset: t.offset.toString(),
      nbytes: nbytes(t.dtype, t.shape),
    })),
  };
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`gguf-dump.mjs: ${process.argv[2] ?? ""}: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
