// encode.mjs - encodes texts with the real Hugging Face tokenizer library (tokenizers.js), for
// tests/test_fixture_tokenizer.c (which compares the result with its own C encoder) and
// tests/test_gguf_vocab.c (which compares it with llama.cpp reading modelq's GGUF metadata).
//
// Usage: node encode.mjs MODEL_DIR TEXTS_JSON
//   MODEL_DIR   folder with tokenizer.json and tokenizer_config.json
//   TEXTS_JSON  file holding a JSON array of strings
// Prints one JSON document:
//   {"results": [{"ids": [...], "tokens": [...], "with_special": [...], "decoded": "..."}]}
// "ids" has no special tokens (added tokens in the text are still recognised, as the library
// always does), "tokens" are their strings, "with_special" is what the post-processor adds (BOS
// first), "decoded" is decode(ids) ("" for no ids). Exits non-zero (with the library's error) when the files do not load.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textsPath] = process.argv.slice(2);
if (!dir || !textsPath) {
  console.error("usage: node encode.mjs MODEL_DIR TEXTS_JSON");
  process.exit(2);
}
const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const results = texts.map((text) => {
  const plain = tokenizer.encode(text, { add_special_tokens: false });
  const withSpecial = tokenizer.encode(text).ids;
  const decoded = plain.ids.length ? tokenizer.decode(plain.ids) : "";
  return { ids: plain.ids, tokens: plain.tokens, with_special: withSpecial, decoded };
});
process.stdout.write(JSON.stringify({ results }) + "\n");
