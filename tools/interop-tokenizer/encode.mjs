// encode.mjs - encodes texts with the real Hugging Face tokenizer library (tokenizers.js), for
// tests/test_fixture_tokenizer.c, which compares the result with its own C encoder.
//
// Usage: node encode.mjs MODEL_DIR TEXTS_JSON
//   MODEL_DIR   folder with tokenizer.json and tokenizer_config.json
//   TEXTS_JSON  file holding a JSON array of strings
// Prints one JSON document: {"results": [{"ids": [...], "with_special": [...], "decoded": "..."}]}
// "ids" has no special tokens, "with_special" is what the post-processor adds (BOS first),
// "decoded" is decode(ids). Exits non-zero (with the library's error) when the files do not load.
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
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const withSpecial = tokenizer.encode(text).ids;
  return { ids, with_special: withSpecial, decoded: tokenizer.decode(ids) };
});
process.stdout.write(JSON.stringify({ results }) + "\n");
