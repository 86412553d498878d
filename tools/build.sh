#!/usr/bin/env bash
# Configures and builds rbm (Release) into build/ — or $RBM_BUILD_DIR — and prints the
# binary's path last. Re-running rebuilds only what changed. Extra arguments go to cmake.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RBM_BUILD_DIR:-$repo/build}
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" > "$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)"
echo "$build/rbm"
