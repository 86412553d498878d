#!/usr/bin/env bash
# The CPU benchmark, in one invocation on one machine, data set and thread count:
# rbm's CPU engine (tools/bench/bench_engine.cpp: rbm_bench), scikit-learn's BernoulliRBM
# (PCD-1, what it implements) and the same PCD-k written in PyTorch for the CPU
# (tools/bench/py_rbm_bench.py), at PCD-1 and PCD-15 with the tutorial's batch 20, 500
# hidden units and learning rate 0.1, on MNIST's first 10,000 training images
# (data/mnist; random rows of the same shape without it). Prints examples/s for each, the
# ratios, and rbm's step time against the time its matrix products alone take with
# OpenBLAS on the same shapes, measured in the same run. About 2 minutes.
#
#   tools/bench_cpu.sh                     # 1 thread and all cores
#   BENCH_THREADS="2" tools/bench_cpu.sh   # chosen thread counts
#   BENCH_REPEATS=5 tools/bench_cpu.sh     # more timings per median (default 3)
#
# Uses $RBM_BUILD_DIR (default build/), building rbm_bench there if needed, and Debian's
# /usr/bin/python3 (python3-sklearn, python3-torch, python3-threadpoolctl). The machine
# should be otherwise idle: timings of several threads suffer most from other processes
# (rbm_bench prints cpu/wall per timing: about the thread count when undisturbed). On a
# shared machine, as root, `echo -15 > /proc/self/autogroup` before running gives this
# shell's session (the benchmark and its Python children) priority over other sessions
# (docs/performance.md).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RBM_BUILD_DIR:-$repo/build}
py=/usr/bin/python3
threads_list=${BENCH_THREADS:-"1 $(nproc)"}
repeats=${BENCH_REPEATS:-3}
data=$repo/data/mnist/train-images-idx3-ubyte
[[ -f $data ]] || { [[ -f $data.gz ]] && data=$data.gz || data=random; }

if [[ ! -x $build/tools/rbm_bench ]]; then
  RBM_BUILD_DIR=$build bash "$repo/tools/build.sh" > /dev/null
fi
cmake --build "$build" --target rbm_bench > /dev/null
"$py" -c "import sklearn, torch, threadpoolctl" 2> /dev/null \
  || { echo "bench_cpu.sh: $py lacks sklearn, torch or threadpoolctl (apt-get install python3-sklearn python3-torch)" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
common=(--data "$data" --limit 10000 --batch 20 --hidden 500 --lr 0.1)
echo "# $(date -u +%FT%TZ) $(uname -n): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "# OpenBLAS core: $("$py" -c "import numpy, threadpoolctl as t; print([i.get('architecture') for i in t.threadpool_info() if i['internal_api']=='openblas'][0])" 2> /dev/null || echo '?'); data: $data"
for threads in $threads_list; do
  for k in 1 15; do
    steps=$(( k == 1 ? 1000 : 100 ))
    for costs in "" --no-measure; do
      "$build/tools/rbm_bench" "${common[@]}" --threads "$threads" --k "$k" --steps "$steps" \
        --repeats "$repeats" $costs | tee -a "$out" | grep -E "^  (median|throughput)|^rbm_bench" || true
    done
    if [[ $k == 1 ]]; then
      "$py" "$repo/tools/bench/py_rbm_bench.py" sklearn "${common[@]}" --threads "$threads" --k 1 \
        --repeats "$repeats" | tee -a "$out"
    fi
    "$py" "$repo/tools/bench/py_rbm_bench.py" torch "${common[@]}" --threads "$threads" --k "$k" \
      --repeats "$repeats" --torch-examples 15000 | tee -a "$out"
  done
done
echo
"$py" "$repo/tools/bench/report.py" "$out"
