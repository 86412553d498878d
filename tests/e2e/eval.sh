# `rbm eval` end to end: train a tiny model with the real binary, evaluate it as a
# plain process and under mpirun -np 2, and check the JSON: the keys scripts rely on,
# AIS within its bounds of the exact log Z (16 hidden units are enumerated), RAISE at
# or below it, and the same numbers whatever the number of ranks.
source "$(dirname "$0")/lib/common.sh"
need_mnist

echo "== train a 784x16 model on 300 examples"
# The accuracy checks below (AIS within 0.2 nats of the exact log Z, RAISE within 1) hold
# for this model, which --seed 5 gives (deterministically): with 11 of 12 training seeds
# AIS lands within 0.03 nats, but seed 4's model has a mode that AIS and RAISE both miss
# by 11 nats. Change the seed only with a look at those checks.
"$RBM" train --data "$MNIST" --limit 300 --hidden 16 --batch-size 10 --k 1 --epochs 2 --binarize stochastic \
  --monitor-examples 50 --filters false --seed 5 --out "$WORK/run" > "$WORK/train.log" || { cat "$WORK/train.log"; fail "train"; }
ckpt=$(newest_checkpoint "$WORK/run")

common=(--checkpoint "$ckpt" --data "$MNIST_TEST" --limit 200 --train-data "$MNIST" --train-limit 300
        --betas 2000 --runs 100 --seeds 2 --raise-examples 20 --seed 11)

echo "== rbm eval --json, one process"
"$RBM" eval "${common[@]}" --json > "$WORK/one.json" 2> "$WORK/one.err" || { cat "$WORK/one.err"; fail "eval"; }

echo "== the same under mpirun -np 2"
if command -v mpirun >/dev/null; then
  mpirun --oversubscribe --bind-to none -np 2 "$RBM" eval "${common[@]}" --json > "$WORK/two.json" 2> "$WORK/two.err" \
    || { cat "$WORK/two.err"; fail "eval under mpirun -np 2"; }
else
  echo "no mpirun: comparing a second plain run instead"
  "$RBM" eval "${common[@]}" --json > "$WORK/two.json" 2> /dev/null || fail "second eval"
fi

$PY - "$WORK/one.json" "$WORK/two.json" <<'PYEOF'
import json, math, sys
one = json.load(open(sys.argv[1]))
two = json.load(open(sys.argv[2]))
for key in ["log_z", "log_z_lower", "log_z_upper", "mean_log_likelihood", "n_examples", "method", "ess",
            "warnings", "exact", "ais", "reverse", "pseudo_likelihood", "reconstruction_xent", "free_energy"]:
    assert key in one, f"missing key {key}"
assert one["n_examples"] == 200, one["n_examples"]
assert one["annealing_device"] == "cpu" or one["annealing_device"].startswith("cuda "), one["annealing_device"]
assert one["method"] == "exact", one["method"]
assert one["n_hidden"] == 16 and one["n_visible"] == 784
ex, ais, rev = one["exact"]["log_z"], one["ais"], one["reverse"]
print(f"exact {ex:.4f}  AIS {ais['log_z']:.4f} [{ais['log_z_lower']}, {ais['log_z_upper']}] ESS {ais['ess']:.1f}"
      f"  RAISE {rev['log_z']:.4f}  LL {one['mean_log_likelihood']:.3f}")
assert ais["log_z_lower"] <= ex <= ais["log_z_upper"], "exact log Z outside AIS's bounds"
assert abs(ais["log_z"] - ex) < 0.2, "AIS more than 0.2 nats from exact"
assert ais["runs_total"] == 200 and len(ais["per_seed"]) == 2
assert 1 <= ais["ess"] <= 200
# RAISE: conservative (log Z at or above exact, up to its noise) and within its bounds.
assert rev["log_z_upper"] >= ex, "exact log Z above RAISE's upper bound"
se = (rev["log_z_upper"] - rev["log_z"]) / 3
assert rev["mean_log_likelihood"] <= one["mean_log_likelihood"] + 3 * se + 1e-9, "RAISE above the exact log-likelihood"
assert abs(rev["log_z"] - ex) < 1.0
# Its bounds are +-3 standard errors of the per-example mean: the spread over sqrt(examples).
half = 3 * rev["log_z_sd_across_examples"] / math.sqrt(rev["examples"])
assert abs((rev["log_z_upper"] - rev["log_z"]) - half) < 1e-9 and abs((rev["log_z"] - rev["log_z_lower"]) - half) < 1e-9, rev
pl = one["pseudo_likelihood"]
assert pl["per_example"] < 0 and abs(pl["per_pixel"] * 784 - pl["per_example"]) < 1e-6 * abs(pl["per_example"])
assert one["reconstruction_xent"] > 0
fe = one["free_energy"]
assert fe["train"] is not None and abs(fe["gap"] - (fe["data"] - fe["train"])) < 1e-9
ll = one["mean_log_likelihood"]
assert -784 * math.log(2) < ll < 0, ll
# Rank-count independence: every chain is keyed by its global index and the batches are
# cut before they are dealt to ranks, so AIS and RAISE agree bitwise; sums over examples
# agree to rounding (the order of the sum differs).
assert two["ranks"] in (1, 2)
def at(d, path):
    for k in path:
        d = d[k]
    return d
for path in [("ais", "log_z"), ("ais", "ess"), ("ais", "log_z_upper"), ("reverse", "log_z"), ("exact", "log_z")]:
    assert at(one, path) == at(two, path), f"{path}: {at(one, path)} with one rank, {at(two, path)} with two"
for path in [("mean_log_likelihood",), ("pseudo_likelihood", "per_example"), ("reconstruction_xent",),
             ("free_energy", "gap")]:
    a, b = at(one, path), at(two, path)
    assert abs(a - b) <= 1e-7 * max(1.0, abs(a)), f"{path}: {a} with one rank, {b} with two"
print("json ok; ranks agree")
PYEOF

echo "== text output, AIS only (no exact), short schedule"
"$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --limit 50 --betas 100 --runs 20 --seeds 2 --raise-examples 5 \
  --exact no > "$WORK/text.out" 2>/dev/null || fail "text eval"
grep -q "mean log-likelihood per example (nats), method ais" "$WORK/text.out" || { cat "$WORK/text.out"; fail "text output"; }
grep -q "log Z, RAISE" "$WORK/text.out" || fail "no RAISE line"
grep -q "pseudo-likelihood (all 784 bits)" "$WORK/text.out" || fail "no pseudo-likelihood line"

echo "== --json with a path JSON must escape (a quote, a backslash, a tab)"
odd="$WORK/odd \"name\\"$'\t'"x.h5"
cp "$ckpt" "$odd"
"$RBM" eval --checkpoint "$odd" --data "$MNIST_TEST" --limit 20 --runs 2 --seeds 1 --betas 10 --raise-examples 0 \
  --json > "$WORK/odd.json" 2>/dev/null || fail "eval of $odd"
$PY - "$WORK/odd.json" "$odd" <<'PYEOF'
import json, sys
got = json.load(open(sys.argv[1]))
assert got["checkpoint"] == sys.argv[2], (got["checkpoint"], sys.argv[2])
assert got["reverse"] is None and got["ais"]["runs_total"] == 2
print("escaped path ok")
PYEOF

echo "== the JSON's paths are absolute, whatever directory rbm eval ran in"
cp "$ckpt" "$WORK/rel.h5"
(cd "$WORK" && "$RBM" eval --checkpoint rel.h5 --data "$MNIST_TEST" --limit 20 --train-data "$MNIST" --train-limit 20 \
  --runs 2 --seeds 1 --betas 10 --raise-examples 0 --json > rel.json 2>/dev/null) || fail "eval of a relative --checkpoint"
$PY - "$WORK/rel.json" "$WORK/rel.h5" "$MNIST_TEST" "$MNIST" <<'PYEOF' || fail "the JSON's paths"
import json, os, sys
j = json.load(open(sys.argv[1]))
for key, want in zip(["checkpoint", "data", "train_data"], sys.argv[2:5]):
    assert os.path.isabs(j[key]) and os.path.realpath(j[key]) == os.path.realpath(want), (key, j[key], want)
print("absolute paths ok")
PYEOF

echo "== --checkpoint RUN_DIR: the run's newest checkpoint, for eval (on 2 ranks alike), sample and transform"
mpirun --oversubscribe --bind-to none -np 2 "$RBM" eval --checkpoint "$WORK/run" --data "$MNIST_TEST" --limit 20 \
  --runs 2 --seeds 1 --betas 10 --raise-examples 0 --json > "$WORK/bydir.json" 2> /dev/null || fail "eval --checkpoint RUN_DIR"
"$RBM" sample --checkpoint "$WORK/run" --chains 2 --samples 2 --plot-every 5 --out "$WORK/bydir-samples.h5" > /dev/null \
  || fail "sample --checkpoint RUN_DIR"
"$RBM" transform --checkpoint "$WORK/run" --data "$MNIST_TEST" --limit 10 --out "$WORK/bydir-features.h5" > /dev/null \
  || fail "transform --checkpoint RUN_DIR"
$PY - "$ckpt" "$WORK/bydir.json" "$WORK/bydir-samples.h5" "$WORK/bydir-features.h5" <<'PYEOF' || fail "the checkpoint chosen"
import json, os, sys, h5py
newest = os.path.realpath(sys.argv[1])
text = lambda v: v.decode() if isinstance(v, bytes) else v
chosen = [json.load(open(sys.argv[2]))["checkpoint"]] + [text(h5py.File(p, "r").attrs["checkpoint"]) for p in sys.argv[3:]]
assert all(os.path.realpath(c) == newest for c in chosen), (chosen, newest)
print("ok: eval, sample and transform of the run directory used", newest)
PYEOF
mkdir "$WORK/no-checkpoints"
expect_error "--checkpoint a directory without checkpoints" \
  "--checkpoint $WORK/no-checkpoints is a directory without checkpoints" "$RBM" sample --checkpoint "$WORK/no-checkpoints"

echo "== a threshold binarisation is reported with its threshold"
"$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --limit 20 --runs 2 --seeds 1 --betas 10 --raise-examples 0 \
  --binarize threshold --binarize-threshold 0.3 > "$WORK/threshold.out" 2>/dev/null || fail "eval --binarize threshold"
grep -q "binarised threshold (x >= 0.3)" "$WORK/threshold.out" || fail "no threshold in: $(grep binarised "$WORK/threshold.out")"
"$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --limit 20 --runs 2 --seeds 1 --betas 10 --raise-examples 0 \
  --binarize threshold --binarize-threshold 0.3 --json > "$WORK/threshold.json" 2>/dev/null || fail "eval --json threshold"
$PY -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j["binarize"] == "threshold" and abs(j["binarize_threshold"] - 0.3) < 1e-7, j' \
  "$WORK/threshold.json" || fail "the JSON lacks the threshold"

echo "== RAISE stuck far below the exact log Z (all-white images) is flagged"
# A model built to trap it, rather than one training happens to give (the warning fired for
# 6 of 12 training seeds of the model above): hidden unit 0 turns every pixel on, hidden
# unit 1 the first 684 and strongly off the last 100. Z is all but entirely the mode with
# both units on (pixels 0-683 on), but a chain started from an all-white image keeps unit 1
# off (its input there is 130 + 684 x 5 - 100 x 60 < -2400) at every inverse temperature
# RAISE visits, so RAISE's log Z falls hundreds of nats short of the exact one.
"$RBM" train --data "$MNIST" --limit 40 --hidden 2 --batch-size 10 --k 1 --epochs 1 --filters false \
  --progress-every 0 --out "$WORK/trap" > /dev/null 2>&1 || fail "training the 784x2 model"
cp "$(newest_checkpoint "$WORK/trap")" "$WORK/trap.h5"
$PY - "$WORK/trap.h5" "$WORK/white.idx" <<'PYEOF' || fail "building the trap"
import struct, sys, h5py, numpy as np
a, M, c1 = 5.0, 60.0, 130.0
W = np.zeros((784, 2), np.float32)
W[:, 0] = a
W[:, 1] = np.where(np.arange(784) < 684, a, -M)
with h5py.File(sys.argv[1], "r+") as f:
    f["model/W"][...] = W
    f["model/vbias"][...] = np.full(784, -a, np.float32)
    f["model/hbias"][...] = np.array([0.0, c1], np.float32)
open(sys.argv[2], "wb").write(struct.pack(">IIII", 0x803, 5, 28, 28) + np.full((5, 28, 28), 255, np.uint8).tobytes())
PYEOF
for seed in 1 2 3; do
  "$RBM" eval --checkpoint "$WORK/trap.h5" --data "$WORK/white.idx" --runs 20 --raise-examples 5 --betas 2000 \
    --seed $seed --json > "$WORK/white$seed.json" 2> /dev/null || fail "eval of white images (seed $seed)"
  $PY - "$WORK/white$seed.json" "$WORK/trap.h5" <<'PYEOF' || fail "the trapped RAISE (eval seed $seed)"
import json, sys, h5py, numpy as np
j = json.load(open(sys.argv[1]))
f = h5py.File(sys.argv[2], "r")
W, b, c = (f[k][:].astype(np.float64) for k in ("model/W", "model/vbias", "model/hbias"))
# log Z by hand: log sum over the four hidden states of exp(c.h) prod_i (1 + exp(b_i + W_i.h))
terms = [c @ h + np.logaddexp(0, b + W @ h).sum() for h in np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)]
exact = np.logaddexp.reduce(terms)
assert abs(j["exact"]["log_z"] - exact) < 1e-6 * exact, (j["exact"]["log_z"], exact)
assert j["reverse"]["log_z_upper"] < exact - 100, (j["reverse"], exact)
assert any("RAISE's log Z" in w and "lies below the exact" in w for w in j["warnings"]), j["warnings"]
print(f"ok: exact log Z {exact:.4f} (by hand too); RAISE {j['reverse']['log_z']:.1f}, its upper bound "
      f"{j['reverse']['log_z_upper']:.1f}: flagged")
PYEOF
done

echo "== stdout that cannot be written is an error, not an empty result"
expect_error "eval --json > /dev/full" "cannot write standard output: No space left" bash -c \
  "'$RBM' eval --checkpoint '$ckpt' --data '$MNIST_TEST' --limit 20 --runs 2 --seeds 1 --betas 10 --raise-examples 0 --json > /dev/full"
expect_error "info > /dev/full" "cannot write standard output" bash -c "'$RBM' info '$ckpt' > /dev/full"
expect_error "--runs x --seeds too large" "--runs x --seeds must stay below 2\^24" \
  "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --runs 16777216 --seeds 1000
echo "== errors"
expect_error "no checkpoint" "--checkpoint is required" "$RBM" eval --data "$MNIST_TEST"
expect_error "bad binarize" "binarize" "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --binarize maybe
expect_error "too short a schedule" "betas" "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --betas 2
expect_error "unknown device" "--device" "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --device tpu
if ! nvidia-smi -L > /dev/null 2>&1; then
  expect_error "--device cuda without a GPU" "device cuda: (no CUDA GPU is visible|this rbm was built without CUDA)" \
    "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --limit 10 --device cuda
fi
expect_error "real-valued data" "binary" "$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --binarize none --limit 10
ev=("$RBM" eval --checkpoint "$ckpt" --data "$MNIST_TEST" --limit 10)
expect_error "no --data" "--data is required" "$RBM" eval --checkpoint "$ckpt"
expect_error "--train-limit alone" "--train-limit needs --train-data" "${ev[@]}" --train-limit 5
expect_error "--train-data ''" "--train-data must name a file" "${ev[@]}" --train-data ""
expect_error "too many RAISE chains" "--raise-examples x --raise-chains must stay below 2\^24" \
  "${ev[@]}" --raise-examples 65536 --raise-chains 256
expect_error "--exact maybe" "--exact: 'maybe' is not one of auto, yes, no" "${ev[@]}" --exact maybe
expect_error "--base-smoothing 0" "--base-smoothing must be a number from 1e-12" "${ev[@]}" --base-smoothing 0
# Data of another width than the model's, to evaluate or to base AIS on: a 784x16 model
# against rows of 10 values.
$PY -c "import h5py, numpy as np, sys; h5py.File(sys.argv[1], 'w')['w10'] = np.zeros((50, 10), np.float32)" "$WORK/w10.h5"
expect_error "--data of another width" "w10.* has 10 values per example, the model 784" \
  "$RBM" eval --checkpoint "$ckpt" --data "$WORK/w10.h5:/w10"
expect_error "--train-data of another width" "w10.* has 10 values per example, the model 784" \
  "${ev[@]}" --train-data "$WORK/w10.h5:/w10"
grep -q "stochastic" <<<"$("$RBM" eval --help)" || fail "--help"
echo "PASS"
