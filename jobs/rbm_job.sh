# The part every jobs/*.sbatch script shares; sourced, not run. It picks a run directory
# that stays the same across requeues, launches `rbm train --resume` (so a requeued job
# continues from its newest checkpoint), forwards Slurm's warning signal to the ranks and,
# when rbm answers that it checkpointed and stopped (exit 75), requeues the job, unless the
# job is being cancelled (`scancel JOB`): then it stops for good, its checkpoint kept.
#
# Environment (all optional):
#   RBM_HOME      the repository (default: the directory sbatch was run from)
#   RBM           the binary (default $RBM_HOME/build/rbm)
#   RBM_CONFIG    INI file for --config (default configs/default.ini; empty: none). Relative
#                 paths (this, the data paths in it, RBM_RUNS) are the submit directory's.
#   RBM_ARGS      more `rbm train` flags, split on spaces (the script's own arguments too).
#                 A flag given more than once (RBM_CONFIG's --config, RBM_DEVICE's --device,
#                 RBM_ARGS, the script's arguments, a sweep line: each wins over those
#                 before it) is passed once, the last; --out and --resume are the script's.
#   RBM_RUNS      where run directories go (default runs, relative to the submit directory)
#   RBM_RUN_DIR   the run directory itself (default $RBM_RUNS/$SLURM_JOB_NAME-$SLURM_JOB_ID;
#                 an array task: $RBM_RUNS/$SLURM_JOB_NAME-$SLURM_ARRAY_JOB_ID/$SLURM_ARRAY_TASK_ID)
#   RBM_LAUNCHER  srun (default) or mpirun
#   RBM_DEVICE    --device for rbm (default: cuda in the GPU scripts, cpu in rbm_cpu.sbatch)
#   RBM_MAX_RESTARTS  stop requeueing after this many restarts (default 100)

RBM_HOME=${RBM_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
RBM=${RBM:-$RBM_HOME/build/rbm}
RBM_CONFIG=${RBM_CONFIG-configs/default.ini}
RBM_RUNS=${RBM_RUNS:-runs}
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  RBM_RUN_DIR=${RBM_RUN_DIR:-$RBM_RUNS/$SLURM_JOB_NAME-$SLURM_ARRAY_JOB_ID/$SLURM_ARRAY_TASK_ID}
else
  RBM_RUN_DIR=${RBM_RUN_DIR:-$RBM_RUNS/$SLURM_JOB_NAME-$SLURM_JOB_ID}
fi

# The job step's pid, whether a trap interrupted `wait` (see wait_step), and the stop
# signal forwarded to the ranks, if any.
rbm_step_pid=
rbm_signalled=0
rbm_stop_signal=

# Slurm's warning (--signal=B:USR1@N), a preemption's SIGTERM or `scancel --batch
# --signal=USR1` reach this shell. srun and mpirun both pass SIGUSR1 on to every rank,
# which makes rbm finish its step, checkpoint and exit 75. (SIGTERM to srun or mpirun
# would instead end the step.)
forward_stop() {
  rbm_signalled=1
  rbm_stop_signal=$1
  echo "rbm job: $1 received at $(date +%T), asking the ranks to checkpoint and stop"
  [ -n "$rbm_step_pid" ] && kill -USR1 "$rbm_step_pid" 2>/dev/null || true
}
trap 'forward_stop USR1' USR1
trap 'forward_stop TERM' TERM

# A trap runs only once `wait` returns, and `wait` returns at once when a trapped signal
# arrives, so the step runs in the background and is waited for again until it ends.
wait_step() {
  local rc
  while :; do
    rbm_signalled=0
    wait "$rbm_step_pid" && rc=0 || rc=$?
    if [ "$rbm_signalled" = 1 ] && [ "$rc" -gt 128 ]; then
      # interrupted by the trap: wait again (bash keeps the status if it already ended)
      kill -0 "$rbm_step_pid" 2>/dev/null && continue
      wait "$rbm_step_pid" && rc=0 || { local again=$?; [ $again = 127 ] || rc=$again; }
    fi
    return "$rc"
  done
}

# Slurm's [D-]HH:MM:SS (or MM:SS) as seconds; UNLIMITED and the like as a large number.
slurm_seconds() {
  local t=$1 days=0
  [[ $t =~ ^[0-9:-]+$ ]] || { echo 999999999; return; }
  [[ $t == *-* ]] && { days=${t%%-*}; t=${t#*-}; }
  local -a parts
  IFS=: read -r -a parts <<< "$t"
  local s=0 p
  for p in "${parts[@]}"; do s=$((s * 60 + 10#$p)); done
  echo $((days * 86400 + s))
}

# Whether slurmctld is ending the job before its time limit: `scancel JOB` (or a preemption
# that cancels) shows it COMPLETING (or CANCELLED) while its trap still runs, whereas
# Slurm's warning signal (--signal) and `scancel --signal` leave it RUNNING, and a job at
# its time limit has run its whole TimeLimit.
being_cancelled() {
  local job state run limit
  job=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null) || return 1
  state=$(grep -o 'JobState=[A-Z_]*' <<< "$job" | cut -d= -f2)
  run=$(grep -o 'RunTime=[^ ]*' <<< "$job" | cut -d= -f2)
  limit=$(grep -o 'TimeLimit=[^ ]*' <<< "$job" | cut -d= -f2)
  { [ "$state" = COMPLETING ] || [ "$state" = CANCELLED ]; } && [ "$(slurm_seconds "$run")" -lt "$(slurm_seconds "$limit")" ]
}

# How to continue a job that ended without a requeue: the same run directory, resubmitted
# (the script as slurmctld recorded it; an array task as that task alone, so a sweep
# script picks the same line).
resubmit_hint() {
  local script how=""
  script=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | grep -o 'Command=[^ ]*' | head -n 1 | cut -d= -f2-) || true
  if [ -n "$script" ]; then
    how=": RBM_RUN_DIR=$RBM_RUN_DIR sbatch${SLURM_ARRAY_TASK_ID:+ --array=$SLURM_ARRAY_TASK_ID} $script"
    how+=" (and the first submission's arguments and RBM_* variables)"
  fi
  echo "rbm job: to continue from its newest checkpoint, resubmit with RBM_RUN_DIR=$RBM_RUN_DIR$how" >&2
}

# last_flags_win WORD...: sets `kept_flags` to the words with every option kept only at its
# last occurrence (with its value: the next word, unless that is an option itself, or
# after =), saying which were overridden. rbm refuses an option given twice; a job's
# defaults, RBM_ARGS, the script's arguments and a sweep line may each name one.
last_flags_win() {
  local -a words=("$@")
  local -A last=()
  local i n=${#words[@]} name value
  kept_flags=()
  for ((i = 0; i < n; i++)); do
    [[ ${words[i]} == --* ]] && last[${words[i]%%=*}]=$i
  done
  for ((i = 0; i < n; i++)); do
    if [[ ${words[i]} != --* ]]; then kept_flags+=("${words[i]}"); continue; fi  # rbm names a stray word
    name=${words[i]%%=*}
    value=0
    [[ ${words[i]} != *=* ]] && ((i + 1 < n)) && [[ ${words[i + 1]} != --* ]] && value=1
    if [ "${last[$name]}" = "$i" ]; then
      kept_flags+=("${words[i]}")
      ((value)) && kept_flags+=("${words[i + 1]}")
    else
      echo "rbm job: $name given more than once: the last one is used"
    fi
    ((value)) && i=$((i + 1))
  done
}

# rbm_run [rbm train flags...]: runs the training step and exits the job.
rbm_run() {
  local args=(train --resume --out "$RBM_RUN_DIR") kept_flags word
  # shellcheck disable=SC2206  # RBM_ARGS is a space-separated list of flags on purpose
  last_flags_win ${RBM_CONFIG:+--config "$RBM_CONFIG"} ${RBM_DEVICE:+--device "$RBM_DEVICE"} ${RBM_ARGS:-} "$@"
  local config="" i
  for ((i = 0; i < ${#kept_flags[@]}; i++)); do
    word=${kept_flags[i]}
    case "$word" in
      --out|--out=*|--resume)
        echo "rbm job: $word is the job script's own: the run directory is RBM_RUN_DIR, always resumed" >&2
        exit 2 ;;
      --config) config=${kept_flags[i + 1]:-} ;;
      --config=*) config=${word#--config=} ;;
    esac
  done
  args+=("${kept_flags[@]}")
  if [ -n "$config" ] && [ ! -f "$config" ]; then
    echo "rbm job: the configuration $config (RBM_CONFIG or --config) is not a file here ($PWD); relative" \
         "paths (RBM_CONFIG, the data paths in it, RBM_RUNS) are the submit directory's: submit from the" \
         "repository root, or give absolute paths" >&2
    exit 2
  fi
  mkdir -p "$RBM_RUN_DIR"
  echo "rbm job: $SLURM_JOB_ID${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}, restart ${SLURM_RESTART_COUNT:-0}, $SLURM_NTASKS task(s) on $SLURM_JOB_NODELIST, run directory $RBM_RUN_DIR"
  case "${RBM_LAUNCHER:-srun}" in
    srun)
      # Slurm 22.05's srun does not inherit --cpus-per-task from sbatch: pass it on.
      srun --mpi=pmix ${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK} \
        "$RBM" "${args[@]}" &
      ;;
    mpirun)
      # Open MPI reads the allocation from Slurm: one rank per task, on the job's nodes.
      mpirun -np "$SLURM_NTASKS" "$RBM" "${args[@]}" &
      ;;
    *) echo "rbm job: RBM_LAUNCHER must be srun or mpirun, not '$RBM_LAUNCHER'" >&2; exit 2 ;;
  esac
  rbm_step_pid=$!
  local rc=0
  wait_step || rc=$?
  # A stop signal that came while rbm was still loading (before its handlers) ends it by
  # the signal itself (128 + 10 or 15): stopped all the same, from its last checkpoint.
  local stopped=0
  [ "$rc" = 75 ] && stopped=1
  [ -n "$rbm_stop_signal" ] && { [ "$rc" = 138 ] || [ "$rc" = 143 ]; } && stopped=1
  if [ "$stopped" = 1 ]; then
    if being_cancelled; then
      echo "rbm job: cancelled (scancel): stopped (exit $rc), its newest checkpoint in $RBM_RUN_DIR; not requeueing" >&2
      resubmit_hint
      exit "$rc"
    fi
    if [ "${SLURM_RESTART_COUNT:-0}" -ge "${RBM_MAX_RESTARTS:-100}" ]; then
      echo "rbm job: stopped (exit $rc), but already restarted $SLURM_RESTART_COUNT times: not requeueing" >&2
      resubmit_hint
      exit "$rc"
    fi
    echo "rbm job: stopped (exit $rc) with its checkpoint in $RBM_RUN_DIR; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID" && exit 0
    echo "rbm job: scontrol requeue failed" >&2
  fi
  echo "rbm job: the step (${RBM_LAUNCHER:-srun} ... rbm train) exited with $rc"
  [ "$rc" = 0 ] || resubmit_hint
  exit "$rc"
}
