#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (idempotent), build, then ctest — unit
# tests, end-to-end tests of the real binary, and the MPI tests under mpirun.
# GPU tests skip with a message where no GPU is visible.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/tools/setup.sh"
bash "$repo/tools/build.sh" > /dev/null
# Open MPI refuses root without these; ob1/vader make MPI start-up fast on one node.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
cd "${RBM_BUILD_DIR:-$repo/build}"
ctest --output-on-failure -j 2 "$@"
