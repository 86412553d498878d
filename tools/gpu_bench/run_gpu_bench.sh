#!/usr/bin/env bash
# The GPU benchmark, run by run_gpu_checks.sh inside the unpacked bundle (binaries and
# libraries already on PATH / LD_LIBRARY_PATH):
#   1. the tutorial's configuration (784x500, PCD-15, batch 20, 15 epochs, 60,000 images)
#      trained end to end on the GPU, wall time;
#   2. rbm's step time for batch 20 to 4096, and cuBLAS alone on the same shapes;
#   3. the same algorithm in PyTorch (eager, and as a CUDA graph), same GPU, same run;
#   4. each kernel's GPU time over a few tutorial steps (ncu, where the machine has it).
# Writes OUT_DIR/bench_table.txt, and its logs to LOG_DIR (default OUT_DIR).
#
#   run_gpu_bench.sh BUNDLE_DIR OUT_DIR [LOG_DIR]
set -uo pipefail
here=$1
out=$2
logs=${3:-$2}
work=$(mktemp -d)
table=$out/bench_table.txt
# shellcheck source=time_left.sh
source "$(dirname "${BASH_SOURCE[0]}")/time_left.sh"
# timed NAME COMMAND...: the command under the time left (step_limit), or a note that it
# was left out; every part's results go into the table as soon as they exist.
timed() {
  local name=$1 limit; shift
  limit=$(step_limit) || { echo "skipped $name: the run's time is spent"; return 124; }
  timeout "$limit" "$@"
}
device=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)

# tutorial NAME [ENV...]: the tutorial's run, its log in $logs/tutorial_NAME.log; prints
# "training_s wall_s last_cost".
tutorial() {
  local name=$1; shift
  local start log=$logs/tutorial_$name.log
  start=$(date +%s.%N)
  timed "tutorial $name" env "$@" rbm train --config "$here/tutorial.ini" --data "$here/data/train-images-idx3-ubyte.gz" \
    --test-data "$here/data/t10k-images-idx3-ubyte.gz" --device cuda --filters false --sample-every 0 \
    --progress-every 0 --out "$work/tutorial_$name" > "$log" 2>&1
  local train_s last_cost
  train_s=$(grep '^epoch' "$log" | tail -n 1 | awk '{print $(NF-1)}')
  last_cost=$(grep '^epoch' "$log" | tail -n 1 | awk '{for (i=1;i<=NF;i++) if ($i=="(PL)") print $(i+1)}')
  echo "${train_s:-failed} $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') ${last_cost:--}"
}
echo "== 1. tutorial configuration end to end on the GPU (default engine, the whole-chain cluster kernel, the fused step)"
read -r train_s tutorial_s last_cost <<< "$(tutorial default)"
# RBM_GPU_NO_CHAIN_KERNEL=1 (run_gpu_checks.sh sets it when the cluster kernel hung) leaves
# its runs out.
no_chain=${RBM_GPU_NO_CHAIN_KERNEL:-0}
chain_train_s=skipped fused_train_s=skipped chain_tutorial_s=- fused_tutorial_s=- chain_last_cost=- fused_last_cost=-
if [ "$no_chain" != 1 ]; then
  read -r chain_train_s chain_tutorial_s chain_last_cost <<< "$(tutorial chain RBM_CUDA_CHAIN_KERNEL=1)"
  read -r fused_train_s fused_tutorial_s fused_last_cost <<< "$(tutorial fused RBM_CUDA_CHAIN_KERNEL=2)"
fi
cat "$logs"/tutorial_*.log
{
  echo "# rbm GPU benchmark on $device, $(date -u +%Y-%m-%d)"
  echo "tutorial (784x500, PCD-15, batch 20, 15 epochs, 60,000 images): ${train_s} s of training, ${tutorial_s} s wall with start-up and I/O; last epoch's cost ${last_cost}"
  echo "the same with RBM_CUDA_CHAIN_KERNEL=1: ${chain_train_s} s of training, ${chain_tutorial_s} s wall; last epoch's cost ${chain_last_cost}"
  echo "the same with RBM_CUDA_CHAIN_KERNEL=2: ${fused_train_s} s of training, ${fused_tutorial_s} s wall; last epoch's cost ${fused_last_cost}"
  echo
} > "$table"

echo "== 2. rbm step time vs cuBLAS alone"
timed rbm_bench_cuda rbm_bench_cuda --k 15 --batches 20,32,64,256,1024,4096 $([ "$no_chain" = 1 ] && echo --no-chain-kernel) \
  | tee "$logs/rbm_steps.txt"
echo "== 3. PyTorch, same algorithm, same GPU"
timed torch_rbm.py python3 "$here/gpu_bench/torch_rbm.py" --device cuda --k 15 --batches 20,32,64,256,1024,4096 | tee "$logs/torch_steps.txt"
{
  # chain_*: the step with the whole-chain cluster kernel (RBM_CUDA_CHAIN_KERNEL=1), fused_*: that
  # kernel running the whole step, the gradient formed in the update kernel (=2), where they
  # take the batch; of_cuBLAS is the default step's.
  printf '%7s %12s %14s %14s %10s %10s %10s %12s %12s %12s %12s %14s\n' batch rbm_ex/s torch_eager torch_graph \
    vs_eager vs_graph of_cuBLAS chain_ex/s chain_gain fused_ex/s fused_gain fused_vs_graph
  awk 'function rate(b, us) {return us ~ /^[0-9.]+$/ ? b / (us * 1e-6) : 0}
       function ex(x) {return x ? sprintf("%.0f", x) : "-"}
       function times(x, y) {return x && y ? sprintf("%.2fx", x / y) : "-"}
       FNR == NR && $1 ~ /^[0-9]+$/ {rbm[$1] = $3; frac[$1] = $6; next}
       FNR == NR && $1 == "kernel" && $2 ~ /^[0-9]+$/ {chain[$2] = rate($2, $3); fused[$2] = rate($2, $4); next}
       $1 == "eager" {eager[$2] = $4} $1 == "graph" {graph[$2] = $4}
       END {for (b in rbm) printf "%7d %12.0f %14.0f %14.0f %10s %10s %10s %12s %12s %12s %12s %14s\n", b, rbm[b],
            eager[b], graph[b], times(rbm[b], eager[b]), times(rbm[b], graph[b]), frac[b], ex(chain[b]),
            times(chain[b], rbm[b]), ex(fused[b]), times(fused[b], rbm[b]), times(fused[b], graph[b])}' \
      "$logs/rbm_steps.txt" "$logs/torch_steps.txt" | sort -n
} >> "$table"
echo "== 4. where a tutorial step's GPU time goes: ncu times each kernel of a few steps, fused step on"
# ncu runs each kernel alone (no launch gaps), so the sum is the step's GPU work, not its
# wall time. --clock-control none: the clocks as the benchmark had them.
profiled_mode=$([ "$no_chain" = 1 ] && echo 0 || echo 2)
# About 4 kernels a step with the fused step (the cluster kernel, the step counter, the
# update, the report), about 72 with the cuBLAS sweeps at k = 15 (launches, so start-up
# kernels count too: roughly): skip about ten steps of the 100 (start-up, the graph's
# capture), then profile about five.
per_step=$([ "$profiled_mode" = 2 ] && echo 4 || echo 72)
ncu_bin=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
if [ -n "$ncu_bin" ]; then
  RBM_CUDA_CHAIN_KERNEL=$profiled_mode timed ncu "$ncu_bin" --clock-control none --metrics gpu__time_duration.sum --csv \
    --log-file "$logs/step_kernels.csv" --launch-skip $((10 * per_step)) --launch-count $((5 * per_step)) \
    rbm train --config "$here/tutorial.ini" --data "$here/data/train-images-idx3-ubyte.gz" \
    --test-data "$here/data/t10k-images-idx3-ubyte.gz" --epochs 1 --limit 2000 --device cuda --filters false \
    --sample-every 0 --progress-every 0 --out "$work/profiled" > "$logs/step_kernels.out" 2>&1
  python3 - "$logs/step_kernels.csv" <<'PY' | tee "$logs/step_kernels.txt"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
first = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if first is None:
    sys.exit("no kernels profiled")
head = rows[first]
body = [r for r in rows[first + 1:] if len(r) == len(head)]
name, value, unit = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}
per_kernel = {}
for r in body:
    us = float(r[value].replace(",", "")) * scale.get(r[unit], 1.0)
    count, total = per_kernel.get(r[name], (0, 0.0))
    per_kernel[r[name]] = (count + 1, total + us)
print("%6s %10s %10s  %s" % ("calls", "mean_us", "total_us", "kernel (%d profiled)" % len(body)))
for kernel, (count, total) in sorted(per_kernel.items(), key=lambda kv: -kv[1][1]):
    print("%6d %10.2f %10.1f  %s" % (count, total / count, total, kernel[:80]))
PY
else
  echo "ncu not found: no per-kernel times" | tee "$logs/step_kernels.txt"
fi

{
  echo
  echo "# GPU time per kernel over a few tutorial steps with RBM_CUDA_CHAIN_KERNEL=$profiled_mode (ncu, each kernel alone)"
  cat "$logs/step_kernels.txt"
} >> "$table"
rm -rf "$work"
