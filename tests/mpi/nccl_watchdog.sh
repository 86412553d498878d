# gpu.nccl_watchdog: an allreduce that cannot finish (tests/mpi/nccl_watchdog.cpp holds its
# stream) ends the process: the watchdog names the stall after RBM_NCCL_TIMEOUT_S = 2 s,
# aborts the communicator (or its 10 s timer gives up on that) and exits 1, well before
# the probe's own 45 s wait would end it with exit 0. Skips (77) without a GPU.
# Usage: bash tests/mpi/nccl_watchdog.sh PATH/TO/rbm_gpu_nccl_watchdog
set -euo pipefail
PROBE=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
rc=0
"$PROBE" --gpu-check || rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || fail "the probe's GPU check exited $rc"
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$SECONDS
rc=0
RBM_NCCL_TIMEOUT_S=2 timeout -k 5 60 mpirun -np 1 "$PROBE" > "$out" 2>&1 || rc=$?
took=$((SECONDS - start))
cat "$out"
[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "still running after 60 s: the watchdog did not end the process"
[ $rc -eq 1 ] || fail "mpirun exited $rc, not the watchdog's 1 (0: the probe waited out its 45 s)"
grep -q "an NCCL allreduce did not finish within 2 s" "$out" || fail "the watchdog did not name the stall"
! grep -q "did not end the process" "$out" || fail "the probe outlived the watchdog"
[ $took -lt 40 ] || fail "the process took $took s to end"
echo "ok: the stalled allreduce ended the process (mpirun exit $rc) in $took s"
