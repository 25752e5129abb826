#!/usr/bin/env bash
# tools/mkimatrix_llama.sh [MODEL_DIR] - llama.cpp's own llama-imatrix, built from the pinned release's
# source against the pinned prebuilt libraries, run on a model's held-out calibration text.
#
# Makes MODEL_DIR/imatrix.gguf (default MODEL_DIR: testdata/tiny-trained) for tests/test_imatrix_kl.c,
# which commits it, so neither the test suite nor CI needs this script. Steps:
#   1. the source: npm's node-llama-cpp@3.22.1 ships llama.cpp's full source as llama/gitRelease.bundle,
#      the same release as the prebuilt @node-llama-cpp/linux-x64@3.22.1 in tools/interop (libllama,
#      libggml, libllama-common = llama.cpp's common library); `npm pack` fetches it into
#      ${XDG_CACHE_HOME:-~/.cache}/modelq/ and the bundle is cloned there (once);
#   2. tools/imatrix/imatrix.cpp compiled with g++ against that source's headers and linked to the
#      prebuilt libraries (their ABI is that source's);
#   3. modelq writes MODEL_DIR's f32 GGUF, and llama-imatrix runs on it over calibration.txt with one
#      thread and a context of 128 (it loads its CPU backend from the prebuilt folder, its cwd).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
model=${1:-$root/testdata/tiny-trained}
model=$(cd "$model" && pwd)
lib="$root/tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
modelq=${MODELQ_BIN:-$root/build/modelq}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/modelq
src=$cache/llama.cpp-node-llama-cpp-3.22.1
[ -x "$modelq" ] || { echo "mkimatrix_llama: build modelq first ($modelq)" >&2; exit 2; }
[ -f "$lib/libllama-common.so" ] || { echo "mkimatrix_llama: run tools/setup.sh first (no $lib)" >&2; exit 2; }
[ -f "$model/calibration.txt" ] || { echo "mkimatrix_llama: $model has no calibration.txt" >&2; exit 2; }

if [ ! -f "$src/tools/imatrix/imatrix.cpp" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null && tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle)
  git clone -q "$tmp/package/llama/gitRelease.bundle" "$src.tmp"
  mv "$src.tmp" "$src"
  rm -rf "$tmp"
fi
bin=$cache/llama-imatrix
if [ ! -x "$bin" ] || [ "$src/tools/imatrix/imatrix.cpp" -nt "$bin" ]; then
  g++ -std=c++17 -O2 -I "$src/common" -I "$src/include" -I "$src/ggml/include" -I "$src/vendor" \
    "$src/tools/imatrix/imatrix.cpp" -o "$bin.tmp" -L "$lib" -l:libllama-common.so -l:libllama.v0.5.0.so \
    -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$lib"
  mv "$bin.tmp" "$bin"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$modelq" convert "$model" -o "$work/model-f32.gguf" --type f32 >/dev/null
(cd "$lib" && "$bin" -m "$work/model-f32.gguf" -f "$model/calibration.txt" -o "$work/imatrix.gguf" -c 128 -t 1 \
   --no-ppl >"$work/log" 2>&1) || { tail -20 "$work/log" >&2; exit 1; }
mv "$work/imatrix.gguf" "$model/imatrix.gguf"
grep -E "compute_imatrix: computing over|stored collected data" "$work/log" >&2 || true
echo "mkimatrix_llama: wrote $model/imatrix.gguf" >&2
