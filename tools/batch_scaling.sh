#!/usr/bin/env bash
# How the global batch and the learning-rate rule change what a fixed budget of examples
# buys: the experiment behind docs/distributed.md. Trains PCD-5 on the first 10,000 MNIST
# images for 3 epochs at global batches 20, 40 (also as 2 ranks x 20) and 160, with the
# learning rate kept (0.1), scaled linearly, or by the square root of the batch ratio, then
# measures each model on 1,000 test images (binarised stochastically): the pseudo-
# likelihood over all bits and the reconstruction cross-entropy, which are deterministic.
# (AIS on such briefly trained models needs far longer schedules than fit here: with
# 2,000 steps its effective sample size was 1-3 of 64 runs and its numbers meaningless.)
#
#   tools/batch_scaling.sh [RBM] [OUT_DIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rbm=${1:-$repo/build/rbm}
out=${2:-$repo/runs/batch-scaling}
mnist=${RBM_DATA_DIR:-$repo/data}/mnist
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
rm -rf "$out"
mkdir -p "$out"
common=(--data "$mnist/train-images-idx3-ubyte" --limit 10000 --hidden 500 --k 5 --epochs 3 --seed 11
        --filters false --progress-every 0)

# name ranks batch-per-rank lr
runs=("b20-lr0.1 1 20 0.1" "b40-lr0.1 1 40 0.1" "b40-lr0.2-linear 1 40 0.2" "b40-lr0.141-sqrt 1 40 0.1414"
      "2x20-lr0.1 2 20 0.1" "b160-lr0.1 1 160 0.1" "b160-lr0.8-linear 1 160 0.8" "b160-lr0.283-sqrt 1 160 0.2828")
printf '%-18s %6s %7s %8s %9s %14s %12s\n' run global lr train_s "PL train" "test PL/ex" "test recon" | tee "$out/table.txt"
for spec in "${runs[@]}"; do
  read -r name ranks batch lr <<<"$spec"
  launcher=()
  [ "$ranks" -gt 1 ] && launcher=(mpirun --oversubscribe -np "$ranks")
  start=$(date +%s.%N)
  "${launcher[@]}" "$rbm" train "${common[@]}" --batch-size "$batch" --lr "$lr" --out "$out/$name" > "$out/$name.log" 2>&1
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  pl=$(grep '^epoch' "$out/$name.log" | tail -n 1 | awk '{for (i=1;i<=NF;i++) if ($i=="(PL)") print $(i+1)}')
  ckpt=$(ls "$out/$name"/checkpoints/step-*.h5 | sort | tail -n 1)
  "$rbm" eval --checkpoint "$ckpt" --data "$mnist/t10k-images-idx3-ubyte" --limit 1000 --runs 0 \
    --raise-examples 0 --json > "$out/$name.eval.json" 2> "$out/$name.eval.log"
  read -r tpl trec < <(/usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(round(j['pseudo_likelihood']['per_example'],2), round(j['reconstruction_xent'],2))" "$out/$name.eval.json")
  printf '%-18s %6d %7s %8s %9s %14s %12s\n' "$name" $((ranks * batch)) "$lr" "$secs" "$pl" "$tpl" "$trec" | tee -a "$out/table.txt"
done
