# `rbm train --dry-run`: a batch job's start checked before it waits in a queue. It must
# refuse what a start refuses, with the same message, say what the run would do, and
# write nothing, fresh or resuming, on one rank or several; the run then does what it said.
# And `rbm info RUN_DIR`'s status: training now, or stopped before its end.
source "$(dirname "$0")/lib/common.sh"
need_mnist
small=(--data "$MNIST" --limit 600 --hidden 16 --k 1 --batch-size 20 --progress-every 0)

# snapshot DIR: every path under DIR with its size, modification time and content hash.
snapshot() { find "$1" -printf '%p %s %T@\n' | sort; find "$1" -type f -exec md5sum {} + | sort; }

echo "== a fresh run: nothing created, the plan said"
"$RBM" train "${small[@]}" --epochs 2 --out "$WORK/runs/a" --dry-run > "$WORK/fresh.log" || fail "fresh dry run"
[ ! -e "$WORK/runs" ] || fail "the dry run created $(find "$WORK/runs")"
grep -qF -- "--dry-run: every check passed, nothing was written; the run would train steps 1 to 60 (1200 examples, to the end of epoch 2) into $WORK/runs/a" \
  "$WORK/fresh.log" || { cat "$WORK/fresh.log"; fail "no plan"; }
grep -q "training 784x16 RBM, pcd-1" "$WORK/fresh.log" || fail "the run's description is missing"
echo "ok: fresh"

echo "== what a start refuses, the dry run refuses with the same message"
refused_alike() {  # refused_alike WHAT PATTERN FLAGS...: both refuse; the dry run wrote nothing
  local what=$1 pattern=$2; shift 2
  local before; before=$(snapshot "$WORK")
  expect_error "$what (--dry-run)" "$pattern" "$RBM" train "$@" --dry-run
  [ "$(snapshot "$WORK")" = "$before" ] || fail "$what: the refused dry run changed $WORK"
  expect_error "$what" "$pattern" "$RBM" train "$@"
}
refused_alike "missing data" "nowhere.idx" "${small[@]/$MNIST/$WORK/nowhere.idx}" --out "$WORK/x"
touch "$WORK/afile"
refused_alike "--out is a file" "'.*afile' exists and is not a directory" "${small[@]}" --out "$WORK/afile"
mkdir -p "$WORK/mine" && echo "hidden = 16" > "$WORK/mine/config.ini"
refused_alike "a foreign config.ini" "mine/config.ini' exists and was not written by rbm train" \
  "${small[@]}" --out "$WORK/mine"
mkdir -p "$WORK/junk" && echo junk > "$WORK/junk/metrics.h5"
refused_alike "a metrics.h5 that is no metrics file" "junk/metrics.h5" "${small[@]}" --out "$WORK/junk"
[ "$(ls -A "$WORK/junk")" = metrics.h5 ] || fail "the refused start wrote beside the foreign metrics.h5: $(ls -A "$WORK/junk")"
ln -s "$WORK/nowhere" "$WORK/dangling"
expect_error "--out under a dangling link (--dry-run)" "dangling' is a symbolic link to '.*nowhere', which does not exist" \
  "$RBM" train "${small[@]}" --out "$WORK/dangling/run" --dry-run
# (a directory still to be made under a file: the start's own words are the system's)
expect_error "--out under a file (--dry-run)" "'.*afile' exists and is not a directory" \
  "$RBM" train "${small[@]}" --out "$WORK/afile/x" --dry-run
"$RBM" train "${small[@]}" --epochs 1 --out "$WORK/runs/a" > /dev/null || fail "the first epoch"
wider=("${small[@]/#16/17}")  # --hidden 17 in place of 16
refused_alike "--init-from another shape" "holds a 784x16 model, but .* --hidden 17" \
  "${wider[@]}" --init-from "$WORK/runs/a" --out "$WORK/runs/c"
refused_alike "--resume with other settings" "--lr 0.2 differs from the configuration of the run being resumed" \
  "${small[@]}" --lr 0.2 --resume --out "$WORK/runs/a"
refused_alike "--resume on other rows" "training rows are not the ones the run .* was trained on" \
  "${small[@]/$MNIST/$MNIST_TEST}" --resume --out "$WORK/runs/a"

echo "== a resume: the checkpoint read and checked, the metrics table left as it was"
before=$(snapshot "$WORK/runs/a")
"$RBM" train "${small[@]}" --epochs 3 --resume --out "$WORK/runs/a" --dry-run > "$WORK/resume.log" || fail "resume dry run"
[ "$(snapshot "$WORK/runs/a")" = "$before" ] || fail "the resume's dry run changed the run directory"
grep -q "resumed from step 30 (epoch 1" "$WORK/resume.log" || fail "no resume said"
grep -qF "would train steps 31 to 90 (1200 examples, to the end of epoch 3)" "$WORK/resume.log" \
  || { cat "$WORK/resume.log"; fail "no resume plan"; }
"$RBM" train "${small[@]}" --epochs 3 --resume --out "$WORK/runs/a" > /dev/null || fail "the resume"
[ "$(basename "$(newest_checkpoint "$WORK/runs/a")")" = step-0000000090.h5 ] || fail "the run did not end where it said"
"$RBM" train "${small[@]}" --epochs 3 --resume --out "$WORK/runs/a" --dry-run | grep -q "the run would have nothing to train" \
  || fail "a finished run's dry run"
echo "ok: resume"

echo "== a run in progress: its directory is in use, and rbm info says so"
long=(--data "$MNIST" --limit 6000 --hidden 64 --k 5 --epochs 100 --progress-every 0 --out "$WORK/runs/busy")
"$RBM" train "${long[@]}" > /dev/null &
busy=$!
trap 'kill $busy 2> /dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 600); do  # a loaded machine may take seconds to start it
  grep -qs "rbm train, pid $busy" "$WORK/runs/busy/.rbm-lock" && break
  kill -0 $busy 2> /dev/null || fail "the run in progress ended early"
  sleep 0.1
done
grep -qs "rbm train, pid $busy" "$WORK/runs/busy/.rbm-lock" || fail "the run in progress did not take its lock in 60 s"
expect_error "a directory in use (--dry-run)" "runs/busy' is in use by rbm train, pid $busy" \
  "$RBM" train "${long[@]}" --resume --dry-run
"$RBM" info "$WORK/runs/busy" | grep -qF "status: training now (rbm train, pid $busy on" || fail "info: not training"
kill -INT $busy; wait $busy || true
"$RBM" info "$WORK/runs/busy" | grep -q "status: not running, [0-9]* of 100 epoch(s) done.*: stopped before its end" \
  || fail "info: $("$RBM" info "$WORK/runs/busy" | grep status)"
echo "ok: in use"

if command -v mpirun >/dev/null; then
  echo "== two ranks: the global batch, nothing written"
  mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${small[@]}" --epochs 2 --out "$WORK/runs/np2" --dry-run \
    > "$WORK/np2.log" 2>&1 || { cat "$WORK/np2.log"; fail "2 ranks"; }
  [ ! -e "$WORK/runs/np2" ] || fail "2 ranks: the dry run created the run directory"
  grep -qF "would train steps 1 to 30 (1200 examples, to the end of epoch 2)" "$WORK/np2.log" \
    || { cat "$WORK/np2.log"; fail "2 ranks: the plan"; }
  # A 1-rank run resumed on 2: its step count goes on, its epochs are half as long. 3
  # epochs of 30 steps done of 4: one more epoch, 15 steps of 2 x 20 examples.
  mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${small[@]}" --epochs 4 --resume --out "$WORK/runs/a" \
    --dry-run > "$WORK/np2resume.log" 2>&1 || { cat "$WORK/np2resume.log"; fail "2 ranks resuming 1"; }
  grep -qF "would train steps 91 to 105 (600 examples, to the end of epoch 4)" "$WORK/np2resume.log" \
    || { cat "$WORK/np2resume.log"; fail "2 ranks resuming 1: the plan"; }
  mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${small[@]}" --epochs 4 --resume --out "$WORK/runs/a" \
    > /dev/null 2>&1 || fail "2 ranks resuming 1"
  [ "$(basename "$(newest_checkpoint "$WORK/runs/a")")" = step-0000000105.h5 ] \
    || fail "2 ranks resuming 1 did not end where the plan said: $(newest_checkpoint "$WORK/runs/a")"
  echo "ok: 2 ranks"
fi
echo "PASS"
