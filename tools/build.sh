#!/usr/bin/env bash
# Configures and builds rbm (Release) into build/ — or $RBM_BUILD_DIR — and prints the
# binary's path last. Re-running rebuilds only what changed. `--target T` builds only T
# (the quick start builds just `rbm`); other arguments go to cmake's configure step.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RBM_BUILD_DIR:-$repo/build}
targets=()
configure=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) targets+=(--target "$2"); shift ;;
    *) configure+=("$1") ;;
  esac
  shift
done
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release "${configure[@]}" > "$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
echo "$build/rbm"
