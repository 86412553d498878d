# Shared helpers of the end-to-end tests, sourced by each tests/e2e/*.sh script.
# Usage of a script: bash tests/e2e/NAME.sh PATH/TO/rbm SOURCE_DIR
set -euo pipefail
RBM=$(realpath "$1")  # absolute: tests run it from other folders too
SRC=$2
DATA_DIR=${RBM_DATA_DIR:-$SRC/data}
MNIST=$DATA_DIR/mnist/train-images-idx3-ubyte
MNIST_TEST=$DATA_DIR/mnist/t10k-images-idx3-ubyte
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rbm-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PY=/usr/bin/python3   # Debian's interpreter, which has h5py and numpy
# Open MPI as root (CI runs as root), and its fast single-node transports.
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}

# ctest treats exit 77 as "skipped" (SKIP_RETURN_CODE).
need_mnist() {
  if [ ! -f "$MNIST" ]; then
    echo "SKIP: MNIST not found at $MNIST (run tools/setup.sh)"
    exit 77
  fi
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error "what" "pattern" cmd... : the command must fail and its stderr match pattern.
expect_error() {
  local what=$1 pattern=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "$what: exited 0, expected an error"
  grep -qiE -- "$pattern" <<<"$out" || fail "$what: message '$out' does not match /$pattern/"
  echo "ok: $what -> $(head -n1 <<<"$out")"
}

# same_datasets A B PATH...: the named HDF5 datasets are bitwise equal in both files.
same_datasets() {
  local a=$1 b=$2; shift 2
  for d in "$@"; do
    h5diff "$a" "$b" "$d" "$d" >/dev/null || fail "$d differs between $a and $b"
  done
}

newest_checkpoint() { ls "$1"/checkpoints/step-*.h5 | sort | tail -n1; }

# resume_from RUN STEP COPY [launcher...]: copies RUN, drops its checkpoints after STEP,
# resumes the copy (under the launcher, e.g. mpirun -np 2) and checks that its newest
# checkpoint equals RUN's in the datasets the caller lists in the array `state`.
resume_from() {
  local run=$1 step=$2 copy=$3; shift 3
  cp -r "$run" "$copy"
  for f in "$copy"/checkpoints/step-*.h5; do
    [ $((10#$(basename "$f" .h5 | sed 's/step-//'))) -le "$step" ] || rm "$f"
  done
  "$@" "$RBM" train --resume --out "$copy" > "$copy.log"
  grep -q "resumed from step $step " "$copy.log" || fail "did not resume from step $step"
  same_datasets "$(newest_checkpoint "$run")" "$(newest_checkpoint "$copy")" "${state[@]}"
}
