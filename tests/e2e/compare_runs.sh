# tools/compare_runs.py (Debian's /usr/bin/python3) on a sweep's directory of runs: one row
# per run with the settings that differ, each run's newest end-of-epoch metrics as
# metrics.h5 holds them, sorted best first; a run not yet started and one still training
# (another process holds its .rbm-lock) say so; --csv, --sort, --plot; bad paths refused
# with a message naming them.
source "$(dirname "$0")/lib/common.sh"
need_mnist
COMPARE=$SRC/tools/compare_runs.py
sweep=$WORK/sweep
common=(--data "$MNIST" --limit 600 --validation-fraction 0.2 --monitor-examples 100 --k 1
        --filters false --progress-every 0)
train_task() {  # train_task TASK FLAGS...: one sweep task's run directory
  local task=$1; shift
  "$RBM" train "${common[@]}" --epochs 2 "$@" --out "$sweep/$task" > "$WORK/train-$task.log" 2>&1 \
    || { cat "$WORK/train-$task.log"; fail "training task $task"; }
}
train_task 0 --lr 0.1 --hidden 16
train_task 1 --lr 0.02 --hidden 16
train_task 2 --lr 0.1 --hidden 24
# A task whose rbm train has not written a metrics row yet: its configuration only.
mkdir -p "$sweep/3"
sed 's/^lr = .*/lr = 0.3/; s|^out = .*|out = '"$sweep/3"'|' "$sweep/0/config.ini" > "$sweep/3/config.ini"

"$COMPARE" "$sweep" > "$WORK/table.txt" 2> "$WORK/table.err" || { cat "$WORK/table.err"; fail "compare_runs.py"; }
cat "$WORK/table.txt"
header=$(head -n1 "$WORK/table.txt")
for want in run lr hidden status epochs "PL cost" "recon xent" "FE gap"; do
  grep -q -- "$want" <<<"$header" || fail "the table's header lacks '$want': $header"
done
for unwanted in out seed limit data; do
  ! grep -qw -- "$unwanted" <<<"$header" || fail "the header shows '$unwanted', which no run changed or which is not compared"
done

"$COMPARE" "$sweep" --csv > "$WORK/pl.csv" 2> /dev/null || fail "compare_runs.py --csv"
"$COMPARE" "$sweep" --csv --sort recon > "$WORK/recon.csv" 2> /dev/null || fail "compare_runs.py --csv --sort recon"
$PY - "$sweep" "$WORK/pl.csv" "$WORK/recon.csv" <<'PYX' || fail "the CSV"
import csv, math, sys
import h5py, numpy as np
sweep, by_pl, by_recon = sys.argv[1:]
rows = list(csv.DictReader(open(by_pl)))
assert [r["run"] for r in rows][-1] == "3", rows                     # no metrics: last
assert {r["run"]: r["status"] for r in rows} == {"0": "finished", "1": "finished", "2": "finished",
                                                 "3": "not started"}, rows
assert {r["run"]: (r["lr"], r["hidden"]) for r in rows} == {"0": ("0.1", "16"), "1": ("0.02", "16"),
                                                          "2": ("0.1", "24"), "3": ("0.3", "16")}, rows
for r in rows[:-1]:   # every number is the last end-of-epoch row of the run's own metrics.h5
    m = h5py.File(f"{sweep}/{r['run']}/metrics.h5", "r")["metrics"][:]
    last = m[m["epoch"] == np.round(m["epoch"])][-1]
    for field in ("pseudo_likelihood", "reconstruction_xent", "free_energy_gap"):
        assert float(r[field]) == float(last[field]), (r["run"], field, r[field], last[field])
    assert math.isfinite(float(r["free_energy_gap"])), r
    assert (float(r["epochs_done"]), int(r["step"])) == (2.0, int(m["step"][-1])), r
pl = [float(r["pseudo_likelihood"]) for r in rows[:-1]]
assert pl == sorted(pl, reverse=True), f"--sort pl is not best (highest) first: {pl}"
recon = [float(r["reconstruction_xent"]) for r in list(csv.DictReader(open(by_recon)))[:-1]]
assert recon == sorted(recon), f"--sort recon is not lowest first: {recon}"
assert len(set(pl)) == 3 and len(set(recon)) == 3, "the runs' metrics are not their own"
print(f"ok: 4 runs; PL best first {pl}; recon lowest first {recon}")
PYX

# rbm eval's verdict beside the metrics where RUN/eval.json holds it (run 0), a file that
# is not eval's output named and left out (run 1).
"$RBM" eval --checkpoint "$(newest_checkpoint "$sweep/0")" --data "$MNIST_TEST" --limit 100 --runs 10 --seeds 1 \
  --betas 100 --raise-examples 0 --json > "$sweep/0/eval.json" 2> /dev/null || fail "rbm eval of run 0"
echo "{" > "$sweep/1/eval.json"
"$COMPARE" "$sweep" --sort ll > "$WORK/ll.txt" 2> "$WORK/ll.err" || { cat "$WORK/ll.err"; fail "compare_runs.py --sort ll"; }
cat "$WORK/ll.txt"
grep -q "test log-lik  at step" "$WORK/ll.txt" || fail "no eval columns"
[ "$(sed -n 2p "$WORK/ll.txt" | cut -d' ' -f1)" = 0 ] || fail "--sort ll: the evaluated run is not first"
grep -q "'$sweep/1/eval.json' is not rbm eval --json's output" "$WORK/ll.err" || { cat "$WORK/ll.err"; fail "the bad eval.json not named"; }
"$COMPARE" "$sweep" --csv > "$WORK/ll.csv" 2> /dev/null || fail "compare_runs.py --csv with eval.json"
$PY - "$WORK/ll.csv" "$sweep/0/eval.json" <<'PYX' || fail "the eval columns"
import csv, json, sys
rows = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
j = json.load(open(sys.argv[2]))
r = rows["0"]
assert float(r["log_likelihood"]) == j["mean_log_likelihood"], (r["log_likelihood"], j["mean_log_likelihood"])
assert (r["eval_method"], int(r["eval_step"])) == ("exact", j["checkpoint_step"]), r
assert rows["1"]["log_likelihood"] == "nan" and rows["1"]["eval_method"] == "", rows["1"]
print(f"ok: run 0's eval.json: {r['log_likelihood']} nats ({r['eval_method']}) at step {r['eval_step']}")
PYX

# Odd runs: one whose config.ini is gone (its settings come from its newest checkpoint), an
# older config.ini without a key (not a difference), one stopped at its first step before
# any metrics row (stopped, at step 1), one on 2 ranks (a ranks column), one whose last
# metrics row is mid-epoch (its PL is still the last end-of-epoch row's).
odd=$WORK/odd
cp -r "$sweep/0" "$odd-noconfig" && rm "$odd-noconfig/config.ini" "$odd-noconfig/eval.json"
mkdir -p "$odd" && mv "$odd-noconfig" "$odd/noconfig"
cp -r "$sweep/2" "$odd/older" && sed -i '/^tf32 = /d' "$odd/older/config.ini" && rm -f "$odd/older/eval.json"
rc=0; "$RBM" train "${common[@]}" --epochs 2 --lr 0.1 --hidden 16 --max-hours 1e-9 --out "$odd/first-step" \
  > /dev/null 2>&1 || rc=$?
[ $rc = 75 ] || fail "a run with --max-hours 1e-9: exit $rc, not 75"
mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${common[@]}" --epochs 2 --lr 0.1 --hidden 16 \
  --out "$odd/two-ranks" > /dev/null 2>&1 || fail "training on 2 ranks"
"$RBM" train "${common[@]}" --epochs 2 --lr 0.1 --hidden 16 --monitor-every 5 --out "$odd/mid" > /dev/null 2>&1 \
  || fail "training with --monitor-every"
# (resumed with a row every step and stopped after its first: a row at step 49, mid-epoch)
rc=0; "$RBM" train --resume --epochs 3 --monitor-every 1 --max-hours 1e-9 --out "$odd/mid" > /dev/null 2>&1 || rc=$?
[ $rc = 75 ] || fail "the resumed run with --max-hours 1e-9: exit $rc, not 75"
"$COMPARE" "$odd" --csv --sort name > "$WORK/odd.csv" 2> "$WORK/odd.err" || { cat "$WORK/odd.err"; fail "compare_runs.py on odd runs"; }
"$COMPARE" "$odd" --sort name 2> /dev/null
$PY - "$WORK/odd.csv" "$odd/mid/metrics.h5" <<'PYX' || fail "the odd runs"
import csv, sys, h5py, numpy as np
rows = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert set(rows) == {"noconfig", "older", "first-step", "two-ranks", "mid"}, rows.keys()
header = list(next(iter(rows.values())).keys())
assert "tf32" not in header, f"a key missing from an older config.ini shows as a difference: {header}"
assert (rows["noconfig"]["hidden"], rows["noconfig"]["status"]) == ("16", "finished"), rows["noconfig"]
assert (rows["first-step"]["status"], rows["first-step"]["step"]) == ("stopped", "1"), rows["first-step"]
assert rows["two-ranks"]["ranks"] == "2" and rows["mid"]["ranks"] == "1", (rows["two-ranks"]["ranks"], rows["mid"]["ranks"])
m = h5py.File(sys.argv[2], "r")["metrics"][:]
assert m["epoch"][-1] != np.round(m["epoch"][-1]), f"the last row of the mid run is an epoch end: {m['epoch']}"
last_end = m[m["epoch"] == np.round(m["epoch"])][-1]
mid = rows["mid"]
assert float(mid["pseudo_likelihood"]) == last_end["pseudo_likelihood"], (mid["pseudo_likelihood"], last_end)
assert mid["status"] == "stopped" and int(mid["step"]) == int(m["step"][-1]) == 49, (mid, m["step"])
print("ok: odd runs:", {k: (r["status"], r["step"], r["ranks"]) for k, r in rows.items()})
PYX

# A run training now: its status says so while it holds the lock, and once it stopped.
"$RBM" train "${common[@]}" --epochs 100000 --lr 0.05 --hidden 16 --out "$sweep/4" > "$WORK/train-4.log" 2>&1 &
trainer=$!
for _ in $(seq 300); do
  [ -s "$sweep/4/metrics.h5" ] && grep -q "^epoch" "$WORK/train-4.log" && break
  kill -0 $trainer 2> /dev/null || { cat "$WORK/train-4.log"; fail "the long run ended early"; }
  sleep 0.1
done
"$COMPARE" "$sweep" --sort name > "$WORK/live.txt" 2> "$WORK/live.err" || { kill $trainer; fail "compare_runs.py during training"; }
kill -USR1 $trainer
rc=0; wait $trainer || rc=$?
[ $rc = 75 ] || { cat "$WORK/train-4.log"; fail "the training run ended with $rc, not 75"; }
grep -E "^4 .* training " "$WORK/live.txt" || { cat "$WORK/live.txt"; fail "the run in training is not shown as training"; }
grep -q "in use by rbm train, pid $trainer" "$WORK/live.err" || { cat "$WORK/live.err"; fail "the lock's holder is not named"; }
"$COMPARE" "$sweep/4" | grep -E "^4 .* stopped " || fail "the stopped run is not shown as stopped"
echo "ok: a run in training, then stopped, says so"

"$COMPARE" "$sweep" --plot "$WORK/curves.png" > /dev/null 2>&1 || fail "compare_runs.py --plot"
$PY -c "
import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt, numpy as np
img = plt.imread(sys.argv[1]); assert img.shape[1] >= 1000 and float(np.std(img[..., :3])) > 0.01, img.shape
print('ok: --plot drew', img.shape)" "$WORK/curves.png" || fail "the --plot PNG"

expect_error "a path that is not a directory" "'$WORK/none' is not a directory" "$COMPARE" "$WORK/none"
mkdir "$WORK/empty"
expect_error "a directory holding no runs" "not an rbm run directory .* and holds none" "$COMPARE" "$WORK/empty"
expect_error "--plot into a missing directory" "cannot write --plot '$WORK/no/such.png'" \
  "$COMPARE" "$sweep" --plot "$WORK/no/such.png"
echo "ok: compare_runs.py"
