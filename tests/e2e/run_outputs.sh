# What a run directory holds, exactly: samples every --sample-every epochs with their
# epoch and step, the sample grid's size, 100 filters when there are 100 hidden units,
# unfinished files of every folder removed on resume (and nothing else); rbm sample's
# start rows (distinct, seeded, every row usable) and its stream across --plot-every;
# a resume that would change --seed refused.
source "$(dirname "$0")/lib/common.sh"
need_mnist
png_size() { $PY -c "import struct, sys; d = open(sys.argv[1], 'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$1"; }

echo "== --sample-every 2 over 3 epochs: epoch 2 only, with its epoch and step"
"$RBM" train --data "$MNIST" --limit 300 --hidden 100 --batch-size 10 --k 1 --epochs 3 --sample-every 2 \
  --chains 10 --monitor-examples 50 --progress-every 0 --out "$WORK/run" > "$WORK/run.log" 2>&1 \
  || { cat "$WORK/run.log"; fail "training"; }
[ "$(cd "$WORK/run/samples" && ls | tr '\n' ' ')" = "epoch-0002.h5 epoch-0002.png " ] \
  || fail "samples/ holds: $(ls "$WORK/run/samples")"
$PY -c "
import h5py, os, sys; a = h5py.File(sys.argv[1], 'r').attrs
assert a['epoch'] == 2 and a['step'] == 60, (a['epoch'], a['step'])
run = a['run'].decode() if isinstance(a['run'], bytes) else a['run']
assert os.path.isabs(run) and os.path.realpath(run) == os.path.realpath(sys.argv[2]), (run, sys.argv[2])" \
  "$WORK/run/samples/epoch-0002.h5" "$WORK/run" || fail "the samples' epoch, step and run"
"$RBM" info "$WORK/run/samples/epoch-0002.h5" | grep -qF "(all -1: persistent chains, started at h = 0 when training began)" \
  || fail "rbm info on training's samples: $("$RBM" info "$WORK/run/samples/epoch-0002.h5" | grep start_index)"
# 10 chains: one row of ten 28x28 tiles, 1-pixel spacing.
[ "$(png_size "$WORK/run/samples/epoch-0002.png")" = "289 28" ] || fail "sample grid $(png_size "$WORK/run/samples/epoch-0002.png")"
# 100 hidden units: a full 10x10 grid of filters, the last tile drawn too.
[ "$(png_size "$WORK/run/filters/epoch-0003.png")" = "289 289" ] || fail "filter grid $(png_size "$WORK/run/filters/epoch-0003.png")"
$PY -c "
import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.image as im
t = im.imread(sys.argv[1]); t = t if t.ndim == 2 else t[..., 0]
assert t[261:289, 261:289].max() == 1.0 and t[261:289, 261:289].min() == 0.0, 'the 100th filter is not drawn'
" "$WORK/run/filters/epoch-0003.png" || fail "the 100th filter"

# The end-of-run line says where the loop's time went: its parts add up to the whole (to
# the line's rounding), a run that draws nothing has no pictures' part, and the 30
# checkpoints of a run that writes one every step are timed (some time, however small).
loop_times() {  # loop_times LOG PARTS [TIMED]: the line has exactly these parts, they add up, TIMED's is not 0
  $PY - "$@" <<'PYX' || fail "the loop's time line in $1"
import re, sys
line = [l for l in open(sys.argv[1]) if l.startswith("time in the loop: ")]
assert len(line) == 1, line
total = float(re.match(r"time in the loop: ([0-9.]+) s: ", line[0]).group(1))
parts = re.findall(r"([a-z ]+) ([0-9.]+) s \(([0-9.]+)%\)", line[0].split(": ", 1)[1])
names = [n.strip() for n, _, _ in parts]
assert names == sys.argv[2].split(","), (names, line[0])
assert abs(sum(float(s) for _, s, _ in parts) - total) <= 0.01 * len(parts), line[0]
assert abs(sum(float(p) for _, _, p in parts) - 100) <= 0.1 * len(parts), line[0]
if len(sys.argv) > 3:
    seconds = {n.strip(): float(s) for n, s, _ in parts}
    assert seconds[sys.argv[3]] > 0, (sys.argv[3], line[0])
print("ok:", line[0].strip())
PYX
}
loop_times "$WORK/run.log" "training steps,metrics rows,checkpoints,filters and samples"
"$RBM" train --data "$MNIST" --limit 300 --hidden 16 --batch-size 10 --k 1 --epochs 1 --filters false \
  --checkpoint-every 1 --keep-checkpoints 1 --progress-every 0 --out "$WORK/plain" > "$WORK/plain.log" 2>&1 \
  || { cat "$WORK/plain.log"; fail "training"; }
loop_times "$WORK/plain.log" "training steps,metrics rows,checkpoints" checkpoints

# rbm info on the run directory itself: what it holds, its newest checkpoint and metrics.
"$RBM" info "$WORK/run" > "$WORK/info.txt" || fail "rbm info RUN_DIR"
for want in "$WORK/run: rbm run directory" "checkpoints: 3 (newest below)" "samples: 1 file(s)  filters: 3 PNG(s)" \
            "$(newest_checkpoint "$WORK/run"): rbm checkpoint" "$WORK/run/metrics.h5: rbm metrics" "rows: 3" \
            "status: not running, 3 of 3 epoch(s) done: finished"; do
  grep -qF -- "$want" "$WORK/info.txt" || { cat "$WORK/info.txt"; fail "rbm info RUN_DIR lacks '$want'"; }
done
# A dangling link is no checkpoint, to rbm info as to --resume.
ln -s nowhere.h5 "$WORK/run/checkpoints/step-0000009999.h5"
"$RBM" info "$WORK/run" | grep -qF "checkpoints: 3 (newest below)" || fail "rbm info counted a dangling link"
"$RBM" train --resume --out "$WORK/run" --dry-run > "$WORK/dangling.log" 2>&1 || { cat "$WORK/dangling.log"; fail "a dangling link stopped --resume"; }
grep -q "resumed from step 90 " "$WORK/dangling.log" || fail "--resume with a dangling link: $(grep resumed "$WORK/dangling.log")"
rm "$WORK/run/checkpoints/step-0000009999.h5"
mkdir "$WORK/not-a-run"
expect_error "rbm info on a directory that is no run" "'$WORK/not-a-run' is a directory but not an rbm run directory" \
  "$RBM" info "$WORK/not-a-run"
echo "ok: rbm info describes a run directory"

echo "== resume removes unfinished files in every folder, and only rbm's"
for f in samples/epoch-0001.h5.tmp samples/epoch-0001.png.tmp filters/epoch-0001.png.tmp samples/notes.tmp; do
  echo partial > "$WORK/run/$f"
done
"$RBM" train --resume --out "$WORK/run" --epochs 3 > "$WORK/resume.log" 2>&1 || fail "resume"
grep -q "removed 3 unfinished file(s)" "$WORK/resume.log" || fail "cleanup: $(cat "$WORK/resume.log")"
[ ! -e "$WORK/run/samples/epoch-0001.h5.tmp" ] && [ ! -e "$WORK/run/filters/epoch-0001.png.tmp" ] \
  && [ -e "$WORK/run/samples/notes.tmp" ] || fail "the wrong files were removed"
expect_error "resume with another seed" "--seed 8 differs" "$RBM" train --resume --out "$WORK/run" --seed 8

echo "== rbm sample: start rows drawn from the seed, distinct, any row usable"
ckpt=$(newest_checkpoint "$WORK/run")
"$RBM" sample --checkpoint "$ckpt" --data "$MNIST_TEST" --chains 5 --samples 1 --plot-every 1 --out "$WORK/a.h5" > /dev/null
$PY -c "
import h5py, sys; s = list(h5py.File(sys.argv[1], 'r')['start_index'][:])
assert s == [4598, 3615, 8687, 7224, 3143], s   # seed 123's draws (a fixed function of the seed)" "$WORK/a.h5" \
  || fail "start rows"
$PY -c "import h5py, numpy as np, sys; h5py.File(sys.argv[1], 'w')['x'] = (np.arange(6 * 784).reshape(6, 784) % 2).astype(np.float32)" "$WORK/six.h5"
"$RBM" sample --checkpoint "$ckpt" --data "$WORK/six.h5:/x" --chains 6 --samples 1 --plot-every 1 --out "$WORK/six-s.h5" > /dev/null \
  || fail "as many chains as rows"
$PY -c "
import h5py, sys; s = sorted(h5py.File(sys.argv[1], 'r')['start_index'][:])
assert s == [0, 1, 2, 3, 4, 5], s" "$WORK/six-s.h5" || fail "six chains from six rows"
echo "== rbm sample: the second sample 5 steps apart is the first sample 10 steps on"
"$RBM" sample --checkpoint "$ckpt" --data "$MNIST_TEST" --chains 4 --samples 2 --plot-every 5 --out "$WORK/p5.h5" > /dev/null
"$RBM" sample --checkpoint "$ckpt" --data "$MNIST_TEST" --chains 4 --samples 1 --plot-every 10 --out "$WORK/p10.h5" > /dev/null
$PY -c "
import h5py, sys, numpy as np
a, b = (h5py.File(p, 'r')['samples'][:] for p in sys.argv[1:])
assert np.array_equal(a[1], b[0]) and not np.array_equal(a[0], a[1])" "$WORK/p5.h5" "$WORK/p10.h5" \
  || fail "the chain's stream across --plot-every"
echo "PASS"
