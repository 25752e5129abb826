#!/usr/bin/env bash
# tools/check_layers.sh - every #include "x.h" of the library and CLI points down the layers (or
# across, within a folder); prints the import structure and exits 1 on a violation.
#
# Layers, lowest first (CMakeLists.txt says what each holds):
#   0 src/util   1 src/quant   2 src/model   3 src/pipeline, formats (plug-ins)   4 src/api
#   5 src/report (the HTML report: a client of the api)   6 src/cli
# Rules: a folder includes private headers only from its own layer or lower; src/cli includes only
# public headers (include/modelq/), and a public header includes only public ones.
# formats/ (the plug-ins) reach the pipeline only through the public plug-in API, modelq/plugin.h
# (the writer ops, the plan through accessors and setters, the output file, the checksum records):
# they include no header of src/pipeline, and nothing of src/api.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
declare -A rank=([src/util]=0 [src/quant]=1 [src/model]=2 [src/pipeline]=3 [formats]=3 [src/api]=4 [src/report]=5 [src/cli]=6)
declare -A home
for d in "${!rank[@]}"; do
  for h in "$d"/*.h; do [ -e "$h" ] && home[$(basename "$h")]=$d; done
done
bad=0
declare -A edges
for d in "${!rank[@]}"; do
  for f in "$d"/*.c "$d"/*.h; do
    [ -e "$f" ] || continue
    while read -r inc; do
      [ -n "$inc" ] || continue
      case "$inc" in modelq/*) continue ;; esac
      target=${home[$inc]:-}
      if [ -z "$target" ]; then echo "unknown private header $inc in $f"; bad=1; continue; fi
      [ "$target" = "$d" ] && continue
      edges["$d -> $target"]=1
      ok=1
      if [ "$d" = src/cli ]; then ok=0
      elif [ "${rank[$target]}" -gt "${rank[$d]}" ]; then ok=0
      elif [ "$d" = formats ] && [ "$target" = src/api ]; then ok=0
      elif [ "$d" = formats ] && [ "$target" = src/pipeline ]; then ok=0
      elif [ "$d" = src/pipeline ] && [ "$target" = formats ]; then ok=0
      fi
      if [ $ok = 0 ]; then echo "VIOLATION: $f includes $inc ($target)"; bad=1; fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
# public headers: only other public headers (and system headers)
for h in include/modelq/*.h; do
  while read -r inc; do
    case "$inc" in modelq/*) ;; *) echo "VIOLATION: public header $h includes private $inc"; bad=1 ;; esac
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$h")
done
echo "import structure (folder -> folders it includes private headers from):"
for e in "${!edges[@]}"; do echo "  $e"; done | sort
if [ $bad = 0 ]; then echo "layers: 1 passed, 0 failed"; else echo "layers: 0 passed, 1 failed"; fi
exit $bad
