#!/usr/bin/env bash
# tests/link/run.sh BUILD_DIR CC [EXTRA_FLAGS] - installs the build into a temporary prefix and builds
# tests/link/user_convert.c against it through pkg-config only, as a user would: against the shared
# library, and against the static archive in two link orders (archive before its dependencies, and
# dependencies first). Each program lists the tiny model's tensors through the public accessors (the
# model is opaque: the names, in order, must be the CLI's inspect --json ones) and converts it to
# q8_0; the bytes must equal the CLI's.
set -euo pipefail
build=$1 cc=$2 extra=${3:-}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=$(mktemp -d /tmp/modelq-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name modelq.pc)
[ -n "$pc" ] || { echo "FAIL: no modelq.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir modelq)
for f in "$libdir/libmodelq.a" "$libdir/libmodelq.so" "$prefix/include/modelq/modelq.h" "$prefix/bin/modelq"; do
  [ -e "$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
# only mq_ symbols are exported from the shared library
bad=$(nm -D --defined-only "$libdir/libmodelq.so" | awk '{print $3}' | grep -v '^mq_' || true)
[ -z "$bad" ] || { echo "FAIL: non-mq_ symbols exported: $bad"; exit 1; }
# the plug-in header compiles on its own in a user's program (it is installed, not in modelq.h)
printf '#include <modelq/plugin.h>\nsize_t n_out(const struct mq_plan *p);\nsize_t n_out(const struct mq_plan *p) { return mq_plan_n_tensors(p); }\n' \
  > "$prefix/plugin_user.c"
# shellcheck disable=SC2046
$cc $extra $(pkg-config --cflags modelq) -c -o "$prefix/plugin_user.o" "$prefix/plugin_user.c"
prog=$src/tests/link/user_convert.c
cflags=$(pkg-config --cflags modelq)
deps=$(pkg-config --libs --static modelq | sed 's/-lmodelq//; s/-L[^ ]*//g')
# shellcheck disable=SC2086
$cc $extra $cflags -o "$prefix/u_shared" "$prog" $(pkg-config --libs modelq) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2086
$cc $extra $cflags -o "$prefix/u_static1" "$prog" -L"$libdir" -Wl,-Bstatic -lmodelq -Wl,-Bdynamic $deps
# shellcheck disable=SC2086
$cc $extra $cflags -o "$prefix/u_static2" "$prog" $deps -L"$libdir" -Wl,-Bstatic -lmodelq -Wl,-Bdynamic $deps
# (ldd's output is read whole first: with pipefail, `ldd | grep -q` fails when grep exits early)
deps_static=$(ldd "$prefix/u_static1") deps_shared=$(ldd "$prefix/u_shared")
case "$deps_static" in *libmodelq*) echo "FAIL: u_static1 uses the shared library"; exit 1 ;; esac
case "$deps_shared" in *libmodelq.so*) ;; *) echo "FAIL: u_shared does not use libmodelq.so"; exit 1 ;; esac
cd "$src"
"$prefix/bin/modelq" convert testdata/tiny-llama -o "$prefix/cli.gguf" --type q8_0 --quiet >/dev/null
# the tensor names inspect --json lists, in order (one "name" key per tensor in its document)
"$prefix/bin/modelq" inspect testdata/tiny-llama --json | sed -n 's/^[[:space:]]*"name":[[:space:]]*"\([^"]*\)",*$/\1/p' \
  > "$prefix/cli.names"
[ -s "$prefix/cli.names" ] || { echo "FAIL: no tensor names from modelq inspect --json"; exit 1; }
for u in u_shared u_static1 u_static2; do
  "$prefix/$u" testdata/tiny-llama "$prefix/$u.gguf" > "$prefix/$u.out"
  cmp "$prefix/cli.gguf" "$prefix/$u.gguf" || { echo "FAIL: $u's output differs from the CLI's"; exit 1; }
  sed -n 's/^tensor \([^ ]*\) .*/\1/p' "$prefix/$u.out" > "$prefix/$u.names"
  cmp "$prefix/cli.names" "$prefix/$u.names" || { echo "FAIL: $u lists other tensors than modelq inspect"; exit 1; }
done
echo "install + pkg-config link: 3 passed, 0 failed"
