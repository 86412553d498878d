#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer: configures
# with RBM_SANITIZE=ON (gcc, -fsanitize=address,undefined) into build-asan/ (or
# $RBM_ASAN_BUILD), builds, and runs ctest there — unit tests, the end-to-end tests of
# the real binary (bad inputs, crash and resume, divergence, dead ranks) and the MPI tests.
#
#   tools/sanitize.sh [CTEST ARGS...]      e.g. tools/sanitize.sh -R e2e
#
# Any ASan report or UBSan "runtime error" fails the test that hit it: UBSan halts on the
# first error, and the end-to-end tests also refuse output that contains one. Leak
# detection is off: Open MPI and OpenBLAS keep allocations until exit by design; the
# link-order check is off so that a test may LD_PRELOAD a shim (live_metrics does).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RBM_ASAN_BUILD:-$repo/build-asan}
start=$SECONDS
# -g1: line tables only, enough for the reports' file:line and a third quicker to compile
# than full debug information (30 s -> 20 s for eval_report.cpp here).
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DRBM_SANITIZE=ON -DRBM_WITH_CUDA=OFF \
  > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" > "$build.build.log" 2>&1 || { tail -40 "$build.build.log"; exit 1; }
echo "sanitize.sh: built in $((SECONDS - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# As tools/test.sh: Open MPI refuses root without these; ob1/vader start fast on one node.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
cd "$build"
t0=$SECONDS
rc=0
# The tests labelled openblas_kernels rerun others under OpenBLAS's Haswell kernels: what
# they check is OpenBLAS's rounding, which the sanitizers do not change.
ctest --output-on-failure -j 2 -LE openblas_kernels "$@" || rc=$?
echo "sanitize.sh: tests took $((SECONDS - t0)) s, $((SECONDS - start)) s in all"
exit $rc
