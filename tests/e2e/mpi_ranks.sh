# The real binary under mpirun with 1 to 4 ranks on this machine: replicas stay
# bitwise equal, resuming on the same rank count is exact, resuming on another
# re-slices the chains, and one failing rank ends the whole job quickly.
source "$(dirname "$0")/lib/common.sh"
need_mnist
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
MPIRUN=(mpirun --oversubscribe --bind-to none)
small=(--data "$MNIST" --test-data "$MNIST_TEST" --limit 480 --hidden 16 --batch-size 10 --k 2
       --monitor-examples 100 --seed 3 --progress-every 0)

for np in 1 2 3 4; do
  "${MPIRUN[@]}" -np $np "$RBM" train "${small[@]}" --epochs 2 --checkpoint-every 5 --out "$WORK/np$np" \
    > "$WORK/np$np.log" 2>&1 || { cat "$WORK/np$np.log"; fail "$np ranks"; }
  grep -q "replicas bitwise identical on $np rank(s)" "$WORK/np$np.log" || fail "$np ranks: no replica check"
  grep -q "global batch $((np * 10))" "$WORK/np$np.log" || fail "$np ranks: global batch not reported"
  [ "$(grep -c '^epoch' "$WORK/np$np.log")" = 2 ] || fail "$np ranks: metrics printed more than once per epoch"
  # One rank sums nothing; several sum their gradients with MPI (the CPU engine's buffers).
  want=$([ $np = 1 ] && echo "allreduce none (one rank)" || echo "allreduce MPI_Allreduce (host buffers)")
  grep -qF "$want" "$WORK/np$np.log" || { head -n 3 "$WORK/np$np.log"; fail "$np ranks: expected '$want'"; }
  echo "ok: $np rank(s), replicas identical"
done

echo "== 2 ranks: 1 epoch + resume to 2 epochs equals 2 epochs straight"
"${MPIRUN[@]}" -np 2 "$RBM" train "${small[@]}" --epochs 1 --checkpoint-every 5 --out "$WORK/split" > /dev/null 2>&1
"${MPIRUN[@]}" -np 2 "$RBM" train --resume --out "$WORK/split" --epochs 2 > "$WORK/split.log" 2>&1
grep -q "resumed from step" "$WORK/split.log" || fail "no resume"
same_datasets "$(newest_checkpoint "$WORK/np2")" "$(newest_checkpoint "$WORK/split")" \
  /model/W /model/vbias /model/hbias /chains/hidden /chains/rank /state/epoch_metric_sums
# The metrics too, to the last bit: checkpoints keep every rank's own sums, so neither
# writing them (np2: every 5 steps) nor resuming from one, mid-epoch (mid35: step 35 of
# 48, its windows' sums not zero), changes the order the ranks' sums are added in
# (folding them into rank 0 at each checkpoint did, by ~1e-14).
"${MPIRUN[@]}" -np 2 "$RBM" train "${small[@]}" --epochs 2 --out "$WORK/np2plain" > /dev/null 2>&1 \
  || fail "2 ranks without mid-epoch checkpoints"
"${MPIRUN[@]}" -np 2 "$RBM" train "${small[@]}" --epochs 2 --checkpoint-every 5 --keep-checkpoints 0 \
  --out "$WORK/mid" > /dev/null 2>&1 || fail "2 ranks keeping every checkpoint"
state=(/model/W /chains/hidden)
resume_from "$WORK/mid" 35 "$WORK/mid35" "${MPIRUN[@]}" -np 2
$PY - "$WORK/np2plain/metrics.h5" "$WORK/np2/metrics.h5" "$WORK/split/metrics.h5" "$WORK/mid35/metrics.h5" \
  <<'PYEOF' || fail "metrics differ"
import sys, h5py, numpy as np
plain, *others = (h5py.File(p, "r")["metrics"][:] for p in sys.argv[1:])
for name, m in zip(sys.argv[2:], others):
    assert len(m) == len(plain) and (m["step"] == plain["step"]).all(), name
    for field in ("pseudo_likelihood", "reconstruction_xent", "free_energy_train", "free_energy_valid"):
        assert np.array_equal(m[field], plain[field]), (name, field, m[field] - plain[field])
PYEOF
echo "ok: metrics bitwise equal with and without checkpoints, and after a resume"

echo "== mid-epoch resumes on other rank counts keep the epoch's fraction and its sums"
# Step 10 of 24 on 2 ranks is step 20 of 48 on one: the epoch ends 28 steps later, at 38.
keep_until() { for f in "$1"/checkpoints/step-*.h5; do [ $((10#$(basename "$f" .h5 | sed 's/step-//'))) -le "$2" ] || rm "$f"; done; }
cp -r "$WORK/mid" "$WORK/shrink" && keep_until "$WORK/shrink" 10
"${MPIRUN[@]}" -np 1 "$RBM" train --resume --out "$WORK/shrink" --epochs 1 > "$WORK/shrink.log" 2>&1 \
  || { cat "$WORK/shrink.log"; fail "resume on 1 rank"; }
grep -qF "resumed from step 10 (epoch 0, step 20 of 48)" "$WORK/shrink.log" || fail "1 rank: $(grep resumed "$WORK/shrink.log")"
$PY -c "import h5py, sys; m = h5py.File(sys.argv[1], 'r')['metrics'][:]; assert m['step'][-1] == 38, m['step']" \
  "$WORK/shrink/metrics.h5" || fail "the resumed epoch did not end at step 38"
# On 4 ranks the epoch's sums so far (every rank's at step 10) are counted once: one more
# step adds 4 ranks x 10 examples to them.
cp -r "$WORK/mid" "$WORK/grow1" && keep_until "$WORK/grow1" 10
"${MPIRUN[@]}" -np 4 "$RBM" train --resume --out "$WORK/grow1" --epochs 1 --checkpoint-every 1 > "$WORK/grow1.log" 2>&1 \
  || { cat "$WORK/grow1.log"; fail "resume on 4 ranks"; }
$PY - "$WORK/mid/checkpoints/step-0000000010.h5" "$WORK/grow1/checkpoints/step-0000000011.h5" <<'PYEOF' \
  || fail "the epoch's example count after a resume on 4 ranks"
import sys, h5py
before, after = (h5py.File(p, "r")["state/epoch_metric_sums"][:] for p in sys.argv[1:])
assert len(before) == 12 and len(after) == 24, (len(before), len(after))
assert before[2::6].sum() == 200 and after[2::6].sum() == 240, (before[2::6], after[2::6])
PYEOF

echo "== a 2-rank checkpoint resumed on 4 ranks"
cp -r "$WORK/split" "$WORK/grow"
"${MPIRUN[@]}" -np 4 "$RBM" train --resume --out "$WORK/grow" --epochs 3 > "$WORK/grow.log" 2>&1 \
  || { cat "$WORK/grow.log"; fail "resume on 4 ranks"; }
grep -qF "resuming a run of 2 rank(s) on 4: persistent chains re-sliced (20 stored, 40 needed; the 20 more start at h = 0)" "$WORK/grow.log" || fail "no re-slice notice"
grep -q "replicas bitwise identical on 4 rank(s)" "$WORK/grow.log" || fail "grown run"
$PY -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['chains/hidden'].shape[0]==40, f['chains/hidden'].shape" \
  "$(newest_checkpoint "$WORK/grow")" || fail "4 x 10 chains expected"

echo "== --lr-final's schedule across a resume on another rank count"
# 4 epochs on 2 ranks; the first 2 of them on 1 rank, then resumed on 2: the later epochs'
# learning rates are the straight run's (the schedule is the fraction of the epochs done).
sched=("${small[@]}" --lr-final 0 --epochs 4)
"${MPIRUN[@]}" -np 2 "$RBM" train "${sched[@]}" --out "$WORK/sched2" > /dev/null 2>&1 || fail "lr-final run"
"$RBM" train "${sched[@]}" --keep-checkpoints 0 --out "$WORK/sched1" > /dev/null 2>&1 || fail "lr-final on 1 rank"
find "$WORK/sched1/checkpoints" -name 'step-*.h5' ! -name step-0000000096.h5 -delete   # 48 steps per epoch
"${MPIRUN[@]}" -np 2 "$RBM" train --resume --out "$WORK/sched1" > "$WORK/sched1.log" 2>&1 \
  || { cat "$WORK/sched1.log"; fail "lr-final resumed on 2 ranks"; }
$PY - "$WORK/sched2/metrics.h5" "$WORK/sched1/metrics.h5" <<'PYEOF' || fail "learning rates differ"
import sys, h5py
def by_epoch(path):
    m = h5py.File(path, "r")["metrics"][:]
    return {round(r["epoch"]): r["learning_rate"] for r in m if abs(r["epoch"] - round(r["epoch"])) < 1e-9}
straight, resumed = by_epoch(sys.argv[1]), by_epoch(sys.argv[2])
print("straight", straight, "resumed", resumed)
for e in (3, 4):
    assert abs(straight[e] - resumed[e]) < 1e-7, (e, straight[e], resumed[e])
assert resumed[4] < resumed[3] < resumed[2], resumed
PYEOF

echo "== a file that only rank 1 finds bad ends the job, quickly"
$PY - "$WORK/bad.h5" <<'PYEOF'
import sys, h5py, numpy as np
x = np.random.default_rng(0).random((40, 16)).astype(np.float32)
x[33, 5] = np.nan          # rank 1 of 2 reads rows 20..39
h5py.File(sys.argv[1], "w")["x"] = x
PYEOF
start=$(date +%s)
rc=0
timeout 60 "${MPIRUN[@]}" -np 2 "$RBM" train --data "$WORK/bad.h5:/x" --hidden 4 --batch-size 5 --out "$WORK/bad" \
  > "$WORK/bad.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "expected a prompt non-zero exit, got $rc"
grep -q "rank 1.*row 33.*NaN\|rank 1.*NaN.*row 33" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "message should name rank 1, the row and NaN"; }
echo "ok: failed in $(( $(date +%s) - start )) s with exit $rc"

echo "== rbm sample under mpirun -np 2 is refused (two samplers would share one output)"
rc=0
"${MPIRUN[@]}" -np 2 "$RBM" sample --checkpoint "$(newest_checkpoint "$WORK/np1")" --out "$WORK/ms.h5" \
  > "$WORK/ms.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "rbm sample runs as one process" "$WORK/ms.log" || { cat "$WORK/ms.log"; fail "sample under mpirun ($rc)"; }
[ ! -e "$WORK/ms.h5" ] || fail "sample under mpirun wrote its output"

echo "== SLURM_NTASKS that disagrees with the world size"
rc=0
SLURM_NTASKS=3 "${MPIRUN[@]}" -np 2 -x SLURM_NTASKS "$RBM" train "${small[@]}" --out "$WORK/slurm" > "$WORK/slurm.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "misconfigured launch: SLURM_NTASKS=3 but MPI sees a world of 2 rank(s): inside a Slurm allocation start one rank per task, .* (or -np 3)" "$WORK/slurm.log" \
  || { cat "$WORK/slurm.log"; fail "launch check ($rc)"; }
echo "PASS"
