#!/usr/bin/env bash
# Fuzzes rbm's input parsers with libFuzzer (Debian's clang): the IDX reader, the
# validation of HDF5 training data, and the configuration parser (INI and command line).
#
#   tools/fuzz.sh [--seconds N] [TARGET...]     (targets: idx hdf5_input config; default all)
#
# Builds each target (tests/fuzz/fuzz_TARGET.cpp and the sources it needs) with clang,
# -fsanitize=fuzzer,address,undefined, into build-fuzz/ (or $RBM_FUZZ_BUILD),
# replays the kept findings (tests/fuzz/regressions/TARGET/: each must now pass), then runs
# each target for N seconds (default 60) from its seeds (tests/fuzz/corpus/TARGET/) and
# the corpus grown by earlier runs (build-fuzz/corpus/TARGET/). Prints the executions;
# a new finding lands in build-fuzz/findings/TARGET/ and the script exits 1. To keep a
# finding once fixed, copy it into tests/fuzz/regressions/TARGET/ (tests/e2e/bad_inputs.sh
# also replays the IDX and configuration ones through the real binary).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RBM_FUZZ_BUILD:-$repo/build-fuzz}
seconds=60 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    idx|hdf5_input|config) targets+=("$1") ;;
    *) echo "fuzz.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(idx hdf5_input config)

if ! command -v clang++ > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1; then
  echo "fuzz.sh: needs clang and libFuzzer: apt-get install -y clang libclang-rt-14-dev (tools/setup.sh installs them)" >&2
  exit 1
fi

# Only the sources each target needs, compiled here with clang (not the whole rbm_core:
# the rest of the program need not build with clang for its parsers to be fuzzed).
data_sources=(io/idx_reader io/dataset io/hdf5_input io/h5)
config_sources=(cli/options train/config engine/device_kind dist/comm_kind)
flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$repo/src" -I"$repo/tests/fuzz" -I/usr/include/hdf5/serial $(mpicc --showme:compile))
libs=(-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lboost_program_options -lz)
mkdir -p "$build/obj"
newest_header=$(find "$repo/src" "$repo/tests/fuzz" -name '*.hpp' -printf '%T@\n' | sort -n | tail -n1)
stale() {  # stale OUT INPUT: OUT is missing or older than INPUT or than any header
  [ ! -e "$1" ] || [ "$2" -nt "$1" ] || [ "$(stat -c %Y "$1")" -lt "${newest_header%.*}" ]
}
objects() {  # objects SOURCE...: compiles what changed (in parallel), prints the object paths
  local s o pids=()
  for s in "$@"; do
    o=$build/obj/${s//\//_}.o
    if stale "$o" "$repo/src/$s.cpp"; then
      clang++ "${flags[@]}" -fsanitize=fuzzer-no-link -c "$repo/src/$s.cpp" -o "$o" >&2 & pids+=($!)
    fi
    echo "$o"
  done
  for s in "${pids[@]}"; do wait "$s" || { echo "fuzz.sh: compiling failed" >&2; exit 1; }; done
}
echo "fuzz.sh: building the targets with clang into $build"
for t in "${targets[@]}"; do
  src=$repo/tests/fuzz/fuzz_$t.cpp bin=$build/fuzz_$t
  extra=()
  if [ "$t" = config ]; then
    mapfile -t objs < <(objects "${config_sources[@]}")
  else
    mapfile -t objs < <(objects "${data_sources[@]}")
  fi
  if stale "$bin" "$src" || [ -n "$(find "${objs[@]}" "${extra[@]}" -newer "$bin" 2> /dev/null)" ]; then
    clang++ "${flags[@]}" -fsanitize=fuzzer "$src" "${objs[@]}" "${extra[@]}" "${libs[@]}" -o "$bin"
  fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total=0 found=0
for t in "${targets[@]}"; do
  bin=$build/fuzz_$t seeds=$repo/tests/fuzz/corpus/$t kept=$repo/tests/fuzz/regressions/$t
  corpus=$build/corpus/$t findings=$build/findings/$t
  mkdir -p "$corpus" "$findings"
  if compgen -G "$kept/*" > /dev/null; then
    echo "== $t: replaying $(ls "$kept" | wc -l) kept finding(s) from tests/fuzz/regressions/$t"
    "$bin" -rss_limit_mb=4096 -malloc_limit_mb=4096 "$kept"/* > "$build/replay-$t.log" 2>&1 \
      || { tail -40 "$build/replay-$t.log"; echo "fuzz.sh: a kept finding of $t fails again" >&2; exit 1; }
  fi
  dict=()
  [ -f "$repo/tests/fuzz/$t.dict" ] && dict=(-dict="$repo/tests/fuzz/$t.dict")
  echo "== $t: fuzzing for $seconds s"
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$findings/" "${dict[@]}" "$corpus" "$seeds" \
    > "$build/fuzz-$t.log" 2>&1 || rc=$?
  runs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$build/fuzz-$t.log")
  total=$((total + runs))
  echo "   $runs executions, corpus $(ls "$corpus" | wc -l) inputs"
  if [ $rc -ne 0 ] || compgen -G "$findings/*" > /dev/null; then
    found=$((found + 1))
    grep -m5 -E "ERROR|SUMMARY|abort|deadly" "$build/fuzz-$t.log" || tail -20 "$build/fuzz-$t.log"
    echo "   FINDING(S) in $findings: $(ls "$findings" | tr '\n' ' ')"
  fi
done
echo "fuzz.sh: $total executions in all; $found target(s) with findings"
[ $found = 0 ]
