#!/usr/bin/env bash
# Weak scaling on this machine: the tutorial's step (784x500, PCD-15, batch 20 per rank)
# with 1 and 2 ranks, same per-rank batch and the same number of steps, side by side in one
# run; then the gradient allreduce alone (rbm_allreduce_bench). Prints a table.
#
#   tools/bench_mpi.sh [BUILD_DIR] [STEPS_PER_RANK]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
steps=${2:-400}
mnist=${RBM_DATA_DIR:-$repo/data}/mnist/train-images-idx3-ubyte
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rate() {  # rate RANKS -> examples/s of the one epoch (all ranks)
  local np=$1
  mpirun --oversubscribe --bind-to core -np "$np" "$build/rbm" train --data "$mnist" --limit $((np * steps * 20)) \
    --k 15 --epochs 1 --filters false --progress-every 0 --out "$work/np$np" > "$work/np$np.log" 2>&1
  grep '^epoch' "$work/np$np.log" | awk '{print $(NF-3)}'
}
one=$(rate 1)
two=$(rate 2)
ar1=$(grep "gradient allreduce" "$work/np2.log" | sed 's/gradient allreduce: //')
alone=$(mpirun --oversubscribe --bind-to core -np 2 "$build/tools/mpi_bench/rbm_allreduce_bench")
echo "# weak scaling, 784x500 PCD-15, batch 20 per rank, $steps steps, $(nproc) cores"
printf '%-8s %12s %12s\n' ranks "examples/s" "per rank"
printf '%-8s %12s %12s\n' 1 "$one" "$one"
printf '%-8s %12s %12.0f\n' 2 "$two" "$(echo "$two" | awk '{print $1 / 2}')"
awk -v a="$one" -v b="$two" 'BEGIN {printf "weak-scaling efficiency (2 ranks): %.0f%%\n", 100 * b / (2 * a)}'
echo "in the loop (2 ranks): $ar1"
echo "alone: $alone"
