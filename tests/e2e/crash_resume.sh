# Crash safety: training is killed with SIGKILL at random moments (during checkpoint
# and metrics writes too), many times over, and resumed each time. After every kill
# every checkpoint under its final name is readable, resuming always works, and the
# final parameters and chains equal an uninterrupted run's bit for bit.
#   RBM_CRASH_KILLS (default 30): kills to survive; RBM_CRASH_SEED: the random delays.
source "$(dirname "$0")/lib/common.sh"
need_mnist
kills_wanted=${RBM_CRASH_KILLS:-30}
seed=${RBM_CRASH_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
echo "kills wanted: $kills_wanted, delays from RANDOM seed $seed (RBM_CRASH_SEED=$seed reproduces them)"
# Small and quick, with a checkpoint every 2 steps and a metrics row every 3, so that a
# random moment is often inside an HDF5 write; keep 2 so pruning is killed too.
cfg=(--data "$MNIST" --test-data "$MNIST_TEST" --limit 400 --hidden 16 --batch-size 10 --k 2
     --epochs 14 --checkpoint-every 2 --keep-checkpoints 2 --monitor-every 3 --monitor-examples 50 --seed 11
     --sample-every 1)

"$RBM" train "${cfg[@]}" --out "$WORK/straight" > "$WORK/straight.log" 2>&1 \
  || { cat "$WORK/straight.log"; fail "uninterrupted run"; }

# After a kill: no checkpoint under its final name is unreadable (a torn one would be).
check_run() {
  local f
  for f in "$WORK"/crash/checkpoints/step-*.h5; do
    [ -e "$f" ] || continue
    "$RBM" info "$f" > "$WORK/info.log" 2>&1 || { cat "$WORK/info.log"; fail "after kill $kills: $f is not readable"; }
  done
  # metrics.h5 is written in place (SWMR); a killed writer may leave it marked open,
  # which the next run repairs. Counted, not required (the resume after it is).
  if [ -e "$WORK/crash/metrics.h5" ] && ! "$RBM" info "$WORK/crash/metrics.h5" > /dev/null 2>&1; then
    metrics_marked=$((metrics_marked + 1))
  fi
}

newest_step() {  # step of the newest complete checkpoint of the killed run, 0 without one
  local f
  f=$(ls "$WORK/crash/checkpoints" 2> /dev/null | grep -E '^step-[0-9]+\.h5$' | sort | tail -n1)
  [ -n "$f" ] && echo $((10#${f//[^0-9]/})) || echo 0
}
total_steps=$(newest_checkpoint "$WORK/straight")
total_steps=$(basename "$total_steps" .h5)
total_steps=$((10#${total_steps#step-}))
kills=0 torn_tmp=0 runs=0 finished=0 metrics_marked=0
start=$SECONDS
while [ $finished = 0 ]; do
  runs=$((runs + 1))
  [ $runs -le $((kills_wanted * 4)) ] || fail "$runs runs without finishing: no progress between kills?"
  # --resume starts a new run while there is no checkpoint, so every attempt is the same command.
  "$RBM" train "${cfg[@]}" --resume --out "$WORK/crash" > "$WORK/run.log" 2>&1 &
  pid=$!
  if [ $kills -lt "$kills_wanted" ]; then
    # Kill once the run has gone a random 0..S/K steps past where it started (S steps
    # in all, K kills wanted), plus 0-9 ms: a moment chosen by progress, not by wall
    # time, so a loaded machine changes little. 0 steps is a kill during start-up.
    target=$(( $(newest_step) + RANDOM % (total_steps / kills_wanted + 1) ))
    while kill -0 $pid 2> /dev/null && [ "$(newest_step)" -lt $target ]; do sleep 0.005; done
    sleep "0.00$((RANDOM % 10))"
    kill -KILL $pid 2> /dev/null || true
  fi
  rc=0
  { wait $pid; } 2> /dev/null || rc=$?   # (no "Killed" line from the shell)
  case $rc in
    0) finished=1 ;;
    137) kills=$((kills + 1))
         if compgen -G "$WORK/crash/checkpoints/*.tmp" > /dev/null; then torn_tmp=$((torn_tmp + 1)); fi
         check_run ;;
    *) cat "$WORK/run.log"; fail "attempt $runs (after $kills kills) exited $rc: resuming failed" ;;
  esac
done
grep -q "resumed from step" "$WORK/run.log" || [ $kills = 0 ] || fail "the last attempt did not resume"
echo "ok: $kills kills survived in $runs attempts ($((SECONDS - start)) s); $torn_tmp of them left a" \
     "half-written checkpoint .tmp behind (killed inside a checkpoint write; the next run removed it); after $metrics_marked," \
     "rbm info could not open metrics.h5 until the next run repaired it"
[ $kills -ge $((kills_wanted * 2 / 3)) ] || fail "only $kills kills landed"
# Each run removes what a killed one left under a temporary name, once it holds the lock.
if compgen -G "$WORK/crash/checkpoints/*.tmp" > /dev/null || compgen -G "$WORK/crash/*.tmp" > /dev/null; then
  ls -la "$WORK/crash" "$WORK/crash/checkpoints"; fail "a .tmp file outlived the run that finished"
fi

a=$(newest_checkpoint "$WORK/straight") b=$(newest_checkpoint "$WORK/crash")
[ "$(basename "$a")" = "$(basename "$b")" ] || fail "final checkpoints differ: $a vs $b"
same_datasets "$a" "$b" /model/W /model/vbias /model/hbias /optimizer/velocity_W /optimizer/velocity_hbias \
  /optimizer/velocity_vbias /chains/hidden /chains/rank /state/epoch_metric_sums
echo "ok: final parameters, velocity, chains and metric sums equal the uninterrupted run's bit for bit"
# The metrics table has each step once: rows written after the checkpoint a run resumed
# from were dropped, so the killed run's curve equals the uninterrupted one's.
$PY - "$WORK/straight/metrics.h5" "$WORK/crash/metrics.h5" <<'PYEOF' || fail "metrics tables differ"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["metrics"][:] for p in sys.argv[1:])
assert len(a) == len(b) and (a["step"] == b["step"]).all(), (a["step"], b["step"])
for field in ("pseudo_likelihood", "reconstruction_xent", "free_energy_train", "free_energy_valid"):
    assert np.array_equal(a[field], b[field]), field
PYEOF
echo "ok: the metrics rows equal the uninterrupted run's"
# Every epoch's filters and samples, whatever moment a kill took.
for e in $(seq -f %04g 1 14); do
  [ -f "$WORK/crash/filters/epoch-$e.png" ] && [ -f "$WORK/crash/samples/epoch-$e.h5" ] \
    || { ls "$WORK/crash/filters" "$WORK/crash/samples"; fail "epoch $e's filters or samples are missing"; }
done
same_datasets "$WORK/straight/samples/epoch-0014.h5" "$WORK/crash/samples/epoch-0014.h5" /samples /mean_field
echo "ok: every epoch's filters and samples are there, the last samples equal the uninterrupted run's"

echo "== an epoch's samples are written before its checkpoint"
# A folder where epoch 1's samples go makes writing them fail: the run must end without
# epoch 1's checkpoint, so that its resume writes them (the other order skipped them).
order=(--data "$MNIST" --limit 200 --hidden 8 --batch-size 10 --k 1 --epochs 2 --sample-every 1 --seed 3)
mkdir -p "$WORK/order/samples/epoch-0001.h5"
if "$RBM" train "${order[@]}" --out "$WORK/order" > "$WORK/order.log" 2>&1; then
  fail "samples written over a folder"
fi
[ ! -e "$WORK/order/checkpoints/step-0000000020.h5" ] || fail "epoch 1's checkpoint was written before its samples"
rmdir "$WORK/order/samples/epoch-0001.h5"
"$RBM" train "${order[@]}" --resume --out "$WORK/order" > "$WORK/order.log" 2>&1 \
  || { cat "$WORK/order.log"; fail "resume after the failed samples"; }
[ -f "$WORK/order/samples/epoch-0001.h5" ] && [ -f "$WORK/order/samples/epoch-0002.h5" ] \
  || { ls "$WORK/order/samples"; fail "a resumed run skipped an epoch's samples"; }
echo "PASS: $kills kills survived"
