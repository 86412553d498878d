# Sourced by run_gpu_checks.sh and run_gpu_bench.sh: how long the next step of a GPU run
# may take, so that the whole run ends before the device call that runs it is cut off
# (RBM_GPU_DEADLINE: the epoch second by which everything must be done).
#
# step_limit [MAX]: prints min(MAX (default 150), seconds left - 10); fails, printing
# nothing, when fewer than 20 seconds are left.
step_limit() {
  local max=${1:-150} left
  left=$(( ${RBM_GPU_DEADLINE:-$(( $(date +%s) + 3600 ))} - $(date +%s) - 10 ))
  [ "$left" -ge 10 ] || return 1
  echo $(( left < max ? left : max ))
}
