#!/usr/bin/env bash
# A quick screen of one training recipe on MNIST binarised stochastically: train with the
# given `rbm train` flags on one thread, then a cheap AIS estimate (1,450 inverse
# temperatures, 100 runs, one seed, the first 2,000 test images; about 10x cheaper than the
# default). Good for ranking recipes of centered models, whose AIS weights are healthy;
# a full `rbm eval` decides (docs/quality.md, "How the recipe was found").
#
#   tools/screen_recipe.sh NAME EPOCHS [rbm train flags...]
#   RBM=path/to/rbm  OUT=dir (default runs/screen)  BINARIZE=dynamic (default stochastic)
# Appends "NAME  log-likelihood  ESS  last epoch's line" to OUT/results.txt.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:?usage: tools/screen_recipe.sh NAME EPOCHS [rbm train flags...]}
epochs=${2:?usage: tools/screen_recipe.sh NAME EPOCHS [rbm train flags...]}
shift 2
rbm=${RBM:-$repo/build/rbm}
out=${OUT:-$repo/runs/screen}
data=${RBM_DATA_DIR:-$repo/data}/mnist
mkdir -p "$out"
"$rbm" train --data "$data/train-images-idx3-ubyte" --test-data "$data/t10k-images-idx3-ubyte" \
  --binarize "${BINARIZE:-stochastic}" --hidden 500 --epochs "$epochs" --seed 123 --out "$out/$name" --threads 1 \
  --filters false --progress-every 0 "$@" > "$out/$name.train" 2>&1
ckpt=$(ls "$out/$name"/checkpoints/step-*.h5 | sort | tail -1)
"$rbm" eval --checkpoint "$ckpt" --data "$data/t10k-images-idx3-ubyte" --limit 2000 --betas 1450 --runs 100 \
  --seeds 1 --raise-examples 0 --threads 1 --json > "$out/$name.json" 2> "$out/$name.eval.log"
/usr/bin/python3 - "$name" "$out/$name.json" "$(grep '^epoch' "$out/$name.train" | tail -1)" >> "$out/results.txt" <<'EOF'
import json, sys
name, path, last = sys.argv[1:4]
r = json.load(open(path))
print("%-28s %9.2f  ESS %5.1f  %s" % (name, r["mean_log_likelihood"], r["ais"]["ess"], last))
EOF
tail -1 "$out/results.txt"
