# rbm train --init-from: a new run that starts from another run's parameters, persistent
# chains (re-sliced over its ranks) and, when both are centered, hidden offsets, with its
# own settings, step 0 and a fresh optimizer; the file it started from recorded; resumed
# exactly like any run (a job script's --init-from given again is ignored); wrong shapes
# and conflicting options refused by name.
source "$(dirname "$0")/lib/common.sh"
need_mnist
small=(--data "$MNIST" --limit 600 --hidden 16 --batch-size 20 --k 1 --monitor-examples 100 --filters false
       --progress-every 0)
MPIRUN=(mpirun --oversubscribe --bind-to none)

"$RBM" train "${small[@]}" --epochs 2 --out "$WORK/a" > "$WORK/a.log"
source_ckpt=$(newest_checkpoint "$WORK/a")

echo "== the parameters are the source's: a run at a negligible rate ends where the source was"
"$RBM" train "${small[@]}" --epochs 1 --lr 1e-12 --init-from "$WORK/a" --out "$WORK/still" > "$WORK/still.log"
grep -qF "initialised from $source_ckpt (step 60): its parameters and persistent chains (20 stored, 20 needed; all kept)" \
  "$WORK/still.log" || { cat "$WORK/still.log"; fail "no account of what was taken"; }
$PY - "$source_ckpt" "$(newest_checkpoint "$WORK/still")" <<'PYX' || fail "the run did not start from the source's parameters"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
for name in ("/model/W", "/model/vbias", "/model/hbias"):
    d = np.abs(a[name][:].astype(np.float64) - b[name][:]).max()
    assert d < 1e-9, (name, d)   # a fresh initialisation is ~0.1 away
ini = b["/config"].attrs["ini"]
ini = ini.decode() if isinstance(ini, bytes) else ini
assert f"init-from = {sys.argv[1]}\n" in ini, ini
print("ok: parameters within 1e-9 of the source's, init-from recorded as", sys.argv[1])
PYX
grep -qF "init-from = $source_ckpt" "$WORK/still/config.ini" || fail "config.ini does not name the source"

echo "== a trained start: the first epoch's reconstruction beats a fresh run's first epoch"
"$RBM" train "${small[@]}" --epochs 1 --init-from "$source_ckpt" --out "$WORK/b" > "$WORK/b.log"
first_recon() { grep '^epoch' "$1" | head -n 1 | awk '{for (i=1;i<=NF;i++) if ($i=="xent") print $(i+1)}'; }
awk -v a="$(first_recon "$WORK/a.log")" -v b="$(first_recon "$WORK/b.log")" 'BEGIN {exit !(a > 0 && b > 0 && b < 0.9 * a)}' \
  || fail "first epoch's recon xent $(first_recon "$WORK/b.log") is not below the fresh run's $(first_recon "$WORK/a.log")"
grep -q "^epoch    1/1  step       30 " "$WORK/b.log" || fail "the new run does not count its own steps from 0"

echo "== resumed exactly, --init-from given again (even another one) ignored"
"$RBM" train "${small[@]}" --epochs 2 --init-from "$WORK/a" --out "$WORK/straight" > /dev/null
"$RBM" train --resume --out "$WORK/b" --epochs 2 --init-from "$WORK/still" > "$WORK/b2.log"
grep -q "resumed from step 30" "$WORK/b2.log" || fail "no resume"
same_datasets "$(newest_checkpoint "$WORK/straight")" "$(newest_checkpoint "$WORK/b")" \
  /model/W /model/vbias /model/hbias /chains/hidden /optimizer/velocity_W
grep -qF "init-from = $source_ckpt" "$WORK/b/config.ini" || fail "the resume rewrote where the run started from"
grep -qF -- "--init-from: ignored, resuming the run in $WORK/b (which started from $source_ckpt)" "$WORK/b2.log" \
  || { cat "$WORK/b2.log"; fail "the resume did not say that --init-from was ignored"; }
echo "ok: 1 epoch + resume equals 2 epochs straight, bit for bit"

echo "== a job script's first start (--resume on an empty --out) and a configuration file's key"
"$RBM" train "${small[@]}" --epochs 1 --resume --init-from "$WORK/a" --out "$WORK/job" > "$WORK/job.log"
grep -q "starting a new run" "$WORK/job.log" && grep -qF "initialised from $source_ckpt" "$WORK/job.log" \
  || { cat "$WORK/job.log"; fail "--resume on an empty --out did not start from --init-from"; }
printf 'init-from = %s\nvbias-init = data\n' "$WORK/a" > "$WORK/recipe.ini"
"$RBM" train "${small[@]}" --epochs 1 --config "$WORK/recipe.ini" --out "$WORK/keyed" > "$WORK/keyed.log"
grep -qF "initialised from $source_ckpt" "$WORK/keyed.log" || { cat "$WORK/keyed.log"; fail "init-from as a file key"; }
grep -q "the visible biases are the checkpoint's (.*recipe.ini's vbias-init = data does not apply)" "$WORK/keyed.log" \
  || { cat "$WORK/keyed.log"; fail "a file's vbias-init = data was not set aside"; }
grep -q "^vbias-init = zero" "$WORK/keyed/config.ini" || fail "config.ini claims the biases came from the data"
echo "ok: both start from the source"

echo "== parallel tempering from a PCD run: the model's chains taken, the tempered levels fresh"
"$RBM" train "${small[@]}" --epochs 1 --method pt --temperatures 3 --init-from "$WORK/a" --out "$WORK/pt" > "$WORK/pt.log"
grep -q "persistent chains (20 stored, 20 needed; all kept), the tempered levels at h = 0" "$WORK/pt.log" \
  || { cat "$WORK/pt.log"; fail "PT's start not explained"; }
echo "== from a PT run on the same ladder its tempered levels carry on too (on another one they start afresh)"
"${MPIRUN[@]}" -np 2 "$RBM" train "${small[@]}" --epochs 1 --method pt --temperatures 3 --init-from "$WORK/pt" \
  --out "$WORK/pt2" > "$WORK/pt2.log" 2>&1 || { cat "$WORK/pt2.log"; fail "PT from PT on 2 ranks"; }
grep -q "persistent chains (20 stored, 40 needed; the 20 more start at h = 0), and its tempered levels (the same ladder)" \
  "$WORK/pt2.log" || { cat "$WORK/pt2.log"; fail "the tempered levels of the same ladder were not taken"; }
"$RBM" train "${small[@]}" --epochs 1 --method pt --temperatures 4 --init-from "$WORK/pt" --out "$WORK/pt4" > "$WORK/pt4.log"
grep -q "the tempered levels at h = 0" "$WORK/pt4.log" || { cat "$WORK/pt4.log"; fail "another ladder's levels were taken"; }

echo "== two ranks from a one-rank run: chains re-sliced, replicas equal"
"${MPIRUN[@]}" -np 2 "$RBM" train "${small[@]}" --epochs 1 --init-from "$WORK/a" --out "$WORK/np2" > "$WORK/np2.log" 2>&1 \
  || { cat "$WORK/np2.log"; fail "2 ranks"; }
grep -q "persistent chains (20 stored, 40 needed; the 20 more start at h = 0)" "$WORK/np2.log" \
  || { cat "$WORK/np2.log"; fail "no re-slicing note"; }
grep -q "replicas bitwise identical on 2 rank(s)" "$WORK/np2.log" || fail "replicas differ"

echo "== centered from centered: the source's hidden offsets carry over (rate 0 keeps them)"
"$RBM" train "${small[@]}" --epochs 1 --centering true --out "$WORK/ca" > /dev/null
"$RBM" train "${small[@]}" --epochs 1 --centering true --offset-rate 0 --init-from "$WORK/ca" --out "$WORK/cb" > /dev/null
same_datasets "$(newest_checkpoint "$WORK/ca")" "$(newest_checkpoint "$WORK/cb")" /centering/hidden_offset
echo "ok: hidden offsets equal"

echo "== CD sources have no chains; CD runs take none"
"$RBM" train "${small[@]}" --epochs 1 --method cd --out "$WORK/cd" > /dev/null
"$RBM" train "${small[@]}" --epochs 1 --init-from "$WORK/cd" --out "$WORK/from_cd" > "$WORK/from_cd.log"
grep -q "it has no persistent chains, so they start at h = 0" "$WORK/from_cd.log" || fail "CD source not explained"
"$RBM" train "${small[@]}" --epochs 1 --method cd --init-from "$WORK/a" --out "$WORK/to_cd" > "$WORK/to_cd.log"
grep -q "its parameters (CD: no persistent chains)" "$WORK/to_cd.log" || fail "CD run not explained"

echo "== refused by name"
wider=("${small[@]/#16/17}")  # --hidden 17 in place of 16
expect_error "another shape" "--init-from .*step-0000000060.h5 holds a 784x16 model, but .* --hidden 17" \
  "$RBM" train "${wider[@]}" --epochs 1 --init-from "$WORK/a" --out "$WORK/bad1"
expect_error "with --vbias-init data" "--vbias-init data sets the visible biases that --init-from" \
  "$RBM" train "${small[@]}" --vbias-init data --epochs 1 --init-from "$WORK/a" --out "$WORK/bad2"
mkdir -p "$WORK/empty"
expect_error "a directory without checkpoints" "--init-from .*empty is a directory without checkpoints" \
  "$RBM" train "${small[@]}" --epochs 1 --init-from "$WORK/empty" --out "$WORK/bad3"
expect_error "a missing file" "--init-from .*nowhere.h5 does not exist" \
  "$RBM" train "${small[@]}" --epochs 1 --init-from "$WORK/nowhere.h5" --out "$WORK/bad4"
expect_error "an empty path (an unset variable in a script)" "--init-from needs a checkpoint file or a run directory" \
  "$RBM" train "${small[@]}" --epochs 1 --init-from "" --out "$WORK/bad5"
for d in bad1 bad2 bad3 bad4 bad5; do  # a refused start leaves nothing behind
  [ ! -e "$WORK/$d" ] || fail "$d: a refused start left $(find "$WORK/$d" | tr '\n' ' ')"
done
echo "PASS"
