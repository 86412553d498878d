#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a trained RBM: installs the packages
# and data (tools/setup.sh), builds rbm, and trains on MNIST with the default
# configuration (configs/default.ini) into runs/default, printing where the results are.
# Extra arguments go to `rbm train` (e.g. --epochs 2). A second run continues the
# same run directory (--resume) rather than refusing it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash tools/setup.sh
rbm=$(bash tools/build.sh --target rbm | tail -n 1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec "$rbm" train --config configs/default.ini --resume "$@"
