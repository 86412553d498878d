# --binarize dynamic end to end: the first epoch trains on exactly the stochastic
# binarisation (draw 0) and later epochs on fresh draws, so the run equals a
# `--binarize stochastic` run after one epoch and differs after two; a run interrupted
# mid-epoch or at an epoch boundary resumes bitwise equal to the uninterrupted one (the
# draw is keyed by epoch and global row), on one rank and on two; validation data is
# binarised once, as stochastic does.
source "$(dirname "$0")/lib/common.sh"
need_mnist
opts=(--data "$MNIST" --test-data "$MNIST_TEST" --limit 400 --hidden 20 --method pcd --k 1
      --monitor-examples 100 --seed 5 --lr 0.05 --momentum 0.5 --filters false --progress-every 0
      --keep-checkpoints 0)
state=(/model/W /model/vbias /model/hbias /optimizer/velocity_W /chains/hidden)

echo "== dynamic and stochastic: equal after epoch 1, different after epoch 2"
"$RBM" train "${opts[@]}" --binarize dynamic --batch-size 10 --epochs 2 --checkpoint-every 40 --out "$WORK/dyn" > "$WORK/dyn.log"
"$RBM" train "${opts[@]}" --binarize stochastic --batch-size 10 --epochs 2 --checkpoint-every 40 --out "$WORK/sto" > /dev/null
grep -qx "binarize = dynamic" "$WORK/dyn/config.ini" || fail "config.ini does not say binarize = dynamic"
grep -q "training rows binarised afresh every epoch" "$WORK/dyn.log" || fail "the log does not say the data is redrawn"
same_datasets "$WORK/dyn/checkpoints/step-0000000040.h5" "$WORK/sto/checkpoints/step-0000000040.h5" "${state[@]}"
if h5diff "$WORK/dyn/checkpoints/step-0000000080.h5" "$WORK/sto/checkpoints/step-0000000080.h5" /model/W /model/W \
     > /dev/null; then
  fail "epoch 2 trained on the same binarisation as --binarize stochastic"
fi
# Validation rows are binarised once (draw 0), so the two runs monitor the same rows.
$PY - "$WORK/dyn" "$WORK/sto" <<'PYEOF'
import sys, h5py, numpy as np
dyn, sto = (h5py.File(r + "/metrics.h5")["metrics"][:] for r in sys.argv[1:3])
assert dyn["free_energy_valid"][0] == sto["free_energy_valid"][0], (dyn["free_energy_valid"], sto["free_energy_valid"])
PYEOF

# Centered with data-initialised biases: the offsets and biases come from the pixels' means,
# which every epoch's draw has in expectation, not from one draw.
opts+=(--centering true --vbias-init data)
state+=(/centering/visible_offset /centering/hidden_offset)
"$RBM" train "${opts[@]}" --binarize dynamic --batch-size 10 --epochs 3 --checkpoint-every 20 --out "$WORK/cen" > /dev/null
$PY - "$MNIST" "$(newest_checkpoint "$WORK/cen")" <<'PYEOF'
import sys, h5py, numpy as np
pixels = np.fromfile(sys.argv[1], dtype=np.uint8, offset=16)[:400 * 784].reshape(400, 784) / 255.0
mu = h5py.File(sys.argv[2])["centering/visible_offset"][:]
assert np.abs(mu - pixels.mean(axis=0)).max() < 1e-6, np.abs(mu - pixels.mean(axis=0)).max()
PYEOF

echo "== resume at the epoch boundary (step 80) and mid-epoch (step 60): equal to uninterrupted"
resume_from "$WORK/cen" 80 "$WORK/boundary"
resume_from "$WORK/cen" 60 "$WORK/mid"

if command -v mpirun > /dev/null; then
  echo "== two ranks: replicas equal; resume mid-epoch exact"
  mpirun -np 2 "$RBM" train "${opts[@]}" --binarize dynamic --batch-size 5 --epochs 3 --checkpoint-every 30 \
    --out "$WORK/np2" > "$WORK/np2.log"
  grep -q "replicas bitwise identical on 2 rank(s)" "$WORK/np2.log" || fail "replicas differ on 2 ranks"
  resume_from "$WORK/np2" 90 "$WORK/np2s" mpirun -np 2
fi

expect_error "unknown binarisation" "binarize.*dynamc" "$RBM" train --data "$MNIST" --binarize dynamc --out "$WORK/bad"
echo "PASS"
