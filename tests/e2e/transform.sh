# rbm transform through the real binary: the features file holds p(h | v) of the
# checkpoint's RBM for every example (checked against numpy from the checkpoint's own
# W and c), the labels of those examples, and says how it was made; bad requests are
# refused by name; tools/classify_features.py scores the features beside the pixels.
source "$(dirname "$0")/lib/common.sh"
need_mnist
LABELS=$DATA_DIR/mnist/train-labels-idx1-ubyte
TEST_LABELS=$DATA_DIR/mnist/t10k-labels-idx1-ubyte
"$RBM" train --data "$MNIST" --limit 500 --hidden 16 --k 1 --batch-size 10 --epochs 1 --monitor-examples 50 \
  --filters false --progress-every 0 --out "$WORK/run" > "$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training"; }
ckpt=$(newest_checkpoint "$WORK/run")

echo "== features and labels of the first 300 examples, as numpy computes them"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --labels "$LABELS" --limit 300 --out "$WORK/f.h5" \
  > "$WORK/f.log" || fail "rbm transform"
grep -q "^wrote the features of 300 examples \[300, 16\] and their labels to $WORK/f.h5" "$WORK/f.log" \
  || fail "no summary line: $(cat "$WORK/f.log")"
grep -Eq "^mean activation [0-9.e-]+; [0-9]+ of 16 hidden units nearly constant" "$WORK/f.log" || fail "no spread line"
$PY - "$WORK/f.h5" "$ckpt" "$MNIST" "$LABELS" <<'EOF' || fail "the features file"
import sys, h5py, numpy as np
f, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
text = lambda v: v.decode() if isinstance(v, bytes) else v
assert text(f.attrs["rbm_file_kind"]) == "features" and f.attrs["format_version"] == 1
assert text(f.attrs["binarize"]) == "none" and text(f.attrs["data_file"]) == sys.argv[3]
assert text(f.attrs["labels_file"]) == sys.argv[4] and text(f.attrs["checkpoint"]) == sys.argv[2]
feats, labels = f["features"][:], f["labels"][:]
assert feats.shape == (300, 16) and feats.dtype == np.float32, (feats.shape, feats.dtype)
x = np.frombuffer(open(sys.argv[3], "rb").read()[16:16 + 300 * 784], np.uint8).reshape(300, 784) / 255.0
W, hb = c["model/W"][:].astype(np.float64), c["model/hbias"][:].astype(np.float64)
expect = 1 / (1 + np.exp(-(x @ W + hb)))
err = np.abs(feats - expect).max()
assert err < 1e-5, err
want = np.frombuffer(open(sys.argv[4], "rb").read()[8:8 + 300], np.uint8)
assert (labels == want).all()
EOF

echo "== stochastic binarisation is recorded and gives 0/1 inputs (other features than x/255)"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --limit 50 --binarize stochastic --binarize-seed 9 \
  --out "$WORK/s.h5" > /dev/null || fail "transform --binarize stochastic"
$PY -c "
import sys, h5py, numpy as np
s, f = h5py.File(sys.argv[1], 'r'), h5py.File(sys.argv[2], 'r')
assert s.attrs['binarize_seed'] == 9 and 'labels' not in s
assert not np.allclose(s['features'][:], f['features'][:50])
" "$WORK/s.h5" "$WORK/f.h5" || fail "stochastic features"
"$RBM" info "$WORK/f.h5" | grep -qF "features: [300, 16] float32, p(h = 1 | v)" || fail "info on features"

echo "== stacking: a second RBM trains on the first one's features and transforms them (a DBN's layer 2)"
"$RBM" train --data "$WORK/f.h5:/features" --hidden 8 --k 1 --batch-size 10 --epochs 1 --monitor-examples 50 \
  --progress-every 0 --out "$WORK/layer2" > "$WORK/layer2.log" 2>&1 || { cat "$WORK/layer2.log"; fail "training on features"; }
"$RBM" transform --checkpoint "$(newest_checkpoint "$WORK/layer2")" --data "$WORK/f.h5:/features" \
  --out "$WORK/f2.h5" > "$WORK/f2.log" || fail "transform of features"
grep -q "features of 300 examples \[300, 8\]" "$WORK/f2.log" || fail "layer 2 features: $(cat "$WORK/f2.log")"

echo "== bad requests"
expect_error "labels of another file" "$LABELS.*$TEST_LABELS|labels.*60000.*10000|10000.*60000" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --labels "$TEST_LABELS" --out "$WORK/x.h5"
expect_error "images as labels" "magic" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --labels "$MNIST" --out "$WORK/x.h5"
$PY -c "import h5py, numpy as np, sys; h5py.File(sys.argv[1], 'w')['x'] = np.zeros((4, 10), np.float32)" "$WORK/narrow.h5"
expect_error "data of another width" "narrow.h5:/x has 10 values per example, the checkpoint's RBM 784 visible units" \
  "$RBM" transform --checkpoint "$ckpt" --data "$WORK/narrow.h5:/x" --out "$WORK/x.h5"
expect_error "over a checkpoint" "exists and is an rbm checkpoint file; rbm transform replaces only a features file" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --limit 5 --out "$ckpt"
expect_error "no --data" "--data is required" "$RBM" transform --checkpoint "$ckpt"
expect_error "dynamic binarisation" "--binarize must be none, threshold or stochastic, got 'dynamic'" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --binarize dynamic
expect_error "under mpirun" "runs as one process" \
  mpirun -np 2 --oversubscribe "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --limit 5 --out "$WORK/m.h5"
[ ! -e "$WORK/x.h5" ] && [ ! -e "$WORK/m.h5" ] || fail "a refused request left a file"
$PY -c "import h5py, sys; h5py.File(sys.argv[1], 'r')['model/W']" "$ckpt" || fail "the checkpoint was harmed"

echo "== classify_features.py: features against pixels"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST_TEST" --labels "$TEST_LABELS" --limit 200 --out "$WORK/t.h5" > /dev/null \
  || fail "transform of test data"
"$SRC/tools/classify_features.py" "$WORK/f.h5" "$WORK/t.h5" --max-iter 50 --json > "$WORK/acc.json" \
  || fail "classify_features.py"
$PY -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['train_examples'] == 300 and r['test_examples'] == 200 and r['features'] == 16, r
assert 0.2 < r['rbm_accuracy'] <= 1 and 0.2 < r['pixel_accuracy'] <= 1, r  # 10 classes: chance is 0.1
" "$WORK/acc.json" || fail "classifier results: $(cat "$WORK/acc.json")"
expect_error "classify a checkpoint" "is not an rbm features file" "$SRC/tools/classify_features.py" "$ckpt" "$WORK/t.h5"
expect_error "classify features without labels" "has no /labels" "$SRC/tools/classify_features.py" "$WORK/s.h5" "$WORK/t.h5"
echo "PASS"
