#!/usr/bin/env bash
# tools/mkimatrix_llama.sh [MODEL_DIR] - llama.cpp's own llama-imatrix, built from the pinned release's
# source against the pinned prebuilt libraries, run on a model's held-out calibration text.
#
# Makes MODEL_DIR/imatrix.gguf (default MODEL_DIR: testdata/tiny-trained) for tests/test_imatrix_kl.c,
# which commits it, so neither the test suite nor CI needs this script. Steps:
#   1. tools/llama_tools.sh builds llama-imatrix from the llama.cpp source node-llama-cpp@3.22.1 ships,
#      against the pinned prebuilt libraries, into WORKDIR/bin (default build/kl-table, shared with
#      tools/kl_table.sh);
#   2. modelq writes MODEL_DIR's f32 GGUF, and llama-imatrix runs on it over calibration.txt with one
#      thread and a context of 128.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
model=${1:-$root/testdata/tiny-trained}
model=$(cd "$model" && pwd)
modelq=${MODELQ_BIN:-$root/build/modelq}
work=${WORKDIR:-$root/build/kl-table}
[ -x "$modelq" ] || { echo "mkimatrix_llama: build modelq first ($modelq)" >&2; exit 2; }
[ -f "$model/calibration.txt" ] || { echo "mkimatrix_llama: $model has no calibration.txt" >&2; exit 2; }

"$here/llama_tools.sh" "$work"
bin=$work/bin/llama-imatrix

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$modelq" convert "$model" -o "$tmp/model-f32.gguf" --type f32 >/dev/null
("$bin" -m "$tmp/model-f32.gguf" -f "$model/calibration.txt" -o "$tmp/imatrix.gguf" -c 128 -t 1 \
   --no-ppl >"$tmp/log" 2>&1) || { tail -20 "$tmp/log" >&2; exit 1; }
mv "$tmp/imatrix.gguf" "$model/imatrix.gguf"
grep -E "compute_imatrix: computing over|stored collected data" "$tmp/log" >&2 || true
echo "mkimatrix_llama: wrote $model/imatrix.gguf" >&2
