# Divergence: non-finite parameters or costs are caught in the step where they appear;
# the run stops with a message naming the step and the quantity, writes nothing of that
# step, and keeps the last good checkpoint readable. Also a checkpoint that already holds
# NaN is refused, not resumed.
source "$(dirname "$0")/lib/common.sh"
need_mnist
# Weight decay 1000 at lr 1 multiplies W by about -999 every step: W overflows to
# +-Inf within ~15 steps and then to NaN, deterministically.
base=(--data "$MNIST" --limit 400 --hidden 16 --batch-size 10 --k 1 --lr 1 --seed 5 --filters false)
blowup=("${base[@]}" --epochs 2 --weight-decay 1000)
diverge() {  # diverge DIR FLAGS...: the run must fail with the divergence message; prints the step
  local dir=$1 out rc=0; shift
  out=$("$RBM" train "$@" --out "$dir" 2>&1) || rc=$?
  [ $rc = 1 ] || { echo "$out" >&2; fail "expected exit 1, got $rc"; }
  grep -qE "training diverged at step [0-9]+: (parameter (W|vbias|hbias)\[[0-9, ]+\] is -?(nan|inf)|the (pseudo-likelihood cost|reconstruction cross-entropy) is)" <<<"$out" \
    || { echo "$out" >&2; fail "no clear divergence message"; }
  echo "$out" > "$dir.log"
  grep -m1 "diverged" <<<"$out" >&2
  grep -oE "diverged at step [0-9]+" <<<"$out" | grep -oE "[0-9]+$"
}

echo "== a checkpoint every step: the failing step is the one after the newest checkpoint"
n_every=$(diverge "$WORK/every" "${blowup[@]}" --checkpoint-every 1 --keep-checkpoints 0)
last=$(newest_checkpoint "$WORK/every")
[ "$(basename "$last")" = "$(printf 'step-%010d.h5' $((n_every - 1)))" ] \
  || fail "diverged at step $n_every but the newest checkpoint is $last"
grep -q "last good checkpoint is $last" "$WORK/every.log" || fail "the message does not name the last good checkpoint"
"$RBM" info "$last" > /dev/null || fail "the last good checkpoint $last is not readable"
$PY - "$last" <<'PYEOF' || fail "the last good checkpoint holds non-finite numbers"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
for name in ("model/W", "model/vbias", "model/hbias", "optimizer/velocity_W"):
    assert np.isfinite(f[name][:]).all(), name
PYEOF
[ -z "$(ls "$WORK/every/checkpoints" | grep -v '^step-[0-9]*\.h5$')" ] || fail "a temporary file was left"
echo "ok: diverged at step $n_every; checkpoint $((n_every - 1)) kept, finite and readable"

echo "== no checkpoint or metrics row near it: caught at the same step all the same"
n_plain=$(diverge "$WORK/plain" "${blowup[@]}")
[ "$n_plain" = "$n_every" ] || fail "caught at step $n_plain without checkpoints, at $n_every with one every step"
echo "ok: caught at step $n_plain, within the step"

echo "== a slower blow-up: the costs overflow (NaN) while the parameters are still finite"
# Weight decay 3 grows W ~2x a step: the hidden pre-activations (sums of 784 terms)
# overflow a step or more before W itself does; the cost check catches that step.
n_cost=$(diverge "$WORK/cost" "${base[@]}" --weight-decay 3 --epochs 5)
grep -qE "the (pseudo-likelihood cost|reconstruction cross-entropy) is -?nan" "$WORK/cost.log" \
  || echo "note: on this machine the parameters overflowed first (step $n_cost)"
echo "ok: caught at step $n_cost"

echo "== on 2 ranks too (every rank sees it; the job ends, non-zero, promptly)"
if command -v mpirun > /dev/null; then
  rc=0
  out=$(timeout 60 mpirun --oversubscribe --bind-to none -np 2 "$RBM" train "${blowup[@]}" \
        --out "$WORK/mpi" 2>&1) || rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "$out"; fail "2 ranks: exit $rc"; }
  grep -qE "training diverged at step [0-9]+" <<<"$out" || { echo "$out"; fail "2 ranks: no divergence message"; }
  echo "ok: 2 ranks stopped with exit $rc: $(grep -m1 -oE 'training diverged at step [0-9]+: [^;]*' <<<"$out")"
fi

echo "== a checkpoint holding NaN is refused by resume, sample and info"
"$RBM" train --data "$MNIST" --limit 200 --hidden 8 --batch-size 10 --k 1 --epochs 1 --out "$WORK/nan" > /dev/null
ckpt=$(newest_checkpoint "$WORK/nan")
$PY - "$ckpt" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f["model/hbias"][3] = np.nan
PYEOF
expect_error "resume from NaN" "$(basename "$ckpt").*model/hbias holds -?nan" "$RBM" train --resume --out "$WORK/nan" --epochs 2
expect_error "sample from NaN" "model/hbias holds -?nan" "$RBM" sample --checkpoint "$ckpt" --out "$WORK/s.h5"
expect_error "info on NaN" "model/hbias holds -?nan" "$RBM" info "$ckpt"
echo "PASS"
