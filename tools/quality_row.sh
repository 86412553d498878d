#!/usr/bin/env bash
# One row of the quality table (docs/quality.md) from one shipped configuration: train it
# (resuming when its run directory already holds checkpoints, so a stopped run goes on),
# then measure its newest checkpoint with `rbm eval` on the configuration's test set
# binarised stochastically, the training set's first 10,000 images binarised alike
# beside it. Writes RUN/eval.json and RUN/eval.log; prints the row last.
#
#   tools/quality_row.sh configs/quality/mnist-cd1.ini [extra rbm eval flags...]
#   RBM=path/to/rbm  MPIRUN="mpirun -np 2"  (optional: launch both steps under MPI)
#   TRAIN_FLAGS="--threads 1"  (optional: more `rbm train` flags, e.g. to run two rows at once)
#
# Reads the JSON with Debian's /usr/bin/python3 (standard library only).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=${1:?usage: tools/quality_row.sh CONFIG.ini [rbm eval flags...]}
shift
rbm=${RBM:-$repo/build/rbm}
launch=${MPIRUN:-}
[ -x "$rbm" ] || { echo "quality_row.sh: $rbm is not built (tools/build.sh --target rbm)" >&2; exit 1; }
[ -r "$config" ] || { echo "quality_row.sh: cannot read $config" >&2; exit 1; }

key() { sed -n "s/^$1 *= *//p" "$config" | tail -1; }
out=$(key out)
train_data=$(key data)
test_data=$(key test-data)
[ -n "$out" ] && [ -n "$test_data" ] || { echo "quality_row.sh: $config needs out and test-data keys" >&2; exit 1; }

cd "$repo"
mkdir -p "$out"
start=$(date +%s)
$launch "$rbm" train --config "$config" --resume --progress-every 60 ${TRAIN_FLAGS:-} 2>&1 | tee -a "$out/train.log"
train_s=$(( $(date +%s) - start ))
ckpt=$(ls "$out"/checkpoints/step-*.h5 | sort | tail -1)
$launch "$rbm" eval --checkpoint "$ckpt" --data "$test_data" --train-data "$train_data" --train-limit 10000 \
  --json "$@" > "$out/eval.json" 2> "$out/eval.log"

/usr/bin/python3 - "$config" "$out/eval.json" "$train_s" <<'EOF'
import json, sys
config, path, train_s = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(path))
ais, rev = r.get("ais") or {}, r.get("reverse") or {}
def f(x, fmt="%.2f"):
    return "n/a" if x is None else fmt % x
print("| %s | %s | %s | %s | %s | %s | %s |" % (
    config, f(r.get("mean_log_likelihood")), f(rev.get("mean_log_likelihood")),
    "%s/%s" % (f(ais.get("ess"), "%.1f"), ais.get("runs_total")), f(ais.get("seed_spread")),
    f(r.get("mean_log_likelihood_train")), "%d s" % train_s))
EOF
