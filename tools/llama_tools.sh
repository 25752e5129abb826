#!/usr/bin/env bash
# tools/llama_tools.sh WORKDIR - llama.cpp's own llama-imatrix and llama-perplexity of the pinned
# release, built into WORKDIR/bin (once; later calls reuse them). Used by tools/kl_table.sh and
# tools/mkimatrix_llama.sh; nothing in the build or the test suite needs it.
#
# Where they come from: the npm package node-llama-cpp@3.22.1 (the version of the pinned prebuilt
# @node-llama-cpp/linux-x64 whose libllama / libggml the tests use) ships the llama.cpp source of its
# release as a git bundle, package/llama/gitRelease.bundle (tag in package/llama/llama.cpp.info.json,
# v0.5.0). tools/imatrix/imatrix.cpp and tools/perplexity/*.cpp of that source are compiled with g++
# against its headers and linked to the prebuilt libllama-common.so (llama.cpp's common library),
# libllama and libggml, so their ABI is that source's; the CPU backends (libggml-cpu-*.so) are linked
# beside the binaries, where ggml looks for them.
# Environment: NLC_TGZ (a node-llama-cpp-3.22.1.tgz already downloaded; else `npm pack` fetches it),
# LLAMA_SRC (a checkout of that same bundle; then nothing is fetched).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: tools/llama_tools.sh WORKDIR" >&2; exit 2; }
work=$1
libs=$root/tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
[ -r "$libs/libllama-common.so" ] || { echo "llama_tools: $libs: run tools/setup.sh (npm ci in tools/interop)" >&2; exit 2; }
command -v g++ >/dev/null || { echo "llama_tools: g++ is needed to build llama-imatrix / llama-perplexity" >&2; exit 2; }
mkdir -p "$work/bin"
log=$work/build-log.txt
release=$(sed -n 's/.*"release": *"\([^"]*\)".*/\1/p' "$libs/_nlcBuildMetadata.json")
if [ ! -x "$work/bin/llama-perplexity" ] || [ ! -x "$work/bin/llama-imatrix" ]; then
  src=${LLAMA_SRC:-$work/llama.cpp}
  if [ ! -d "$src" ]; then
    tgz=${NLC_TGZ:-}
    if [ -z "$tgz" ]; then
      (cd "$work" && npm pack node-llama-cpp@3.22.1 >>"$log" 2>&1)
      tgz=$work/node-llama-cpp-3.22.1.tgz
    fi
    tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
    tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$work/package/llama/llama.cpp.info.json")
    if [ "$tag" != "$release" ]; then
      echo "llama_tools: the source bundle is llama.cpp $tag, the prebuilt libraries $release" >&2
      exit 3
    fi
    git clone -q "$work/package/llama/gitRelease.bundle" "$src" >>"$log" 2>&1
  fi
  cxx=(g++ -std=c++17 -O2 -I"$src/include" -I"$src/common" -I"$src/ggml/include" -I"$src/vendor")
  ld=(-L"$libs" -l:libllama-common.so -l:libllama.$release.so -l:libggml.$release.so -l:libggml-base.so
      -Wl,-rpath,"$libs" -lpthread)
  echo "llama_tools: building llama-imatrix and llama-perplexity ($release) in $work/bin" >&2
  "${cxx[@]}" "$src/tools/imatrix/imatrix.cpp" -o "$work/bin/llama-imatrix" "${ld[@]}"
  "${cxx[@]}" -I"$src/tools/perplexity" "$src/tools/perplexity/perplexity.cpp" "$src/tools/perplexity/main.cpp" \
    -o "$work/bin/llama-perplexity" "${ld[@]}"
fi
for f in "$libs"/libggml-cpu-*.so; do ln -sf "$f" "$work/bin/"; done
