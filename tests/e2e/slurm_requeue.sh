# jobs/rbm_cpu.sbatch on a real Slurm cluster on this machine (tools/slurm_local.sh:
# munged, slurmctld and slurmd as root). The job is preempted mid-run the way
# --signal=B:USR1@N does it (SIGUSR1 to the batch shell, here from `scancel --batch`):
# the script forwards it, rbm checkpoints and exits 75, the script requeues the job, the
# rerun (restart 1) resumes in the same run directory and finishes with the same model,
# optimizer state and chains as an uninterrupted `mpirun -np 2` run, and one metrics row
# per epoch; a job cancelled with scancel is not requeued and resumes when resubmitted; a
# job whose rank is killed fails without a requeue. About 60 s, most of it training and
# the 11 s a requeued job waits.
source "$(dirname "$0")/lib/common.sh"
need_mnist
source "$(dirname "$0")/lib/slurm.sh"

epochs=40
cfg=(--data "$MNIST" --limit 2000 --hidden 32 --k 5 --batch-size 20 --monitor-examples 100
     --seed 7 --epochs $epochs --filters false --progress-every 0)

cd "$WORK"
jid=$(RBM_HOME=$SRC RBM=$RBM RBM_CONFIG= sbatch --parsable --chdir="$WORK" "$SRC/jobs/rbm_cpu.sbatch" "${cfg[@]}")
log=$WORK/rbm-cpu-$jid.out
run=$WORK/runs/rbm-cpu-$jid
echo "ok: submitted job $jid"

# Preempt once training is under way (its signal handlers are installed by then).
wait_for 120 "epoch 3 of job $jid" grep -qs "epoch    3/$epochs" "$log"
scancel --batch --signal=USR1 "$jid"
echo "ok: sent SIGUSR1 to the batch shell of job $jid"
requeued() { [ "$(field "$jid" Restarts)" = 1 ]; }
wait_for 60 "job $jid to requeue" requeued
grep -q "stop requested" "$log" || fail "rbm did not report the stop"
grep -q "requeueing job $jid" "$log" || fail "the job script did not requeue"
stopped_at=$(grep -o 'checkpoint at step [0-9]*' "$log" | grep -o '[0-9]*$')
echo "ok: job $jid checkpointed at step $stopped_at and requeued itself"

# The uninterrupted reference, while the requeued job waits its 11 s.
mpirun -np 2 "$RBM" train "${cfg[@]}" --out "$WORK/reference" > "$WORK/reference.log" 2>&1 \
  || { cat "$WORK/reference.log"; fail "reference run failed"; }

completed() { [ "$(state "$jid")" = COMPLETED ]; }
wait_for 300 "job $jid to complete" completed
[ "$(field "$jid" ExitCode)" = 0:0 ] || fail "job $jid exit code $(field "$jid" ExitCode)"
[ "$(field "$jid" Restarts)" = 1 ] || fail "job $jid restarted $(field "$jid" Restarts) times, expected 1"
grep -q "Slurm job $jid, restart 1" "$log" || fail "the rerun did not log its restart"
grep -q "resumed from step $stopped_at" "$log" || fail "the rerun did not resume from step $stopped_at"
echo "ok: job $jid ran twice ($(grep -c '^rbm job: .*restart' "$log") starts in its log), resumed from step $stopped_at, completed"

final=$(newest_checkpoint "$run")
reference=$(newest_checkpoint "$WORK/reference")
[ "$(basename "$final")" = "$(basename "$reference")" ] || fail "final checkpoints differ: $final vs $reference"
same_datasets "$reference" "$final" /model /optimizer /chains
echo "ok: $(basename "$final") of the preempted job equals the uninterrupted run's (/model, /optimizer, /chains)"

# The metrics table: one row per epoch, no step twice, although the job ran twice.
$PY - "$run/metrics.h5" "$epochs" <<'EOF' || fail "metrics of the requeued run"
import sys, h5py, numpy as np
m = h5py.File(sys.argv[1], "r")["metrics"][:]
steps = m["step"]
assert len(m) == int(sys.argv[2]), f"{len(m)} rows"
assert np.all(np.diff(steps) > 0), f"steps not increasing: {steps}"
print(f"ok: metrics.h5 has {len(m)} rows, steps {steps[0]}..{steps[-1]}")
EOF

# `scancel JOB` stops a job for good: the ranks checkpoint (Slurm's SIGTERM reaches them),
# and the script, seeing slurmctld end the job, does not requeue it; resubmitted with its
# run directory, it continues from that checkpoint.
jid2=$(RBM_HOME=$SRC RBM=$RBM RBM_CONFIG= sbatch --parsable --chdir="$WORK" "$SRC/jobs/rbm_cpu.sbatch" "${cfg[@]}")
log2=$WORK/rbm-cpu-$jid2.out
wait_for 120 "epoch 2 of job $jid2" grep -qs "epoch    2/$epochs" "$log2"
scancel "$jid2"
ended() { [ "$(state "$jid2")" = CANCELLED ]; }
wait_for 60 "job $jid2 to end cancelled" ended
grep -q "rbm job: cancelled (scancel): stopped (exit 75), its newest checkpoint in runs/rbm-cpu-$jid2; not requeueing" "$log2" \
  || { cat "$log2"; fail "a cancelled job was not left cancelled"; }
[ "$(field "$jid2" Restarts)" = 0 ] || fail "the cancelled job $jid2 was requeued"
cancelled_at=$(grep -o 'checkpoint at step [0-9]*' "$log2" | grep -o '[0-9]*$')
echo "ok: scancel $jid2 checkpointed at step $cancelled_at and left the job cancelled"
# The node must be done with the cancelled job before another step launches on it.
idle() { [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; }
wait_for 60 "the node to be idle" idle
jid3=$(RBM_HOME=$SRC RBM=$RBM RBM_CONFIG= RBM_RUN_DIR="runs/rbm-cpu-$jid2" sbatch --parsable --chdir="$WORK" \
  "$SRC/jobs/rbm_cpu.sbatch" "${cfg[@]}")
wait_for 120 "the resubmitted job $jid3 to resume" grep -qs "^resumed from step" "$WORK/rbm-cpu-$jid3.out"
grep -q "^resumed from step $cancelled_at " "$WORK/rbm-cpu-$jid3.out" \
  || { cat "$WORK/rbm-cpu-$jid3.out"; fail "the resubmission did not continue the cancelled run"; }
echo "ok: resubmitted with RBM_RUN_DIR, job $jid3 resumed from step $cancelled_at"

# A rank killed (SIGKILL: the OOM killer, a node's fault): Slurm ends the step's other
# rank at once (srun --mpi=pmix), and the script, seeing neither a stop nor success, does
# not requeue: the job fails, saying how to continue from the newest checkpoint.
rank_of_job() {  # rank_of_job JOB RANK: the pid of that rank of the job's step, on this cluster
  local p env
  for p in $(pgrep -x rbm); do
    env=$(tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null) || continue
    # another test's cluster numbers its jobs from 1 too
    grep -qx "SLURM_CONF=$SLURM_CONF" <<<"$env" && grep -qx "SLURM_JOB_ID=$1" <<<"$env" \
      && grep -qx "SLURM_PROCID=$2" <<<"$env" && { echo "$p"; return; }
  done
}
victim=$(rank_of_job "$jid3" 1)
[ -n "$victim" ] || fail "rank 1 of job $jid3 not found"
kill -KILL "$victim"
failed() { [ "$(state "$jid3")" = FAILED ]; }
wait_for 60 "job $jid3 to fail after its rank 1 was killed" failed
log3=$WORK/rbm-cpu-$jid3.out
grep -q "^rbm job: the step (srun ... rbm train) exited with 137" "$log3" || { cat "$log3"; fail "the step's end not reported"; }
grep -qF "rbm job: to continue from its newest checkpoint, resubmit with RBM_RUN_DIR=runs/rbm-cpu-$jid2:\
 RBM_RUN_DIR=runs/rbm-cpu-$jid2 sbatch $SRC/jobs/rbm_cpu.sbatch (and the first submission's" "$log3" \
  || { cat "$log3"; fail "no resubmission hint (with its sbatch command) after a killed rank"; }
[ "$(field "$jid3" Restarts)" = 0 ] || fail "job $jid3 was requeued after a rank was killed"
[ -z "$(rank_of_job "$jid3" 0)" ] || fail "rank 0 of job $jid3 still runs after rank 1 was killed"
echo "ok: rank 1 of job $jid3 killed: the job failed (not requeued), no rank left, the log says how to continue"
echo "PASS"
