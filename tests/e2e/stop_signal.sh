# SIGUSR1 / SIGTERM (Slurm's warning before a time limit or preemption) make every
# rank stop at the same step, write one checkpoint and exit 75; resuming from it ends
# bitwise equal to an uninterrupted run. A second signal during the stop tears nothing.
# --max-hours stops a run the same way.
source "$(dirname "$0")/lib/common.sh"
need_mnist
small_model=(--data "$MNIST" --limit 2000 --hidden 64 --batch-size 10 --k 5 --monitor-examples 100 --seed 5)
small=("${small_model[@]}" --epochs 12)

run_and_signal() {  # run_and_signal NAME LAUNCHER... : start, signal after a moment, expect 75
  local name=$1; shift
  "$@" "$RBM" train "${small[@]}" --out "$WORK/$name-full" > /dev/null 2>&1
  local full
  full=$(newest_checkpoint "$WORK/$name-full")
  "$@" "$RBM" train "${small[@]}" --out "$WORK/$name" > "$WORK/$name.log" 2>&1 &
  local pid=$!
  # Signal once training runs (the handlers are installed before the first step).
  for _ in $(seq 600); do grep -q '^epoch' "$WORK/$name.log" && break; sleep 0.1; done
  kill -USR1 $pid || { cat "$WORK/$name.log"; fail "$name ended before the signal"; }   # the launcher forwards it
  sleep 0.05
  pkill -TERM -f -- "^$RBM train .*--out $WORK/$name" || true   # a second signal, to the ranks, mid-stop
  local rc=0
  wait $pid || rc=$?
  [ $rc = 75 ] || { cat "$WORK/$name.log"; fail "$name: expected exit 75, got $rc"; }
  grep -q "stop requested" "$WORK/$name.log" || fail "$name: no stop message"
  "$RBM" info "$(newest_checkpoint "$WORK/$name")" > /dev/null || fail "$name: checkpoint unreadable"
  "$@" "$RBM" train --resume --out "$WORK/$name" > "$WORK/$name.resume.log" 2>&1 || fail "$name: resume failed"
  same_datasets "$full" "$(newest_checkpoint "$WORK/$name")" /model/W /model/vbias /model/hbias /chains/hidden
  echo "ok: $name stopped at $(grep -o 'checkpoint at step [0-9]*' "$WORK/$name.log"), resumed, equal"
}

run_and_signal single env

echo "== --max-hours stops the run as a signal does; the resumed run ends equal to an uninterrupted one"
# 0.0001 hours (0.36 s, counted from the process's start, data loading included): the
# first step boundary past it stops the run, on every rank at the same step. The limit is
# the process's: a plain --resume runs without it, to the end.
"$RBM" train "${small[@]}" --max-hours 0.0001 --out "$WORK/timed" > "$WORK/timed.log" 2>&1 && rc=0 || rc=$?
[ $rc = 75 ] || { cat "$WORK/timed.log"; fail "--max-hours: expected exit 75, got $rc"; }
grep -q "^time limit reached on some rank (--max-hours 0.0001; rank 0 has run .* h, .* s): checkpoint at step [0-9]* written" \
  "$WORK/timed.log" || { cat "$WORK/timed.log"; fail "--max-hours: no stop message"; }
[ "$(grep -e "^--max-hours 0.0001: this process stops" -e "^time in the loop: " -e "^time limit reached" \
  "$WORK/timed.log" | cut -c1-10 | tr '\n' ,)" = "--max-hour,time in th,time limit," ] \
  || { cat "$WORK/timed.log"; fail "--max-hours: not announced, or no time line before the stop message"; }
"$RBM" train --resume --out "$WORK/timed" > "$WORK/timed.resume.log" 2>&1 \
  || { cat "$WORK/timed.resume.log"; fail "--max-hours: a plain resume did not run to the end"; }
same_datasets "$(newest_checkpoint "$WORK/single-full")" "$(newest_checkpoint "$WORK/timed")" \
  /model/W /model/vbias /model/hbias /chains/hidden
grep -qx "max-hours = 0" "$WORK/timed/config.ini" || fail "the resumed process kept the stopped one's --max-hours"
echo "ok: --max-hours stopped at $(grep -o 'checkpoint at step [0-9]*' "$WORK/timed.log"), resumed, equal"
# Out of time only once the last step is done: the run has finished, and says so with exit
# 0 (a job script must not requeue a run with nothing left to do).
"$RBM" train --data "$MNIST" --limit 20 --batch-size 20 --hidden 8 --k 1 --epochs 1 --max-hours 1e-9 \
  --progress-every 0 --filters false --out "$WORK/timed-done" > "$WORK/timed-done.log" 2>&1 \
  || { cat "$WORK/timed-done.log"; fail "--max-hours past a run's one and only step: not exit 0"; }
! grep -q "time limit" "$WORK/timed-done.log" || fail "a finished run reported its time limit"
echo "ok: a run out of time only after its last step ends as finished (exit 0)"
if command -v mpirun > /dev/null; then
  # (100 epochs: the limit must come long before the end, however fast the machine)
  mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${small_model[@]}" --epochs 100 --max-hours 0.0001 --out "$WORK/timed2" \
    > "$WORK/timed2.log" 2>&1 && rc=0 || rc=$?
  [ $rc = 75 ] && [ "$(grep -c '^time limit reached' "$WORK/timed2.log")" = 1 ] \
    || { cat "$WORK/timed2.log"; fail "--max-hours on 2 ranks: exit $rc"; }
  "$RBM" info "$(newest_checkpoint "$WORK/timed2")" | grep -q "world size: 2" \
    || fail "--max-hours on 2 ranks: no 2-rank checkpoint"
  echo "ok: --max-hours on 2 ranks: both stopped at $(grep -o 'checkpoint at step [0-9]*' "$WORK/timed2.log")"
fi

echo "== a signal while the run starts (MPI, data) stops it at its first step"
# Sent the moment the process has a handler for it (/proc's caught-signal mask, SIGUSR1 =
# bit 9): rbm installs them before MPI starts and before loading anything, so the whole
# start-up is covered; a job preempted as it starts is requeued like any other. At that
# moment the process has one thread: MPI_Init's (and OpenBLAS's, told to use one) are not
# there yet, so the handlers came before MPI.
OPENBLAS_NUM_THREADS=1 "$RBM" train --data "$MNIST" --limit 2000 --hidden 64 --batch-size 10 --k 1 --epochs 1 --out "$WORK/early" \
  > "$WORK/early.log" 2>&1 &
pid=$!
for _ in $(seq 2000); do
  mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
  [ -n "$mask" ] && (( 0x$mask & (1 << 9) )) && break
  sleep 0.001
done
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
kill -USR1 $pid
rc=0
wait $pid || rc=$?
[ $rc = 75 ] || { cat "$WORK/early.log"; fail "a signal at start-up: expected exit 75, got $rc"; }
grep -q "stop requested .* checkpoint at step 1 written" "$WORK/early.log" \
  || { cat "$WORK/early.log"; fail "a signal at start-up: no checkpoint at the first step"; }
[ "$threads" = 1 ] || fail "the stop handlers came after MPI started ($threads threads when they appeared)"
echo "ok: signalled at start-up, stopped with a checkpoint at step 1"

echo "== Ctrl-C (SIGINT) stops like SIGTERM; a second Ctrl-C ends the process at once"
slow=(--data "$MNIST" --limit 400 --hidden 500 --batch-size 200 --monitor-examples 100 --epochs 50)
"$RBM" train "${slow[@]}" --k 15 --out "$WORK/int1" > "$WORK/int1.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^epoch' "$WORK/int1.log" && break; sleep 0.1; done
kill -INT $pid
rc=0
wait $pid || rc=$?
[ $rc = 75 ] && grep -q "stop requested (signal 2" "$WORK/int1.log" || { cat "$WORK/int1.log"; fail "Ctrl-C: exit $rc"; }
"$RBM" train --resume --out "$WORK/int1" > /dev/null 2>&1 || fail "no resume after Ctrl-C"
# The second press must come before the first has stopped the run: the first one is sent
# as the handlers appear, the second once the first has been delivered (no longer pending
# in /proc: two pending SIGINTs would merge into one), and the run's first step, which
# starts only after start-up, takes a second or more (k 300), so the first press cannot
# finish its stop in between, however late the shell is (20 ms after the first, with a
# step of 65 ms, failed 1 run in 55 under load).
sigint_bit() {  # sigint_bit FIELD: SIGINT's bit (signal 2 = bit 1) of that /proc mask
  local mask
  mask=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status" 2> /dev/null) || return 1
  [ -n "$mask" ] && (( 0x$mask & 2 ))
}
"$RBM" train "${slow[@]}" --k 300 --out "$WORK/int2" > "$WORK/int2.log" 2>&1 &
pid=$!
for _ in $(seq 5000); do sigint_bit SigCgt && break; sleep 0.001; done
kill -INT $pid
for _ in $(seq 5000); do sigint_bit ShdPnd || sigint_bit SigPnd || break; sleep 0.001; done
kill -INT $pid 2> /dev/null || true   # (had the run ended, its exit code below says how)
rc=0
wait $pid || rc=$?
[ $rc = 130 ] || { cat "$WORK/int2.log"; fail "a second Ctrl-C: expected death by SIGINT (130), got $rc"; }
echo "ok: one Ctrl-C checkpointed and exited 75; two ended the process"

echo "== a second rbm train in a directory whose run is still training is refused"
"$RBM" train "${small[@]}" --out "$WORK/busy" > "$WORK/busy.log" 2>&1 &
busy=$!
for _ in $(seq 600); do grep -q '^epoch' "$WORK/busy.log" && break; sleep 0.1; done
before=$(sha256sum "$WORK/busy/config.ini")
expect_error "resume while it runs" "busy' is in use by rbm train, pid $busy on" \
  "$RBM" train "${small[@]}" --resume --out "$WORK/busy"
[ "$before" = "$(sha256sum "$WORK/busy/config.ini")" ] || fail "the refused run touched config.ini"
kill -TERM $busy
wait $busy || true
"$RBM" train --resume --out "$WORK/busy" --epochs 1 > /dev/null 2>&1 || fail "the lock outlived its run"
if command -v mpirun >/dev/null; then
  run_and_signal two-ranks mpirun --oversubscribe -np 2
fi

echo "== a signal mid-epoch stops at the next step, not at the epoch's end"
# One epoch of 4000 steps of about a millisecond each: seconds, where the signal lands early.
"$RBM" train --data "$MNIST" --limit 40000 --hidden 500 --batch-size 10 --k 5 --monitor-examples 100 --epochs 1 \
  --filters false --progress-every 0 --out "$WORK/long" > "$WORK/long.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^training' "$WORK/long.log" && break; sleep 0.1; done
sleep 0.2
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc = 75 ] || { cat "$WORK/long.log"; fail "long epoch: expected exit 75, got $rc"; }
stopped=$(grep -o 'checkpoint at step [0-9]*' "$WORK/long.log" | grep -o '[0-9]*$')
[ -n "$stopped" ] && [ "$stopped" -gt 0 ] && [ "$stopped" -lt 4000 ] || fail "long epoch stopped at step '$stopped' of 4000"
echo "ok: stopped at step $stopped of 4000"
echo "PASS"
