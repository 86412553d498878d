#!/usr/bin/env bash
# Packs what a GPU machine lacks to run rbm's GPU suite and GPU benchmark: the binaries
# built here (rbm, rbm_gpu_tests, rbm_unit_tests, rbm_bench), every shared library they
# load except glibc and the CUDA libraries the GPU machine has (cuBLAS, NCCL), Open MPI's
# runtime (mpirun, orted, plugins, help files, PMIx) in Debian's layout for OPAL_PREFIX,
# the scripts, and MNIST. The result is one .tar.xz (default .device-bundle/rbm-gpu.tar.xz)
# that unpacks anywhere; its run_gpu_checks.sh runs the suite and the benchmark there.
#
#   tools/gpu_bundle.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
out=${2:-$repo/.device-bundle}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/rbm-gpu
mkdir -p "$top/bin" "$top/lib" "$top/root" "$top/data"

for b in rbm tests/rbm_gpu_tests tests/rbm_unit_tests tests/rbm_gpu_nccl_watchdog tools/rbm_bench tools/gpu_bench/rbm_bench_cuda; do
  if [ -x "$build/$b" ]; then cp "$build/$b" "$top/bin/"; fi
done
[ -x "$top/bin/rbm" ] || { echo "gpu_bundle: $build/rbm not built (tools/build.sh)" >&2; exit 1; }
grep -q "cuda_engine\|CudaEngine" "$top/bin/rbm" || { echo "gpu_bundle: $build/rbm has no CUDA engine" >&2; exit 1; }

# Open MPI and PMIx, file by file in Debian's layout, so OPAL_PREFIX=$top/root/usr relocates them.
for pkg in openmpi-bin libopenmpi3 openmpi-common libpmix2 libhwloc15; do
  dpkg -L "$pkg" 2>/dev/null | grep -v '^/usr/share/\(doc\|man\|lintian\)' | while read -r f; do
    if [ -f "$f" ]; then mkdir -p "$top/root$(dirname "$f")"; cp -L "$f" "$top/root$f"; fi
  done
done

[ -x "$top/root/usr/bin/mpirun.openmpi" ] ||
  { echo "gpu_bundle: Open MPI's mpirun.openmpi is not installed here (tools/setup.sh)" >&2; exit 1; }
# Debian names them through update-alternatives, which dpkg -L does not list.
ln -sf mpirun.openmpi "$top/root/usr/bin/mpirun"
ln -sf mpiexec.openmpi "$top/root/usr/bin/mpiexec"

# The libraries every ELF file in the bundle loads, flat, under their sonames. glibc
# and the CUDA libraries are the GPU machine's own.
skip='^(linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|ld-linux|libcuda\.so|libcublas|libcublasLt|libnccl)'
find "$top/bin" "$top/root" -type f | while read -r elf; do
  file -b "$elf" | grep -q ELF || continue
  ldd "$elf" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r soname path; do
  if [[ ! $soname =~ $skip ]] && [ ! -e "$top/lib/$soname" ]; then cp -L "$path" "$top/lib/$soname"; fi
done

cp "$repo/tools/run_gpu_checks.sh" "$repo/tests/mpi/nccl_watchdog.sh" "$top/"
cp -r "$repo/tools/gpu_bench" "$top/gpu_bench"
cp "$repo/configs/tutorial.ini" "$top/"
cp "$repo"/data/mnist/*-ubyte "$top/data/" 2>/dev/null || echo "gpu_bundle: no MNIST in data/mnist (run tools/setup.sh)" >&2
gzip -9 "$top"/data/*-ubyte 2>/dev/null || true

mkdir -p "$out"
tar -C "$stage" -cf - rbm-gpu | xz -T2 -6 > "$out/rbm-gpu.tar.xz"
echo "gpu_bundle: $(du -h "$out/rbm-gpu.tar.xz" | cut -f1) in $out/rbm-gpu.tar.xz ($(du -sh "$top" | cut -f1) unpacked)"
