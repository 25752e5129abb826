#!/usr/bin/env bash
# tools/kl_table.sh - the quality table of issue 12: KL divergence of modelq's quantized GGUFs
# from the float model, per type, without and with an importance matrix, measured by llama.cpp's
# own llama-imatrix and llama-perplexity of the pinned release.
#
# Usage: bash tools/kl_table.sh MODEL CALIB.txt EVAL.txt [WORKDIR]
#   MODEL      a checkpoint modelq converts (folder, .safetensors, .gguf)
#   CALIB.txt  calibration text for llama-imatrix
#   EVAL.txt   evaluation text for llama-perplexity (use other text than CALIB.txt)
#   WORKDIR    scratch folder (default build/kl-table); the llama.cpp tools are built there once
# Environment: MODELQ_BIN (default build/modelq), TYPES (default "q4_K q3_K_M q2_K iq4_xs q4_0"),
#   BASE_TYPE (float GGUF the others are compared with: f16, default, or f32), CTX (512),
#   CHUNKS (imatrix and evaluation chunks, 32), THREADS (2), NLC_TGZ (a node-llama-cpp-3.22.1.tgz
#   already downloaded; else `npm pack` fetches it), LLAMA_SRC (a checkout of that same bundle;
#   then nothing is fetched).
#
# The llama.cpp tools are built by tools/llama_tools.sh (from the source node-llama-cpp@3.22.1 ships).
#
# Output: a Markdown table on stdout (and WORKDIR/kl-table.md): type, imatrix, file size, bits per
# weight, mean KLD, same-top-token %, PPL(Q)/PPL(base). The numbers are only as meaningful as the
# model and texts are (the bundled tiny-llama has random weights).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -lt 3 ]; then
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
model=$1 calib=$2 eval_txt=$3
work=${4:-$root/build/kl-table}
modelq=${MODELQ_BIN:-$root/build/modelq}
types=${TYPES:-"q4_K q3_K_M q2_K iq4_xs q4_0"}
base_type=${BASE_TYPE:-f16}
ctx=${CTX:-512} chunks=${CHUNKS:-32} threads=${THREADS:-2}
libs=$root/tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
for f in "$calib" "$eval_txt"; do [ -r "$f" ] || { echo "kl_table: cannot read $f" >&2; exit 4; }; done
[ -x "$modelq" ] || { echo "kl_table: $modelq is not built (cmake --build build)" >&2; exit 2; }
mkdir -p "$work/bin"
log=$work/log.txt
: >"$log"

# ---- 1. llama-imatrix and llama-perplexity of the pinned release (tools/llama_tools.sh) ----
"$root/tools/llama_tools.sh" "$work"

# ---- 2. the float model, its importance matrix, its logits ----
base=$work/base-$base_type.gguf
rm -f "$base"
"$modelq" convert "$model" --type "$base_type" -o "$base" -q >>"$log" 2>&1
"$work/bin/llama-imatrix" -m "$base" -f "$calib" -o "$work/imatrix.gguf" -c "$ctx" --chunks "$chunks" \
  -t "$threads" >>"$log" 2>&1
"$work/bin/llama-perplexity" -m "$base" -f "$eval_txt" -c "$ctx" --chunks "$chunks" -t "$threads" \
  --kl-divergence-base "$work/base.kld" >>"$log" 2>&1

# ---- 3. every type, without and with the imatrix ----
table=$work/kl-table.md
{
  echo "| type | imatrix | bytes | bpw | mean KLD | same top token | PPL(Q)/PPL(base) |"
  echo "|---|---|---:|---:|---:|---:|---:|"
} >"$table"
params=$("$modelq" inspect "$base" 2>/dev/null | awk '$1 == "all" && $5 == "parameters" { gsub(",", "", $4); print $4; exit }')
for t in $types; do
  for im in no yes; do
    q=$work/$t-$im.gguf
    extra=()
    [ "$im" = yes ] && extra=(--imatrix "$work/imatrix.gguf")
    rm -f "$q"
    "$modelq" convert "$model" --type "$t" "${extra[@]}" -o "$q" -q >>"$log" 2>&1
    out=$work/$t-$im.log
    "$work/bin/llama-perplexity" -m "$q" -f "$eval_txt" -c "$ctx" --chunks "$chunks" -t "$threads" \
      --kl-divergence-base "$work/base.kld" --kl-divergence >"$out" 2>&1
    kld=$(sed -n 's/^Mean *KLD: *\([^ ]*\) *± *\([^ ]*\).*/\1 ± \2/p' "$out" | head -1)
    top=$(sed -n 's/^Same top p: *\([^ ]*\) *± *\([^ ]*\) *%.*/\1 ± \2 %/p' "$out" | head -1)
    ratio=$(sed -n 's/^Mean PPL(Q)\/PPL(base) *: *\([^ ]*\) *± *\([^ ]*\).*/\1 ± \2/p' "$out" | head -1)
    bytes=$(stat -c %s "$q")
    bpw=-
    [ -n "$params" ] && [ "$params" -gt 0 ] && bpw=$(awk -v b="$bytes" -v p="$params" 'BEGIN{printf "%.3f", 8*b/p}')
    [ -n "$kld" ] || { echo "kl_table: no KLD for $t (imatrix $im): see $out" >&2; exit 1; }
    echo "| $t | $im | $bytes | $bpw | $kld | $top | $ratio |" >>"$table"
    rm -f "$q"
  done
done
cat "$table"
