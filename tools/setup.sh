#!/usr/bin/env bash
# tools/setup.sh - install what modelq needs to build and test, and nothing when all is present.
#
# Debian packages: build tools and the four libraries (found later through pkg-config); chromium
# renders the HTML report headless in tests/test_report_html.c.
# npm packages: pinned in tools/interop/package-lock.json, installed into tools/interop/node_modules.
# Works as root on a fresh Debian 12 machine; runs `apt-get update` at most once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev libcjson-dev zlib1g-dev libxxhash-dev libcriterion-dev
      nodejs npm chromium)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    # nodejs/npm may come from elsewhere (e.g. a preinstalled Node): accept working binaries.
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node packages for interop tests, each folder pinned by its committed lock file:
#   tools/interop            @node-llama-cpp/linux-x64 (ggml's libggml-base.so: differential tests, GGUF
#                            reader/writer) and @huggingface/gguf (second GGUF parser, gguf-dump.mjs)
#   tools/interop-tokenizer  a JS tokenizers implementation that loads the bundled tokenizer.json
#   tools/interop-report     saxes (strict XML parser) and pngjs (PNG decoder) read the HTML report
for d in "$here/interop" "$here/interop-tokenizer" "$here/interop-report"; do
  [ -f "$d/package-lock.json" ] || continue
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in ${d#"$here/"}" >&2
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
done
