# Bad command lines, configuration files and data are refused with a message naming
# the option or file, a non-zero exit, and nothing written earlier damaged.
source "$(dirname "$0")/lib/common.sh"
need_mnist
base=(--data "$MNIST" --limit 200 --k 1 --epochs 1)
small=("${base[@]}" --hidden 8 --batch-size 10)

expect_error "unknown command" "unknown command" "$RBM" frobnicate
expect_error "unknown flag" "unrecognised option|unknown option" "$RBM" train --data "$MNIST" --hiden 5
expect_error "no --data" "--data is required" "$RBM" train --out "$WORK/x"
expect_error "negative size" "hidden.*whole number" "$RBM" train "${base[@]}" --hidden -5 --out "$WORK/x"
expect_error "zero batch" "batch-size.*whole number" "$RBM" train "${base[@]}" --batch-size 0 --out "$WORK/x"
expect_error "text for a number" "lr.*number" "$RBM" train "${small[@]}" --lr fast --out "$WORK/x"
expect_error "NaN learning rate" "lr.*number" "$RBM" train "${small[@]}" --lr nan --out "$WORK/x"
expect_error "negative --max-hours" "max-hours must be a number from 0" "$RBM" train "${small[@]}" --max-hours -1 --out "$WORK/x"
expect_error "--max-hours with a unit" "max-hours must be a number from 0 .* got '2h'" "$RBM" train "${small[@]}" --max-hours 2h --out "$WORK/x"
expect_error "bad method" "method must be cd, pcd or pt" "$RBM" train "${small[@]}" --method gibbs --out "$WORK/x"
expect_error "batch larger than data" "batch-size 500 is larger" "$RBM" train "${base[@]}" --batch-size 500 --out "$WORK/x"
expect_error "a stray word" "unexpected argument '8'" "$RBM" train "${base[@]}" --hidden 4 8 --out "$WORK/x"
expect_error "options after --" "unexpected argument '--lr'" "$RBM" train "${small[@]}" --out "$WORK/x" -- --lr 5
echo "== a resume from another directory: the stored relative path is explained"
mkdir -p "$WORK/rel"
ln -s "$(realpath "$MNIST")" "$WORK/rel/$(basename "$MNIST")"
(cd "$WORK/rel" && "$RBM" train --data "$(basename "$MNIST")" --limit 200 --hidden 8 --batch-size 10 --k 1 --epochs 1 \
  --filters false --out "$WORK/relrun" > /dev/null) || fail "a run on a relative path"
expect_error "resumed elsewhere" "--data $(basename "$MNIST") \(from the configuration of the run being resumed, checkpoint .*\) is not found from this directory \(/\): it is relative to where the run was started" \
  bash -c "cd / && '$RBM' train --resume --out '$WORK/relrun' --epochs 2"
(cd / && "$RBM" train --resume --out "$WORK/relrun" --epochs 2 --data "$WORK/rel/$(basename "$MNIST")" > /dev/null) \
  || fail "a resume elsewhere with --data given"
expect_error "a switch-like option given no value" "option '--centering' needs a value, but the next word is '--k'" \
  "$RBM" train "${small[@]}" --centering --k 3 --out "$WORK/x"
expect_error "a value missing (eval)" "option '--runs' needs a value, but the next word is '--seeds'" \
  "$RBM" eval --checkpoint "$WORK/x.h5" --data "$MNIST" --runs --seeds 2
expect_error "a stray word (sample)" "unexpected argument 'stray'" "$RBM" sample --checkpoint "$WORK/x.h5" stray
expect_error "a stray word (eval)" "unexpected argument 'stray'" "$RBM" eval --checkpoint "$WORK/x.h5" --data "$MNIST" stray
expect_error "a validation fraction that holds out none" "--validation-fraction 0.001 of 200 examples holds out none" \
  "$RBM" train "${small[@]}" --validation-fraction 0.001 --out "$WORK/x"
printf '; an INI comment\n  ;another\nhidden = 8\n' > "$WORK/semicolon.ini"
"$RBM" train "${base[@]}" --batch-size 10 --config "$WORK/semicolon.ini" --out "$WORK/semicolon" > "$WORK/semicolon.log" 2>&1 \
  || { cat "$WORK/semicolon.log"; fail "';' comment lines in an INI file"; }
"$RBM" train "${small[@]}" --threads 1024 --out "$WORK/threads" > "$WORK/threads.log" 2>&1 \
  || { cat "$WORK/threads.log"; fail "--threads 1024"; }
# (1024, the option's largest: Debian's OpenBLAS takes 64, other builds rarely so many)
grep -Eq "warning: --threads 1024: this OpenBLAS runs at most [0-9]+ threads; using [0-9]+" "$WORK/threads.log" \
  || { cat "$WORK/threads.log"; fail "--threads beyond OpenBLAS's limit was cut silently"; }
expect_error "missing data file" "nope.idx" "$RBM" train --data "$WORK/nope.idx" --out "$WORK/x"
printf 'not an idx file at all' > "$WORK/garbage.idx"
expect_error "garbage data" "garbage.idx.*magic" "$RBM" train --data "$WORK/garbage.idx" --out "$WORK/x"
"$RBM" train "${small[@]}" --out "$WORK/first" > /dev/null
expect_error "missing HDF5 dataset" "nothing" "$RBM" train --data "$WORK/first/metrics.h5:/nothing" --out "$WORK/x"

printf 'hidden = 12\nlearning-rate = 0.1\n' > "$WORK/typo.ini"
expect_error "config typo" "typo.ini.*learning-rate" "$RBM" train "${small[@]}" --config "$WORK/typo.ini" --out "$WORK/x"
printf 'hidden = twelve\n' > "$WORK/bad.ini"
expect_error "config bad value" "bad.ini.*hidden" "$RBM" train "${small[@]}" --config "$WORK/bad.ini" --out "$WORK/x"
expect_error "missing config" "cannot read configuration file '.*none.ini': No such file or directory$" "$RBM" train --config "$WORK/none.ini"
expect_error "missing config, relative" "cannot read configuration file 'none.ini': No such file or directory \\(relative to the current directory, /\\)" \
  bash -c "cd / && '$RBM' train --config none.ini"

echo "== a config.ini of the user's own in --out is not replaced"
mkdir -p "$WORK/mine" && printf '# my experiment\nhidden = 8\n' > "$WORK/mine/config.ini"
expect_error "the user's config.ini in --out" "mine/config.ini' exists and was not written by rbm train" \
  "$RBM" train "${base[@]}" --config "$WORK/mine/config.ini" --batch-size 10 --out "$WORK/mine"
grep -q "^# my experiment" "$WORK/mine/config.ini" || fail "the user's config.ini was replaced"
[ "$(ls -A "$WORK/mine")" = config.ini ] || fail "the refused start wrote into the user's folder: $(ls -A "$WORK/mine")"

echo "== --resume with the same --config and a flag that overrode one of its keys (a requeued job)"
printf 'hidden = 12\nlr = 0.05\n' > "$WORK/sweep.ini"
"$RBM" train "${base[@]}" --batch-size 10 --config "$WORK/sweep.ini" --hidden 8 --resume --out "$WORK/sweep" > /dev/null \
  || fail "first start"
"$RBM" train "${base[@]}" --batch-size 10 --config "$WORK/sweep.ini" --hidden 8 --resume --out "$WORK/sweep" \
  > "$WORK/sweep.log" 2>&1 || { cat "$WORK/sweep.log"; fail "a requeued start with the same command line was refused"; }
grep -q "resumed from step" "$WORK/sweep.log" || fail "the requeued start did not resume"
expect_error "resume dropping the overriding flag" "sweep.ini: --hidden 12 differs" \
  "$RBM" train "${base[@]}" --batch-size 10 --config "$WORK/sweep.ini" --resume --out "$WORK/sweep"

echo "== --resume on other training rows is refused; the same rows moved are fine"
"$RBM" train "${small[@]}" --out "$WORK/rows" > /dev/null
expect_error "resume on other rows of the same count" "its 200 training rows are not the ones the run in .* was trained on" \
  "$RBM" train --resume --out "$WORK/rows" --data "$MNIST_TEST" --epochs 2
{ printf '\x00\x00\x08\x03\x00\x00\x00\x96\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((16 + 150 * 784)) "$MNIST" | tail -c $((150 * 784)); } \
  > "$WORK/150.idx"
expect_error "resume on fewer rows" "gives 150 training rows, but the run in .* was trained on 200" \
  "$RBM" train --resume --out "$WORK/rows" --data "$WORK/150.idx" --epochs 2
cp "$MNIST" "$WORK/moved.idx"
"$RBM" train --resume --out "$WORK/rows" --data "$WORK/moved.idx" --epochs 2 > "$WORK/moved.log" 2>&1 \
  || { cat "$WORK/moved.log"; fail "resume with the same data moved"; }
# Neither changes what is trained: --monitor-examples, and --chains spelled as the batch size it was.
"$RBM" train --resume --out "$WORK/rows" --epochs 3 --monitor-examples 50 --chains 10 > "$WORK/same.log" 2>&1 \
  || { cat "$WORK/same.log"; fail "resume with --monitor-examples and --chains equal to the batch"; }
expect_error "resume with other chains" "--chains 11 differs" "$RBM" train --resume --out "$WORK/rows" --chains 11

echo "== a run exists: a fresh start is refused and the run is untouched"
"$RBM" train "${small[@]}" --out "$WORK/run" > /dev/null
before=$(sha256sum "$WORK"/run/checkpoints/*.h5 "$WORK/run/metrics.h5")
expect_error "existing run" "already holds a run.*--resume" "$RBM" train "${small[@]}" --out "$WORK/run"
expect_error "resume changing lr" "--lr 0.5 differs" "$RBM" train --resume --out "$WORK/run" --lr 0.5
[ "$before" = "$(sha256sum "$WORK"/run/checkpoints/*.h5 "$WORK/run/metrics.h5")" ] || fail "files changed"

echo "== bad checkpoints"
printf 'junk' > "$WORK/junk.h5"
expect_error "sample from junk" "junk.h5" "$RBM" sample --checkpoint "$WORK/junk.h5"
expect_error "info on junk" "junk.h5" "$RBM" info "$WORK/junk.h5"
ckpt=$(newest_checkpoint "$WORK/run")
# One bad file among several: the others are still described, and the exit says one failed.
rc=0
"$RBM" info "$WORK/junk.h5" "$ckpt" > "$WORK/info2.out" 2> "$WORK/info2.err" || rc=$?
[ $rc = 1 ] && grep -q "junk.h5" "$WORK/info2.err" && grep -q "rbm checkpoint" "$WORK/info2.out" \
  || { cat "$WORK/info2.out" "$WORK/info2.err"; fail "rbm info stopped at the bad file (exit $rc)"; }
head -c 3000 "$ckpt" > "$WORK/truncated.h5"
expect_error "truncated checkpoint" "truncated.h5" "$RBM" sample --checkpoint "$WORK/truncated.h5"
expect_error "sample without checkpoint" "--checkpoint is required" "$RBM" sample

echo "== help and version"
"$RBM" --version | grep -q "^rbm [0-9]" || fail "--version"
echo "== idle flags"
# Flags the run's settings leave idle are refused (from the command line; a config file
# may hold every key, as rbm's own config.ini does).
expect_error "an idle binarisation seed" "--binarize-seed applies to --binarize stochastic or dynamic, and the binarisation here is none" \
  "$RBM" train "${base[@]}" --binarize-seed 3 --out "$WORK/idle1"
expect_error "an idle threshold" "--binarize-threshold applies to --binarize threshold, and the binarisation here is stochastic" \
  "$RBM" train "${base[@]}" --binarize stochastic --binarize-threshold 0.3 --out "$WORK/idle2"
expect_error "an idle offset rate" "--offset-rate applies to --centering true" \
  "$RBM" train "${base[@]}" --offset-rate 0.1 --out "$WORK/idle3"
expect_error "an idle initial momentum" "--initial-momentum applies to the --momentum-warmup epochs" \
  "$RBM" train "${base[@]}" --initial-momentum 0.3 --out "$WORK/idle4"
printf 'binarize = none\nbinarize-seed = 7\nbinarize-threshold = 0.4\noffset-rate = 0.2\ninitial-momentum = 0.3\n' \
  > "$WORK/all_keys.ini"
"$RBM" train "${small[@]}" --config "$WORK/all_keys.ini" --out "$WORK/idle_file" > /dev/null \
  || fail "idle keys in a config file were refused"
echo "ok: idle keys in a config file are accepted"
"$RBM" train "${small[@]}" --binarize dynamic --binarize-seed 4 --out "$WORK/seeded_dynamic" > /dev/null \
  || fail "--binarize-seed with --binarize dynamic was refused"
expect_error "a guessed prefix of a flag" "unrecognised option '--hid'|unknown option.*--hid" \
  "$RBM" train "${base[@]}" --hid 8 --out "$WORK/prefix"

# Whole help texts first: grep -q stops reading at its match, and under pipefail the
# writer's SIGPIPE would fail the pipeline.
grep -q "global batch" <<<"$("$RBM" train --help)" || fail "train --help says nothing of the global batch"
grep -q -- "--plot-every" <<<"$("$RBM" sample --help)" || fail "sample --help"
echo "PASS"
