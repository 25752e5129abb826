#!/usr/bin/env bash
# tools/run.sh - set up, build, and run modelq's main job on the model bundled in testdata/.
# Usage: bash tools/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELQ_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
model=testdata/tiny-llama
set -x
./build/modelq inspect "$model"
./build/modelq estimate "$model"
./build/modelq convert "$model" -o build/tiny-llama-q8_0.gguf --type q8_0 --stats
./build/modelq verify build/tiny-llama-q8_0.gguf --quiet
