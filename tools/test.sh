#!/usr/bin/env bash
# tools/test.sh - set up, build and run every test: a gcc build, a clang build (quantizer bytes
# must not depend on the compiler; float -> integer casts checked: -fsanitize=float-cast-overflow)
# and a gcc build under AddressSanitizer + UBSan.
# Usage: bash tools/test.sh            (what .ci/run calls)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() { # name cc extra-cmake-args...
  local name=$1 cc=$2; shift 2
  echo "== $name: configure + build ($cc)"
  cmake -S . -B "build-$name" -DCMAKE_C_COMPILER="$cc" "$@" >/dev/null
  cmake --build "build-$name" -j "$jobs" >/dev/null
  echo "== $name: ctest"
  (cd "build-$name" && ctest --output-on-failure -j "$jobs")
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite gcc gcc -DCMAKE_BUILD_TYPE=Release -DMODELQ_WERROR=ON        # gcc -O3: where maybe-uninitialized shows
run_suite clang clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELQ_WERROR=ON -DMODELQ_FUZZ=ON -DMODELQ_CAST_CHECK=ON   # + libFuzzer smoke runs
run_suite asan gcc -DCMAKE_BUILD_TYPE=Debug -DMODELQ_WERROR=ON -DMODELQ_SANITIZE=ON
echo "all test suites passed (gcc, clang, asan+ubsan)"
