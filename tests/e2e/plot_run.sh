# tools/plot_run.py (Debian's /usr/bin/python3, h5py, matplotlib's Agg backend) turns a
# small run directory into PNGs: learning curves, the filter grid, the persistent chains,
# one grid per samples file (training's and rbm sample's), parallel tempering's swap
# column; it also plots a run that is still training, and refuses what is not a run
# directory with a message.
source "$(dirname "$0")/lib/common.sh"
need_mnist
PLOT=$SRC/tools/plot_run.py
run=$WORK/run
"$RBM" train --data "$MNIST" --test-data "$MNIST_TEST" --limit 1000 --hidden 36 --k 3 \
  --monitor-examples 100 --monitor-every 10 --sample-every 1 --epochs 3 --progress-every 0 \
  --out "$run" > "$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training"; }
"$RBM" sample --checkpoint "$(newest_checkpoint "$run")" --data "$MNIST_TEST" --chains 6 \
  --samples 4 --plot-every 10 --out "$WORK/drawn.h5" > /dev/null || fail "rbm sample"

"$PLOT" "$run" > "$WORK/plots.txt" || fail "plot_run.py failed"
"$PLOT" "$run" --samples "$WORK/drawn.h5" --filters 16 --out "$WORK/more" >> "$WORK/plots.txt" \
  || fail "plot_run.py --samples --filters --out failed"

# Every PNG listed exists, decodes, and is a picture (not one flat colour).
$PY - "$WORK/plots.txt" <<'EOF' || fail "the PNGs"
import sys, os
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt, numpy as np
paths = [l.strip() for l in open(sys.argv[1]) if l.strip()]
names = sorted(os.path.basename(p) for p in paths)
want = ["chains.png", "filters.png", "learning_curves.png", "samples-epoch-0001.png",
        "samples-epoch-0002.png", "samples-epoch-0003.png"]
for w in want:
    assert w in names, f"{w} not written: {names}"
assert "samples-drawn.png" in names, names
for p in paths:
    with open(p, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{p}: not a PNG"
    img = plt.imread(p)
    assert img.shape[0] >= 100 and img.shape[1] >= 100, f"{p}: {img.shape}"
    assert float(np.std(img[..., :3])) > 0.01, f"{p}: a flat image"
print(f"ok: {len(paths)} PNGs decode: {', '.join(sorted(set(names)))}")
EOF

# Parallel tempering's run: a seventh panel for its swap column (four panels a row).
"$RBM" train --data "$MNIST" --limit 300 --hidden 16 --method pt --k 1 --monitor-every 10 --epochs 2 \
  --filters false --progress-every 0 --out "$WORK/pt" > /dev/null 2>&1 || fail "training with --method pt"
"$PLOT" "$WORK/pt" --out "$WORK/pt-plots" > /dev/null || fail "plot_run.py on a PT run"
$PY -c "
import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
pt, plain = (plt.imread(p).shape[1] for p in sys.argv[1:])
assert (pt, plain) == (1700, 1300), (pt, plain)" "$WORK/pt-plots/learning_curves.png" "$run/plots/learning_curves.png" \
  || fail "the PT run's learning curves lack the swap panel"
echo "ok: the PT run's learning curves have the swap panel"

# A run resumed on another rank count: the learning curves mark where the second process
# began (its `process` number goes up there) and say the ranks, 2 then 1.
mpirun -np 2 "$RBM" train --data "$MNIST" --limit 400 --hidden 16 --k 1 --monitor-every 5 --epochs 1 \
  --filters false --progress-every 0 --out "$WORK/moved" > /dev/null 2>&1 || fail "training on 2 ranks"
"$RBM" train --resume --out "$WORK/moved" --epochs 2 > /dev/null 2>&1 || fail "resuming on 1 rank"
"$PLOT" "$WORK/moved" --out "$WORK/moved-plots" > /dev/null 2> "$WORK/moved.err" || fail "plot_run.py on a resumed run"
grep -q "metrics.h5: .* 2 process(es); resumed before step 15; ranks 2 -> 1" "$WORK/moved.err" \
  || fail "the resume was not found: $(cat "$WORK/moved.err")"
echo "ok: $(grep -o '2 process.*' "$WORK/moved.err")"

# A second layer, trained on 36 features (a square count, but not pixels): its checkpoint
# says its data were not images, so its filters are drawn as strips of 36 values, not 6 x 6.
"$RBM" transform --checkpoint "$(newest_checkpoint "$run")" --data "$MNIST" --limit 200 --out "$WORK/f.h5" \
  > /dev/null || fail "rbm transform"
"$RBM" train --data "$WORK/f.h5:/features" --hidden 4 --k 1 --batch-size 10 --epochs 1 --monitor-examples 50 \
  --progress-every 0 --out "$WORK/layer2" > /dev/null 2>&1 || fail "training on features"
"$PLOT" "$WORK/layer2" --out "$WORK/layer2-plots" > /dev/null 2>&1 || fail "plot_run.py on layer 2"
$PY -c "
import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
h, w = plt.imread(sys.argv[1]).shape[:2]
assert w > 4 * h, ('filters of features drawn as images', h, w)" "$WORK/layer2-plots/filters.png" \
  || fail "layer 2's filters"
echo "ok: layer 2's filters drawn as strips of values"

# A run still training (far more epochs than the test waits for; stopped by SIGTERM once
# plotted): the metrics file is read as a SWMR reader while rbm has it open for writing.
"$RBM" train --data "$MNIST" --limit 2000 --hidden 16 --k 1 --monitor-every 5 --epochs 100000 \
  --filters false --progress-every 0 --out "$WORK/live" > "$WORK/live.log" 2>&1 &
writer=$!
for _ in $(seq 600); do
  [ -n "$(ls "$WORK/live/checkpoints" 2>/dev/null)" ] && break
  kill -0 $writer 2> /dev/null || { cat "$WORK/live.log"; fail "the run to plot ended early"; }
  sleep 0.1
done
[ -n "$(ls "$WORK/live/checkpoints" 2>/dev/null)" ] || { kill $writer; fail "no checkpoint of the live run within 60 s"; }
live_rc=0
"$PLOT" "$WORK/live" --out "$WORK/live-plots" > /dev/null 2> "$WORK/live.err" || live_rc=$?
kill -0 $writer 2>/dev/null || { cat "$WORK/live.log"; fail "the live run ended before it was plotted"; }
kill $writer
rc=0; wait $writer || rc=$?
[ $rc = 75 ] || { cat "$WORK/live.log"; fail "the live run, stopped by SIGTERM, exited $rc (not 75)"; }
[ $live_rc = 0 ] || { cat "$WORK/live.err"; fail "plot_run.py on a run in progress"; }
[ -s "$WORK/live-plots/learning_curves.png" ] || fail "no learning curves of the run in progress"
echo "ok: plotted a run in progress (still training while plotted, stopped after)"

echo "== other files in samples/ are skipped, not fatal; bad arguments are refused by name"
cp -r "$run" "$WORK/mixed"
printf 'not hdf5' > "$WORK/mixed/samples/notes.h5"
$PY -c "import h5py, sys; h5py.File(sys.argv[1], 'w')['x'] = 1" "$WORK/mixed/samples/other.h5"
"$PLOT" "$WORK/mixed" --out "$WORK/mixed-plots" > "$WORK/mixed.out" 2> "$WORK/mixed.err" \
  || { cat "$WORK/mixed.err"; fail "a foreign file in samples/ stopped the plot"; }
grep -q "skipping.*notes.h5" "$WORK/mixed.err" && grep -q "skipping.*other.h5.*not an rbm samples file" "$WORK/mixed.err" \
  || { cat "$WORK/mixed.err"; fail "the skipped files were not named"; }
[ -s "$WORK/mixed-plots/filters.png" ] || fail "no filters drawn beside the foreign files"
expect_error "--filters 0" "--filters must be at least 1" "$PLOT" "$run" --filters 0
expect_error "--out that is a file" "--out .* exists and is not a directory" "$PLOT" "$run" --out "$run/config.ini"
expect_error "a metrics file as --checkpoint" "metrics.h5' has no dataset 'model/W'" \
  "$PLOT" "$run" --out "$WORK/x-plots" --checkpoint "$run/metrics.h5"

expect_error "not a directory" "is not a directory" "$PLOT" "$WORK/nowhere"
mkdir "$WORK/empty"
expect_error "empty directory" "nothing to plot" "$PLOT" "$WORK/empty"
echo "PASS"
