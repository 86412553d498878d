#!/usr/bin/env bash
# Runs on a GPU machine, from the unpacked bundle of tools/gpu_bundle.sh: the GPU test
# suite, end-to-end GPU checks through the real binary (CPU<->GPU checkpoints, AIS on the
# GPU against the CPU, NCCL, two ranks on one GPU), then the GPU benchmark, and prints a short table last.
# Sanitizers come last, skipped past a time budget (RBM_GPU_CHECKS_BUDGET_S, default 420 s).
# Results go to $OUT (default /tmp/rbm-gpu-out): summary.txt, bench_table.txt, device.txt,
# gpu_tests.xml, and every log in logs.tar.gz.
#
#   tar -xJf rbm-gpu.tar.xz -C /tmp && /tmp/rbm-gpu/run_gpu_checks.sh [--no-bench]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${OUT:-/tmp/rbm-gpu-out}
logs=$out/logs
mkdir -p "$out" "$logs"
bench=1
[ "${1:-}" = --no-bench ] && bench=0
# Checks and benchmark parts end before the device call would (RBM_GPU_CHECKS_LIMIT_S,
# default 560 s, from here, the libraries' search included): each gets at most 150 s and
# what is left, and is skipped, recorded as such, when under 20 s are left.
export RBM_GPU_DEADLINE=$(( $(date +%s) + ${RBM_GPU_CHECKS_LIMIT_S:-560} ))

# The machine's own CUDA libraries (cuBLAS, NCCL): the loader's cache, the toolkit's, else
# the Python wheels' (the disk is searched only when the others have not found it). One
# path or none: no pipe here may end early (pipefail would count ldconfig's SIGPIPE).
find_cuda_lib() {
  local p
  p=$(ldconfig -p | awk -v l="$1" '$1 == l && !f {print $NF; f = 1}')
  [ -n "$p" ] && { echo "$p"; return; }
  for p in /usr/local/cuda/lib64/"$1" /usr/local/cuda/lib/"$1"; do
    [ -e "$p" ] && { echo "$p"; return; }
  done
  find / -xdev -name "$1" -path '*nvidia*' -print -quit 2>/dev/null || true
}
cuda_dirs=""
for lib in libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  found=$(find_cuda_lib "$lib" | head -n 1)
  [ -n "$found" ] && cuda_dirs="$cuda_dirs:$(dirname "$found")" || echo "warning: $lib not found" >&2
done
export LD_LIBRARY_PATH="$here/lib:$here/root/usr/lib/x86_64-linux-gnu:$here/root/usr/lib/x86_64-linux-gnu/openmpi/lib${cuda_dirs}:${LD_LIBRARY_PATH:-}"
export OPAL_PREFIX=$here/root/usr
export PATH="$here/bin:$here/root/usr/bin:$PATH"
export PMIX_MCA_mca_base_component_path=$here/root/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
export OMPI_MCA_rmaps_base_oversubscribe=1
mnist=$here/data/train-images-idx3-ubyte.gz
mnist_test=$here/data/t10k-images-idx3-ubyte.gz
work=$(mktemp -d)
# Every check's line goes to summary.txt as soon as it is known, so a run cut short by the
# device call's limit still brings back what it found.
: > "$out/summary.txt"
record() { echo "$1" >> "$out/summary.txt"; }
# shellcheck source=gpu_bench/time_left.sh
source "$here/gpu_bench/time_left.sh"
check() {  # check NAME COMMAND... : runs it with a time limit, logs it, records pass/fail
  local name=$1 limit; shift
  limit=$(step_limit) || { record "SKIP  $name (under 20 s of the run's time left)"; return; }
  if timeout "$limit" "$@" > "$logs/$name.log" 2>&1; then record "PASS  $name"; else record "FAIL  $name (see logs/$name.log)"; fi
  tail -n 3 "$logs/$name.log"
}
# check_in_budget NAME COMMAND...: check, unless the run is past RBM_GPU_CHECKS_BUDGET_S
# seconds (default 420): the sanitizers, last, take only what the rest left.
budget=${RBM_GPU_CHECKS_BUDGET_S:-420}
check_in_budget() {
  if [ "$SECONDS" -ge "$budget" ]; then record "SKIP  $1 (past the ${budget} s budget at ${SECONDS} s)"; return; fi
  check "$@"
}

nvidia-smi -L | tee "$out/device.txt"
rbm --version 2>&1 | tee -a "$out/device.txt"
version_rc=${PIPESTATUS[0]}
{ echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; ldd "$here/bin/rbm"; } >> "$out/device.txt"
# Without a GPU that rbm can use (a driver too old, libraries not found, rbm unable to
# load) every check would fail the same way: say why once and stop, keeping the device
# call's minutes.
if [ "$version_rc" != 0 ] || grep -q ' 0 GPU(s) visible' "$out/device.txt"; then
  record "FAIL  no GPU usable by rbm (rbm --version exit $version_rc): $(grep -m1 -o '[0-9]* GPU(s) visible.*\|error while loading.*' "$out/device.txt") (see device.txt)"
  cat "$out/summary.txt"
  tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs" "$work"
  exit 1
fi

# A cluster kernel that hangs would cost every later check its whole time limit: it runs
# alone first, briefly. If it does not finish, the suite, the checks and the benchmark
# leave it out (and say so); if it fails, everything runs, for the failures' details.
chain_filter=
export RBM_GPU_NO_CHAIN_KERNEL=0
rc=0
timeout 90 rbm_gpu_tests --gtest_filter='CudaChainKernel.PlansTheTutorialShape:CudaChainKernel.StepsMatchCpu' \
  > "$logs/chain_kernel_first.log" 2>&1 || rc=$?
if [ "$rc" = 124 ]; then
  record "FAIL  chain_kernel_first (did not finish in 90 s: the cluster kernel is left out of every later check)"
  chain_filter=--gtest_filter=-CudaChainKernel.*
  RBM_GPU_NO_CHAIN_KERNEL=1
fi
tail -n 3 "$logs/chain_kernel_first.log"
# chain_check CHECKER NAME COMMAND...: a check of the cluster kernel, left out if it hung.
chain_check() {
  if [ "$RBM_GPU_NO_CHAIN_KERNEL" = 1 ]; then record "SKIP  $2 (the cluster kernel hung)"; return; fi
  "$@"
}
check gpu_suite rbm_gpu_tests --gtest_output=xml:"$out/gpu_tests.xml" $chain_filter
check unit_suite rbm_unit_tests

small=(--data "$mnist" --test-data "$mnist_test" --limit 2000 --hidden 64 --batch-size 20 --k 5 --monitor-examples 200)
check gpu_then_cpu_then_gpu bash -c "
  set -e
  rbm train ${small[*]} --epochs 1 --device cuda --out $work/x > $work/x1.log; grep 'engine cuda' $work/x1.log
  rbm train --resume --out $work/x --epochs 2 --device cpu > $work/x2.log; grep 'resumed from step 100' $work/x2.log
  rbm train --resume --out $work/x --epochs 3 --device cuda > $work/x3.log; grep 'resumed from step 200' $work/x3.log
  rbm info $work/x/checkpoints/step-0000000300.h5"
check cpu_and_gpu_agree bash -c "
  set -e
  rbm train ${small[*]} --epochs 2 --device cpu --out $work/c > $work/c.log
  rbm train ${small[*]} --epochs 2 --device cuda --out $work/g > $work/g.log
  grep '^epoch' $work/c.log $work/g.log
  # the last epoch's costs within 1% (the runs part only at near-tie draws and rounding)
  for field in xent '(PL)'; do
    a=\$(grep '^epoch' $work/c.log | tail -n 1 | awk -v f=\"\$field\" '{for (i=1;i<=NF;i++) if (\$i==f) print \$(i+1)}')
    b=\$(grep '^epoch' $work/g.log | tail -n 1 | awk -v f=\"\$field\" '{for (i=1;i<=NF;i++) if (\$i==f) print \$(i+1)}')
    echo \"\$field: cpu \$a gpu \$b\"
    awk -v a=\"\$a\" -v b=\"\$b\" 'BEGIN {d = a - b; if (d < 0) d = -d; if (a < 0) a = -a; exit !(a > 0 && d <= 0.01 * a)}'
  done"
# A run that diverges (weight decay 1000 at lr 1: W overflows within ~15 steps) is caught
# on the GPU (the update kernel's own non-finite flag, read a step later) at the same
# step as on the CPU, with the same message.
check divergence_caught_like_cpu bash -c "
  for d in cpu cuda; do
    if rbm train --data $mnist --limit 400 --hidden 16 --batch-size 10 --k 1 --lr 1 --seed 5 --filters false \
         --epochs 2 --weight-decay 1000 --device \$d --out $work/div_\$d > $work/div_\$d.log 2>&1; then
      echo \"no divergence on \$d\"; exit 1
    fi
    grep -m1 -oE 'training diverged at step [0-9]+: [^;]*' $work/div_\$d.log || { cat $work/div_\$d.log; exit 1; }
  done
  [ \"\$(grep -m1 -oE 'diverged at step [0-9]+' $work/div_cpu.log)\" = \"\$(grep -m1 -oE 'diverged at step [0-9]+' $work/div_cuda.log)\" ]"
# The same run with the whole-chain cluster kernel (MODE 1: the sweeps, 2: the fused
# step): its last reconstruction cost within 1% of the cuBLAS sweeps' (they differ only
# by near-tie draws and rounding).
chain_kernel_run_agrees() {
  set -e
  local mode=$1 log=$work/k$1.log
  RBM_CUDA_CHAIN_KERNEL=$mode rbm train "${small[@]}" --epochs 2 --device cuda --out "$work/k$mode" > "$log" 2>&1 \
    || { cat "$log"; return 1; }  # (the work folder does not come back)
  local kind=whole-chain
  [ "$mode" = 2 ] && kind=whole-step
  grep "$kind cluster kernel in use" "$log" || { cat "$log"; return 1; }  # the engine's note once it planned the batch
  grep '^epoch' "$work/g.log" "$log"
  local a b
  a=$(grep '^epoch' "$work/g.log" | tail -n 1 | awk '{for (i=1;i<=NF;i++) if ($i=="xent") print $(i+1)}')
  b=$(grep '^epoch' "$log" | tail -n 1 | awk '{for (i=1;i<=NF;i++) if ($i=="xent") print $(i+1)}')
  awk -v a="$a" -v b="$b" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.01 * a)}'
}
export -f chain_kernel_run_agrees
export work
export small_args="${small[*]}"
chain_check check chain_kernel_run_agrees bash -c 'small=($small_args); chain_kernel_run_agrees 1'
chain_check check fused_step_run_agrees bash -c 'small=($small_args); chain_kernel_run_agrees 2'
check eval_gpu_matches_cpu bash -c "
  set -e
  ck=\$(ls $work/g/checkpoints/step-*.h5 | sort | tail -n 1)
  for d in cpu cuda; do
    t0=\$(date +%s%N)
    rbm eval --checkpoint \$ck --data $mnist_test --limit 2000 --runs 100 --seeds 2 --exact no --device \$d --json > $work/eval_\$d.json
    echo \"eval --device \$d: \$(( (\$(date +%s%N) - t0) / 1000000 )) ms\"
  done
  python3 - $work/eval_cpu.json $work/eval_cuda.json <<'PY'
import json, sys
c, g = (json.load(open(p)) for p in sys.argv[1:3])
assert g['annealing_device'].startswith('cuda '), g['annealing_device']
print('log Z cpu %.4f gpu %.4f; RAISE cpu %.4f gpu %.4f' % (c['ais']['log_z'], g['ais']['log_z'], c['reverse']['log_z'], g['reverse']['log_z']))
assert abs(c['ais']['log_z'] - g['ais']['log_z']) < 0.2 and abs(c['reverse']['log_z'] - g['reverse']['log_z']) < 0.5
PY"
# rbm sample on the GPU (the CUDA engine's Gibbs chains; GibbsSamplesMatchCpu in the suite
# compares them with the CPU's).
check sample_on_gpu bash -c "
  set -eo pipefail
  ck=\$(ls $work/g/checkpoints/step-*.h5 | sort | tail -n 1)
  rbm sample --checkpoint \$ck --data $mnist_test --chains 20 --samples 10 --plot-every 1000 --device cuda \
    --out $work/sg.h5 | tee $work/sg.log
  grep -q '^sampling on cuda' $work/sg.log
  [ -s $work/sg.png ]"
check nccl_one_rank bash -c "
  set -eo pipefail
  mpirun -np 1 rbm train ${small[*]} --epochs 1 --device cuda --comm nccl --out $work/n1 | tee $work/n1.log
  grep -q 'allreduce NCCL' $work/n1.log && grep -q 'replicas bitwise identical on 1' $work/n1.log"
# The watchdog ends a rank whose allreduce cannot finish (a stream held past
# RBM_NCCL_TIMEOUT_S = 2 s) with its message and exit 1, not a hang.
check nccl_watchdog_ends_a_stall bash "$here/nccl_watchdog.sh" "$here/bin/rbm_gpu_nccl_watchdog"
check two_ranks_one_gpu_mpi bash -c "mpirun -np 2 rbm train ${small[*]} --epochs 1 --device cuda --comm mpi --out $work/m2 | grep 'replicas bitwise identical on 2'"
check two_ranks_one_gpu_nccl_refused bash -c "
  if mpirun -np 2 rbm train ${small[*]} --epochs 1 --device cuda --comm nccl --out $work/n2 > $work/n2.log 2>&1; then
    cat $work/n2.log; echo 'two ranks on one GPU with NCCL were not refused'; exit 1
  fi
  cat $work/n2.log; grep 'NCCL 2.28 refuses' $work/n2.log"
if [ $bench = 1 ]; then
  bash "$here/gpu_bench/run_gpu_bench.sh" "$here" "$out" "$logs" 2>&1 | tee "$logs/bench.log"
fi

# Last, as time allows (a lent GPU's minutes are few): the engine's steps under
# compute-sanitizer's memcheck, and the cluster kernel's barriers (shared-memory hazards,
# barrier misuse) under racecheck and synccheck.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  engine_steps='CudaEngine.StepsAtTutorialScaleMatchCpu:CudaEngine.PcdStepMatchesCpu:CudaEngine.CdStepMatchesCpu:CudaEngine.StepReportCarriesTheSumsAndCatchesDivergence'
  [ "$RBM_GPU_NO_CHAIN_KERNEL" = 1 ] ||
    engine_steps="$engine_steps:CudaChainKernel.StepsMatchCpu:CudaChainKernel.EqualsTheCublasSweepsBitForBit:CudaChainKernel.FusedUpdateEqualsFormingTheGradient"
  check_in_budget memcheck_engine_steps "$sanitizer" --tool memcheck --error-exitcode 1 rbm_gpu_tests \
    --gtest_filter="$engine_steps"
  chain_check check_in_budget racecheck_chain_kernel "$sanitizer" --tool racecheck --error-exitcode 1 rbm_gpu_tests \
    --gtest_filter='CudaChainKernel.StepsMatchCpu'
  chain_check check_in_budget synccheck_chain_kernel "$sanitizer" --tool synccheck --error-exitcode 1 rbm_gpu_tests \
    --gtest_filter='CudaChainKernel.StepsMatchCpu'
fi

echo
echo "== rbm GPU checks on $(head -n 1 "$out/device.txt")"
cat "$out/summary.txt"
[ -f "$out/bench_table.txt" ] && cat "$out/bench_table.txt"
rm -rf "$work"
# One archive of every log beside the summary and the table: few files to carry back.
tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs"
! grep -q FAIL "$out/summary.txt"
