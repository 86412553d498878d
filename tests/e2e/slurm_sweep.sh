# jobs/rbm_sweep.sbatch on a real Slurm cluster on this machine (tools/slurm_local.sh),
# on CPUs (--gres=none, and `--device cpu` among the script's arguments overriding its own
# --device cuda): an array of four tasks over a sweep file of three flag lines between a
# comment and a blank line; each task trains its line in runs/rbm-sweep-ARRAYID/TASK, its
# line's --lr and --hidden winning over the same flags given to every task (RBM_ARGS, the
# script's arguments); the task with no line fails saying so, and tools/compare_runs.py
# reads the sweep as one table. About 20 s.
source "$(dirname "$0")/lib/common.sh"
need_mnist
source "$(dirname "$0")/lib/slurm.sh"

cd "$WORK"
cat > sweep.txt <<'TXT'
# lr and hidden units
--lr 0.1 --hidden 16

--lr 0.02 --hidden 16
--lr 0.1 --hidden 24
TXT
common=(--data "$MNIST" --limit 600 --k 1 --epochs 2 --monitor-examples 100 --filters false --progress-every 0
        --device cpu --lr 0.5)
array=$(RBM_HOME=$SRC RBM=$RBM RBM_CONFIG= RBM_ARGS="--hidden 8" RBM_SWEEP=$WORK/sweep.txt \
  sbatch --parsable --chdir="$WORK" --array=0-3 --cpus-per-task=1 --gres=none "$SRC/jobs/rbm_sweep.sbatch" "${common[@]}")
echo "ok: submitted array job $array (tasks 0-3)"
ended() {  # every task of the array in a final state (whichever: the checks below say which)
  local t s
  for t in 0 1 2 3; do
    s=$(state "${array}_$t" 2>/dev/null) || return 1
    case "$s" in PENDING|CONFIGURING|RUNNING|COMPLETING|REQUEUED|RESIZING|SUSPENDED|"") return 1 ;; esac
  done
}
wait_for 180 "the array's four tasks to end" ended
for t in 0 1 2; do
  [ "$(state "${array}_$t")" = COMPLETED ] || { cat "rbm-sweep-${array}_$t.out"; fail "task $t: $(state "${array}_$t")"; }
done
[ "$(state "${array}_3")" = FAILED ] || fail "task 3, with no line in the sweep file: $(state "${array}_3")"
grep -q "rbm job: no line for array task 3 in $WORK/sweep.txt" "rbm-sweep-${array}_3.out" \
  || { cat "rbm-sweep-${array}_3.out"; fail "task 3's log does not say why it failed"; }
for flag in --device --lr --hidden; do
  grep -q "rbm job: $flag given more than once: the last one is used" "rbm-sweep-${array}_0.out" \
    || { cat "rbm-sweep-${array}_0.out"; fail "task 0's log does not say that $flag was overridden"; }
done
echo "ok: tasks 0-2 completed, task 3 failed for want of a line"

"$SRC/tools/compare_runs.py" "runs/rbm-sweep-$array" --csv --sort name > sweep.csv 2> compare.err \
  || { cat compare.err; fail "compare_runs.py on the sweep"; }
$PY - sweep.csv <<'PYX' || fail "the sweep's table"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = [(r["run"], r["lr"], r["hidden"], r["status"], r["epochs_done"]) for r in rows]
assert got == [("0", "0.1", "16", "finished", "2.0"), ("1", "0.02", "16", "finished", "2.0"),
               ("2", "0.1", "24", "finished", "2.0")], got
assert all(float(r["pseudo_likelihood"]) < 0 for r in rows), rows
print("ok: compare_runs.py reads the sweep:", got)
PYX
echo "PASS"
