# The training options beyond the tutorial's rule, end to end: a centered run with a
# momentum warm-up, a falling learning rate and data-initialised visible biases,
# interrupted at an epoch boundary and mid-epoch, ends bitwise equal to the same run
# uninterrupted (offsets included), on one rank and on two; its log, configuration and
# metrics say what it did; bad values are refused by name.
source "$(dirname "$0")/lib/common.sh"
need_mnist
opts=(--data "$MNIST" --test-data "$MNIST_TEST" --binarize stochastic --limit 400 --hidden 20
      --method pcd --k 1 --monitor-examples 100 --seed 11 --lr 0.05 --lr-final 0.005 --momentum 0.9
      --momentum-warmup 1 --initial-momentum 0.5 --centering true --offset-rate 0.05 --vbias-init data
      --filters false --progress-every 0)
state=(/model/W /model/vbias /model/hbias /optimizer/velocity_W /optimizer/velocity_hbias
       /centering/visible_offset /centering/hidden_offset /chains/hidden)

echo "== uninterrupted: 3 epochs (120 steps), a checkpoint every 25 steps"
"$RBM" train "${opts[@]}" --batch-size 10 --epochs 3 --checkpoint-every 25 --keep-checkpoints 0 --out "$WORK/full" > "$WORK/full.log"
grep -q "lr 0.05 falling linearly to 0.005, momentum 0.9 after 1 epoch(s) at 0.5, centered" "$WORK/full.log" \
  || fail "the log does not describe the update: $(grep update: "$WORK/full.log")"
for key in "lr-final = 0.005" "momentum-warmup = 1" "centering = true" "offset-rate = 0.05" "vbias-init = data"; do
  grep -qx "$key" "$WORK/full/config.ini" || fail "config.ini lacks '$key'"
done
final=$(newest_checkpoint "$WORK/full")
[ "$(basename "$final")" = step-0000000120.h5 ] || fail "expected 120 steps, newest is $final"
$PY - "$WORK/full" <<'PYEOF'
import sys, h5py, numpy as np
run = sys.argv[1]
m = h5py.File(run + "/metrics.h5")["metrics"][:]
lr = m["learning_rate"]
assert np.all(np.diff(lr) < 0), lr                      # falls every epoch
# Each epoch's row holds the rate of its last step, step 40 e - 1 of 0..119.
want = [0.05 + (0.005 - 0.05) * (40 * e - 1) / 119 for e in (1, 2, 3)]
assert np.allclose(lr, want, rtol=0, atol=1e-7), (lr, want)
c = h5py.File(run + "/checkpoints/step-0000000120.h5")
mu, lam = c["centering/visible_offset"][:], c["centering/hidden_offset"][:]
assert mu.shape == (784,) and lam.shape == (20,)
assert (lam >= 0).all() and (lam <= 1).all() and np.ptp(lam) > 0   # lambda moved away from 0.5
assert abs(mu.mean() - 0.13) < 0.03, mu.mean()          # MNIST's mean pixel
PYEOF

# The schedule spans --epochs, so an interrupted run is resumed with the same --epochs:
# resume_from (lib/common.sh) keeps the checkpoints up to a step, drops the later ones, resumes.
echo "== resume from the epoch boundary (step 40) and from mid-epoch (step 75): equal to uninterrupted"
resume_from "$WORK/full" 75 "$WORK/mid"
resume_from "$WORK/full" 50 "$WORK/mid50"
"$RBM" train "${opts[@]}" --batch-size 10 --epochs 3 --checkpoint-every 40 --keep-checkpoints 0 --out "$WORK/full40" > /dev/null
resume_from "$WORK/full40" 40 "$WORK/epoch1"

if command -v mpirun > /dev/null; then
  echo "== two ranks: the hidden means are summed across ranks; replicas equal; resume exact"
  mpirun -np 2 "$RBM" train "${opts[@]}" --batch-size 5 --epochs 2 --checkpoint-every 30 --keep-checkpoints 0 \
    --out "$WORK/np2" > "$WORK/np2.log"
  grep -q "replicas bitwise identical on 2 rank(s)" "$WORK/np2.log" || fail "replicas differ on 2 ranks"
  resume_from "$WORK/np2" 30 "$WORK/np2s" mpirun -np 2
fi

echo "== a checkpoint whose configuration says centered but that lacks the offsets is refused"
cp -r "$WORK/full" "$WORK/stripped"
$PY -c "import h5py, sys; del h5py.File(sys.argv[1], 'r+')['centering']" "$(newest_checkpoint "$WORK/stripped")"
expect_error "centered run without offsets" "lacks the centering offsets" \
  "$RBM" train --resume --out "$WORK/stripped" --epochs 4

echo "== bad values are refused by name"
expect_error "offset rate above 1" "offset-rate" "$RBM" train --data "$MNIST" --offset-rate 2 --out "$WORK/bad"
expect_error "unknown vbias-init" "vbias-init" "$RBM" train --data "$MNIST" --vbias-init mean --out "$WORK/bad"
expect_error "centering not a bool" "centering" "$RBM" train --data "$MNIST" --centering maybe --out "$WORK/bad"
expect_error "negative lr-final" "lr-final" "$RBM" train --data "$MNIST" --lr-final -1 --out "$WORK/bad"

echo "== --tf32 on the cpu is said to have no effect there"
"$RBM" train --data "$MNIST" --limit 100 --hidden 8 --batch-size 10 --k 1 --epochs 1 --filters false --device cpu \
  --tf32 true --out "$WORK/tf32" > "$WORK/tf32.log" || fail "a run with --tf32 on the cpu"
grep -q "^--tf32: applies to the CUDA engine's products; the cpu computes in FP32$" "$WORK/tf32.log" \
  || fail "no note on --tf32: $(head -5 "$WORK/tf32.log")"
echo "PASS"
