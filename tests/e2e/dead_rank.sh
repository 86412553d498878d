# A dead rank: one rank of a 2-rank job killed with SIGKILL mid-run (rank 1, then rank 0,
# the one that writes) ends the whole job with a non-zero exit within 30 seconds; no
# rank is left running or hanging in a collective. The run dir stays resumable.
# (NCCL: the same test applies to the CUDA engine's reducer; this machine has no GPU.)
source "$(dirname "$0")/lib/common.sh"
need_mnist
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
# Long enough never to end by itself during the test (2000 epochs of 20 steps per rank).
cfg=(--data "$MNIST" --limit 400 --hidden 16 --batch-size 10 --k 2 --epochs 2000 --checkpoint-every 7
     --keep-checkpoints 2 --seed 4 --filters false)

rank_pid() {  # rank_pid MPIRUN_PID RANK: the pid of that rank (from its OMPI_COMM_WORLD_RANK)
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}

alive() {  # alive PID: the process exists and is not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

kill_one() {  # kill_one RANK: start a job, kill that rank mid-run, time the job's end
  local victim=$1 dir=$WORK/dead$1 i
  "${MPIRUN[@]}" "$RBM" train "${cfg[@]}" --out "$dir" > "$dir.log" 2>&1 &
  local job=$!
  # mid-run: once two checkpoints exist, and a random 0-0.5 s later
  for i in $(seq 600); do
    [ "$(ls "$dir/checkpoints" 2> /dev/null | grep -c '\.h5$')" -ge 2 ] && break
    kill -0 $job 2> /dev/null || { cat "$dir.log"; fail "the job ended before the kill"; }
    sleep 0.05
  done
  sleep "0.$((RANDOM % 5))"
  local ranks pid
  ranks=$(pgrep -P $job | tr '\n' ' ')
  pid=$(rank_pid $job "$victim")
  [ -n "$pid" ] || { cat "$dir.log"; fail "rank $victim not found among mpirun's children ($ranks)"; }
  local t0=${EPOCHREALTIME/./}
  kill -KILL "$pid"
  local rc=0 waited=0
  while kill -0 $job 2> /dev/null; do
    [ $waited -lt 300 ] || { kill -KILL $job $ranks 2> /dev/null; fail "rank $victim killed: the job still runs after 30 s"; }
    sleep 0.1
    waited=$((waited + 1))
  done
  { wait $job; } 2> /dev/null || rc=$?
  local ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
  [ $rc -ne 0 ] || { cat "$dir.log"; fail "rank $victim killed: mpirun exited 0"; }
  # every rank gone too (a zombie waiting for a reaper is gone), within the same 30 s
  for pid in $ranks; do
    while alive "$pid"; do
      if [ $waited -ge 300 ]; then kill -KILL "$pid"; fail "rank $victim killed: rank process $pid still runs"; fi
      sleep 0.1
      waited=$((waited + 1))
    done
  done
  echo "ok: rank $victim of 2 killed mid-run: the job ended with exit $rc in $ms ms, no rank left"
  grep -m1 "noticed that process rank" "$dir.log" || true
  # whatever the dead rank was doing, the newest checkpoint is complete and the run resumes
  "$RBM" info "$(newest_checkpoint "$dir")" > /dev/null || fail "newest checkpoint unreadable after rank $victim died"
  local epoch
  epoch=$($PY -c "import h5py,sys; print(int(h5py.File(sys.argv[1],'r')['state'].attrs['epoch']))" \
          "$(newest_checkpoint "$dir")")
  timeout 60 "${MPIRUN[@]}" "$RBM" train --resume --out "$dir" --epochs $((epoch + 1)) > "$dir.resume.log" 2>&1 \
    || { cat "$dir.resume.log"; fail "no resume after rank $victim died"; }
  grep -q "resumed from step" "$dir.resume.log" || fail "did not resume after rank $victim died"
  echo "ok: resumed on 2 ranks and finished epoch $((epoch + 1))"
}

kill_one 1
kill_one 0
echo "PASS"
