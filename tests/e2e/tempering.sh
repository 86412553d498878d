# Parallel tempering (--method pt) end to end: the run's log reports the swaps, its
# checkpoints hold every level's chains laid out as /chains/hidden with their inverse
# temperatures, a resume mid-epoch ends bitwise equal to the run uninterrupted (on one
# rank, and on two with centering), a resume on another rank count re-slices every level,
# `rbm info` and `rbm sample` read its checkpoints, the default ladder is 5 temperatures
# down to 0.8, and options or checkpoints that do not fit it are refused by name.
source "$(dirname "$0")/lib/common.sh"
need_mnist
opts=(--data "$MNIST" --limit 300 --hidden 16 --method pt --k 2 --temperatures 4 --beta-min 0.4 --chains 6
      --batch-size 10 --monitor-examples 50 --seed 5 --filters false --progress-every 0)
state=(/model/W /model/vbias /model/hbias /chains/hidden /chains/tempered_hidden /chains/tempered_betas)

echo "== one rank: 2 epochs (60 steps), a checkpoint every 25"
"$RBM" train "${opts[@]}" --epochs 2 --checkpoint-every 25 --keep-checkpoints 0 --out "$WORK/full" > "$WORK/full.log"
grep -q "pt-2, 1 rank(s)" "$WORK/full.log" || fail "the log does not name the method: $(grep training "$WORK/full.log")"
[ "$(grep -c '^tempering: swaps accepted between neighbouring inverse temperatures (1 -> 0.4): [0-9.]* [0-9.]* [0-9.]*$' "$WORK/full.log")" = 2 ] \
  || fail "no swap report per epoch: $(grep tempering "$WORK/full.log")"
for key in "method = pt" "temperatures = 4" "beta-min = 0.4"; do
  grep -qx "$key" "$WORK/full/config.ini" || fail "config.ini lacks '$key'"
done
$PY - "$(newest_checkpoint "$WORK/full")" <<'PYEOF'
import sys, h5py, numpy as np
c = h5py.File(sys.argv[1])
hidden, tempered, betas = c["chains/hidden"][:], c["chains/tempered_hidden"][:], c["chains/tempered_betas"][:]
assert hidden.shape == (6, 16) and tempered.shape == (3, 6, 16), (hidden.shape, tempered.shape)
assert np.allclose(betas, [0.8, 0.6, 0.4]), betas
assert set(np.unique(tempered)) <= {0, 1}
assert not (tempered == hidden[None]).all()
PYEOF
# The metrics' swap column: per epoch row the lowest pair's rate, as the log prints it.
$PY - "$WORK/full/metrics.h5" "$WORK/full.log" <<'PYEOF'
import sys, h5py, numpy as np
m = h5py.File(sys.argv[1], "r", swmr=True)["metrics"][:]
logged = [min(float(x) for x in line.split(":")[-1].split()) for line in open(sys.argv[2]) if line.startswith("tempering:")]
assert len(m) == 2 and len(logged) == 2, (len(m), logged)
assert np.allclose(m["swap_acceptance_min"], logged, atol=0.0051), (m["swap_acceptance_min"], logged)
assert ((m["swap_acceptance_min"] >= 0) & (m["swap_acceptance_min"] <= 1)).all()
PYEOF
resume_from "$WORK/full" 25 "$WORK/mid"
echo "ok: resumed mid-epoch at step 25, bitwise equal at step 60"
# The checkpoint kept the swaps of steps 1-25, so the resumed run's first epoch row and
# log line count all 30 of the epoch's steps, as the uninterrupted run's do.
same_swaps() {
  local resumed; resumed=$(grep '^tempering:' "$2.log")
  [ -n "$resumed" ] && [ "$(grep '^tempering:' "$1.log" | tail -n "$(wc -l <<< "$resumed")")" = "$resumed" ] \
    || fail "$2's swap reports differ from $1's"
  $PY - "$1/metrics.h5" "$2/metrics.h5" <<'PYEOF' || fail "$2's swap column differs from $1's"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r", swmr=True)["metrics"][:] for p in sys.argv[1:])
assert (a["step"] == b["step"]).all() and np.array_equal(a["swap_acceptance_min"], b["swap_acceptance_min"]), \
    (a["swap_acceptance_min"], b["swap_acceptance_min"])
PYEOF
}
same_swaps "$WORK/full" "$WORK/mid"
"$RBM" info "$WORK/mid/checkpoints/step-0000000025.h5" \
  | grep -q "swaps accepted / proposed this epoch so far, per neighbouring pair: [0-9]*/78 [0-9]*/72 [0-9]*/78$" \
  || fail "rbm info does not give the swap tallies: $("$RBM" info "$WORK/mid/checkpoints/step-0000000025.h5" | grep swaps)"
echo "ok: the resumed run's swap reports and column equal the uninterrupted run's"

"$RBM" info "$(newest_checkpoint "$WORK/full")" > "$WORK/info.txt"
grep -q "parallel tempering: 3 more level(s) of 6 chains at inverse temperatures 0.8 0.6 0.4" "$WORK/info.txt" \
  || fail "rbm info does not describe the tempered chains: $(cat "$WORK/info.txt")"
"$RBM" sample --checkpoint "$(newest_checkpoint "$WORK/full")" --chains 3 --samples 2 --plot-every 5 \
  --out "$WORK/samples.h5" > /dev/null || fail "rbm sample cannot read a PT checkpoint"

if command -v mpirun > /dev/null; then
  echo "== two ranks, centered: exact resume; then on one rank and on three, every level re-sliced"
  # Centered, with momentum: the update that follows a tempered step is the plain one's code.
  mpirun -np 2 "$RBM" train "${opts[@]}" --centering true --momentum 0.5 --epochs 2 --checkpoint-every 10 \
    --keep-checkpoints 0 --out "$WORK/two" > "$WORK/two.log"
  grep -q "replicas bitwise identical on 2 rank(s)" "$WORK/two.log" || fail "no replica check on 2 ranks"
  resume_from "$WORK/two" 20 "$WORK/two-mid" mpirun -np 2
  same_swaps "$WORK/two" "$WORK/two-mid"
  $PY - "$(newest_checkpoint "$WORK/two")" <<'PYEOF'
import sys, h5py, numpy as np
c = h5py.File(sys.argv[1])
t, rank = c["chains/tempered_hidden"][:], c["chains/rank"][:]
assert t.shape == (3, 12, 16) and list(rank) == [0] * 6 + [1] * 6, (t.shape, rank)
PYEOF
  cp -r "$WORK/two" "$WORK/one"
  for f in "$WORK/one"/checkpoints/step-*.h5; do
    [ $((10#$(basename "$f" .h5 | sed 's/step-//'))) -le 20 ] || rm "$f"
  done
  "$RBM" train --resume --out "$WORK/one" --checkpoint-every 1000 > "$WORK/one.log"
  grep -q "resuming a run of 2 rank(s) on 1: persistent chains re-sliced (12 stored, 6 needed; the first 6 kept), at each of the 4 temperatures" "$WORK/one.log" \
    || fail "no re-slicing note: $(grep resuming "$WORK/one.log")"
  # The one rank's first step continued rank 0's six chains at every level: its
  # checkpoint's shapes are one rank's.
  $PY - "$(newest_checkpoint "$WORK/one")" <<'PYEOF'
import sys, h5py
one = h5py.File(sys.argv[1])
assert one["chains/tempered_hidden"].shape == (3, 6, 16), one["chains/tempered_hidden"].shape
assert list(one["chains/rank"][:]) == [0] * 6
PYEOF
  "$RBM" train --resume --out "$WORK/one" --epochs 3 --checkpoint-every 1000 > /dev/null
  mpirun -np 3 "$RBM" train --resume --out "$WORK/one" --epochs 4 > "$WORK/three.log"
  grep -q "12 more start at h = 0), at each of the 4 temperatures" "$WORK/three.log" \
    || fail "no re-slicing note on 3 ranks: $(grep resuming "$WORK/three.log")"
else
  echo "SKIP: the MPI part (no mpirun)"
fi

echo "== the default ladder: 5 temperatures from 1 down to 0.8"
"$RBM" train --data "$MNIST" --limit 40 --hidden 5 --method pt --k 1 --epochs 1 --filters false --progress-every 0 \
  --out "$WORK/defaults" > /dev/null
grep -qx "temperatures = 5" "$WORK/defaults/config.ini" && grep -qx "beta-min = 0.8" "$WORK/defaults/config.ini" \
  || fail "the default ladder is not 5 temperatures down to 0.8: $(grep -E 'temperatures|beta' "$WORK/defaults/config.ini")"
$PY -c "import h5py, numpy as np, sys; b = h5py.File(sys.argv[1])['chains/tempered_betas'][:]; \
assert np.allclose(b, [0.95, 0.9, 0.85, 0.8]), b" "$(newest_checkpoint "$WORK/defaults")"

echo "== what does not fit parallel tempering is refused"
expect_error "--temperatures with pcd" "--temperatures applies to --method pt.*the method here is pcd" \
  "$RBM" train --data "$MNIST" --temperatures 5 --out "$WORK/bad"
expect_error "--beta-min with cd" "--beta-min applies to --method pt.*the method here is cd" \
  "$RBM" train --data "$MNIST" --method cd --beta-min 0.5 --out "$WORK/bad"
expect_error "one temperature" "--temperatures must be a whole number from 2 to 1024, got '1'" \
  "$RBM" train --data "$MNIST" --method pt --temperatures 1 --out "$WORK/bad"
expect_error "--beta-min 1" "--beta-min" "$RBM" train --data "$MNIST" --method pt --beta-min 1 --out "$WORK/bad"
expect_error "pt on the GPU" "--method pt: parallel tempering runs on the CPU engine only" \
  "$RBM" train --data "$MNIST" --method pt --device cuda --out "$WORK/bad"
expect_error "another ladder on resume" "--temperatures 5 differs from the configuration of the run being resumed" \
  "$RBM" train --resume --out "$WORK/full" --temperatures 5
cp -r "$WORK/defaults" "$WORK/other-ladder"
$PY -c "import h5py, sys; h5py.File(sys.argv[1], 'r+')['chains/tempered_betas'][3] = 0.7" "$(newest_checkpoint "$WORK/other-ladder")"
expect_error "a checkpoint tempered on another ladder" "holds chains tempered at 4 inverse temperature\(s\) \(/chains/tempered_betas\) that are not its configuration's ladder" \
  "$RBM" train --resume --out "$WORK/other-ladder" --epochs 2
[ ! -e "$WORK/bad" ] || fail "a refused run left $WORK/bad behind"
echo "PASS"
