#!/usr/bin/env bash
# tools/setup.sh - install what modelq needs to build and test, and nothing when all is present.
#
# Debian packages: build tools and the four libraries (found later through pkg-config).
# npm packages: pinned in tools/interop/package-lock.json, installed into tools/interop/node_modules.
# Works as root on a fresh Debian 12 machine; runs `apt-get update` at most once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pkgs=(build-essential cmake pkg-config clang libcjson-dev zlib1g-dev libxxhash-dev libcriterion-dev nodejs npm)
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

# Node packages for interop tests (pinned by the committed lock file).
if [ -f "$here/interop/package-lock.json" ]; then
  if [ ! -d "$here/interop/node_modules" ] || [ "$here/interop/package-lock.json" -nt "$here/interop/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in tools/interop" >&2
    (cd "$here/interop" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
