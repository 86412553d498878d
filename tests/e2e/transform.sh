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
import os, sys, h5py, numpy as np
f, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
text = lambda v: v.decode() if isinstance(v, bytes) else v
assert text(f.attrs["rbm_file_kind"]) == "features" and f.attrs["format_version"] == 1
# Absolute paths (cwd + the path as given), so a reader finds them from anywhere.
full = lambda p: os.path.normpath(os.path.abspath(p))
assert text(f.attrs["binarize"]) == "none" and full(text(f.attrs["data_file"])) == full(sys.argv[3])
assert os.path.isabs(text(f.attrs["data_file"])) and os.path.isabs(text(f.attrs["checkpoint"]))
assert full(text(f.attrs["labels_file"])) == full(sys.argv[4]) and full(text(f.attrs["checkpoint"])) == full(sys.argv[2])
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

echo "== stochastic binarisation is recorded and feeds 0/1 inputs, recovered from the features"
# With more hidden units than visible ones, logit(p(h | v)) - c = v W determines v.
"$RBM" train --data "$MNIST" --limit 20 --hidden 800 --k 1 --batch-size 20 --epochs 1 --monitor-examples 20 \
  --filters false --progress-every 0 --out "$WORK/wide" > /dev/null 2>&1 || fail "training the wide RBM"
wide=$(newest_checkpoint "$WORK/wide")
"$RBM" transform --checkpoint "$wide" --data "$MNIST" --limit 50 --binarize stochastic --binarize-seed 9 \
  --out "$WORK/s.h5" > /dev/null || fail "transform --binarize stochastic"
$PY - "$WORK/s.h5" "$wide" "$MNIST" <<'EOF' || fail "stochastic features"
import sys, h5py, numpy as np
s, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert s.attrs["binarize_seed"] == 9 and "labels" not in s
p = s["features"][:].astype(np.float64)
W, hb = c["model/W"][:].astype(np.float64), c["model/hbias"][:].astype(np.float64)
v = np.linalg.lstsq(W.T, (np.log(p) - np.log1p(-p) - hb).T, rcond=None)[0].T
assert np.abs(v - np.round(v)).max() < 1e-2, np.abs(v - np.round(v)).max()
v = np.round(v)
x = np.frombuffer(open(sys.argv[3], "rb").read()[16:16 + 50 * 784], np.uint8).reshape(50, 784) / 255.0
assert set(np.unique(v)) <= {0.0, 1.0}
assert (v[x == 0] == 0).all() and (v[x == 1] == 1).all()   # x > u: 0 never, 1 always
assert abs(v.mean() - x.mean()) < 0.01, (v.mean(), x.mean())  # and x in between as often as x says
assert ((v > 0) != (x >= 0.5)).any()                      # not a threshold
EOF
"$RBM" info "$WORK/f.h5" | grep -qF "features: [300, 16] float32, p(h = 1 | v)" || fail "info on features"

echo "== stacking: a second RBM trains on the first one's features and transforms them (a DBN's layer 2)"
"$RBM" train --data "$WORK/f.h5:/features" --hidden 8 --k 1 --batch-size 10 --epochs 1 --monitor-examples 50 \
  --sample-every 1 --progress-every 0 --out "$WORK/layer2" > "$WORK/layer2.log" 2>&1 || { cat "$WORK/layer2.log"; fail "training on features"; }
# 16 features are a square count, but hidden units, not pixels: no filters, no sample PNGs,
# and the checkpoint says so, so that samples drawn from noise are not drawn as images either.
[ ! -e "$WORK/layer2/filters" ] && [ -e "$WORK/layer2/samples/epoch-0001.h5" ] && [ ! -e "$WORK/layer2/samples/epoch-0001.png" ] \
  || fail "features drawn as images: $(ls -R "$WORK/layer2")"
"$RBM" info "$(newest_checkpoint "$WORK/layer2")" | grep -q "trained on data that are not images" || fail "rbm info of layer 2"
"$RBM" sample --checkpoint "$(newest_checkpoint "$WORK/layer2")" --chains 3 --samples 2 --plot-every 5 \
  --out "$WORK/noise2.h5" > /dev/null || fail "sampling layer 2 from noise"
[ ! -e "$WORK/noise2.png" ] || fail "layer 2's samples drawn as images"
$PY -c "import h5py, sys; a = h5py.File(sys.argv[1], 'r').attrs; assert a['image_height'] == 0 == a['image_width'], dict(a)" \
  "$WORK/noise2.h5" || fail "layer 2's samples file"
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
expect_error "a threshold without threshold binarisation" "--binarize-threshold applies to --binarize threshold, and the binarisation here is none" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --binarize-threshold 0.3 --out "$WORK/x.h5"
expect_error "into a missing directory" "--out .*/nodir/x.h5: its directory .*nodir' does not exist" \
  "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --out "$WORK/nodir/x.h5"
expect_error "under mpirun" "runs as one process" \
  mpirun -np 2 --oversubscribe "$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --limit 5 --out "$WORK/m.h5"
[ ! -e "$WORK/x.h5" ] && [ ! -e "$WORK/m.h5" ] || fail "a refused request left a file"
$PY -c "import h5py, sys; h5py.File(sys.argv[1], 'r')['model/W']" "$ckpt" || fail "the checkpoint was harmed"

echo "== classify_features.py: features against pixels"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST_TEST" --labels "$TEST_LABELS" --limit 200 --out "$WORK/t.h5" > /dev/null \
  || fail "transform of test data"
# Made with relative paths from another directory: the baseline still finds the images.
mkdir "$WORK/elsewhere"
cp "$MNIST_TEST" "$TEST_LABELS" "$WORK/elsewhere/"
(cd "$WORK/elsewhere" \
  && "$RBM" transform --checkpoint "$ckpt" --data "$(basename "$MNIST_TEST")" --labels "$(basename "$TEST_LABELS")" \
       --limit 200 --out t.h5 > /dev/null) || fail "transform of test data from another directory"
"$SRC/tools/classify_features.py" "$WORK/f.h5" "$WORK/elsewhere/t.h5" --max-iter 50 --json > "$WORK/acc.json" \
  || fail "classify_features.py"
$PY -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['train_examples'] == 300 and r['test_examples'] == 200 and r['features'] == 16, r
assert 0.2 < r['rbm_accuracy'] <= 1 and 0.2 < r['pixel_accuracy'] <= 1, r  # 10 classes: chance is 0.1
" "$WORK/acc.json" || fail "classifier results: $(cat "$WORK/acc.json")"
# Features made from an HDF5 dataset (the test images as uint8 [10000, 28, 28], the first 200
# used): the baseline reads the dataset, and scores exactly as on the IDX file's pixels.
$PY - "$MNIST_TEST" "$WORK/test.h5" <<'PYEOF'
import gzip, sys, h5py, numpy as np
raw = (gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rb").read()
h5py.File(sys.argv[2], "w")["images/test"] = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28)
PYEOF
"$RBM" transform --checkpoint "$ckpt" --data "$WORK/test.h5:/images/test" --labels "$TEST_LABELS" --limit 200 \
  --out "$WORK/th5.h5" > /dev/null || fail "transform of an HDF5 dataset"
"$SRC/tools/classify_features.py" "$WORK/f.h5" "$WORK/th5.h5" --max-iter 50 --json > "$WORK/acc_h5.json" \
  || fail "classify_features.py on features of an HDF5 dataset"
$PY -c "
import json, sys
idx, h5 = (json.load(open(p)) for p in sys.argv[1:])
assert 'no_baseline' not in h5, h5
assert h5['pixel_accuracy'] == idx['pixel_accuracy'] and h5['rbm_accuracy'] == idx['rbm_accuracy'], (idx, h5)
" "$WORK/acc.json" "$WORK/acc_h5.json" || fail "the HDF5 dataset's baseline: $(cat "$WORK/acc_h5.json")"
expect_error "classify a checkpoint" "is not an rbm features file" "$SRC/tools/classify_features.py" "$ckpt" "$WORK/t.h5"
expect_error "classify features without labels" "has no /labels" "$SRC/tools/classify_features.py" "$WORK/s.h5" "$WORK/t.h5"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST" --labels "$LABELS" --limit 1 --out "$WORK/one.h5" > /dev/null
expect_error "classify one class" "labels hold one class" "$SRC/tools/classify_features.py" "$WORK/one.h5" "$WORK/t.h5"
"$RBM" transform --checkpoint "$ckpt" --data "$MNIST_TEST" --labels "$TEST_LABELS" --limit 200 --binarize threshold \
  --binarize-threshold 0.3 --out "$WORK/tt.h5" > /dev/null
$PY -c "import h5py, sys; t = h5py.File(sys.argv[1], 'r').attrs['binarize_threshold']; assert t == 0.3, repr(t)" "$WORK/tt.h5" \
  || fail "the threshold is not recorded as given"
expect_error "classify features read another way" "differ in binarize \(none against threshold\)" \
  "$SRC/tools/classify_features.py" "$WORK/f.h5" "$WORK/tt.h5"
echo "PASS"
