# End to end through the real binary on a small MNIST subset: train, info, resume
# (from an epoch boundary and from mid-epoch) ending bitwise equal to an uninterrupted
# run, and sample.
source "$(dirname "$0")/lib/common.sh"
need_mnist
small=(--data "$MNIST" --test-data "$MNIST_TEST" --limit 300 --hidden 24 --batch-size 10 --k 2
       --monitor-examples 100 --seed 7)

echo "== uninterrupted: 3 epochs, a checkpoint every 7 steps, all kept"
"$RBM" train "${small[@]}" --epochs 3 --checkpoint-every 7 --keep-checkpoints 0 --sample-every 1 \
  --out "$WORK/full" > "$WORK/full.log"
grep -q "results in" "$WORK/full.log" || fail "no summary"
final=$(newest_checkpoint "$WORK/full")
[ "$(basename "$final")" = step-0000000090.h5 ] || fail "expected 90 steps, newest is $final"
for f in metrics.h5 config.ini filters/epoch-0003.png samples/epoch-0003.h5 samples/epoch-0003.png; do
  [ -s "$WORK/full/$f" ] || fail "missing $f"
done
"$RBM" info "$final" | grep -q "checkpoint" || fail "info on a checkpoint"
"$RBM" info "$WORK/full/metrics.h5" | grep -qi "metrics" || fail "info on metrics"

echo "== 1 epoch, then --resume to 3: equal to uninterrupted"
"$RBM" train "${small[@]}" --epochs 1 --checkpoint-every 7 --out "$WORK/split" > /dev/null
"$RBM" train --resume --out "$WORK/split" --epochs 3 > "$WORK/split.log"
grep -q "resumed from step 30" "$WORK/split.log" || fail "did not resume from step 30"
same_datasets "$final" "$(newest_checkpoint "$WORK/split")" /model/W /model/vbias /model/hbias \
  /optimizer/velocity_W /chains/hidden

echo "== resume from a mid-epoch checkpoint (step 49), dropping the later ones"
cp -r "$WORK/full" "$WORK/mid"
for f in "$WORK"/mid/checkpoints/step-*.h5; do
  step=$((10#$(basename "$f" .h5 | sed 's/step-//')))
  [ "$step" -le 49 ] || rm "$f"
done
"$RBM" train --resume --out "$WORK/mid" > "$WORK/mid.log"
grep -q "resumed from step 49" "$WORK/mid.log" || fail "did not resume from step 49"
same_datasets "$final" "$(newest_checkpoint "$WORK/mid")" /model/W /model/vbias /model/hbias /chains/hidden
rows=$($PY -c "import h5py,sys; print(len(h5py.File(sys.argv[1])['metrics']))" "$WORK/mid/metrics.h5")
[ "$rows" = 3 ] || fail "metrics of the resumed run have $rows rows, expected 3 (one per epoch)"

echo "== sample from the final checkpoint"
"$RBM" sample --checkpoint "$final" --data "$MNIST_TEST" --chains 5 --samples 3 --plot-every 10 \
  --out "$WORK/s.h5" | grep -q "wrote 3 samples of 5 chains" || fail "sample summary"
[ -s "$WORK/s.png" ] || fail "no samples PNG"
$PY - "$WORK/s.h5" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
assert f["mean_field"].shape == (3, 5, 784), f["mean_field"].shape
assert f["samples"].shape == (3, 5, 784)
assert set(np.unique(f["samples"][:])) <= {0, 1}
m = f["mean_field"][:]
assert (m >= 0).all() and (m <= 1).all()
PYEOF
"$RBM" info "$WORK/s.h5" | grep -qi "samples" || fail "info on samples"
# Run from the checkpoint's directory with a relative path: the file records it absolute.
(cd "$(dirname "$final")" && "$RBM" sample --checkpoint "$(basename "$final")" --chains 2 --samples 1 --plot-every 5 \
  --out "$WORK/rel.h5" > /dev/null) || fail "sample from a relative --checkpoint"
$PY -c "
import h5py, os, sys
c = h5py.File(sys.argv[1], 'r').attrs['checkpoint']
c = c.decode() if isinstance(c, bytes) else c
assert os.path.isabs(c) and os.path.realpath(c) == os.path.realpath(sys.argv[2]), (c, sys.argv[2])" "$WORK/rel.h5" "$final" \
  || fail "the samples file's checkpoint path"

echo "== sample --device: the engine is named in the log and the file"
"$RBM" sample --checkpoint "$final" --chains 2 --samples 1 --plot-every 5 --device cpu \
  --out "$WORK/cpu.h5" > "$WORK/cpu.log" || fail "sample --device cpu"
grep -q "^sampling on cpu" "$WORK/cpu.log" || fail "sample does not say where it runs"
$PY -c "import h5py,sys; d = h5py.File(sys.argv[1]).attrs['device']; d = d.decode() if isinstance(d, bytes) else d; assert d.startswith('cpu'), d" \
  "$WORK/cpu.h5" || fail "the samples file does not record its device"
"$RBM" info "$WORK/s.h5" | grep -q "start_index: \[5\] int64 (the examples the chains started from: [0-9]" \
  || fail "info does not show where data-started chains began"
"$RBM" info "$WORK/cpu.h5" | grep -qF "start_index: [2] int64 (all -1: the chains started from noise)" \
  || fail "info does not say noise-started chains began from noise"
expect_error "sample --device tpu" "--device must be auto, cpu or cuda" "$RBM" sample --checkpoint "$final" --device tpu
if ! nvidia-smi -L > /dev/null 2>&1; then
  expect_error "sample --device cuda without a GPU" "device cuda: (no CUDA GPU is visible|this rbm was built without CUDA)" \
    "$RBM" sample --checkpoint "$final" --device cuda --out "$WORK/none.h5"
  [ ! -e "$WORK/none.h5" ] || fail "a failed sample left its output"
fi
echo "PASS"
