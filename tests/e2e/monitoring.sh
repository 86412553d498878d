# What the metrics and the first steps mean, checked against numpy from the run's own
# checkpoints: the free energies are of the rows the docs name (the first
# --monitor-examples of the training rows, split over ranks; the held-out rows), the gap
# is validation minus training, --vbias-init data starts at the data's log-odds,
# centering's hidden offsets start at 0.5, and the pseudo-likelihood cost walks the bits.
source "$(dirname "$0")/lib/common.sh"
need_mnist
base=(--data "$MNIST" --hidden 16 --k 1 --filters false --progress-every 0)

# F(v) of rows [a, b) of the training file at a checkpoint's parameters, x/255.
cat > "$WORK/fe.py" <<'EOF'
import sys, h5py, numpy as np
def rows(path, a, b):
    raw = open(path, "rb").read()
    return np.frombuffer(raw[16 + a * 784:16 + b * 784], np.uint8).reshape(b - a, 784) / 255.0
def free_energy(ckpt, v):
    c = h5py.File(ckpt, "r")
    W, b, hb = (c["model/" + k][:].astype(np.float64) for k in ("W", "vbias", "hbias"))
    return -(v @ b) - np.logaddexp(0, v @ W + hb).sum(axis=1)
def last_epoch_row(run):
    m = h5py.File(run + "/metrics.h5", "r", swmr=True)["metrics"][:]
    return m, m[-1]
EOF

echo "== one rank: training rows 0..99 and held-out rows 300..399; gap = valid - train in every row"
"$RBM" train "${base[@]}" --limit 400 --validation-fraction 0.25 --monitor-examples 100 --batch-size 10 \
  --epochs 2 --monitor-every 7 --out "$WORK/one" > "$WORK/one.log" 2>&1 || { cat "$WORK/one.log"; fail "training"; }
$PY - "$WORK/one" "$(newest_checkpoint "$WORK/one")" "$MNIST" <<'EOF' || fail "one rank's free energies"
import sys; sys.path.insert(0, sys.argv[1] + "/..")
from fe import rows, free_energy, last_epoch_row
import numpy as np
m, last = last_epoch_row(sys.argv[1])
assert len(m) > 4, len(m)
assert np.allclose(m["free_energy_gap"], m["free_energy_valid"] - m["free_energy_train"], rtol=0, atol=1e-9), m
assert np.isnan(m["swap_acceptance_min"]).all()      # PT's column: NaN for PCD
train = free_energy(sys.argv[2], rows(sys.argv[3], 0, 100)).mean()
valid = free_energy(sys.argv[2], rows(sys.argv[3], 300, 400)).mean()
assert abs(last["free_energy_train"] - train) < 1e-4 * abs(train), (last["free_energy_train"], train)
assert abs(last["free_energy_valid"] - valid) < 1e-4 * abs(valid), (last["free_energy_valid"], valid)
EOF

echo "== two ranks: each monitors the start of its shard (rows 0..49 and 240..289); offsets of all rows"
mpirun -np 2 "$RBM" train "${base[@]}" --limit 480 --monitor-examples 100 --batch-size 10 --epochs 1 --centering true \
  --out "$WORK/two" > "$WORK/two.log" 2>&1 || { cat "$WORK/two.log"; fail "training on 2 ranks"; }
$PY - "$WORK/two" "$(newest_checkpoint "$WORK/two")" "$MNIST" <<'EOF' || fail "two ranks' free energy"
import sys; sys.path.insert(0, sys.argv[1] + "/..")
from fe import rows, free_energy, last_epoch_row
import numpy as np
_, last = last_epoch_row(sys.argv[1])
want = np.concatenate([free_energy(sys.argv[2], rows(sys.argv[3], 0, 50)),
                       free_energy(sys.argv[2], rows(sys.argv[3], 240, 290))]).mean()
assert abs(last["free_energy_train"] - want) < 1e-4 * abs(want), (last["free_energy_train"], want)
import h5py   # centering's visible offsets: the means of all 480 rows, summed over both shards
mu = h5py.File(sys.argv[2], "r")["centering/visible_offset"][:]
assert np.allclose(mu, rows(sys.argv[3], 0, 480).mean(axis=0), atol=1e-6), abs(mu - rows(sys.argv[3], 0, 480).mean(axis=0)).max()
EOF

echo "== --vbias-init data and --centering: the step-1 checkpoint is one small step from the start"
"$RBM" train "${base[@]}" --limit 500 --batch-size 10 --epochs 1 --vbias-init data --centering true \
  --offset-rate 0.05 --lr 0.01 --checkpoint-every 1 --keep-checkpoints 0 --out "$WORK/init" > /dev/null 2>&1 \
  || fail "training with --vbias-init data --centering"
$PY - "$WORK/init/checkpoints/step-0000000001.h5" "$MNIST" <<'EOF' || fail "the first step's biases and offsets"
import sys, h5py, numpy as np
c = h5py.File(sys.argv[1], "r")
raw = open(sys.argv[2], "rb").read()
x = np.frombuffer(raw[16:16 + 500 * 784], np.uint8).reshape(500, 784) / 255.0
p = np.clip(x.mean(axis=0), 1e-3, 1 - 1e-3)
vb = c["model/vbias"][:]
assert abs(vb[0] - np.log(1e-3 / (1 - 1e-3))) < 0.01, vb[0]   # pixel 0 is always 0: the clamped log-odds
assert np.corrcoef(vb, np.log(p / (1 - p)))[0, 1] > 0.99
lam = c["centering/hidden_offset"][:]
assert ((lam > 0.475) & (lam < 0.525)).all(), lam               # 0.5 moved 5% towards the data's means
assert np.allclose(c["centering/visible_offset"][:], x.mean(axis=0), atol=1e-6)
EOF

echo "== the pseudo-likelihood cost walks every bit: over 800 steps it matches rbm eval's over all bits"
"$RBM" train "${base[@]}" --limit 1000 --binarize threshold --batch-size 10 --epochs 8 --monitor-examples 50 \
  --out "$WORK/pl" > /dev/null 2>&1 || fail "training for the pseudo-likelihood"
"$RBM" eval --checkpoint "$(newest_checkpoint "$WORK/pl")" --data "$MNIST" --limit 1000 --binarize threshold \
  --runs 10 --seeds 1 --betas 100 --raise-examples 0 --json > "$WORK/pl.json" 2> /dev/null || fail "rbm eval"
$PY - "$WORK/pl" "$WORK/pl.json" <<'EOF' || fail "the training pseudo-likelihood"
import sys, json, h5py, numpy as np
m = h5py.File(sys.argv[1] + "/metrics.h5", "r", swmr=True)["metrics"][:]
trained = m["pseudo_likelihood"].mean()            # 8 rows of 100 steps: bits 0..799 once
full = json.load(open(sys.argv[2]))["pseudo_likelihood"]["per_example"]
# The model moves over the 8 epochs, so only roughly; one bit alone (a blank corner) gives ~0.
assert 0.5 * full > trained > 2 * full, (trained, full)
EOF
echo "PASS"
