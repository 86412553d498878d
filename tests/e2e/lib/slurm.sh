# A throw-away Slurm cluster for an end-to-end test (tools/slurm_local.sh), and the job
# queries the Slurm tests share. Sourced after common.sh; skips (77) where Slurm or root
# is missing.
for tool in munged slurmctld slurmd sbatch scontrol scancel mpirun h5diff; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (tools/setup.sh installs slurm-wlm, munge)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: the local Slurm cluster runs as root"; exit 77; }

CLUSTER=$WORK/slurm
cleanup() {
  bash "$SRC/tools/slurm_local.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

bash "$SRC/tools/slurm_local.sh" start "$CLUSTER"
export SLURM_CONF=$CLUSTER/slurm.conf

# state JOB: the job's JobState (PENDING, RUNNING, COMPLETED, ...)
state() { scontrol show job "$1" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
field() { scontrol show job "$1" | grep -o "$2=[^ ]*" | cut -d= -f2; }
# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds
wait_for() {
  local limit=$1 what=$2 i; shift 2
  for ((i = 0; i < limit * 5; i++)); do "$@" && return 0; sleep 0.2; done
  echo "--- job logs:"; cat "$WORK"/*.out 2>/dev/null || true
  echo "--- scontrol:"; scontrol show job 2>/dev/null || true
  fail "timed out after ${limit}s waiting for $what"
}
