# mpi.thread_abort: rank 0's second thread ends a 2-rank job whose main threads wait in
# MPI (tests/mpi/thread_abort.cpp): MPI grants MPI_THREAD_FUNNELED (rbm's helper threads
# are legal), and the job ends within 30 s with that thread's code, no rank left running.
# Usage: bash tests/mpi/thread_abort.sh PATH/TO/rbm_mpi_thread_abort
set -euo pipefail
PROBE=$1
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
timeout -k 5 30 mpirun --oversubscribe --bind-to none -np 2 "$PROBE" > "$out" 2>&1 || rc=$?
cat "$out"
[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "the job still ran after 30 s: the exit of a second thread did not end it"
[ $rc -eq 3 ] || fail "mpirun exited $rc, not the thread's code 3"
[ "$(grep -c 'thread level funneled or more' "$out")" -eq 2 ] || fail "MPI_THREAD_FUNNELED was not granted to both ranks"
! grep -q "left a collective" "$out" || fail "a rank left a collective that cannot complete"
echo "ok: a second thread's exit ended the 2-rank job with exit $rc"
